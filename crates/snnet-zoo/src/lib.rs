//! Anchor models for SN-Net on Burn: timm's models, run exactly as timm runs them, block by block.
//!
//! - [`Anchor`]: the interface stitching needs from every family — embed, run global block `b`
//!   on an [`Activation`] (tokens `[B, N, C]` or maps `[B, C, H, W]`), run the head with or
//!   without the final norm, per-block [`FeatureInfo`] and [`ModelCost`]. The images are
//!   checked once, by [`Anchor::check_images`] at the entry; the parts are infallible, as
//!   Burn's modules are.
//! - Four families, each a config and a Burn module in its own module: [`VitConfig`] / [`Vit`]
//!   (ViT, DeiT, distilled DeiT and DeiT-3), [`SwinConfig`] / [`Swin`], [`ResNetConfig`] /
//!   [`ResNet`], [`EfficientNetConfig`] / [`EfficientNet`] (EfficientNet-Lite0…4) — as in timm (fields named as timm's checkpoint keys), with candle-style named
//!   constructors such as [`VitConfig::deit_small_patch16_224`],
//!   [`SwinConfig::swin_tiny_patch4_window7_224`], [`ResNetConfig::resnet50`]. Each config
//!   implements [`Family`] (checks, stitch shape, features, costs, building, timm's
//!   preprocessing, checkpoint key layouts); [`ModelConfig`] picks a family (the `family` tag of
//!   model JSON) and dispatches to it, and [`Model`] is the built model of any family.
//! - [`Registry`]: models by timm name with their [`PretrainedConfig`] (input size, mean/std,
//!   crop, interpolation), glob listing, and custom models from JSON. The built-in models are
//!   derived from the stitch space's one table of built-in anchors
//!   ([`snnet_space::builtin::ANCHORS`]), as are the named constructors.
//! - [`load_weights`]: timm `.safetensors` and PyTorch `.pth` files through burn-store, with a
//!   [`LoadReport`] and typed errors (see `docs/WEIGHTS.md`).
//! - [`cost`]: FLOPs and parameters in fvcore's convention, from the config alone — DeiT-Ti/S/B
//!   are 1,258,411,200 / 4,608,338,304 / 17,582,740,224 FLOPs, exactly the reference's.
//!
//! Tensors carry no backend type (Burn 0.22): the [`burn::tensor::Device`] picks the backend at
//! run time among those compiled in by cargo features (`flex` by default; `ndarray`,
//! `openblas-system`, `wgpu`, `cuda`, `tch`).
//!
//! ```
//! use snnet_zoo::burn::tensor::{Device, Distribution, Tensor};
//! use snnet_zoo::{Activation, Anchor, VitConfig};
//!
//! let device = Device::default();
//! // A small DeiT-like model on 32×32 images (patch 8: 16 patches + cls).
//! let config = VitConfig::base(64, 2, 4)
//!     .with_img_size([32, 32])
//!     .with_patch_size([8, 8])
//!     .with_num_classes(10);
//! let model = config.init(&device)?;
//! let anchor = snnet_zoo::VitAnchor { config, model, name: "tiny".into() };
//! let images = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
//! anchor.check_images(images.dims())?; // the one check; the parts below are infallible
//! let x = anchor.embed(images);
//! let x = anchor.block(0, x);
//! assert!(matches!(&x, Activation::Tokens(t) if t.dims() == [2, 17, 64]));
//! let logits = anchor.head(anchor.block(1, x), true);
//! assert_eq!(logits.dims(), [2, 10]);
//! # Ok::<(), snnet_zoo::Error>(())
//! ```

pub use burn;

mod anchor;
mod config;
pub mod cost;
mod efficientnet;
mod error;
mod labels;
pub mod limits;
mod model;
mod preprocess;
mod pretrained;
mod registry;
mod resnet;
mod swin;
pub mod tensor_io;
mod vit;
pub mod weights;

pub use anchor::{Activation, Anchor, FeatureInfo};
pub use config::{Family, ModelConfig, ModelIo};
pub use cost::{Cost, ModelCost};
pub use efficientnet::{
    EfficientNet, EfficientNetAnchor, EfficientNetConfig, MbBlock, MbBlockKind, MbStage,
    lukemelas_remap,
};
pub use error::{Error, Result};
pub use labels::{IMAGENET_NUM_CLASSES, default_labels, imagenet_labels};
pub use model::Model;
pub use preprocess::{decode_image, load_image, preprocess};
pub use pretrained::{
    IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN_STD, Interpolation, PretrainedConfig,
};
pub use registry::{MAX_NAME_LEN, ModelEntry, Registry};
pub use resnet::{BlockKind, ResBlock, ResNet, ResNetAnchor, ResNetConfig};
pub use swin::{
    PatchMerging, Swin, SwinAnchor, SwinBlock, SwinConfig, SwinHead, SwinPatchEmbed, SwinStage,
    WindowAttention,
};
pub use vit::{Attention, Block, LayerScale, Mlp, PatchEmbed, Vit, VitAnchor, VitConfig};
pub use weights::{
    LoadOptions, LoadReport, WeightFormat, canonical_safetensors, load_weights, load_weights_with,
    save_weights,
};
