//! Forward pass of DeiT-Ti/S, Swin-T and ResNet-50 (batch 8, 224², fp32) on each CPU backend
//! compiled in.
//!
//! ```sh
//! cargo bench -p snnet-benches --bench forward                              # flex
//! cargo bench -p snnet-benches --bench forward --features ndarray           # + ndarray
//! cargo bench -p snnet-benches --bench forward --features openblas-system   # + ndarray (BLAS)
//! ```
//!
//! `benches/compare/compare_pytorch.py` runs this and timm on the same machine and prints the
//! ratios.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::vec_init_then_push
)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use snnet_zoo::burn::tensor::{Device, Distribution, Tensor};
use snnet_zoo::{Anchor, Registry};

const BATCH: usize = 8;

fn devices() -> Vec<(&'static str, Device)> {
    let mut devices = Vec::new();
    #[cfg(feature = "flex")]
    devices.push(("flex", Device::flex()));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    devices.push((
        if cfg!(feature = "openblas-system") {
            "ndarray-openblas"
        } else {
            "ndarray"
        },
        Device::ndarray(),
    ));
    devices
}

fn forward(c: &mut Criterion) {
    let registry = Registry::builtin();
    let mut group = c.benchmark_group("forward_b8");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for (backend, device) in devices() {
        for name in [
            "deit_tiny_patch16_224",
            "deit_small_patch16_224",
            "swin_tiny_patch4_window7_224",
            "resnet50",
        ] {
            let model = registry.get(name).unwrap().init(&device).unwrap();
            let images: Tensor<4> = Tensor::random(
                [BATCH, 3, 224, 224],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            // Warm up once outside the measurement (allocator, thread pool).
            let _ = model.forward(images.clone()).unwrap().into_data();
            group.bench_with_input(BenchmarkId::new(backend, name), &images, |b, images| {
                b.iter(|| model.forward(images.clone()).unwrap().into_data());
            });
        }
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
