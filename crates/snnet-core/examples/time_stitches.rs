//! Times the forward pass of every stitch of an SN-Net (batch 8, random weights) and writes one
//! JSON line per stitch: `{"id", "ms", "flops", "description"}` (median of `--iters` runs after
//! one warm-up; the process first runs the first stitch three times).
//! `compare/compare_stitches.py` runs it next to PyTorch running the same stitches.
//!
//! ```sh
//! cargo run --release -p snnet-core --example time_stitches -- \
//!     --anchors deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224 --iters 3
//! ```
//!
//! `--snnet FILE` loads a saved SN-Net instead (e.g. `snnet init --random-weights --init kaiming`):
//! every weight is then in memory, as `snnet serve` holds it. Built from `--anchors`, Burn
//! allocates a parameter only when a forward first reads it, so the anchors a stitch does not
//! use never take memory — right for timing, not for measuring a server's memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::{Registry, SnNet, SnNetConfig, SpaceConfig, StitchId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut anchors =
        String::from("deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224");
    let (mut iters, mut batch, mut only) = (3usize, 8usize, None::<Vec<usize>>);
    let mut snnet = None::<std::path::PathBuf>;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--anchors" => anchors = value()?,
            "--iters" => iters = value()?.parse()?,
            "--snnet" => snnet = Some(value()?.into()),
            "--batch" => batch = value()?.parse()?,
            "--ids" => {
                only = Some(
                    value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?,
                )
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let device = Device::default();
    let net = match snnet {
        Some(path) => SnNet::load(&path, &device)?.0,
        None => {
            let names: Vec<&str> = anchors.split(',').collect();
            SnNetConfig::from_registry(&Registry::builtin(), &names, SpaceConfig::default())?
                .init(&device)?
        }
    };
    let [c, h, w] = net.config().anchors[0].pretrained().input_size;
    let images: Tensor<4> =
        Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let ids = only.unwrap_or_else(|| (0..net.num_stitches()).collect());
    // Warm the process up before the first stitch's own warm-up: the thread pool's start and the
    // allocator's first growth otherwise land in the first stitch's timed runs.
    if let Some(&first) = ids.first() {
        for _ in 0..3 {
            net.forward(images.clone(), StitchId(first))?.into_data();
        }
    }
    for id in ids {
        let id = StitchId(id);
        let run = || {
            let logits = net.forward(images.clone(), id).unwrap();
            logits.into_data();
        };
        run();
        let mut times: Vec<f64> = (0..iters.max(1))
            .map(|_| {
                let t = Instant::now();
                run();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        let line = serde_json::json!({
            "id": id.index(),
            "ms": ms,
            "flops": net.cost(id)?.flops,
            "description": net.space().display(id)?.to_string(),
        });
        println!("{line}");
    }
    Ok(())
}
