//! Stitching layers for SN-Net on Burn.
//!
//! A stitching layer maps the front anchor's activation at a cut into the end anchor's input
//! space: per token (`[B, N, C]`, [`StitchingLayer::forward_tokens`]), per pixel as a 1×1
//! convolution (`[B, C, H, W]`, [`StitchingLayer::forward_map`]), or per pixel flattened into
//! tokens ([`StitchingLayer::forward_map_to_tokens`]). Its weights come from the least-squares
//! fit of [`lstsq`] (the Burn-free `snnet-lstsq` crate, re-exported) through
//! [`StitchingLayer::with_affine`].
//!
//! The crate knows nothing of the anchors: it takes and returns plain Burn tensors.

pub mod error;
pub mod layer;

/// The least-squares initialiser (the `snnet-lstsq` crate).
pub use snnet_lstsq as lstsq;

pub use error::{Error, Result};
pub use layer::{Init, LoraConfig, StitchingLayer, StitchingLayerConfig, Transform};
