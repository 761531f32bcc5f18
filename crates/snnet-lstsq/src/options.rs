//! The solver's settings: the linear-algebra backend, the precision of the per-target products
//! and the singular-value cutoff.

use std::fmt;

use derive_setters::Setters;

use crate::kernel::Kernel;

/// Resolution limit of the Gram approach, in units of `max(m, c_in+1) · f64::EPSILON`: eigenvalues
/// of `XᵀX` below `GRAM_FLOOR · max(m, c_in+1) · f64::EPSILON · λ_max` are rounding noise and are
/// always dropped, whatever [`LstsqOptions::rtol`] says. Torch's default cutoff is always above it.
pub const GRAM_FLOOR: f64 = 8.0;

/// The linear-algebra implementation behind the solver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Pure Rust: [faer](https://docs.rs/faer) matrix products and eigensolver (the default).
    #[default]
    Faer,
    /// BLAS `dgemm` and LAPACK `dsyevd` through `ndarray-linalg` (system OpenBLAS).
    #[cfg(feature = "lapack")]
    Lapack,
}

impl Backend {
    /// Every backend compiled in.
    pub const ALL: &'static [Backend] = &[
        Backend::Faer,
        #[cfg(feature = "lapack")]
        Backend::Lapack,
    ];

    /// `faer` or `lapack`.
    pub fn name(self) -> &'static str {
        self.kernel().name()
    }

    /// The backend's implementation of the solver's linear-algebra steps.
    pub(crate) fn kernel(self) -> &'static dyn Kernel {
        match self {
            Backend::Faer => &crate::faer::Faer,
            #[cfg(feature = "lapack")]
            Backend::Lapack => &crate::lapack::Lapack,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The arithmetic of the per-target product, the solver's cost centre.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Everything in f64: `M = P (Xᵀ B)` (the default).
    #[default]
    F64,
    /// The factorisation in f64 as for [`F64`](Self::F64), then an orthonormal basis
    /// `Q = X L` of the kept directions (`L Lᵀ = P`, `L` lower trapezoidal; `m × rank`) formed
    /// once per source in f64 and rounded to f32, and each target's `M = L (Qᵀ B)` with `Qᵀ B`
    /// an f32 matrix product over blocks of rows whose partial sums are added in f64. Since
    /// `pinv(X) = L Qᵀ`, that is the rounding of torch's own `pinv(X) @ B` (which accumulates
    /// all rows in f32), so the result stays as close to the exact `pinv` as torch's, at about
    /// half the cost of the f64 product; it keeps the f32 basis (`4 · m · rank` bytes) per
    /// [`SourceSystem`](crate::SourceSystem).
    MixedF32,
}

/// Solver settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Setters)]
#[setters(prefix = "with_")]
pub struct LstsqOptions {
    /// The implementation (default: [`Backend::Faer`]).
    pub backend: Backend,
    /// Relative singular-value cutoff: singular values `σ ≤ rtol · σ_max` of `[A | 1]` are
    /// dropped. `None` is `torch.linalg.pinv`'s default, [`default_rtol`]. Values whose square is
    /// below the Gram approach's resolution are raised to it (see [`GRAM_FLOOR`]).
    #[setters(strip_option)]
    pub rtol: Option<f64>,
    /// The arithmetic of the per-target products (default: [`Precision::F64`]).
    pub precision: Precision,
}

/// `torch.linalg.pinv`'s default relative cutoff for an `rows × cols` float32 matrix:
/// `f32::EPSILON · max(rows, cols)`. For `[A | 1]`, `cols` is `c_in + 1`.
pub fn default_rtol(rows: usize, cols: usize) -> f64 {
    f64::from(f32::EPSILON) * rows.max(cols) as f64
}
