//! SN-Net run-time switching: the cost of changing the stitch between two forwards, and the
//! memory the stitching layers add to the anchors (DeiT-Ti/S/B).
//!
//! ```sh
//! cargo bench -p snnet-benches --bench stitch_switch
//! ```
//!
//! Switching is choosing another id: `SnNet::forward(images, id)` looks the stitch's path up in
//! the plan built once at construction. This bench times that lookup over alternating ids and
//! counts the heap allocations it makes (with `stats_alloc`'s counting allocator), and prints the
//! stitching layers' parameters as a share of the anchors'.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use snnet_core::burn::module::Module;
use snnet_core::burn::tensor::Device;
use snnet_core::{Registry, SnNetConfig, SpaceConfig, StitchId};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const DEIT: [&str; 3] = [
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
];

fn switch(c: &mut Criterion) {
    let device = Device::default();
    let config =
        SnNetConfig::from_registry(&Registry::builtin(), &DEIT, SpaceConfig::default()).unwrap();
    let net = config.init(&device).unwrap();
    let n = net.num_stitches();

    // Allocations of 10,000 switches.
    let region = Region::new(GLOBAL);
    for i in 0..10_000 {
        let path = net.plan().path(StitchId(i % n)).unwrap();
        black_box(path);
    }
    let allocations = region.change().allocations;
    println!("stitch switch: {allocations} heap allocations in 10,000 switches");

    // Memory: stitching layers vs anchors.
    let anchors: usize = net.anchors.iter().map(Module::num_params).sum();
    let layers: usize = net.stitch_layers.iter().map(Module::num_params).sum();
    println!(
        "memory: anchors {anchors} params ({:.1} MB f32), stitching layers {layers} params \
         ({:.1} MB) = {:.2} % of the anchors",
        anchors as f64 * 4.0 / 1e6,
        layers as f64 * 4.0 / 1e6,
        100.0 * layers as f64 / anchors as f64
    );

    let mut i = 0;
    c.bench_function("stitch_switch_deit_ti_s_b", |b| {
        b.iter(|| {
            i = (i + 37) % n;
            black_box(net.plan().path(black_box(StitchId(i))).unwrap());
        });
    });
}

criterion_group!(benches, switch);
criterion_main!(benches);
