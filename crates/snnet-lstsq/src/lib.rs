//! The least-squares initialiser of SN-Net's stitching layers, exact to the reference's `ps_inv`.
//!
//! Plain row-major `f32` feature matrices in, an [`Affine`] map (`W`, `b` in f64) out: the crate
//! knows no tensor framework (`snnet-stitch` turns the result into a Burn stitching layer and
//! re-exports this crate as `snnet_stitch::lstsq`).
//!
//! SN-Net initialises a stitching layer from one batch of features: with the front anchor's
//! features `A` (`m × c_in`, one row per token) and the end anchor's `B` (`m × c_out`), it builds
//! `X = [A | 1]`, solves `M = pinv(X) · B` with `torch.linalg.pinv` in float32 and takes
//! `W = Mᵀ[:, :-1]` (`[c_out, c_in]`) and `b = Mᵀ[:, -1]`. Cuts that share a layer are solved
//! separately and their `W`, `b` averaged ([`Affine::mean`]).
//!
//! # Algorithm
//!
//! Many cuts share the same source features (the same front block), so the source side is
//! factorised once ([`SourceSystem::new`]; several sources in order with
//! [`SourceSystem::new_all`], which overlaps one source's eigendecomposition with the next
//! one's `XᵀX`) and solved against many targets ([`SourceSystem::solve`]):
//!
//! 1. `G = XᵀX` (`(c_in+1)²`, in f64, from f32 features converted in row blocks),
//! 2. its symmetric eigendecomposition `G = V Λ Vᵀ`; since `σᵢ² = λᵢ`, the eigenvalues kept are
//!    exactly the singular values pinv keeps: `λᵢ > (rtol·σ_max)²`, with torch's default
//!    `rtol = f32::EPSILON · max(m, c_in + 1)` ([`default_rtol`]),
//! 3. the projector `P = V_k Λ_k⁻¹ V_kᵀ`, so that `pinv(X) = P Xᵀ`,
//! 4. per target: `M = P (Xᵀ B)`.
//!
//! The solution is linear in `B`, so cuts that share a stitching layer *and* a source need one
//! product, not one each: [`SourceSystem::solve_sum`] solves against the sum of their targets
//! and [`Affine::mean_of_sums`] divides by the number of cuts (on DeiT-Ti/S/B, 22 products per
//! anchor pair instead of 34; `snnet-core` does so in [`Precision::MixedF32`]).
//!
//! With [`Precision::MixedF32`] step 4 runs through an orthonormal basis of the kept directions
//! instead: with `W = V_k Λ_k^{-1/2}` (so `P = W Wᵀ`), the QR factorisation `Wᵀ = O R` gives a
//! lower-trapezoidal `L = Rᵀ` (`(c_in+1) × rank`) with `L Lᵀ = P`, and `Q = X L` (orthonormal
//! columns) is formed once per source in f64 — most of the triangle of zeros of `L` skipped,
//! little more than half the multiply-adds of a dense product — and rounded to f32. Each target then costs
//! `M = L (Qᵀ B)`: the f32 product `Qᵀ B` over row blocks summed in f64, and a small f64 product
//! by `L`. Since `pinv(X) = L Qᵀ`, this is the same solution; the f32 products are about half the
//! cost of f64 ones, with float32 rounding of the same kind as torch's `pinv(X) @ B` (see
//! [Precision](#precision)).
//!
//! This is the minimum-norm least-squares solution truncated like `pinv`: rank-deficient sources
//! (constant or collinear channels, fewer rows than channels) give the same finite solution as
//! `torch.linalg.pinv`, never NaN. The cost is dominated by `Xᵀ B`, `m · (c_in+1) · c_out`
//! multiply-adds per target; the products run on all cores (faer on the global rayon pool), with
//! no reduction whose order depends on thread timing: the same inputs on the same machine give
//! bitwise the same result.
//!
//! # Precision
//!
//! Everything is computed in f64 from the f32 features. Forming the Gram matrix squares the
//! condition number, but `pinv`'s own cutoff bounds the condition number of what is kept by
//! `κ ≤ 1/rtol`, so the relative error of the f64 normal-equations solve is about
//! `f64::EPSILON · κ²`, while torch's float32 SVD carries at least `f32::EPSILON · κ`. The first
//! is the smaller whenever `κ < f32::EPSILON / f64::EPSILON ≈ 5·10⁸`, and torch's default cutoff
//! guarantees `κ ≤ 1 / (f32::EPSILON · max(m, c_in+1)) ≤ 4·10⁶`: with the default `rtol` this
//! solver is always closer to the exact `pinv` than torch is (at `m = 19,700` rows `κ ≤ 430`:
//! about `2·10⁻¹¹` against float32's up to `5·10⁻⁵`). On the committed fixture the solver agrees
//! with torch's float32 `pinv` to ~10⁻⁵, which is torch's own distance from a float64 `pinv`.
//!
//! The Gram eigenvalues are only resolved down to about `max(m, c_in+1) · f64::EPSILON · λ_max`:
//! a user `rtol` whose square falls below [`GRAM_FLOOR`]` · max(m, c_in+1) · f64::EPSILON` is
//! raised to it (the default `rtol` never is), and small user `rtol`s lose accuracy as
//! `f64::EPSILON / rtol²`. As with any truncated pseudo-inverse, a singular value that lies
//! within rounding of the cutoff may be kept by one implementation and dropped by another.
//!
//! [`Precision::MixedF32`] keeps that accuracy up to the f32 rounding of the per-target product.
//! `Q = X L` has orthonormal columns, and `‖X‖ ‖L‖ = σ_max / σ_min = κ` over the kept directions,
//! so forming `Q` in f64 errs by about `c_in · f64::EPSILON · κ` (below `10⁻¹⁰` here); rounding
//! `Q` to f32 and the f32 block products err by `f32::EPSILON` relative to `‖Q‖ ‖B‖ = ‖B‖`, and
//! `L` amplifies that by at most `‖L‖ = 1 / σ_min`. The error of `M` is therefore about
//! `f32::EPSILON · ‖B‖ / σ_min` (times the block length's growth factor), the bound of torch's
//! own float32 `pinv(X) @ B`, whose `pinv(X)` has norm `1 / σ_min` too. (Forming `Q`, or
//! `pinv(X)`, in f32 would multiply that by `κ`; forming `Xᵀ B` in f32 and multiplying by `P`, by
//! up to `κ²`: neither is done.)
//!
//! The columns are deliberately **not** centred: subtracting the column means changes the
//! singular values of `X` and, for rank-deficient `X` (a constant channel is collinear with the
//! ones column), the minimum-norm solution itself, so the result would no longer be `pinv`'s.
//! The truncation above keeps the uncentred Gram well enough conditioned that centring buys
//! nothing here.
//!
//! # Backends
//!
//! [`Backend::Faer`] (the default) is pure Rust ([faer](https://docs.rs/faer), parallel on the
//! global rayon pool). With the `lapack` cargo feature, `Backend::Lapack` runs the same
//! algorithm through `ndarray` + `ndarray-linalg` (BLAS `dgemm` and LAPACK `dsyevd`), linking
//! the system OpenBLAS (Debian: `libopenblas-dev`). Each backend implements one internal kernel
//! trait (the Gram eigendecomposition, the projector, the f64 product; for mixed precision the
//! triangular factor, the basis and the f32 products); [`SourceSystem`] holds the algorithm and
//! picks the kernel once. LAPACK forms the basis with a dense `dgemm` (no triangle skipped).
//!
//! # Example
//!
//! ```
//! use snnet_lstsq::{Affine, Features, LstsqOptions, SourceSystem};
//!
//! // Four tokens with two channels, and two targets that are affine in them.
//! let a = [0.0_f32, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
//! let b1: Vec<f32> = a.chunks(2).map(|r| 2.0 * r[0] - r[1] + 0.5).collect();
//! let b2: Vec<f32> = a.chunks(2).map(|r| r[1] - 1.0).collect();
//!
//! let source = Features::new(&a, 4, 2)?;
//! let system = SourceSystem::new(&source, &LstsqOptions::default())?;   // factorised once
//! let fit1 = system.solve(&Features::new(&b1, 4, 1)?)?;
//! let fit2 = system.solve(&Features::new(&b2, 4, 1)?)?;
//! assert!((fit1.weight[0] - 2.0).abs() < 1e-9 && (fit1.weight[1] + 1.0).abs() < 1e-9);
//! assert!((fit1.bias[0] - 0.5).abs() < 1e-9);
//!
//! // Two cuts that share one stitching layer: the reference averages their solutions.
//! let shared = Affine::mean(&[fit1, fit2])?;
//! assert!((shared.bias[0] - (0.5 - 1.0) / 2.0).abs() < 1e-9);
//! let (weight, bias) = (shared.weight_f32(), shared.bias_f32());   // [out, in] and [out]
//! assert_eq!((weight.len(), bias.len()), (2, 1));
//! # Ok::<(), snnet_lstsq::Error>(())
//! ```
mod affine;
mod error;
mod faer;
mod features;
mod kernel;
#[cfg(feature = "lapack")]
mod lapack;
mod options;
mod system;

pub use affine::Affine;
pub use error::{Error, InvalidOption, Result, ShapeError, SolverFailure};
pub use features::Features;
pub use options::{Backend, GRAM_FLOOR, LstsqOptions, Precision, default_rtol};
pub use system::{SourceSystem, solve_affine};
