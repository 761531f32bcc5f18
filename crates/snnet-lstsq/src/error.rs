//! The crate's error type.

/// Everything that can go wrong forming or solving a least-squares system.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Solver options that cannot be used (e.g. a negative or non-finite `rtol`).
    #[error("least squares: invalid options: {0}")]
    InvalidOptions(String),
    /// Feature matrices whose shapes cannot form a least-squares system.
    #[error("least squares: {0}")]
    Shape(String),
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
        /// Its message.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
