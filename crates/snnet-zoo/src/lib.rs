//! Anchor models for SN-Net on Burn.

mod anchor;
pub mod cost;
mod error;
pub mod tensor_io;
mod vit;
pub mod weights;

pub use anchor::{Activation, Anchor, FeatureInfo};
pub use cost::{Cost, ModelCost};
pub use error::{Error, Result};
pub use vit::{Attention, Block, LayerScale, Mlp, PatchEmbed, Vit, VitAnchor, VitConfig};
pub use weights::{LoadReport, WeightFormat, load_weights};
