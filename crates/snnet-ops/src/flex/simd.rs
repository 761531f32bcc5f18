//! The vectorised maths of the kernels: `exp` for non-positive inputs, `erf`, GELU and its
//! derivative, a row softmax and a dot product, written so that the compiler vectorises their
//! loops (`pulp` dispatch picks the instruction set at run time).

/// Lanes of the manual reductions: independent accumulators let the compiler vectorise them
/// (a single float accumulator must keep its order and stays scalar).
const LANES: usize = 16;

/// `Σ aᵢ·bᵢ` in `LANES` independent partial sums (vectorisable).
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        lanes
            .iter_mut()
            .zip(x.iter().zip(y))
            .for_each(|(l, (x, y))| *l += x * y);
    }
    tail + lanes.iter().sum::<f32>()
}

/// Exact GELU over a slice, compiled for the best instruction set found at run time
/// (`pulp` dispatch: AVX2+FMA on x86-64, otherwise the baseline).
pub(super) struct GeluInPlace<'a>(pub(super) &'a mut [f32]);

impl pulp::WithSimd for GeluInPlace<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.0.iter_mut().for_each(|v| *v = gelu(*v));
    }
}

/// `g ← g·gelu'(x)`, `gelu'(x) = ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π)`, vectorised as
/// [`GeluInPlace`].
pub(super) struct GeluGrad<'a> {
    pub(super) g: &'a mut [f32],
    pub(super) x: &'a [f32],
}

impl pulp::WithSimd for GeluGrad<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.g
            .iter_mut()
            .zip(self.x)
            .for_each(|(g, &x)| *g *= gelu_derivative(x));
    }
}

/// Row-wise softmax of an `[rows, n]` score block plus an optional bias of the same shape,
/// in place.
pub(super) struct SoftmaxRows<'a> {
    pub(super) scores: &'a mut [f32],
    pub(super) bias: Option<&'a [f32]>,
    pub(super) n: usize,
}

impl pulp::WithSimd for SoftmaxRows<'_> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        if let Some(bias) = self.bias {
            self.scores.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
        for row in self.scores.chunks_mut(self.n) {
            let mut lanes = [f32::NEG_INFINITY; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for chunk in &mut chunks {
                lanes
                    .iter_mut()
                    .zip(chunk)
                    .for_each(|(m, &v)| *m = m.max(v));
            }
            let max = chunks
                .remainder()
                .iter()
                .chain(&lanes)
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            row.iter_mut().for_each(|v| *v = exp_nonpositive(*v - max));
            let mut lanes = [0.0f32; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for chunk in &mut chunks {
                lanes.iter_mut().zip(chunk).for_each(|(s, &v)| *s += v);
            }
            let sum: f32 = chunks.remainder().iter().sum::<f32>() + lanes.iter().sum::<f32>();
            let inv = sum.recip();
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

/// `e^x` for `x ≤ 0` (inputs below −87 give ~0): Cephes' `expf` polynomial after a
/// branch-free range reduction, so that loops over it vectorise.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to nearest
    const ROUND_BITS: u32 = 0x4B40_0000; // ROUND's bits: t's low mantissa bits hold n
    let x = x.max(-87.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let e = exp_reduced(r);
    // 2ⁿ from its exponent bits: n ∈ [−126, 0] here, so n + 127 ∈ [1, 127]. Read from t's
    // bits (t = 1.5·2²³ + n exactly) with integer arithmetic only: a float-to-int `as` cast
    // saturates and checks for NaN, which compiles to scalar code and keeps the loops over
    // this function from vectorising (AVX2, 1.23 M GELUs: 5.6 → 3.4 ms).
    let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND_BITS - 127) << 23);
    e * scale
}

/// `e^r` for the reduced argument `|r| ≤ ln 2 / 2`: Cephes' `expf` polynomial.
#[inline(always)]
fn exp_reduced(r: f32) -> f32 {
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    p * r * r + r + 1.0
}

/// `erf(x)`, Abramowitz & Stegun 7.1.26 (|error| ≤ 6e-7 in f32, measured by the test).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - poly * exp_nonpositive(-a * a)).copysign(x)
}

/// `d/dx gelu(x) = ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π)`.
#[inline(always)]
fn gelu_derivative(x: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
        + x * exp_nonpositive(-0.5 * x * x) * INV_SQRT_2PI
}

/// Exact GELU, `0.5·x·(1 + erf(x/√2))`, as timm's `nn.GELU()`.
#[inline(always)]
pub(super) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_exp_are_accurate_to_float_rounding() {
        let mut worst_erf = 0.0f64;
        let mut worst_exp = 0.0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-4;
            let exact = libm::erf(f64::from(x));
            worst_erf = worst_erf.max((f64::from(erf(x)) - exact).abs());
            if x <= 0.0 {
                let e = f64::from(x * 10.0).exp();
                let rel = (f64::from(exp_nonpositive(x * 10.0)) - e).abs() / e.max(1e-30);
                worst_exp = worst_exp.max(rel);
            }
        }
        assert!(worst_erf < 6e-7, "erf max abs error {worst_erf}");
        assert!(worst_exp < 1e-6, "exp max rel error {worst_exp}");
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(3.0) - 2.995_95).abs() < 1e-5);
        assert!(exp_nonpositive(-200.0) < 1e-37);
    }

    /// `2ⁿ` read from the rounding constant's bits equals the float-to-int cast it replaced,
    /// bit for bit, so the vectorised `exp` changed no output.
    #[test]
    fn exp_scale_from_bits_equals_the_cast() {
        let cast = |x: f32| {
            let x = x.max(-87.0);
            let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
            let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
            let e = exp_reduced(r);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
            e * scale
        };
        let special = [0.0, -0.0, -87.0, -87.5, -1e30, f32::MIN, f32::NEG_INFINITY];
        let sweep = (0..=2_000_000).map(|i| i as f32 * -5e-5);
        for x in sweep.chain(special) {
            assert_eq!(exp_nonpositive(x).to_bits(), cast(x).to_bits(), "x = {x}");
        }
    }
}
