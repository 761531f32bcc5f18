//! An in-process service whose budget changes mid-stream: first a battery level that falls
//! (a shrinking FLOPs budget), then a latency objective under a load that triples and falls
//! back (adaptive mode). Prints the stitch and latency as it goes.
//!
//! ```sh
//! cargo run --release -p service-loop                                   # a tiny random SN-Net
//! cargo run --release -p service-loop -- snnet.safetensors eval.jsonl
//! ```
//!
//! The load is simulated ([`SimulatedLoad`]): measured latencies are multiplied by a load factor,
//! so the run shows the controller's behaviour without needing a second busy process.

use std::sync::Arc;

use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::select::{Budget, CostKind, StitchRecord, StitchTable};
use snnet_core::{ModelEntry, SnNet, SnNetConfig, SpaceConfig, StitchId};
use snnet_runtime::{AdaptiveConfig, Choice, Objective, ProfilerConfig, Runtime, SimulatedLoad};

type BoxError = Box<dyn std::error::Error>;

/// A tiny random SN-Net: three ViTs on 32×32 images (widths 32, 96, 192, depth 4, 10 classes).
///
/// # Errors
/// Never in practice; the config's or the init's error otherwise.
pub fn tiny_net(device: &Device) -> Result<SnNet, BoxError> {
    let vit = |name: &str, dim: usize, heads: usize| {
        serde_json::json!({"name": name, "config": {
            "family": "vit", "img_size": [32, 32], "patch_size": [8, 8], "in_chans": 3,
            "num_classes": 10, "embed_dim": dim, "depth": 4, "num_heads": heads,
            "mlp_hidden": dim * 4, "qkv_bias": true, "class_token": true, "distilled": false,
            "no_embed_class": false, "layer_scale": false, "eps": 1e-6}})
    };
    let anchors: Vec<ModelEntry> = serde_json::from_value(serde_json::json!([
        vit("vit0", 32, 2),
        vit("vit1", 96, 4),
        vit("vit2", 192, 6)
    ]))?;
    Ok(SnNetConfig::new(anchors, SpaceConfig::default()).init(device)?)
}

/// A table whose accuracy rises with FLOPs (`60 + log10(flops)`): a stand-in for an
/// evaluation when there is none.
///
/// # Errors
/// When the network has no stitch.
pub fn flops_table(net: &SnNet) -> Result<StitchTable, BoxError> {
    Ok(StitchTable::from_records(
        (0..net.num_stitches())
            .map(|id| {
                let flops = net.cost(StitchId(id)).map(|c| c.flops).unwrap_or(0);
                StitchRecord::new(id, 60.0 + (flops as f64).log10()).with_flops(flops)
            })
            .collect(),
    )?)
}

/// The 95th percentile of `latencies` (nearest rank; sorts them). `None` when empty.
pub fn p95(latencies: &mut [f64]) -> Option<f64> {
    latencies.sort_by(f64::total_cmp);
    let rank = (latencies.len() * 95).div_ceil(100).checked_sub(1)?;
    latencies.get(rank).copied()
}

/// Profiles `net` on `device`, then serves it through a [`Runtime`] with `eval`'s accuracies:
/// a falling battery (a shrinking FLOPs budget), then a p95 latency objective under a load
/// that triples and falls back. Prints each phase's stitches and p95.
///
/// # Errors
/// Profiling, runtime and forward errors.
pub fn run(net: SnNet, eval: &StitchTable, device: &Device) -> Result<(), BoxError> {
    eprintln!("profiling {} stitches ...", net.num_stitches());
    let profile = ProfilerConfig::new()
        .with_warmup(2)
        .with_iters(10)
        .init(device)?
        .run(&net, |_| {})?;
    let table = profile.to_table(Some(eval))?;
    let load = Arc::new(SimulatedLoad::scaling_wall());
    let runtime = Runtime::builder(Arc::new(net), table, device.clone())
        .clock(load.clone())
        .adaptive(AdaptiveConfig {
            window: 32,
            min_samples: 16,
            ..AdaptiveConfig::default()
        })
        .build()?;
    let [c, h, w] = runtime.input_size();
    let images = Tensor::<4>::random([1, c, h, w], Distribution::Normal(0.0, 1.0), device);
    let serve = |label: &str, n: usize| -> Result<(), BoxError> {
        let mut latencies = Vec::with_capacity(n);
        let mut stitches = Vec::new();
        for _ in 0..n {
            let answer = runtime.infer(images.clone(), Choice::Default)?;
            latencies.push(answer.latency.as_secs_f64() * 1e3);
            if stitches.last() != Some(&answer.stitch) {
                stitches.push(answer.stitch);
            }
        }
        let p95 = p95(&mut latencies).unwrap_or(f64::NAN);
        let path: Vec<String> = stitches.iter().map(ToString::to_string).collect();
        println!(
            "{label:<34} load x{:<4} stitches {:<16} p95 {p95:7.3} ms",
            load.factor(),
            path.join("→"),
        );
        Ok(())
    };

    println!("-- a battery that runs down: the FLOPs budget shrinks");
    let flops = runtime
        .frontier(CostKind::Flops)
        .ok_or("the table has no FLOPs")?
        .clone();
    for battery in [100usize, 75, 50, 25, 10] {
        let i = (flops.len() - 1) * battery / 100;
        let budget = flops.points()[i].cost;
        runtime.set_objective(Objective::Budget(Budget::new(CostKind::Flops, budget)))?;
        serve(
            &format!("battery {battery:>3} %: <= {:.2} MFLOPs", budget / 1e6),
            20,
        )?;
    }

    let top = runtime
        .frontier(CostKind::LatencyMs)
        .and_then(|f| f.most_accurate())
        .ok_or("no latency profile")?;
    let slo = top.cost * 1.5;
    println!("-- a latency objective, p95 <= {slo:.3} ms, while the load changes");
    runtime.set_objective(Objective::SloP95Ms(slo))?;
    for (phase, factor) in [
        ("calm", 1.0),
        ("load rises", 3.0),
        ("still busy", 3.0),
        ("load falls", 1.0),
        ("calm again", 1.0),
        ("calm again", 1.0),
    ] {
        load.set_factor(factor);
        serve(phase, 48)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny_net_and_its_table_cover_every_stitch() -> Result<(), BoxError> {
        let net = tiny_net(&Device::default())?;
        let table = flops_table(&net)?;
        assert!(net.num_stitches() > 3);
        assert_eq!(table.len(), net.num_stitches());
        let mut records: Vec<_> = table.records().iter().collect();
        records.sort_by_key(|r| r.flops);
        assert!(records.windows(2).all(|w| w[0].acc1 <= w[1].acc1));
        Ok(())
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(p95(&mut v), Some(95.0));
        assert_eq!(p95(&mut [3.0]), Some(3.0));
        assert_eq!(p95(&mut []), None);
    }
}
