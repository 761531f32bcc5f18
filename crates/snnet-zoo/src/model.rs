//! A model of any family, as one Burn module and one [`Anchor`].

use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::anchor::{Activation, Anchor};
use crate::config::Family;
use crate::efficientnet::EfficientNetAnchor;
use crate::error::Result;
use crate::resnet::ResNetAnchor;
use crate::swin::SwinAnchor;
use crate::vit::VitAnchor;
use crate::weights::{LoadOptions, LoadReport, load_weights_with};

/// A model of any family, as an [`Anchor`].
///
/// As a Burn module its tensors are keyed `{Vit|ResNet|Swin|EfficientNet}.model.<timm key>`
/// (`model.<timm key>` with burn-store's `skip_enum_variants`).
// A model is built once and held (never moved in a loop); EfficientNet's stem and head modules
// inline make its variant the largest.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    /// A ViT-family model.
    Vit(VitAnchor),
    /// A ResNet.
    ResNet(ResNetAnchor),
    /// A Swin Transformer.
    Swin(SwinAnchor),
    /// An EfficientNet-Lite.
    EfficientNet(EfficientNetAnchor),
}

impl Model {
    /// Saves the weights in timm's layout (see [`save_weights`](crate::weights::save_weights)).
    ///
    /// # Errors
    /// As [`save_weights`](crate::weights::save_weights).
    pub fn save_weights(&self, path: &Path) -> Result<()> {
        match self {
            Self::Vit(a) => crate::weights::save_weights(&a.model, path),
            Self::ResNet(a) => crate::weights::save_weights(&a.model, path),
            Self::Swin(a) => crate::weights::save_weights(&a.model, path),
            Self::EfficientNet(a) => crate::weights::save_weights(&a.model, path),
        }
    }

    /// Loads timm weights (see [`load_weights_with`]).
    ///
    /// # Errors
    /// As [`load_weights_with`].
    pub fn load_weights(
        self,
        path: &Path,
        remap: &[(&str, &str)],
        options: LoadOptions,
    ) -> Result<(Self, LoadReport)> {
        match self {
            Self::Vit(anchor) => {
                let (model, report) = load_weights_with(anchor.model, path, remap, options)?;
                Ok((Self::Vit(VitAnchor { model, ..anchor }), report))
            }
            Self::ResNet(anchor) => {
                let (model, report) = load_weights_with(anchor.model, path, remap, options)?;
                Ok((Self::ResNet(ResNetAnchor { model, ..anchor }), report))
            }
            Self::Swin(anchor) => {
                let (model, report) = load_weights_with(anchor.model, path, remap, options)?;
                Ok((Self::Swin(SwinAnchor { model, ..anchor }), report))
            }
            Self::EfficientNet(anchor) => {
                let (model, report) = load_weights_with(anchor.model, path, remap, options)?;
                Ok((
                    Self::EfficientNet(EfficientNetAnchor { model, ..anchor }),
                    report,
                ))
            }
        }
    }

    fn anchor(&self) -> &dyn Anchor {
        match self {
            Self::Vit(a) => a,
            Self::ResNet(a) => a,
            Self::Swin(a) => a,
            Self::EfficientNet(a) => a,
        }
    }
}

impl Anchor for Model {
    fn family_config(&self) -> &dyn Family {
        self.anchor().family_config()
    }
    fn name(&self) -> &str {
        self.anchor().name()
    }
    fn num_blocks(&self) -> usize {
        self.anchor().num_blocks()
    }
    fn check_images(&self, dims: [usize; 4]) -> Result<()> {
        self.anchor().check_images(dims)
    }
    fn embed(&self, images: Tensor<4>) -> Activation {
        self.anchor().embed(images)
    }
    fn block(&self, index: usize, x: Activation) -> Activation {
        self.anchor().block(index, x)
    }
    fn head(&self, x: Activation, norm: bool) -> Tensor<2> {
        self.anchor().head(x, norm)
    }
}
