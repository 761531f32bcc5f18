//! Times one training step (forward, cross-entropy, backward, AdamW update) of chosen stitches
//! of the Fashion-MNIST SN-Net ([`snnet_train::fashion_mnist`], batch 128 of 1×28×28) and
//! prints one JSON line per stitch: `{"id", "ms", "shards", "description"}` (median of `--iters`
//! steps after two warm-up steps). The step is the trainer's: forward and backward through
//! [`DataParallel`] with `--shards` shards on parallel threads (default as the CLI's: one per
//! core, at least 32 images each; 1 = the whole batch on the calling thread), then `step_multi`
//! of AdamW. The binary uses mimalloc, as the `snnet` CLI does.
//! `benches/compare/compare_train_step.py` runs it next to PyTorch doing the same.
//!
//! ```sh
//! cargo run --release -p snnet-benches --bin time_train_step -- --ids 0,1,2,10,30 --iters 5
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use snnet_core::{SnNet, SnNetConfig, SpaceConfig, StitchId};
use snnet_train::burn::module::Module;
use snnet_train::burn::nn::loss::CrossEntropyLossConfig;
use snnet_train::burn::optim::AdamWConfig;
use snnet_train::burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use snnet_train::fashion_mnist::{ANCHOR_NAMES, anchor_registry, default_shards};
use snnet_train::parallel::DataParallel;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut iters, mut batch, mut ids) = (5usize, 128usize, vec![0usize, 1, 2]);
    let mut shards = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--iters" => iters = value()?.parse()?,
            "--batch" => batch = value()?.parse()?,
            "--shards" => shards = value()?.parse()?,
            "--ids" => {
                ids = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let registry = anchor_registry()?;
    let device = Device::default().autodiff();
    let config = SnNetConfig::from_registry(&registry, &ANCHOR_NAMES, SpaceConfig::default())?;
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
    // 0: the CLI's default, one per core with at least 32 images each.
    let shards = default_shards(shards, batch);
    let parallel = if shards > 1 {
        DataParallel::threads(device.clone(), shards)?
    } else {
        DataParallel::single(device.clone())
    };
    for id in ids {
        let id = StitchId(id);
        let mut times = Vec::new();
        for i in 0..iters + 2 {
            let t = Instant::now();
            let loss = |net: &SnNet, x: Tensor<4>, y: Tensor<1, Int>, _: usize| {
                Ok(loss_fn.forward(net.forward(x, id)?, y))
            };
            let grads = parallel.gradients(&net, images.clone(), labels.clone(), loss)?;
            net.stitch_layers = optim_s.step_multi(1e-4, net.stitch_layers, grads.stitch_layers);
            net.anchors = optim_a.step_multi(1e-4, net.anchors, grads.anchors);
            // Wait for the update to finish (asynchronous backends: CUDA, wgpu).
            device.sync().map_err(|e| format!("{e:?}"))?;
            if i >= 2 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        let line = serde_json::json!({
            "id": id.index(),
            "ms": times[times.len() / 2],
            "shards": parallel.shards(),
            "description": net.space().display(id)?.to_string(),
        });
        println!("{line}");
    }
    Ok(())
}
