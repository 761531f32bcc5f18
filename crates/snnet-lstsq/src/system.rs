//! The solve: `[A | 1]` factorised once per source ([`SourceSystem`]), then solved against any
//! number of targets.

use std::fmt;

use crate::affine::Affine;
use crate::error::{Error, InvalidOption, Result, ShapeError, SolverFailure};
use crate::features::Features;
use crate::options::{Backend, GRAM_FLOOR, LstsqOptions, Precision, default_rtol};

/// The source side of the least-squares systems that share the front features `A`:
/// `[A | 1]` factorised once, then solved against any number of targets `B`.
///
/// It borrows `A`, which every [`solve`](Self::solve) reads again (to form `Xᵀ B`).
#[derive(Clone)]
pub struct SourceSystem<'a> {
    a: Features<'a>,
    backend: Backend,
    rtol: f64,
    solver: Solver,
    /// Eigenvalues of `XᵀX`, descending.
    eigenvalues: Vec<f64>,
    rank: usize,
}

impl<'a> SourceSystem<'a> {
    /// Factorises `X = [A | 1]`: forms `XᵀX`, eigendecomposes it and keeps the directions whose
    /// singular value is above the cutoff.
    ///
    /// # Errors
    ///
    /// - [`Error::Shape`] when `a` has no rows.
    /// - [`Error::NonFinite`] (`which = "source"`) at the first NaN or infinite value of `a`.
    /// - [`Error::InvalidOptions`] when `options.rtol` is negative or not finite.
    /// - [`Error::Solver`] when the eigensolver fails.
    pub fn new(a: &Features<'a>, options: &LstsqOptions) -> Result<Self> {
        let rtol = checked_rtol(a, options)?;
        on_pool(|| {
            let (eigenvalues, vectors) = options.backend.kernel().gram_eigh(a)?;
            Self::factorise(a, options, rtol, eigenvalues, vectors)
        })
    }

    /// [`new`](Self::new) for each of `sources`, in order: the same systems bit for bit, in
    /// less time where the backend overlaps the steps of consecutive sources. With faer each
    /// source's eigendecomposition, which faer hardly splits across threads at a few hundred
    /// columns, runs while the other threads start the next source's `XᵀX` (the 68-cut DeiT
    /// init: 3.69 s against 3.83 s, docs/PERFORMANCE.md). Holds every system at once: factorise
    /// together the sources whose systems are used together.
    ///
    /// # Errors
    ///
    /// Those of [`new`](Self::new), for the first source at fault; every source is checked
    /// before any is factorised.
    pub fn new_all(sources: &[Features<'a>], options: &LstsqOptions) -> Result<Vec<Self>> {
        let rtols = sources
            .iter()
            .map(|a| checked_rtol(a, options))
            .collect::<Result<Vec<_>>>()?;
        on_pool(|| {
            let mut systems = Vec::with_capacity(sources.len());
            options.backend.kernel().gram_eigh_each(
                sources,
                &mut |j, (eigenvalues, vectors)| {
                    let system =
                        Self::factorise(&sources[j], options, rtols[j], eigenvalues, vectors)?;
                    systems.push(system);
                    Ok(())
                },
            )?;
            Ok(systems)
        })
    }

    /// [`new`](Self::new) once the inputs are checked and `XᵀX` is eigendecomposed
    /// (eigenvalues ascending, eigenvectors as the columns of an n×n row-major matrix).
    fn factorise(
        a: &Features<'a>,
        options: &LstsqOptions,
        rtol: f64,
        eigenvalues: Vec<f64>,
        vectors: Vec<f64>,
    ) -> Result<Self> {
        let n = a.cols + 1;
        let (backend, precision) = (options.backend, options.precision);
        let kernel = backend.kernel();
        let lambda_max = eigenvalues.last().copied().unwrap_or(0.0);
        // The ones column alone gives λ_max ≥ m > 0.
        if !(lambda_max.is_finite() && lambda_max > 0.0) {
            return Err(Error::Solver {
                backend: backend.name(),
                reason: SolverFailure::Spectrum { lambda_max },
            });
        }
        let floor = GRAM_FLOOR * a.rows.max(n) as f64 * f64::EPSILON;
        let threshold = (rtol * rtol).max(floor) * lambda_max;
        let kept: Vec<usize> = (0..n).filter(|&i| eigenvalues[i] > threshold).collect();
        let rank = kept.len();
        // U = V_k Λ_k^{-1/2} (n × rank); P = U Uᵀ.
        let mut scaled = vec![0.0; n * rank];
        for (j, &k) in kept.iter().enumerate() {
            let s = eigenvalues[k].sqrt().recip();
            for i in 0..n {
                scaled[i * rank + j] = vectors[i * n + k] * s;
            }
        }
        let solver = match precision {
            Precision::F64 => Solver::F64 {
                projector: kernel.outer(&scaled, n, rank)?,
            },
            Precision::MixedF32 => {
                let factor = kernel.lower_factor(&scaled, n, rank)?;
                let basis = kernel.basis(a, &factor, rank)?;
                Solver::MixedF32 { factor, basis }
            }
        };
        let mut eigenvalues = eigenvalues;
        eigenvalues.reverse();
        Ok(Self {
            a: *a,
            backend,
            rtol,
            solver,
            eigenvalues,
            rank,
        })
    }

    /// Solves `[A | 1] M = B` in the least-squares, minimum-norm sense (`M = pinv([A | 1]) B`)
    /// and returns `W = Mᵀ[:, :-1]`, `b = Mᵀ[:, -1]`.
    ///
    /// # Errors
    ///
    /// - [`Error::Shape`] when `b` does not have as many rows as the source.
    /// - [`Error::NonFinite`] (`which = "target"`) at the first NaN or infinite value of `b`.
    /// - [`Error::Solver`] when the backend fails or produces a non-finite value.
    pub fn solve(&self, b: &Features<'_>) -> Result<Affine> {
        self.solve_sum(std::slice::from_ref(b))
    }

    /// The sum of the solutions against several targets, `Σₖ pinv([A | 1]) Bₖ`, computed as
    /// one solve against `Σₖ Bₖ` (the map is linear in `B`): cuts that share a stitching layer
    /// *and* a source cost one product instead of one each. Divide by the number of targets
    /// (or pass it to [`Affine::mean_of_sums`]) for their mean. With one target it is
    /// [`solve`](Self::solve), bit for bit. The targets are added in the given order, in f64
    /// ([`Precision::F64`]) or row block by row block in f32 ([`Precision::MixedF32`], whose
    /// product is f32 anyway), so the result equals the sum of separate solves to rounding.
    ///
    /// # Errors
    ///
    /// - [`Error::Shape`] when `targets` is empty ([`ShapeError::NoSolutions`]), when a target
    ///   does not have as many rows as the source ([`ShapeError::TargetRows`]) or as many
    ///   columns as the first target ([`ShapeError::TargetCols`]).
    /// - [`Error::NonFinite`] (`which = "target"`) at the first NaN or infinite value of a target.
    /// - [`Error::Solver`] when the backend fails or produces a non-finite value.
    pub fn solve_sum(&self, targets: &[Features<'_>]) -> Result<Affine> {
        let Some(first) = targets.first() else {
            return Err(Error::Shape(ShapeError::NoSolutions));
        };
        for b in targets {
            if b.rows != self.a.rows {
                return Err(Error::Shape(ShapeError::TargetRows {
                    target: b.rows,
                    source_rows: self.a.rows,
                }));
            }
            if b.cols != first.cols {
                return Err(Error::Shape(ShapeError::TargetCols {
                    cols: b.cols,
                    first: first.cols,
                }));
            }
        }
        let (c_in, c_out) = (self.a.cols, first.cols);
        let m = if c_out == 0 {
            Vec::new()
        } else {
            on_pool(|| {
                let kernel = self.backend.kernel();
                match &self.solver {
                    Solver::F64 { projector } => kernel.solve(&self.a, targets, projector),
                    Solver::MixedF32 { factor, basis } => {
                        let c = kernel.solve_mixed(basis, self.rank, targets)?;
                        kernel.lift(factor, c_in + 1, self.rank, &c, c_out)
                    }
                }
            })?
        };
        // The targets are checked only when the solution is not finite: a NaN or an infinity
        // anywhere in column `c` of a target reaches every row of column `c` of `M` (every
        // product sums over all rows of `B`, and `0 · ∞` is NaN), so a finite `M` proves finite
        // targets without another pass over them (for the 68 DeiT cuts, 3.1 GB read on one
        // thread).
        if let Some(index) = m.iter().position(|v| !v.is_finite()) {
            for b in targets {
                b.check_finite("target")?;
            }
            return Err(Error::Solver {
                backend: self.backend.name(),
                reason: SolverFailure::NonFiniteSolution {
                    row: index / c_out,
                    col: index % c_out,
                },
            });
        }
        // M is (c_in+1) × c_out row-major.
        let mut weight = vec![0.0; c_out * c_in];
        for i in 0..c_in {
            for o in 0..c_out {
                weight[o * c_in + i] = m[i * c_out + o];
            }
        }
        let bias = m[c_in * c_out..].to_vec();
        Ok(Affine {
            weight,
            bias,
            in_features: c_in,
            out_features: c_out,
        })
    }

    /// How many singular values of `[A | 1]` survive the cutoff (`pinv`'s numerical rank).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The singular values of `[A | 1]`, descending (`c_in + 1` of them, from the Gram
    /// eigenvalues: those far below the cutoff are only rounding noise).
    pub fn singular_values(&self) -> Vec<f64> {
        self.eigenvalues
            .iter()
            .map(|&l| l.max(0.0).sqrt())
            .collect()
    }

    /// The relative cutoff in use (before the Gram floor).
    pub fn rtol(&self) -> f64 {
        self.rtol
    }

    /// The backend this system was factorised with (its solves use it too).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The precision of this system's solves.
    pub fn precision(&self) -> Precision {
        match self.solver {
            Solver::F64 { .. } => Precision::F64,
            Solver::MixedF32 { .. } => Precision::MixedF32,
        }
    }

    /// The source features.
    pub fn features(&self) -> Features<'a> {
        self.a
    }
}

impl fmt::Debug for SourceSystem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceSystem")
            .field("rows", &self.a.rows)
            .field("in_features", &self.a.cols)
            .field("backend", &self.backend)
            .field("precision", &self.precision())
            .field("rtol", &self.rtol)
            .field("rank", &self.rank)
            .finish_non_exhaustive()
    }
}

/// What a [`SourceSystem`] keeps to solve against targets.
#[derive(Clone)]
enum Solver {
    /// `P = V_k Λ_k⁻¹ V_kᵀ`, `(c_in+1)²` row-major: `M = P (Xᵀ B)` in f64.
    F64 { projector: Vec<f64> },
    /// `L` (`(c_in+1) × rank`, lower trapezoidal, `L Lᵀ = P`, f64) and the orthonormal basis
    /// `Q = X L` rounded to f32 (`m × rank`), both row-major: `M = L (Qᵀ B)`, `Qᵀ B` in f32
    /// blocks.
    MixedF32 { factor: Vec<f64>, basis: Vec<f32> },
}

/// The checks of [`SourceSystem::new`] on `a` and `options`; the relative cutoff to use.
fn checked_rtol(a: &Features<'_>, options: &LstsqOptions) -> Result<f64> {
    if a.rows == 0 {
        return Err(Error::Shape(ShapeError::NoSourceRows));
    }
    a.check_finite("source")?;
    match options.rtol {
        None => Ok(default_rtol(a.rows, a.cols + 1)),
        Some(rtol) if rtol.is_finite() && rtol >= 0.0 => Ok(rtol),
        Some(rtol) => Err(Error::InvalidOptions(InvalidOption::Rtol(rtol))),
    }
}

/// Runs `f` on a worker thread of the current rayon pool: where the caller is on one, `f` runs
/// right there; from a thread outside any pool, on a worker of the global pool while the caller
/// waits. The kernels split their products and the eigensolver into rayon jobs, and from outside
/// a pool every split is a round trip to the pool's sleeping threads (the 68-cut DeiT-Ti/S/B
/// init took 5.6–6.2 s that way and 4.9–5.4 s on a pool, 2-core AMD EPYC). The same threads
/// split the same work, so the results are the same bit for bit.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Solves one least-squares stitching layer: [`SourceSystem::new`] then
/// [`SourceSystem::solve`]. Build the [`SourceSystem`] yourself when several targets share the
/// source features.
///
/// # Errors
///
/// Those of [`SourceSystem::new`] and [`SourceSystem::solve`].
pub fn solve_affine(a: &Features<'_>, b: &Features<'_>, options: &LstsqOptions) -> Result<Affine> {
    SourceSystem::new(a, options)?.solve(b)
}

#[cfg(test)]
mod tests {
    use approx::{abs_diff_eq, assert_abs_diff_eq};
    use rand::{Rng as _, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::kernel::{MIXED_BLOCK, ROW_CHUNK};

    /// A seeded generator (ChaCha8), uniform in [-1, 1).
    struct Rng(ChaCha8Rng);

    impl Rng {
        fn new(seed: u64) -> Self {
            Self(ChaCha8Rng::seed_from_u64(seed))
        }

        fn next(&mut self) -> f64 {
            self.0.random_range(-1.0..1.0)
        }

        fn vec(&mut self, len: usize) -> Vec<f32> {
            (0..len).map(|_| self.next() as f32).collect()
        }
    }

    /// Every backend compiled in, with default options otherwise.
    fn all_options() -> Vec<LstsqOptions> {
        Backend::ALL
            .iter()
            .map(|&b| LstsqOptions::default().with_backend(b))
            .collect()
    }

    /// Asserts that `fit` is `W = weight`, `b = bias` within `epsilon`, element by element.
    #[track_caller]
    fn assert_fit(fit: &Affine, weight: &[f64], bias: &[f64], epsilon: f64, backend: Backend) {
        assert!(
            abs_diff_eq!(fit.weight[..], weight[..], epsilon = epsilon)
                && abs_diff_eq!(fit.bias[..], bias[..], epsilon = epsilon),
            "{backend}: W {:?}, b {:?}; expected W {weight:?}, b {bias:?}",
            fit.weight,
            fit.bias
        );
    }

    fn solve(
        a: &[f32],
        rows: usize,
        c_in: usize,
        b: &[f32],
        c_out: usize,
        options: &LstsqOptions,
    ) -> Result<Affine> {
        solve_affine(
            &Features::new(a, rows, c_in)?,
            &Features::new(b, rows, c_out)?,
            options,
        )
    }

    #[test]
    fn recovers_a_known_affine_map() {
        let (rows, c_in, c_out) = (300, 12, 7);
        // Rows spread over more than one row block would need > ROW_CHUNK rows; 300 keeps the
        // debug test fast, the chunked path is covered by `chunked_accumulation_matches`.
        let mut rng = Rng::new(7);
        let a = rng.vec(rows * c_in);
        let weight: Vec<f64> = (0..c_out * c_in).map(|_| rng.next()).collect();
        let bias: Vec<f64> = (0..c_out).map(|_| 3.0 * rng.next()).collect();
        let truth = Affine {
            weight,
            bias,
            in_features: c_in,
            out_features: c_out,
        };
        let b = truth
            .apply(&Features::new(&a, rows, c_in).unwrap())
            .unwrap();
        for options in all_options() {
            let fit = solve(&a, rows, c_in, &b, c_out, &options).unwrap();
            assert_eq!((fit.in_features, fit.out_features), (c_in, c_out));
            assert_fit(&fit, &truth.weight, &truth.bias, 1e-5, options.backend);
        }
    }

    #[test]
    fn chunked_accumulation_matches() {
        // More rows than one block: the same relation must come out of the accumulated products.
        let (rows, c_in, c_out) = (ROW_CHUNK * 2 + 17, 3, 2);
        let mut rng = Rng::new(11);
        let a = rng.vec(rows * c_in);
        let b: Vec<f32> = a
            .chunks(c_in)
            .flat_map(|r| [r[0] - 2.0 * r[2] + 0.25, 0.5 * r[1] - 1.0])
            .collect();
        for options in all_options() {
            let fit = solve(&a, rows, c_in, &b, c_out, &options).unwrap();
            let expected = [1.0, 0.0, -2.0, 0.0, 0.5, 0.0];
            assert_fit(&fit, &expected, &[0.25, -1.0], 1e-6, options.backend);
        }
    }

    /// The hand-checkable minimum-norm case: channel 1 is constant (2), so it is collinear with
    /// the ones column. B = 2·x0 − 1: the solutions are (2, t, −1 − 2t); the minimum-norm one is
    /// orthogonal to the null vector (0, 1, −2): w1 = −0.4, b = −0.2.
    fn check_constant_channel(options: &LstsqOptions, epsilon: f64) {
        let a = [1.0_f32, 2.0, 2.0, 2.0, 3.0, 2.0];
        let b = [1.0_f32, 3.0, 5.0];
        let system = SourceSystem::new(&Features::new(&a, 3, 2).unwrap(), options).unwrap();
        assert_eq!(system.rank(), 2);
        let fit = system.solve(&Features::new(&b, 3, 1).unwrap()).unwrap();
        assert_fit(&fit, &[2.0, -0.4], &[-0.2], epsilon, options.backend);
    }

    #[test]
    fn constant_channel_gives_the_minimum_norm_solution() {
        for options in all_options() {
            check_constant_channel(&options, 1e-9);
        }
    }

    #[test]
    fn all_constant_source() {
        // X = [[2, 1]] × 3: pinv(X) B = (2, 1)ᵀ · 1 / 5.
        let a = [2.0_f32; 3];
        let b = [1.0_f32; 3];
        for options in all_options() {
            let fit = solve(&a, 3, 1, &b, 1, &options).unwrap();
            assert_fit(&fit, &[0.4], &[0.2], 1e-9, options.backend);
        }
    }

    #[test]
    fn fewer_rows_than_columns() {
        // One row: pinv([1, 2, 1]) = [1, 2, 1]ᵀ / 6, so M = [1, 2, 1]ᵀ · 3 / 6.
        let a = [1.0_f32, 2.0];
        let b = [3.0_f32, -6.0];
        for options in all_options() {
            let system = SourceSystem::new(&Features::new(&a, 1, 2).unwrap(), &options).unwrap();
            assert_eq!(system.rank(), 1);
            let fit = system.solve(&Features::new(&b, 1, 2).unwrap()).unwrap();
            assert_fit(
                &fit,
                &[0.5, 1.0, -1.0, -2.0],
                &[0.5, -1.0],
                1e-9,
                options.backend,
            );
        }
        // Random 5 × 9 (full row rank): the minimum-norm solution is Xᵀ (X Xᵀ)⁻¹ B.
        let (rows, c_in, c_out) = (5, 8, 3);
        let n = c_in + 1;
        let mut rng = Rng::new(3);
        let (a, b) = (rng.vec(rows * c_in), rng.vec(rows * c_out));
        let x = |r: usize, i: usize| {
            if i == c_in {
                1.0
            } else {
                f64::from(a[r * c_in + i])
            }
        };
        let mut xxt: Vec<f64> = (0..rows * rows)
            .map(|k| (0..n).map(|i| x(k / rows, i) * x(k % rows, i)).sum())
            .collect();
        let mut y: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
        gauss_solve(&mut xxt, &mut y, rows, c_out);
        let m = |i: usize, o: usize| (0..rows).map(|r| x(r, i) * y[r * c_out + o]).sum::<f64>();
        let weight: Vec<f64> = (0..c_out * c_in).map(|k| m(k % c_in, k / c_in)).collect();
        let bias: Vec<f64> = (0..c_out).map(|o| m(c_in, o)).collect();
        for options in all_options() {
            let fit = solve(&a, rows, c_in, &b, c_out, &options).unwrap();
            assert_fit(&fit, &weight, &bias, 1e-9, options.backend);
        }
    }

    /// Solves `a y = rhs` in place (`a`: n×n, `rhs`: n×k, row-major) by Gaussian elimination with
    /// partial pivoting.
    fn gauss_solve(a: &mut [f64], rhs: &mut [f64], n: usize, k: usize) {
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
                .unwrap();
            for c in 0..n {
                a.swap(col * n + c, pivot * n + c);
            }
            for c in 0..k {
                rhs.swap(col * k + c, pivot * k + c);
            }
            for r in 0..n {
                if r != col {
                    let f = a[r * n + col] / a[col * n + col];
                    for c in 0..n {
                        a[r * n + c] -= f * a[col * n + c];
                    }
                    for c in 0..k {
                        rhs[r * k + c] -= f * rhs[col * k + c];
                    }
                }
            }
        }
        for r in 0..n {
            for c in 0..k {
                rhs[r * k + c] /= a[r * n + r];
            }
        }
    }

    #[test]
    fn zero_input_channels_fit_the_mean() {
        let b = [1.0_f32, 2.0, 6.0];
        for options in all_options() {
            let fit = solve(&[], 3, 0, &b, 1, &options).unwrap();
            assert!(fit.weight.is_empty());
            assert_abs_diff_eq!(fit.bias[..], [3.0][..], epsilon = 1e-12);
        }
    }

    #[test]
    fn non_finite_values_are_typed_errors() {
        let (mut bad_a, a, b) = (vec![0.5_f32; 12], vec![0.5_f32; 12], vec![1.0_f32; 8]);
        bad_a[7] = f32::NAN; // row 2, column 1 of a 4×3 matrix
        let options = all_options()
            .into_iter()
            .flat_map(|o| [Precision::F64, Precision::MixedF32].map(|p| o.with_precision(p)));
        for options in options {
            let err = solve(&bad_a, 4, 3, &b, 2, &options).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::NonFinite {
                        which: "source",
                        row: 2,
                        col: 1
                    }
                ),
                "{options:?}: {err:?}"
            );
            // The targets are scanned only once the solution is not finite: each kind of value
            // anywhere, alone or before another, in a target solved alone or in a sum, is still
            // reported at its first position.
            let system = SourceSystem::new(&Features::new(&a, 4, 3).unwrap(), &options).unwrap();
            let cases: [&[(usize, f32)]; 5] = [
                &[(5, f32::NEG_INFINITY), (6, f32::NAN)], // row 2, column 1 of a 4×2 matrix
                &[(0, f32::INFINITY)],
                &[(7, f32::NAN)],
                &[(2, f32::NAN), (3, f32::INFINITY)],
                &[(4, f32::MAX), (6, f32::INFINITY)],
            ];
            for values in cases {
                let mut bad_b = b.clone();
                for &(index, value) in values {
                    bad_b[index] = value;
                }
                let first = values.iter().position(|(_, v)| !v.is_finite()).unwrap();
                let (row, col) = (values[first].0 / 2, values[first].0 % 2);
                let good = Features::new(&b, 4, 2).unwrap();
                let bad = Features::new(&bad_b, 4, 2).unwrap();
                for targets in [vec![bad], vec![good, bad], vec![bad, good]] {
                    let err = system.solve_sum(&targets).unwrap_err();
                    assert!(
                        matches!(err, Error::NonFinite { which: "target", row: r, col: c } if (r, c) == (row, col)),
                        "{options:?} {values:?}: {err:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn shape_errors() {
        let data = [0.0_f32; 6];
        assert!(matches!(
            Features::new(&data, 4, 2),
            Err(Error::Shape(ShapeError::Features {
                values: 6,
                rows: 4,
                cols: 2
            }))
        ));
        assert!(matches!(
            Features::new(&data, usize::MAX, 2),
            Err(Error::Shape(ShapeError::Features { .. }))
        ));
        let a = Features::new(&data, 3, 2).unwrap();
        let b = Features::new(&data, 2, 3).unwrap();
        let options = LstsqOptions::default();
        let err = solve_affine(&a, &b, &options).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Shape(ShapeError::TargetRows {
                    target: 2,
                    source_rows: 3
                })
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "least squares: target features have 2 rows, the source's 3"
        );
        let empty = Features::new(&[], 0, 2).unwrap();
        assert!(matches!(
            SourceSystem::new(&empty, &options),
            Err(Error::Shape(ShapeError::NoSourceRows))
        ));
        let bad = options.with_rtol(f64::NAN);
        let err = SourceSystem::new(&a, &bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidOptions(InvalidOption::Rtol(r)) if r.is_nan()),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "least squares: invalid options: least-squares rtol NaN must be finite and non-negative"
        );
        let fit = solve_affine(&a, &Features::new(&data, 3, 2).unwrap(), &options).unwrap();
        assert!(matches!(
            fit.apply(&b),
            Err(Error::Shape(ShapeError::ApplyWidth {
                in_features: 2,
                out_features: 2,
                cols: 3
            }))
        ));
    }

    #[test]
    fn deterministic() {
        let (rows, c_in, c_out) = (257, 20, 9);
        let mut rng = Rng::new(5);
        let (a, b) = (rng.vec(rows * c_in), rng.vec(rows * c_out));
        for options in all_options() {
            let first = solve(&a, rows, c_in, &b, c_out, &options).unwrap();
            for _ in 0..3 {
                let again = solve(&a, rows, c_in, &b, c_out, &options).unwrap();
                let bits = |f: &Affine| {
                    f.weight
                        .iter()
                        .chain(&f.bias)
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&first), bits(&again));
            }
        }
    }

    #[test]
    fn new_all_is_new_for_each_source() {
        // Sources of several widths (one rank-deficient) and several row blocks each: where the
        // previous source's eigensolver runs long enough (debug builds), some blocks are added
        // beside it; `faer::tests::gram_split_anywhere_is_the_same` covers every split.
        let mut rng = Rng::new(17);
        let shapes = [(3000, 60), (1100, 9), (2600, 33), (300, 4)];
        let mut data: Vec<Vec<f32>> = shapes.iter().map(|&(r, c)| rng.vec(r * c)).collect();
        for row in 0..shapes[2].0 {
            data[2][row * 33 + 7] = 1.5;
        }
        let sources: Vec<Features<'_>> = shapes
            .iter()
            .zip(&data)
            .map(|(&(r, c), d)| Features::new(d, r, c).unwrap())
            .collect();
        let targets: Vec<Vec<f32>> = shapes.iter().map(|&(r, _)| rng.vec(r * 5)).collect();
        let bits = |f: Affine| {
            f.weight
                .iter()
                .chain(&f.bias)
                .map(|v| v.to_bits())
                .collect()
        };
        for options in all_options() {
            for precision in [Precision::F64, Precision::MixedF32] {
                let options = options.with_precision(precision);
                let all = SourceSystem::new_all(&sources, &options).unwrap();
                assert_eq!(all.len(), sources.len());
                for ((system, source), target) in all.iter().zip(&sources).zip(&targets) {
                    let one = SourceSystem::new(source, &options).unwrap();
                    assert_eq!(system.rank(), one.rank(), "{options:?}");
                    let values = |s: &SourceSystem<'_>| {
                        s.singular_values()
                            .iter()
                            .map(|v| v.to_bits())
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(values(system), values(&one), "{options:?}");
                    let b = Features::new(target, source.rows, 5).unwrap();
                    let (x, y): (Vec<u64>, Vec<u64>) = (
                        bits(system.solve(&b).unwrap()),
                        bits(one.solve(&b).unwrap()),
                    );
                    assert_eq!(x, y, "{options:?}");
                }
                assert!(SourceSystem::new_all(&[], &options).unwrap().is_empty());
                // Every source is checked first: a bad one anywhere is its error.
                let mut bad = data[1].clone();
                bad[40] = f32::NAN;
                let mut with_bad = sources.clone();
                with_bad[1] = Features::new(&bad, shapes[1].0, shapes[1].1).unwrap();
                assert!(matches!(
                    SourceSystem::new_all(&with_bad, &options),
                    Err(Error::NonFinite {
                        which: "source",
                        row: 4,
                        col: 4
                    })
                ));
            }
        }
    }

    #[test]
    fn backends_agree() {
        let (rows, c_in, c_out) = (400, 16, 5);
        let mut rng = Rng::new(9);
        let mut a = rng.vec(rows * c_in);
        for r in 0..rows {
            a[r * c_in + 3] = 4.0; // a constant channel
        }
        let b = rng.vec(rows * c_out);
        let fits: Vec<Affine> = all_options()
            .iter()
            .map(|o| solve(&a, rows, c_in, &b, c_out, o).unwrap())
            .collect();
        for fit in &fits[1..] {
            assert_abs_diff_eq!(fit.weight[..], fits[0].weight[..], epsilon = 1e-10);
            assert_abs_diff_eq!(fit.bias[..], fits[0].bias[..], epsilon = 1e-10);
        }
    }

    #[test]
    fn mixed_precision_stays_close_to_f64() {
        // Several f32 blocks (rows > MIXED_BLOCK), a constant channel, correlated channels.
        let (rows, c_in, c_out) = (MIXED_BLOCK * 2 + 300, 10, 6);
        let mut rng = Rng::new(21);
        let mut a = rng.vec(rows * c_in);
        for r in 0..rows {
            a[r * c_in + 2] = 1.5;
            a[r * c_in + 7] = 0.8 * a[r * c_in + 6] + 0.1 * a[r * c_in + 7];
        }
        let b = rng.vec(rows * c_out);
        let source = Features::new(&a, rows, c_in).unwrap();
        let target = Features::new(&b, rows, c_out).unwrap();
        for &backend in Backend::ALL {
            let exact = SourceSystem::new(&source, &LstsqOptions::default().with_backend(backend))
                .unwrap()
                .solve(&target)
                .unwrap();
            let options = LstsqOptions::default()
                .with_backend(backend)
                .with_precision(Precision::MixedF32);
            let system = SourceSystem::new(&source, &options).unwrap();
            assert_eq!(system.precision(), Precision::MixedF32);
            let fit = system.solve(&target).unwrap();
            let scale = exact.weight.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(
                abs_diff_eq!(
                    fit.weight[..],
                    exact.weight[..],
                    epsilon = 1e-5 * scale.max(1.0)
                ) && abs_diff_eq!(fit.bias[..], exact.bias[..], epsilon = 1e-5),
                "{backend}: {:?} {:?}",
                fit.bias,
                exact.bias
            );
            // Deterministic too.
            let again = system.solve(&target).unwrap();
            assert_eq!(fit, again);
        }
        // The hand-checkable minimum-norm case, in f32 products.
        for &backend in Backend::ALL {
            let options = LstsqOptions::default()
                .with_backend(backend)
                .with_precision(Precision::MixedF32);
            check_constant_channel(&options, 1e-6);
        }
    }

    #[test]
    fn mixed_basis_is_orthonormal_and_its_factor_gives_the_projector() {
        // A constant channel (collinear with the ones column) and a correlated pair: rank < n,
        // so the factor is trapezoidal and the dense part of the basis product runs too.
        let (rows, c_in) = (700, 9);
        let n = c_in + 1;
        let mut rng = Rng::new(31);
        let mut a = rng.vec(rows * c_in);
        for r in 0..rows {
            a[r * c_in + 4] = 2.5;
            a[r * c_in + 8] = 0.5 * a[r * c_in + 1] + 0.01 * a[r * c_in + 8];
        }
        let source = Features::new(&a, rows, c_in).unwrap();
        for &backend in Backend::ALL {
            let options = LstsqOptions::default().with_backend(backend);
            let exact = SourceSystem::new(&source, &options).unwrap();
            let mixed =
                SourceSystem::new(&source, &options.with_precision(Precision::MixedF32)).unwrap();
            let (Solver::F64 { projector }, Solver::MixedF32 { factor, basis }) =
                (&exact.solver, &mixed.solver)
            else {
                panic!("{backend}: unexpected solvers");
            };
            let r = mixed.rank();
            assert_eq!(r, n - 1, "{backend}");
            assert_eq!((factor.len(), basis.len()), (n * r, rows * r), "{backend}");
            // Lower trapezoidal, and L Lᵀ = P.
            for i in 0..n {
                for j in i + 1..r {
                    assert_eq!(factor[i * r + j], 0.0, "{backend}: L[{i}][{j}]");
                }
            }
            let scale = projector.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            for i in 0..n {
                for k in 0..n {
                    let llt: f64 = (0..r).map(|j| factor[i * r + j] * factor[k * r + j]).sum();
                    assert!(
                        (llt - projector[i * n + k]).abs() <= 1e-9 * scale,
                        "{backend}: (L Lᵀ)[{i}][{k}] = {llt}, P = {}",
                        projector[i * n + k]
                    );
                }
            }
            // Qᵀ Q = I to f32 rounding.
            for j in 0..r {
                for k in 0..r {
                    let dot: f64 = (0..rows)
                        .map(|i| f64::from(basis[i * r + j]) * f64::from(basis[i * r + k]))
                        .sum();
                    let expected = if j == k { 1.0 } else { 0.0 };
                    assert!(
                        (dot - expected).abs() < 1e-5,
                        "{backend}: (QᵀQ)[{j}][{k}] = {dot}"
                    );
                }
            }
        }
    }

    #[test]
    fn solve_sum_is_the_sum_of_the_solutions() {
        // More rows than one mixed block, so both the f64 chunks and the f32 blocks add up.
        let (rows, c_in, c_out) = (MIXED_BLOCK + 300, 5, 3);
        let mut rng = Rng::new(23);
        let a = rng.vec(rows * c_in);
        let targets: Vec<Vec<f32>> = (0..3).map(|_| rng.vec(rows * c_out)).collect();
        let targets: Vec<Features<'_>> = targets
            .iter()
            .map(|b| Features::new(b, rows, c_out).unwrap())
            .collect();
        for options in all_options() {
            for (precision, epsilon) in [(Precision::F64, 1e-12), (Precision::MixedF32, 1e-5)] {
                let options = options.with_precision(precision);
                let system =
                    SourceSystem::new(&Features::new(&a, rows, c_in).unwrap(), &options).unwrap();
                let parts: Vec<Affine> = targets.iter().map(|b| system.solve(b).unwrap()).collect();
                let separate = Affine::mean(&parts).unwrap();
                let summed =
                    Affine::mean_of_sums(&[system.solve_sum(&targets).unwrap()], targets.len())
                        .unwrap();
                assert_fit(
                    &summed,
                    &separate.weight,
                    &separate.bias,
                    epsilon,
                    options.backend,
                );
                // The sum differs from every single solution (the test can fail).
                assert!(!abs_diff_eq!(
                    summed.weight[..],
                    parts[0].weight[..],
                    epsilon = 1e-3
                ));
                // One target: `solve`, bit for bit.
                assert_eq!(system.solve_sum(&targets[..1]).unwrap(), parts[0]);
                // Partial sums: one group of two, one single target.
                let grouped = Affine::mean_of_sums(
                    &[
                        system.solve_sum(&targets[..2]).unwrap(),
                        system.solve(&targets[2]).unwrap(),
                    ],
                    3,
                )
                .unwrap();
                assert_fit(
                    &grouped,
                    &separate.weight,
                    &separate.bias,
                    epsilon,
                    options.backend,
                );
            }
        }
    }

    #[test]
    fn solve_sum_shape_errors() {
        let a = [1.0_f32, 2.0, 3.0, 5.0];
        let system =
            SourceSystem::new(&Features::new(&a, 4, 1).unwrap(), &Default::default()).unwrap();
        let b2 = [1.0_f32; 8];
        let b1 = [1.0_f32; 4];
        let wide = Features::new(&b2, 4, 2).unwrap();
        let narrow = Features::new(&b1, 4, 1).unwrap();
        let short = Features::new(&b2, 2, 4).unwrap();
        assert!(matches!(
            system.solve_sum(&[]),
            Err(Error::Shape(ShapeError::NoSolutions))
        ));
        assert!(matches!(
            system.solve_sum(&[wide, narrow]),
            Err(Error::Shape(ShapeError::TargetCols { cols: 1, first: 2 }))
        ));
        assert!(matches!(
            system.solve_sum(&[wide, short]),
            Err(Error::Shape(ShapeError::TargetRows {
                target: 2,
                source_rows: 4
            }))
        ));
        let nan = [1.0_f32, f32::NAN, 0.0, 0.0];
        assert!(matches!(
            system.solve_sum(&[narrow, Features::new(&nan, 4, 1).unwrap()]),
            Err(Error::NonFinite {
                which: "target",
                row: 1,
                col: 0
            })
        ));
        let fit = system.solve(&narrow).unwrap();
        assert!(matches!(
            Affine::mean_of_sums(std::slice::from_ref(&fit), 0),
            Err(Error::Shape(ShapeError::NoSolutions))
        ));
        assert!(matches!(
            Affine::mean_of_sums(&[], 1),
            Err(Error::Shape(ShapeError::NoSolutions))
        ));
    }

    #[test]
    fn default_cutoff_is_torchs() {
        assert_eq!(
            default_rtol(19_700, 193),
            f64::from(f32::EPSILON) * 19_700.0
        );
        assert_eq!(default_rtol(10, 49), f64::from(f32::EPSILON) * 49.0);
        // Singular values of [A | 1] for A = [[3], [4]]: X = [[3, 1], [4, 1]].
        let a = [3.0_f32, 4.0];
        let system =
            SourceSystem::new(&Features::new(&a, 2, 1).unwrap(), &Default::default()).unwrap();
        let sv = system.singular_values();
        // σ² are the eigenvalues of [[25, 7], [7, 2]]: (27 ± √(23² + 196)) / 2.
        let d = (23.0_f64 * 23.0 + 196.0).sqrt();
        assert_abs_diff_eq!(sv[0], ((27.0 + d) / 2.0).sqrt(), epsilon = 1e-12);
        assert_abs_diff_eq!(sv[1], ((27.0 - d) / 2.0).sqrt(), epsilon = 1e-12);
    }
}
