//! The crate's error type.

/// Everything that can go wrong building or initialising a stitching layer (running one is
/// infallible: the SN-Net's plan sizes every layer for the activations it joins).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stitching-layer configuration that cannot describe a layer.
    #[error("invalid stitching layer: {0}")]
    InvalidConfig(String),
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
    /// From the least-squares solver (shapes, non-finite features, a solver failure).
    #[error(transparent)]
    Lstsq(#[from] snnet_lstsq::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
