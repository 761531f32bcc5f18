//! The crate's error type.

use snnet_space::Layout;

/// Everything that can go wrong building, initialising or running a stitching layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stitching-layer configuration that cannot describe a layer.
    #[error("invalid stitching layer: {0}")]
    InvalidConfig(String),
    /// A forward method for other layouts than the layer's (e.g. `forward_tokens` on a
    /// map→map layer).
    #[error(
        "stitching layer {layer} maps {} to {}, it was run as {} to {}",
        .expected.0, .expected.1, .found.0, .found.1
    )]
    Layout {
        /// The layer, in words (`192→384 map→map`).
        layer: String,
        /// The layer's (input, output) layouts.
        expected: (Layout, Layout),
        /// The (input, output) layouts of the method called.
        found: (Layout, Layout),
    },
    /// An activation that does not fit the layer (channels).
    #[error("stitching layer {layer}: {reason}")]
    Input {
        /// The layer, in words (`192→384 tokens→tokens`).
        layer: String,
        /// What does not fit.
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
    /// From the least-squares solver (shapes, non-finite features, a solver failure).
    #[error(transparent)]
    Lstsq(#[from] snnet_lstsq::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
