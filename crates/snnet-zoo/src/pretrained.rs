//! How images are prepared for a model: timm's `pretrained_cfg`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How images are prepared for a model: timm's `pretrained_cfg`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainedConfig {
    /// `[channels, height, width]` of the model input.
    pub input_size: [usize; 3],
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// The shorter side is resized to `size / crop_pct` before the center crop.
    pub crop_pct: f32,
    /// The resize filter.
    pub interpolation: Interpolation,
    /// Classifier outputs of the pretrained weights.
    pub num_classes: usize,
}

/// A resize filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Bilinear.
    Bilinear,
    /// Bicubic (timm's default for ViT, DeiT, Swin and ResNet).
    Bicubic,
}

/// ImageNet mean (timm `IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation (timm `IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Inception normalisation (timm `IMAGENET_INCEPTION_MEAN`/`STD`), used by Google's ViTs.
pub const INCEPTION_MEAN_STD: [f32; 3] = [0.5, 0.5, 0.5];

impl PretrainedConfig {
    /// The preprocessing of a model of `input_size` with ImageNet normalisation and timm's
    /// defaults (crop 0.9, bicubic).
    pub fn imagenet(input_size: [usize; 3], num_classes: usize) -> Self {
        Self {
            input_size,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            crop_pct: 0.9,
            interpolation: Interpolation::Bicubic,
            num_classes,
        }
    }

    /// With Inception normalisation ([`INCEPTION_MEAN_STD`]), as Google's ViTs.
    #[must_use]
    pub fn inception(mut self) -> Self {
        self.mean = INCEPTION_MEAN_STD;
        self.std = INCEPTION_MEAN_STD;
        self
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        let ok = self.input_size.iter().all(|&d| d > 0)
            && self.std.iter().all(|&s| s > 0.0 && s.is_finite())
            && self.mean.iter().all(|m| m.is_finite())
            && self.crop_pct > 0.0
            && self.crop_pct <= 1.0;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                family: "pretrained",
                reason: format!(
                    "input_size must be positive, std positive and crop_pct in (0, 1]: {self:?}"
                ),
            })
        }
    }
}
