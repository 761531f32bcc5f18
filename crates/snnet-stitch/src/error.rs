//! The crate's error type.

/// Everything that can go wrong building, initialising or running a stitching layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stitching-layer configuration that cannot describe a layer.
    #[error("invalid stitching layer: {0}")]
    InvalidConfig(String),
    /// An activation that does not fit the layer (layout, channels or rank).
    #[error("stitching layer {layer}: {reason}")]
    Input {
        /// The layer, in words (`192→384 tokens`).
        layer: String,
        /// What does not fit.
        reason: String,
    },
    /// Feature matrices whose shapes cannot form a least-squares system.
    #[error("least squares: {0}")]
    Shape(String),
    /// A NaN or infinite value in the features given to the least-squares solver.
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
    /// Weights of the wrong shape for the layer.
    #[error("stitching layer {layer}: weights of shape {found:?}, expected {expected:?}")]
    WeightShape {
        /// The layer, in words.
        layer: String,
        /// The shape the layer needs.
        expected: Vec<usize>,
        /// The shape given.
        found: Vec<usize>,
    },
    /// An error from the zoo (running an anchor).
    #[error(transparent)]
    Zoo(#[from] snnet_zoo::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
