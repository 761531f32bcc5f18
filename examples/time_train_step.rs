//! Times one training step (forward, cross-entropy, backward, AdamW update) of chosen stitches
//! of the Fashion-MNIST SN-Net (`configs/fashion_mnist_vit.json`, batch 128 of 1×28×28) and
//! prints one JSON line per stitch: `{"id", "ms", "description"}` (median of `--iters` steps after
//! two warm-up steps). `benches/compare_train_step.py` runs it next to PyTorch doing the same.
//!
//! ```sh
//! cargo run --release -p snnet-core --example time_train_step -- --ids 0,1,2,10,30 --iters 5
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use snnet_core::{Registry, SnNetConfig, SpaceConfig, StitchId};

const ANCHORS: &str = include_str!("../configs/fashion_mnist_vit.json");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut iters, mut batch, mut ids) = (5usize, 128usize, vec![0usize, 1, 2]);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--iters" => iters = value()?.parse()?,
            "--batch" => batch = value()?.parse()?,
            "--ids" => {
                ids = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut registry = Registry::builtin();
    registry.add_json_str(ANCHORS)?;
    let names = ["fmnist_vit_s", "fmnist_vit_m", "fmnist_vit_l"];
    let device = Device::default().autodiff();
    let config = SnNetConfig::from_registry(&registry, &names, SpaceConfig::default())?;
    let mut net = config.init(&Device::default())?.fork(&device).train();
    let images: Tensor<4> =
        Tensor::random([batch, 1, 28, 28], Distribution::Normal(0.0, 1.0), &device);
    let labels: Tensor<1, Int> = Tensor::from_data(
        TensorData::new((0..batch as i64).map(|i| i % 10).collect(), [batch]),
        &device,
    );
    let loss_fn = CrossEntropyLossConfig::new()
        .with_smoothing(Some(0.1))
        .init(&device);
    let mut optim_a = AdamWConfig::new().with_weight_decay(0.05).init();
    let mut optim_s = AdamWConfig::new().with_weight_decay(0.05).init();
    for id in ids {
        let id = StitchId(id);
        let mut times = Vec::new();
        for i in 0..iters + 2 {
            let t = Instant::now();
            let logits = net.forward(images.clone(), id)?;
            let loss = loss_fn.forward(logits, labels.clone());
            let mut grads = loss.backward();
            let gs = GradientsParams::from_module(&mut grads, &net.stitch_layers);
            let ga = GradientsParams::from_module(&mut grads, &net.anchors);
            net.stitch_layers = optim_s.step(1e-4, net.stitch_layers, gs);
            net.anchors = optim_a.step(1e-4, net.anchors, ga);
            // Wait for the update to finish (lazy backends).
            let _ = net.anchors[0].num_params();
            let _ = loss.into_scalar::<f32>();
            if i >= 2 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        let line = serde_json::json!({
            "id": id.index(),
            "ms": times[times.len() / 2],
            "description": net.space().display(id)?.to_string(),
        });
        println!("{line}");
    }
    Ok(())
}
