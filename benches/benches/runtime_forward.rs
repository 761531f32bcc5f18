//! A forward through the runtime (`Runtime::run`, on the runtime's own rayon pool) against the
//! same forward called from a thread outside any pool, the way a server's blocking thread or a
//! user's thread would call `SnNet::forward`: the main job's Fashion-MNIST family (random
//! weights: the time does not depend on them), its small (S, stitch 0) and large (L, stitch 2)
//! anchors at batch 1 and 8.
//!
//! ```sh
//! cargo bench -p snnet-benches --bench runtime_forward
//! ```
//!
//! From outside a pool every split of a CPU kernel is a round trip to the global pool's
//! sleeping threads; on the runtime's pool the splits are work-stealing jobs among its own
//! threads (docs/RUNTIME.md, "Why the runtime has its own pool").

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::select::{StitchRecord, StitchTable};
use snnet_core::{SnNetConfig, SpaceConfig, StitchId};
use snnet_runtime::Runtime;
use snnet_train::fashion_mnist::{ANCHOR_NAMES, anchor_registry};

fn forward(c: &mut Criterion) {
    let device = Device::default();
    let config = SnNetConfig::from_registry(
        &anchor_registry().unwrap(),
        &ANCHOR_NAMES,
        SpaceConfig::default(),
    )
    .unwrap();
    let net = Arc::new(config.init(&device).unwrap());
    let table = StitchTable::from_records(
        (0..net.num_stitches())
            .map(|id| {
                let cost = net.cost(StitchId(id)).unwrap();
                StitchRecord::new(id, 50.0).with_flops(cost.flops)
            })
            .collect(),
    )
    .unwrap();
    let runtime = Runtime::builder(net.clone(), table, device.clone())
        .build()
        .unwrap();
    let mut group = c.benchmark_group("runtime_forward");
    for (anchor, id) in [("S", StitchId(0)), ("L", StitchId(2))] {
        for batch in [1, 8] {
            let images: Tensor<4> =
                Tensor::random([batch, 1, 28, 28], Distribution::Default, &device);
            group.bench_function(format!("{anchor}_b{batch}/outside_a_pool"), |b| {
                b.iter(|| {
                    let logits = net.forward(images.clone(), id).unwrap();
                    black_box(logits.into_data())
                });
            });
            group.bench_function(format!("{anchor}_b{batch}/runtime_run"), |b| {
                b.iter(|| {
                    let (logits, _) = runtime.run(images.clone(), id).unwrap();
                    black_box(logits.into_data())
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
