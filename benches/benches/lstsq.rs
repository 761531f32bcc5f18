//! The least-squares initialisation of every stitching layer of DeiT-Ti/S/B: 68 (j, k) cuts,
//! 19,700 token rows (100 images × 197 tokens), Ti→S (192 → 384) and S→B (384 → 768), on each
//! least-squares backend compiled in.
//!
//! ```sh
//! cargo bench -p snnet-benches --bench lstsq                      # faer, f64 and mixed f32
//! cargo bench -p snnet-benches --bench lstsq --features lapack    # + lapack (system OpenBLAS)
//! cargo bench -p snnet-benches --bench lstsq -- faer-f64          # one of them
//! ```
//!
//! Each variant takes ~1–1.5 min on 2 cores (10 samples of one full initialisation each).
//!
//! One iteration is the whole initialisation: per anchor pair and per front block `j`, one
//! [`SourceSystem`] (`XᵀX` and its eigendecomposition; in mixed precision also the f32
//! orthonormal basis `Q = X L`; a pair's 12 factorised together, [`SourceSystem::new_all`]),
//! solved against every end-anchor feature its cuts need (`P (Xᵀ B)` in f64, `L (Qᵀ B)` with
//! `Qᵀ B` in f32), then the solutions of the cuts that share a layer are averaged. As in
//! `SnNet::init_least_squares`, the mixed-precision variants solve the cuts of a layer that share
//! a source as one product against the sum of their targets ([`SourceSystem::solve_sum`]). The
//! features are synthetic (a seeded generator, channels correlated through a few per-token
//! factors); the time does not depend on the values.
//! `benches/compare/compare_lstsq.py` times `torch.linalg.pinv` on the same shapes.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snnet_lstsq::{Affine, Backend, Features, LstsqOptions, Precision, SourceSystem};

/// 100 images × 197 tokens, the reference's `stitch_init_bs` batch.
const ROWS: usize = 19_700;
const DEPTH: usize = 12;

/// `ROWS × width` token features: per-channel mean and scale, four per-token factors shared by
/// all channels (so channels are correlated), and per-value noise.
fn features(seed: u64, width: usize) -> Vec<f32> {
    // Uniform in [-1, 1).
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut next = || rng.random_range(-1.0_f32..1.0);
    let mean: Vec<f32> = (0..width).map(|_| next()).collect();
    let scale: Vec<f32> = (0..width).map(|_| 1.0 + 0.5 * next()).collect();
    let mut out = Vec::with_capacity(ROWS * width);
    for _ in 0..ROWS {
        let factors = [next(), next(), next(), next()];
        for c in 0..width {
            out.push(mean[c] + scale[c] * (0.6 * factors[c % 4] + 0.8 * next()));
        }
    }
    out
}

/// One anchor pair: the front anchor's block outputs and the end anchor's features
/// (`end[0]` = the embedding output, `end[k]` = the input of block `k`).
struct AnchorPair {
    c_in: usize,
    c_out: usize,
    front: Vec<Vec<f32>>,
    end: Vec<Vec<f32>>,
}

/// The DeiT cuts of one anchor pair with their layer ids: layer 0 = (0,0),(0,1),(1,0),(1,1);
/// layer n = (n,n+1),(n+1,n),(n+1,n+1) for n = 1..=10.
fn cuts() -> Vec<(usize, usize, usize)> {
    let mut cuts = vec![(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)];
    for n in 1..DEPTH - 1 {
        cuts.extend([(n, n + 1, n), (n + 1, n, n), (n + 1, n + 1, n)]);
    }
    cuts
}

/// Initialises every layer of one anchor pair as `SnNet::init_least_squares` does; returns the
/// layers' solutions. In `Precision::MixedF32` the cuts of a layer that share a source are one
/// `solve_sum` (22 products instead of 34 per pair), in `Precision::F64` every cut is solved on
/// its own.
fn init_pair(pair: &AnchorPair, options: &LstsqOptions) -> Vec<Affine> {
    // Per layer: the partial sums and the number of cuts they hold.
    let mut by_layer: BTreeMap<usize, (Vec<Affine>, usize)> = BTreeMap::new();
    let share = options.precision == Precision::MixedF32;
    let cuts = cuts();
    // As `SnNet::init_least_squares`: a pair's sources factorised together.
    let fronts: Vec<Features<'_>> = pair
        .front
        .iter()
        .map(|front| Features::new(front, ROWS, pair.c_in).unwrap())
        .collect();
    let systems = SourceSystem::new_all(&fronts, options).unwrap();
    for (j, system) in systems.iter().enumerate() {
        let mut groups: Vec<(usize, Vec<Features<'_>>)> = Vec::new();
        for &(_, k, layer) in cuts.iter().filter(|c| c.0 == j) {
            let b = Features::new(&pair.end[k], ROWS, pair.c_out).unwrap();
            match groups.iter_mut().find(|(l, _)| share && *l == layer) {
                Some((_, targets)) => targets.push(b),
                None => groups.push((layer, vec![b])),
            }
        }
        for (layer, targets) in groups {
            let (parts, count) = by_layer.entry(layer).or_default();
            parts.push(system.solve_sum(&targets).unwrap());
            *count += targets.len();
        }
    }
    by_layer
        .values()
        .map(|(parts, count)| Affine::mean_of_sums(parts, *count).unwrap())
        .collect()
}

fn lstsq(c: &mut Criterion) {
    assert_eq!(cuts().len(), 34);
    // DeiT-S block outputs serve as Ti→S targets and as S→B sources, as in the reference.
    let small: Vec<Vec<f32>> = (0..=DEPTH).map(|i| features(100 + i as u64, 384)).collect();
    let ti_s = AnchorPair {
        c_in: 192,
        c_out: 384,
        front: (0..DEPTH).map(|i| features(i as u64, 192)).collect(),
        end: small[..DEPTH].to_vec(),
    };
    let s_b = AnchorPair {
        c_in: 384,
        c_out: 768,
        front: small[1..].to_vec(),
        end: (0..DEPTH).map(|i| features(200 + i as u64, 768)).collect(),
    };
    drop(small);

    let mut group = c.benchmark_group("lstsq_deit_ti_s_b_68_cuts");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(60));
    for &backend in Backend::ALL {
        for (precision, name) in [(Precision::F64, "f64"), (Precision::MixedF32, "mixed-f32")] {
            let options = LstsqOptions::default()
                .with_backend(backend)
                .with_precision(precision);
            let id = BenchmarkId::new(format!("{}-{name}", backend.name()), ROWS);
            group.bench_function(id, |bench| {
                bench.iter(|| {
                    let layers = init_pair(&ti_s, &options).len() + init_pair(&s_b, &options).len();
                    assert_eq!(layers, 22);
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lstsq);
criterion_main!(benches);
