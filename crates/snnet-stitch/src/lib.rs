//! Stitching layers for SN-Net and their least-squares initialiser.
//!
//! A stitching layer maps the front anchor's activation at a cut into the end anchor's input
//! space. [`lstsq`] solves the reference's least-squares fit of such a layer from features.

pub mod error;
pub mod layer;
pub mod lstsq;

pub use error::{Error, Result};
pub use layer::{Init, LoraConfig, StitchingLayer, StitchingLayerConfig, Transform};
