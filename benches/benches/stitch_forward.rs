//! Forward of one stitch per family — DeiT-Ti→S, Swin-T→S, ResNet-18→50 — at batch 1 and 8
//! (224², fp32, random weights: time does not depend on them), on the default device.
//!
//! ```sh
//! cargo bench -p snnet-benches --bench stitch_forward
//! ```
//!
//! Each stitch and batch is timed twice in the same run, once with the fused kernels
//! (`snnet_ops::Kernels::Fused`, the default) and once with every op's generic path
//! (`Kernels::Generic`, Burn's own ops): the A/B of the fast path, switched with
//! `snnet_ops::set_kernels`.
//!
//! `benches/compare/compare_stitches.py` times every DeiT stitch side by side with PyTorch; this
//! bench is the criterion record of one stitch per family.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::{Registry, SnNetConfig, SpaceConfig, StitchId};
use snnet_ops::{Kernels, set_kernels};

/// The families' anchor pairs.
const FAMILIES: [(&str, [&str; 2]); 3] = [
    ("deit", ["deit_tiny_patch16_224", "deit_small_patch16_224"]),
    (
        "swin",
        [
            "swin_tiny_patch4_window7_224",
            "swin_small_patch4_window7_224",
        ],
    ),
    ("resnet", ["resnet18", "resnet50"]),
];

fn stitch_forward(c: &mut Criterion) {
    let device = Device::default();
    let mut group = c.benchmark_group("stitch_forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (family, anchors) in FAMILIES {
        let config =
            SnNetConfig::from_registry(&Registry::builtin(), &anchors, SpaceConfig::default())
                .unwrap();
        let net = config.init(&device).unwrap();
        // The middle stitched path (ids after the anchors).
        let stitched: Vec<StitchId> = net.space().stitched_ids().collect();
        let id = stitched[stitched.len() / 2];
        let label = format!("{family} {id}: {}", net.space().display(id).unwrap());
        for batch in [1, 8] {
            let images: Tensor<4> = Tensor::random(
                [batch, 3, 224, 224],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            for (kernels, name) in [(Kernels::Fused, "fused"), (Kernels::Generic, "generic")] {
                set_kernels(kernels);
                let _ = net.forward(images.clone(), id).unwrap().into_data();
                group.bench_with_input(
                    BenchmarkId::new(format!("b{batch} {name}"), &label),
                    &images,
                    |b, images| b.iter(|| net.forward(images.clone(), id).unwrap().into_data()),
                );
            }
            set_kernels(Kernels::Fused);
        }
    }
    group.finish();
}

criterion_group!(benches, stitch_forward);
criterion_main!(benches);
