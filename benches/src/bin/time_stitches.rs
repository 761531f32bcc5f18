//! Times the forward pass of every stitch of an SN-Net (batch 8, random weights) and writes one
//! JSON line per stitch: `{"id", "ms", "flops", "description"}` (median of `--iters` runs after
//! one warm-up; the process first runs the first stitch three times).
//! `benches/compare/compare_stitches.py` runs it next to PyTorch running the same stitches.
//!
//! ```sh
//! cargo run --release -p snnet-benches --bin time_stitches -- \
//!     --anchors deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224 --iters 3
//! ```
//!
//! `--serve` keeps the process (and its SN-Net) alive and reads one request per line on stdin,
//! `ID BATCH ITERS`, answering each with the same JSON line (`"batch"` added) on stdout: the
//! comparison script uses it to alternate Rust and PyTorch stitch by stitch, so that a slow spell
//! of a shared machine hits both sides' measurement of the same stitch.
//!
//! `--generic-kernels` runs every op's generic path (`snnet_ops::Kernels::Generic`, Burn's own
//! ops) instead of the fused kernels: the A/B of the fast path.
//!
//! `--snnet FILE` loads a saved SN-Net instead (e.g. `snnet init --random-weights --init kaiming`):
//! every weight is then in memory, as `snnet serve` holds it. Built from `--anchors`, Burn
//! allocates a parameter only when a forward first reads it, so the anchors a stitch does not
//! use never take memory — right for timing, not for measuring a server's memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::BufRead;
use std::time::Instant;

use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::{Registry, SnNet, SnNetConfig, SpaceConfig, StitchId};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut anchors =
        String::from("deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224");
    let (mut iters, mut batch, mut only) = (3usize, 8usize, None::<Vec<usize>>);
    let mut snnet = None::<std::path::PathBuf>;
    let mut serve = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--anchors" => anchors = value()?,
            "--iters" => iters = value()?.parse()?,
            "--snnet" => snnet = Some(value()?.into()),
            "--batch" => batch = value()?.parse()?,
            "--serve" => serve = true,
            "--generic-kernels" => snnet_ops::set_kernels(snnet_ops::Kernels::Generic),
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
    let [c, h, w] = net.plan().pretrained().input_size;
    let mut images: HashMap<usize, Tensor<4>> = HashMap::new();
    let mut batch_of = |batch: usize| {
        images
            .entry(batch)
            .or_insert_with(|| {
                Tensor::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device)
            })
            .clone()
    };
    let mut warm = false;
    let mut time = |id: usize, batch: usize, iters: usize| -> Result<serde_json::Value, BoxError> {
        let images = batch_of(batch);
        let id = StitchId(id);
        // Warm the process up before the first stitch's own warm-up: the thread pool's start and
        // the allocator's first growth otherwise land in the first stitch's timed runs.
        if !warm {
            for _ in 0..3 {
                net.forward(images.clone(), id)?.into_data();
            }
            warm = true;
        }
        let run = || -> Result<(), BoxError> {
            net.forward(images.clone(), id)?.into_data();
            Ok(())
        };
        run()?;
        let mut times = Vec::with_capacity(iters.max(1));
        for _ in 0..iters.max(1) {
            let t = Instant::now();
            run()?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Ok(serde_json::json!({
            "id": id.index(),
            "batch": batch,
            "ms": times[times.len() / 2],
            "flops": net.cost(id)?.flops,
            "description": net.space().display(id)?.to_string(),
        }))
    };
    if serve {
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            let fields: Vec<usize> = line
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            let [id, batch, iters] = fields[..] else {
                return Err(format!("expected `ID BATCH ITERS`, got {line:?}").into());
            };
            println!("{}", time(id, batch, iters)?);
        }
        return Ok(());
    }
    for id in only.unwrap_or_else(|| (0..net.num_stitches()).collect()) {
        println!("{}", time(id, batch, iters)?);
    }
    Ok(())
}
