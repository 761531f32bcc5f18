//! The crate's error type.

/// Everything that can go wrong forming or solving a least-squares system.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Solver options that cannot be used (e.g. a negative or non-finite `rtol`).
    #[error("least squares: invalid options: {0}")]
    InvalidOptions(InvalidOption),
    /// Feature matrices or solutions whose shapes cannot form (or combine into) a least-squares
    /// system.
    #[error("least squares: {0}")]
    Shape(ShapeError),
    /// A NaN or infinite value in the features given to the solver.
    #[error("least squares: {which} features hold a non-finite value at row {row}, column {col}")]
    NonFinite {
        /// `source` (the front anchor's) or `target` (the end anchor's).
        which: &'static str,
        /// Row of the first bad value.
        row: usize,
        /// Column of the first bad value.
        col: usize,
    },
    /// The linear-algebra backend failed (e.g. an eigensolver that did not converge).
    #[error("least squares: the {backend} solver failed: {reason}")]
    Solver {
        /// `faer` or `lapack`.
        backend: &'static str,
        /// What failed.
        #[source]
        reason: SolverFailure,
    },
}

/// A solver option that cannot be used ([`Error::InvalidOptions`]).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOption {
    /// A relative cutoff that is negative or not finite.
    #[error("least-squares rtol {0} must be finite and non-negative")]
    Rtol(f64),
}

/// Shapes that do not fit together ([`Error::Shape`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// A buffer whose length is not `rows · cols`.
    #[error("{values} values cannot form a {rows}×{cols} feature matrix")]
    Features {
        /// The buffer's length.
        values: usize,
        /// The rows asked for.
        rows: usize,
        /// The columns asked for.
        cols: usize,
    },
    /// Source features with no rows: there is nothing to fit.
    #[error("source features with no rows")]
    NoSourceRows,
    /// Target features with another number of rows than the source's.
    #[error("target features have {target} rows, the source's {source_rows}")]
    TargetRows {
        /// The target's rows.
        target: usize,
        /// The source's rows.
        source_rows: usize,
    },
    /// Targets of one [`SourceSystem::solve_sum`](crate::SourceSystem::solve_sum) with different
    /// numbers of columns.
    #[error("target features have {cols} columns, the first target's {first}")]
    TargetCols {
        /// The mismatching target's columns.
        cols: usize,
        /// The first target's columns.
        first: usize,
    },
    /// [`Affine::mean`](crate::Affine::mean) of no solutions (or
    /// [`SourceSystem::solve_sum`](crate::SourceSystem::solve_sum) of no targets).
    #[error("the mean of no solutions")]
    NoSolutions,
    /// [`Affine::mean`](crate::Affine::mean) of solutions of different shapes.
    #[error(
        "cannot average a {in_features}→{out_features} solution with a {first_in}→{first_out} one"
    )]
    MeanMismatch {
        /// The mismatching solution's input channels.
        in_features: usize,
        /// Its output channels.
        out_features: usize,
        /// The first solution's input channels.
        first_in: usize,
        /// Its output channels.
        first_out: usize,
    },
    /// [`Affine::apply`](crate::Affine::apply) to features of another width.
    #[error("a {in_features}→{out_features} map applied to {cols} channels")]
    ApplyWidth {
        /// The map's input channels.
        in_features: usize,
        /// Its output channels.
        out_features: usize,
        /// The features' channels.
        cols: usize,
    },
}

/// How the linear-algebra backend failed ([`Error::Solver`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SolverFailure {
    /// The eigensolver reached its iteration limit.
    #[error("the eigendecomposition did not converge")]
    NoConvergence,
    /// The Gram matrix's largest eigenvalue is not a positive finite number (the ones column
    /// alone makes it at least the number of rows).
    #[error("largest eigenvalue of XᵀX is {lambda_max}")]
    Spectrum {
        /// The largest eigenvalue found.
        lambda_max: f64,
    },
    /// The solution holds a NaN or an infinity.
    #[error("non-finite solution at ({row}, {col})")]
    NonFiniteSolution {
        /// Row of `M` (input channel; the last is the bias).
        row: usize,
        /// Column of `M` (output channel).
        col: usize,
    },
    /// An error of the backend library (`ndarray`, `ndarray-linalg`).
    #[error("{0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
