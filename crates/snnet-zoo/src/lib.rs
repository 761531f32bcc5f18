//! Anchor models for SN-Net on Burn.

pub use burn;

mod anchor;
pub mod cost;
mod error;
mod preprocess;
mod registry;
pub mod tensor_io;
mod vit;
pub mod weights;

pub use anchor::{Activation, Anchor, FeatureInfo};
pub use cost::{Cost, ModelCost};
pub use error::{Error, Result};
pub use preprocess::{load_image, preprocess};
pub use registry::{
    IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN_STD, Interpolation, Model, ModelConfig, ModelEntry,
    PretrainedConfig, Registry, glob_match,
};
pub use vit::{Attention, Block, LayerScale, Mlp, PatchEmbed, Vit, VitAnchor, VitConfig};
pub use weights::{LoadReport, WeightFormat, load_weights};
