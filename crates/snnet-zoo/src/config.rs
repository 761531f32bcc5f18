//! Model architectures by family: the [`Family`] trait each family's config implements, and
//! [`ModelConfig`], the serialisable choice of one, which dispatches to it.

use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use snnet_space::AnchorSpec;
use snnet_space::builtin::Arch;

use crate::anchor::FeatureInfo;
use crate::cost::ModelCost;
use crate::efficientnet::EfficientNetConfig;
use crate::error::Result;
use crate::model::Model;
use crate::pretrained::PretrainedConfig;
use crate::resnet::ResNetConfig;
use crate::swin::SwinConfig;
use crate::vit::VitConfig;
use crate::weights::{LoadOptions, LoadReport};

/// What the zoo needs from a model family's architecture config: implemented by
/// [`VitConfig`], [`SwinConfig`] and [`ResNetConfig`] in their own modules, reached through
/// [`ModelConfig::family_config`].
///
/// Everything that differs by family lives in these implementations: the checks, the stitch
/// shape, the per-block features and costs, building the model, timm's preprocessing for the
/// built-in anchors, and how checkpoint keys in the family's other layouts map to timm's.
pub trait Family {
    /// The family's name, as the `family` tag of model JSON (`vit`, `swin`, `resnet`).
    fn family(&self) -> &'static str;

    /// Checks that the config describes a model.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the problem.
    fn validate(&self) -> Result<()>;

    /// The anchor's shape for the stitch space.
    fn spec(&self, name: &str) -> AnchorSpec;

    /// Per-block output info (timm's `feature_info`, one entry per global block).
    fn feature_info(&self) -> Vec<FeatureInfo>;

    /// FLOPs and parameters per part for one image (fvcore convention).
    fn cost(&self) -> ModelCost;

    /// What the model takes and gives: input channels, image size, classifier outputs.
    fn io(&self) -> ModelIo;

    /// The number of classifier outputs (0: none).
    fn num_classes(&self) -> usize {
        self.io().num_classes
    }

    /// The input image size `[height, width]`.
    fn img_size(&self) -> [usize; 2] {
        self.io().img_size
    }

    /// Input channels.
    fn in_chans(&self) -> usize {
        self.io().in_chans
    }

    /// timm's `pretrained_cfg` for the built-in anchor of architecture `arch` (the one this
    /// config was derived from). By default ImageNet's ([`PretrainedConfig::imagenet`] at
    /// [`Family::io`]); families override what differs.
    fn builtin_pretrained(&self, arch: &Arch) -> PretrainedConfig {
        let _ = arch;
        self.io().imagenet()
    }

    /// Key renames from the family's other checkpoint layouts to timm's (regex, replacement),
    /// applied when loading weights after the caller's own renames.
    fn weight_remap(&self) -> &'static [(&'static str, &'static str)];

    /// The same architecture at native input size `img_size`, for a family whose models run at
    /// any input size (CNNs with "same" padding); `None` (the default) for a family tied to its
    /// input size (ViT's position embedding, Swin's windows, the ResNet stem grid check).
    fn at_img_size(&self, _img_size: [usize; 2]) -> Option<ModelConfig> {
        None
    }

    /// Builds the model with random weights.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    fn init_model(&self, name: &str, device: &Device) -> Result<Model>;

    /// Extra key renames to retry a load with after it failed with `failed`, for checkpoints
    /// in a layout a rename table cannot tell apart from timm's (empty: no retry). Swin retries
    /// the original Microsoft layout. See [`ModelConfig::load_with`].
    fn layout_retry(&self, failed: &crate::Error) -> Vec<(String, String)> {
        let _ = failed;
        Vec::new()
    }
}

/// One constructor per built-in anchor, `pub fn <timm name>() -> Self`, from the architecture
/// constant of `snnet_space::builtin` (inside a family config's `impl`).
macro_rules! timm_constructors {
    ($arch:ident; $($name:ident => $constant:ident,)*) => {
        $(
            #[doc = concat!("timm `", stringify!($name), "`.")]
            pub fn $name() -> Self {
                $arch::$constant.into()
            }
        )*
    };
}
pub(crate) use timm_constructors;

/// What a model takes and gives (see [`Family::io`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelIo {
    /// Input channels.
    pub in_chans: usize,
    /// The input image size `[height, width]`.
    pub img_size: [usize; 2],
    /// The number of classifier outputs (0: none).
    pub num_classes: usize,
}

impl ModelIo {
    /// The model's input channels, image size `[height, width]` and classifier outputs.
    pub fn new(in_chans: usize, img_size: [usize; 2], num_classes: usize) -> Self {
        Self {
            in_chans,
            img_size,
            num_classes,
        }
    }

    /// timm's ImageNet `pretrained_cfg` for this input and classifier
    /// ([`PretrainedConfig::imagenet`]).
    pub fn imagenet(self) -> PretrainedConfig {
        let [h, w] = self.img_size;
        PretrainedConfig::imagenet([self.in_chans, h, w], self.num_classes)
    }
}

/// The architecture of a model, by family (the `family` tag in JSON).
///
/// Every method dispatches to the family's [`Family`] implementation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelConfig {
    /// ViT, DeiT, distilled DeiT, DeiT-3.
    Vit(VitConfig),
    /// ResNet-18/34/50/101 and custom ResNets.
    #[serde(rename = "resnet")]
    ResNet(ResNetConfig),
    /// Swin Transformers.
    Swin(SwinConfig),
    /// EfficientNet-Lite.
    #[serde(rename = "efficientnet")]
    EfficientNet(EfficientNetConfig),
}

impl From<Arch> for ModelConfig {
    /// The config of a built-in anchor's architecture.
    fn from(arch: Arch) -> Self {
        match arch {
            Arch::Vit(a) => Self::Vit(a.into()),
            Arch::Swin(a) => Self::Swin(a.into()),
            Arch::ResNet(a) => Self::ResNet(a.into()),
            Arch::EfficientNet(a) => Self::EfficientNet(a.into()),
        }
    }
}

impl ModelConfig {
    /// The family's config, to which every other method dispatches.
    pub fn family_config(&self) -> &dyn Family {
        match self {
            Self::Vit(c) => c,
            Self::ResNet(c) => c,
            Self::Swin(c) => c,
            Self::EfficientNet(c) => c,
        }
    }

    /// The family's name (`vit`).
    pub fn family(&self) -> &'static str {
        self.family_config().family()
    }

    /// Checks the config.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig), and
    /// [`Error::Limit`](crate::Error::Limit) for a config over one of the [limits](crate::limits).
    pub fn validate(&self) -> Result<()> {
        self.family_config().validate()?;
        // Within the field limits every count fits u64; the total bounds what a build allocates.
        let params = self.cost().total().params;
        if params > crate::limits::MAX_PARAMS {
            return Err(crate::Error::Limit {
                input: "model config".to_owned(),
                what: "the number of parameters",
                value: params,
                limit: crate::limits::MAX_PARAMS,
                constant: "MAX_PARAMS",
            });
        }
        Ok(())
    }

    /// FLOPs and parameters per part for one image.
    pub fn cost(&self) -> ModelCost {
        self.family_config().cost()
    }

    /// Per-block output info (timm's `feature_info`, one entry per global block).
    pub fn feature_info(&self) -> Vec<FeatureInfo> {
        self.family_config().feature_info()
    }

    /// The anchor's shape for the stitch space.
    pub fn spec(&self, name: &str) -> AnchorSpec {
        self.family_config().spec(name)
    }

    /// What the model takes and gives: input channels, image size, classifier outputs.
    pub fn io(&self) -> ModelIo {
        self.family_config().io()
    }

    /// The number of classifier outputs (0: none).
    pub fn num_classes(&self) -> usize {
        self.family_config().num_classes()
    }

    /// The input image size `[height, width]`.
    pub fn img_size(&self) -> [usize; 2] {
        self.family_config().img_size()
    }

    /// Input channels.
    pub fn in_chans(&self) -> usize {
        self.family_config().in_chans()
    }

    /// Key renames from the family's other checkpoint layouts to timm's (regex, replacement),
    /// applied when loading weights: the original DeiT-3 checkpoints name LayerScale
    /// `gamma_1`/`gamma_2` where timm has `ls1.gamma`/`ls2.gamma`; the original Swin
    /// checkpoints name the classifier `head.*` where timm has `head.fc.*`.
    pub fn weight_remap(&self) -> &'static [(&'static str, &'static str)] {
        self.family_config().weight_remap()
    }

    /// The same architecture at input size `img_size` when the family runs at any size (see
    /// [`Family::at_img_size`]).
    pub fn at_img_size(&self, img_size: [usize; 2]) -> Option<ModelConfig> {
        self.family_config().at_img_size(img_size)
    }

    /// Builds the model with random weights.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    pub fn init(&self, name: &str, device: &Device) -> Result<Model> {
        self.family_config().init_model(name, device)
    }

    /// Builds the model and loads weights from `path`, renaming keys by `remap` and then by
    /// [`Family::weight_remap`] (retried once with [`Family::layout_retry`]'s renames where the
    /// family has some for the error).
    ///
    /// # Errors
    /// As [`ModelConfig::init`] and [`load_weights`](crate::load_weights).
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        remap: &[(&str, &str)],
        device: &Device,
    ) -> Result<(Model, LoadReport)> {
        self.load_with(name, path, remap, LoadOptions::default(), device)
    }

    /// As [`ModelConfig::load`], with `options`.
    ///
    /// # Errors
    /// As [`ModelConfig::init`] and [`load_weights_with`](crate::load_weights_with).
    pub fn load_with(
        &self,
        name: &str,
        path: &Path,
        remap: &[(&str, &str)],
        options: LoadOptions,
        device: &Device,
    ) -> Result<(Model, LoadReport)> {
        let family = self.family_config();
        let remap: Vec<(&str, &str)> = remap.iter().chain(family.weight_remap()).copied().collect();
        let result = family
            .init_model(name, device)?
            .load_weights(path, &remap, options);
        let retry = match &result {
            Err(failed) => family.layout_retry(failed),
            Ok(_) => Vec::new(),
        };
        if retry.is_empty() {
            return result;
        }
        let all: Vec<(&str, &str)> = remap
            .into_iter()
            .chain(retry.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            .collect();
        family
            .init_model(name, device)?
            .load_weights(path, &all, options)
    }
}

#[cfg(test)]
mod tests {
    use burn::store::ModuleSnapshot;

    use super::*;

    /// timm's parameter count of `model`: Burn's, less BatchNorm's running statistics (buffers
    /// in PyTorch).
    fn timm_params(model: &Model) -> u64 {
        model
            .collect(None, None, false)
            .iter()
            .filter(|t| !t.name.ends_with(".running_mean") && !t.name.ends_with(".running_var"))
            .map(|t| t.shape.num_elements() as u64)
            .sum()
    }

    /// Every family's cost counts what its module holds, on reduced models.
    #[test]
    fn param_counts_match_the_module() {
        let device = Device::default();
        let mut configs = vec![
            ModelConfig::Vit(
                VitConfig::base(32, 2, 2)
                    .with_img_size([32, 32])
                    .with_num_classes(7),
            ),
            ModelConfig::Vit(VitConfig::deit_tiny_distilled_patch16_224().with_img_size([32, 32])),
            ModelConfig::Vit(VitConfig::deit3_small_patch16_224().with_img_size([48, 32])),
        ];
        for mut resnet in [ResNetConfig::resnet18(), ResNetConfig::resnet50()] {
            resnet.channels = [8, 16, 16, 32];
            resnet.stem_width = 8;
            resnet.img_size = [64, 64];
            configs.push(ModelConfig::ResNet(resnet));
        }
        let mut swin = SwinConfig::swin_tiny_patch4_window7_224();
        swin.img_size = [64, 64];
        swin.window_size = 4;
        swin.embed_dim = 16;
        swin.num_heads = vec![1, 2, 2, 4];
        swin.num_classes = 5;
        configs.push(ModelConfig::Swin(swin));
        let mut lite = EfficientNetConfig::tf_efficientnet_lite0();
        lite.img_size = [32, 32];
        lite.num_classes = 10;
        configs.push(ModelConfig::EfficientNet(lite));
        for config in configs {
            let model = config.init("reduced", &device).unwrap();
            assert_eq!(
                timm_params(&model),
                config.cost().total().params,
                "{config:?}"
            );
        }
    }
}
