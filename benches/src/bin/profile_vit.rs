//! Where a ViT forward spends its time: each op of a block timed separately on the default
//! device (Flex unless another backend feature is chosen), batch 8, 224².
//!
//! Run: `cargo run --release -p snnet-benches --bin profile_vit [-- MODEL]`

use std::time::Instant;

use snnet_zoo::burn::tensor::activation::gelu;
use snnet_zoo::burn::tensor::{Device, Distribution, Tensor};
use snnet_zoo::{Model, Registry};

fn time<T>(label: &str, totals: &mut Vec<(String, f64)>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    match totals.iter_mut().find(|(l, _)| l == label) {
        Some((_, total)) => *total += ms,
        None => totals.push((label.to_owned(), ms)),
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "deit_small_patch16_224".to_owned());
    let device = Device::default();
    let Model::Vit(anchor) = Registry::builtin().get(&name)?.init(&device)? else {
        return Err(format!("{name} is not a ViT-family model").into());
    };
    let vit = &anchor.model;
    let images: Tensor<4> =
        Tensor::random([8, 3, 224, 224], Distribution::Normal(0.0, 1.0), &device);
    vit.check_images(images.dims())?;
    let runs = 3;
    let mut totals = Vec::new();
    for run in 0..=runs {
        let mut t = Vec::new();
        let mut x = time("embed", &mut t, || vit.embed_tokens(images.clone()));
        for block in &vit.blocks {
            let h = time("norm1", &mut t, || block.norm1.forward(x.clone()));
            let a = time("attn (qkv+attention+proj)", &mut t, || {
                block.attn.forward(h)
            });
            x = time("residual add", &mut t, || x + a);
            let h = time("norm2", &mut t, || block.norm2.forward(x.clone()));
            let h = time("mlp.fc1", &mut t, || block.mlp.fc1.forward(h));
            let h = time("gelu", &mut t, || gelu(h));
            let h = time("mlp.fc2", &mut t, || block.mlp.fc2.forward(h));
            x = time("residual add", &mut t, || x + h);
        }
        let logits = time("head", &mut t, || vit.head_tokens(x, true));
        let _ = logits.into_data();
        if run > 0 {
            for (label, ms) in t {
                match totals
                    .iter_mut()
                    .find(|(l, _): &&mut (String, f64)| *l == label)
                {
                    Some((_, total)) => *total += ms / f64::from(runs),
                    None => totals.push((label, ms / f64::from(runs))),
                }
            }
        }
    }
    let sum: f64 = totals.iter().map(|(_, ms)| ms).sum();
    println!("{name}, batch 8, mean of {runs} runs after a warm-up: {sum:.1} ms");
    for (label, ms) in totals {
        println!("  {label:<28} {ms:>8.1} ms  {:>5.1} %", 100.0 * ms / sum);
    }
    Ok(())
}
