//! The least-squares solver against `torch.linalg.pinv`, as the reference's `ps_inv` calls it.
//!
//! The fixtures come from `tests/fixtures/export_lstsq.py` (float32 features with a constant
//! channel, an almost collinear pair, large-magnitude channels; and a case with fewer rows than
//! channels). Torch's own float32 error against a float64 pinv is ~1e-5 on them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};
use snnet_lstsq::{Affine, Backend, Features, LstsqOptions, Precision, SourceSystem};

const TOLERANCE: f64 = 1e-4;

/// Every backend compiled in, in both precisions, with a label.
fn all_options() -> Vec<(String, LstsqOptions)> {
    let mut out = Vec::new();
    for &backend in Backend::ALL {
        for precision in [Precision::F64, Precision::MixedF32] {
            let options = LstsqOptions::default()
                .with_backend(backend)
                .with_precision(precision);
            out.push((format!("{backend} {precision:?}"), options));
        }
    }
    out
}

struct Fixture {
    bytes: Vec<u8>,
}

impl Fixture {
    fn load(name: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self { bytes }
    }

    /// A float32 tensor: its shape and values.
    fn f32(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{name}");
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (view.shape().to_vec(), values)
    }

    fn i64(&self, name: &str) -> i64 {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = st.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::I64, "{name}");
        i64::from_le_bytes(view.data()[..8].try_into().unwrap())
    }
}

fn max_abs_diff(ours: &[f64], torch: &[f32]) -> f64 {
    assert_eq!(ours.len(), torch.len());
    ours.iter()
        .zip(torch)
        .map(|(a, b)| (a - f64::from(*b)).abs())
        .fold(0.0, f64::max)
}

fn assert_matches(fit: &Affine, fixture: &Fixture, w: &str, b: &str, what: &str) {
    let (w_shape, w_torch) = fixture.f32(w);
    let (_, b_torch) = fixture.f32(b);
    assert_eq!(w_shape, [fit.out_features, fit.in_features], "{what}");
    let dw = max_abs_diff(&fit.weight, &w_torch);
    let db = max_abs_diff(&fit.bias, &b_torch);
    println!("{what}: max |ΔW| = {dw:.2e}, max |Δb| = {db:.2e}");
    assert!(
        dw <= TOLERANCE && db <= TOLERANCE,
        "{what}: |ΔW| {dw:.3e}, |Δb| {db:.3e}"
    );
}

fn check_spectrum(system: &SourceSystem<'_>, fixture: &Fixture, what: &str) {
    assert_eq!(system.rank() as i64, fixture.i64("rank"), "{what}: rank");
    let (_, sv) = fixture.f32("sv");
    let ours = system.singular_values();
    // Torch returns min(m, n) values; ours has n = c_in + 1. Compare the kept ones, relative to
    // σ_max (float32 SVD accuracy).
    let scale = f64::from(sv[0]);
    for (i, (s, t)) in ours.iter().zip(&sv).take(system.rank()).enumerate() {
        let rel = (s - f64::from(*t)).abs() / scale;
        assert!(rel < 1e-5, "{what}: σ_{i} = {s} vs torch {t}");
    }
}

#[test]
fn token_features_match_torch_pinv() {
    let fixture = Fixture::load("lstsq_tokens.safetensors");
    let (a_shape, a) = fixture.f32("a");
    let (b_shape, b1) = fixture.f32("b1");
    let (_, b2) = fixture.f32("b2");
    let (rows, c_in, c_out) = (a_shape[0], a_shape[1], b_shape[1]);
    let source = Features::new(&a, rows, c_in).unwrap();
    for (label, options) in all_options() {
        let system = SourceSystem::new(&source, &options).unwrap();
        check_spectrum(&system, &fixture, &label);
        let fit1 = system
            .solve(&Features::new(&b1, rows, c_out).unwrap())
            .unwrap();
        let fit2 = system
            .solve(&Features::new(&b2, rows, c_out).unwrap())
            .unwrap();
        assert_matches(&fit1, &fixture, "w1", "bias1", &format!("{label} cut 1"));
        assert_matches(&fit2, &fixture, "w2", "bias2", &format!("{label} cut 2"));
        let shared = Affine::mean(&[fit1, fit2]).unwrap();
        assert_matches(
            &shared,
            &fixture,
            "w_mean",
            "bias_mean",
            &format!("{label} mean"),
        );
        // The two cuts share their source: one solve against the sum of the targets.
        let targets = [
            Features::new(&b1, rows, c_out).unwrap(),
            Features::new(&b2, rows, c_out).unwrap(),
        ];
        let summed = Affine::mean_of_sums(&[system.solve_sum(&targets).unwrap()], 2).unwrap();
        assert_matches(
            &summed,
            &fixture,
            "w_mean",
            "bias_mean",
            &format!("{label} mean of one summed solve"),
        );
    }
}

#[test]
fn fewer_rows_than_channels_match_torch_pinv() {
    let fixture = Fixture::load("lstsq_few_rows.safetensors");
    let (a_shape, a) = fixture.f32("a");
    let (b_shape, b1) = fixture.f32("b1");
    let (rows, c_in, c_out) = (a_shape[0], a_shape[1], b_shape[1]);
    assert!(rows < c_in);
    for (label, options) in all_options() {
        let system = SourceSystem::new(&Features::new(&a, rows, c_in).unwrap(), &options).unwrap();
        check_spectrum(&system, &fixture, &label);
        let fit = system
            .solve(&Features::new(&b1, rows, c_out).unwrap())
            .unwrap();
        assert_matches(&fit, &fixture, "w1", "bias1", &format!("{label} few rows"));
    }
}
