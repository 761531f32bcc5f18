//! The built-in anchors: one table of timm models with the architectural numbers that define
//! them.
//!
//! [`ANCHORS`] is the only list of the built-in anchors in the workspace. The stitch space
//! derives each anchor's [`AnchorSpec`] from it ([`BuiltinAnchor::spec`], behind
//! [`builtin_anchor`](crate::builtin_anchor) and
//! [`AnchorRegistry::builtin`](crate::AnchorRegistry::builtin)); `snnet-zoo` derives each
//! model's full config and timm's preprocessing from the same entries, and its named
//! constructors (`VitConfig::deit_small_patch16_224()`, …) from the per-family constants below.
//! The numbers are therefore written once; a zoo test checks that the two derivations of the
//! stitch shape (here from the table, there from the model config) agree.
//!
//! ```
//! use snnet_space::builtin::{self, Arch, VitArch};
//!
//! let small = builtin::get("deit_small_patch16_224").unwrap();
//! assert_eq!(small.arch, Arch::Vit(VitArch::DEIT_SMALL_PATCH16_224));
//! assert_eq!(small.spec().widths(), vec![384]);
//! assert_eq!(builtin::ANCHORS.len(), 25);
//! ```

use serde::{Deserialize, Serialize};

use super::{AnchorSpec, Layout};

/// A ViT-family variant, as timm names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitKind {
    /// Google's ViT (`vit_*`), trained with Inception normalisation.
    Vit,
    /// DeiT (`deit_*`).
    Deit,
    /// Distilled DeiT (`deit_*_distilled_*`): a dist token and a second head.
    DeitDistilled,
    /// DeiT-3 (`deit3_*`): LayerScale, and a position embedding over the patches only.
    Deit3,
}

/// A ViT, DeiT, distilled DeiT or DeiT-3 at 224² with 16² patches, MLP ratio 4 and 1,000
/// classes (timm's defaults); one stage of `depth` blocks of `embed_dim` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VitArch {
    /// The variant.
    pub kind: VitKind,
    /// Token width.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads.
    pub num_heads: usize,
}

/// A four-stage Swin Transformer with 4² patches, MLP ratio 4 and 1,000 classes (timm's
/// defaults); stage `s` is `embed_dim · 2^s` channels wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SwinArch {
    /// Input image side (square images).
    pub img_size: usize,
    /// Attention window side.
    pub window_size: usize,
    /// Stage 0 width.
    pub embed_dim: usize,
    /// Blocks per stage.
    pub depths: [usize; 4],
    /// Attention heads per stage.
    pub num_heads: [usize; 4],
}

/// A ResNet's residual block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet-18/34), expansion 1.
    Basic,
    /// 1×1, 3×3 (strided), 1×1 convolutions (ResNet-50/101), expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels per block channel.
    pub fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }
}

/// A timm ResNet at 224² with a 64-channel stem, block channels [`ResNetArch::CHANNELS`] and
/// 1,000 classes; stage `s` outputs `CHANNELS[s] · expansion` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResNetArch {
    /// Block type.
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: [usize; 4],
}

/// A timm EfficientNet-Lite (`tf_efficientnet_lite0` … `lite4`): a 32-channel stem, seven
/// stages of depthwise-separable (stage 0) and inverted-residual blocks with timm's fixed
/// kernels, strides and expansions, a 1,280-channel head and 1,000 classes. The channel and depth
/// multipliers are resolved here (timm's `round_channels` and `ceil`), so stage `s` has
/// `depths[s]` blocks of `widths[s]` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EfficientNetArch {
    /// Native input image side (square images); CNNs run at any size.
    pub img_size: usize,
    /// Blocks per stage.
    pub depths: [usize; 7],
    /// Output channels per stage.
    pub widths: [usize; 7],
}

/// The architecture of a built-in anchor, by family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Arch {
    /// ViT, DeiT, distilled DeiT, DeiT-3.
    Vit(VitArch),
    /// Swin Transformer.
    Swin(SwinArch),
    /// ResNet.
    #[serde(rename = "resnet")]
    ResNet(ResNetArch),
    /// EfficientNet-Lite.
    #[serde(rename = "efficientnet")]
    EfficientNet(EfficientNetArch),
}

impl Arch {
    /// How the anchor's activations are laid out between blocks.
    pub fn layout(&self) -> Layout {
        match self {
            Self::Vit(_) | Self::Swin(_) => Layout::Tokens,
            Self::ResNet(_) | Self::EfficientNet(_) => Layout::Map,
        }
    }

    /// `(depth, width)` per stage: the widths the reference stitches (`embed_dim` for ViT/DeiT,
    /// `embed_dim · 2^s` for Swin, `CHANNELS[s] · expansion` for ResNet, the resolved stage widths
    /// for EfficientNet).
    pub fn stages(&self) -> Vec<(usize, usize)> {
        match self {
            Self::Vit(a) => vec![(a.depth, a.embed_dim)],
            Self::Swin(a) => (0..a.depths.len())
                .zip(a.depths)
                .map(|(s, depth)| (depth, a.embed_dim << s))
                .collect(),
            Self::ResNet(a) => a
                .layers
                .iter()
                .zip(ResNetArch::CHANNELS)
                .map(|(&depth, c)| (depth, c.saturating_mul(a.block.expansion())))
                .collect(),
            Self::EfficientNet(a) => a.depths.into_iter().zip(a.widths).collect(),
        }
    }
}

/// One built-in anchor: its timm name, a short label and its architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BuiltinAnchor {
    /// The timm model name.
    pub name: &'static str,
    /// The short display name (`deit_tiny`).
    pub label: &'static str,
    /// The architecture.
    pub arch: Arch,
}

impl BuiltinAnchor {
    const fn vit(name: &'static str, label: &'static str, arch: VitArch) -> Self {
        Self {
            name,
            label,
            arch: Arch::Vit(arch),
        }
    }

    const fn swin(name: &'static str, label: &'static str, arch: SwinArch) -> Self {
        Self {
            name,
            label,
            arch: Arch::Swin(arch),
        }
    }

    const fn resnet(name: &'static str, arch: ResNetArch) -> Self {
        Self {
            name,
            label: name,
            arch: Arch::ResNet(arch),
        }
    }

    const fn efficientnet(name: &'static str, label: &'static str, arch: EfficientNetArch) -> Self {
        Self {
            name,
            label,
            arch: Arch::EfficientNet(arch),
        }
    }

    /// The anchor's shape for the stitch space, labelled.
    pub fn spec(&self) -> AnchorSpec {
        AnchorSpec::hierarchical(self.name, self.arch.layout(), &self.arch.stages())
            .with_label(self.label)
    }
}

impl VitArch {
    const fn new(kind: VitKind, embed_dim: usize, depth: usize, num_heads: usize) -> Self {
        Self {
            kind,
            embed_dim,
            depth,
            num_heads,
        }
    }

    /// timm `deit_tiny_patch16_224`.
    pub const DEIT_TINY_PATCH16_224: Self = Self::new(VitKind::Deit, 192, 12, 3);
    /// timm `deit_small_patch16_224`.
    pub const DEIT_SMALL_PATCH16_224: Self = Self::new(VitKind::Deit, 384, 12, 6);
    /// timm `deit_base_patch16_224`.
    pub const DEIT_BASE_PATCH16_224: Self = Self::new(VitKind::Deit, 768, 12, 12);
    /// timm `deit_tiny_distilled_patch16_224`.
    pub const DEIT_TINY_DISTILLED_PATCH16_224: Self = Self::new(VitKind::DeitDistilled, 192, 12, 3);
    /// timm `deit_small_distilled_patch16_224`.
    pub const DEIT_SMALL_DISTILLED_PATCH16_224: Self =
        Self::new(VitKind::DeitDistilled, 384, 12, 6);
    /// timm `deit_base_distilled_patch16_224`.
    pub const DEIT_BASE_DISTILLED_PATCH16_224: Self =
        Self::new(VitKind::DeitDistilled, 768, 12, 12);
    /// timm `deit3_small_patch16_224`.
    pub const DEIT3_SMALL_PATCH16_224: Self = Self::new(VitKind::Deit3, 384, 12, 6);
    /// timm `deit3_base_patch16_224`.
    pub const DEIT3_BASE_PATCH16_224: Self = Self::new(VitKind::Deit3, 768, 12, 12);
    /// timm `deit3_large_patch16_224`.
    pub const DEIT3_LARGE_PATCH16_224: Self = Self::new(VitKind::Deit3, 1024, 24, 16);
    /// timm `vit_tiny_patch16_224`.
    pub const VIT_TINY_PATCH16_224: Self = Self::new(VitKind::Vit, 192, 12, 3);
    /// timm `vit_small_patch16_224`.
    pub const VIT_SMALL_PATCH16_224: Self = Self::new(VitKind::Vit, 384, 12, 6);
    /// timm `vit_base_patch16_224`.
    pub const VIT_BASE_PATCH16_224: Self = Self::new(VitKind::Vit, 768, 12, 12);
}

impl SwinArch {
    const fn new(
        img_size: usize,
        window_size: usize,
        embed_dim: usize,
        depths: [usize; 4],
        num_heads: [usize; 4],
    ) -> Self {
        Self {
            img_size,
            window_size,
            embed_dim,
            depths,
            num_heads,
        }
    }

    /// timm `swin_tiny_patch4_window7_224`.
    pub const SWIN_TINY_PATCH4_WINDOW7_224: Self =
        Self::new(224, 7, 96, [2, 2, 6, 2], [3, 6, 12, 24]);
    /// timm `swin_small_patch4_window7_224`.
    pub const SWIN_SMALL_PATCH4_WINDOW7_224: Self =
        Self::new(224, 7, 96, [2, 2, 18, 2], [3, 6, 12, 24]);
    /// timm `swin_base_patch4_window7_224`.
    pub const SWIN_BASE_PATCH4_WINDOW7_224: Self =
        Self::new(224, 7, 128, [2, 2, 18, 2], [4, 8, 16, 32]);
    /// timm `swin_base_patch4_window12_384`.
    pub const SWIN_BASE_PATCH4_WINDOW12_384: Self =
        Self::new(384, 12, 128, [2, 2, 18, 2], [4, 8, 16, 32]);
}

impl ResNetArch {
    /// Block channels per stage of timm's ResNets (stage outputs are these times the block's
    /// expansion).
    pub const CHANNELS: [usize; 4] = [64, 128, 256, 512];

    const fn new(block: BlockKind, layers: [usize; 4]) -> Self {
        Self { block, layers }
    }

    /// timm `resnet18`.
    pub const RESNET18: Self = Self::new(BlockKind::Basic, [2, 2, 2, 2]);
    /// timm `resnet34`.
    pub const RESNET34: Self = Self::new(BlockKind::Basic, [3, 4, 6, 3]);
    /// timm `resnet50`.
    pub const RESNET50: Self = Self::new(BlockKind::Bottleneck, [3, 4, 6, 3]);
    /// timm `resnet101`.
    pub const RESNET101: Self = Self::new(BlockKind::Bottleneck, [3, 4, 23, 3]);
}

impl EfficientNetArch {
    const fn new(img_size: usize, depths: [usize; 7], widths: [usize; 7]) -> Self {
        Self {
            img_size,
            depths,
            widths,
        }
    }

    /// timm `tf_efficientnet_lite0` (channel × 1.0, depth × 1.0, 224²).
    pub const TF_EFFICIENTNET_LITE0: Self =
        Self::new(224, [1, 2, 2, 3, 3, 4, 1], [16, 24, 40, 80, 112, 192, 320]);
    /// timm `tf_efficientnet_lite1` (channel × 1.0, depth × 1.1, 240²).
    pub const TF_EFFICIENTNET_LITE1: Self =
        Self::new(240, [1, 3, 3, 4, 4, 5, 1], [16, 24, 40, 80, 112, 192, 320]);
    /// timm `tf_efficientnet_lite2` (channel × 1.1, depth × 1.2, 260²).
    pub const TF_EFFICIENTNET_LITE2: Self =
        Self::new(260, [1, 3, 3, 4, 4, 5, 1], [16, 24, 48, 88, 120, 208, 352]);
    /// timm `tf_efficientnet_lite3` (channel × 1.2, depth × 1.4, 300²).
    pub const TF_EFFICIENTNET_LITE3: Self =
        Self::new(300, [1, 3, 3, 5, 5, 6, 1], [24, 32, 48, 96, 136, 232, 384]);
    /// timm `tf_efficientnet_lite4` (channel × 1.4, depth × 1.8, 380²).
    pub const TF_EFFICIENTNET_LITE4: Self =
        Self::new(380, [1, 4, 4, 6, 6, 8, 1], [24, 32, 56, 112, 160, 272, 448]);
}

/// Every built-in anchor, in a stable order: timm name, label, architecture.
pub const ANCHORS: &[BuiltinAnchor] = &[
    BuiltinAnchor::vit(
        "deit_tiny_patch16_224",
        "deit_tiny",
        VitArch::DEIT_TINY_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit_small_patch16_224",
        "deit_small",
        VitArch::DEIT_SMALL_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit_base_patch16_224",
        "deit_base",
        VitArch::DEIT_BASE_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit_tiny_distilled_patch16_224",
        "deit_tiny_distilled",
        VitArch::DEIT_TINY_DISTILLED_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit_small_distilled_patch16_224",
        "deit_small_distilled",
        VitArch::DEIT_SMALL_DISTILLED_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit_base_distilled_patch16_224",
        "deit_base_distilled",
        VitArch::DEIT_BASE_DISTILLED_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit3_small_patch16_224",
        "deit3_small",
        VitArch::DEIT3_SMALL_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit3_base_patch16_224",
        "deit3_base",
        VitArch::DEIT3_BASE_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "deit3_large_patch16_224",
        "deit3_large",
        VitArch::DEIT3_LARGE_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "vit_tiny_patch16_224",
        "vit_tiny",
        VitArch::VIT_TINY_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "vit_small_patch16_224",
        "vit_small",
        VitArch::VIT_SMALL_PATCH16_224,
    ),
    BuiltinAnchor::vit(
        "vit_base_patch16_224",
        "vit_base",
        VitArch::VIT_BASE_PATCH16_224,
    ),
    BuiltinAnchor::swin(
        "swin_tiny_patch4_window7_224",
        "swin_tiny",
        SwinArch::SWIN_TINY_PATCH4_WINDOW7_224,
    ),
    BuiltinAnchor::swin(
        "swin_small_patch4_window7_224",
        "swin_small",
        SwinArch::SWIN_SMALL_PATCH4_WINDOW7_224,
    ),
    BuiltinAnchor::swin(
        "swin_base_patch4_window7_224",
        "swin_base",
        SwinArch::SWIN_BASE_PATCH4_WINDOW7_224,
    ),
    BuiltinAnchor::swin(
        "swin_base_patch4_window12_384",
        "swin_base_384",
        SwinArch::SWIN_BASE_PATCH4_WINDOW12_384,
    ),
    BuiltinAnchor::resnet("resnet18", ResNetArch::RESNET18),
    BuiltinAnchor::resnet("resnet34", ResNetArch::RESNET34),
    BuiltinAnchor::resnet("resnet50", ResNetArch::RESNET50),
    BuiltinAnchor::resnet("resnet101", ResNetArch::RESNET101),
    BuiltinAnchor::efficientnet(
        "tf_efficientnet_lite0",
        "lite0",
        EfficientNetArch::TF_EFFICIENTNET_LITE0,
    ),
    BuiltinAnchor::efficientnet(
        "tf_efficientnet_lite1",
        "lite1",
        EfficientNetArch::TF_EFFICIENTNET_LITE1,
    ),
    BuiltinAnchor::efficientnet(
        "tf_efficientnet_lite2",
        "lite2",
        EfficientNetArch::TF_EFFICIENTNET_LITE2,
    ),
    BuiltinAnchor::efficientnet(
        "tf_efficientnet_lite3",
        "lite3",
        EfficientNetArch::TF_EFFICIENTNET_LITE3,
    ),
    BuiltinAnchor::efficientnet(
        "tf_efficientnet_lite4",
        "lite4",
        EfficientNetArch::TF_EFFICIENTNET_LITE4,
    ),
];

/// The built-in anchor called `name` (its timm name), if there is one.
pub fn get(name: &str) -> Option<&'static BuiltinAnchor> {
    ANCHORS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_unique() {
        let mut names: Vec<_> = ANCHORS.iter().map(|a| a.name).collect();
        let mut labels: Vec<_> = ANCHORS.iter().map(|a| a.label).collect();
        names.sort_unstable();
        names.dedup();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!((names.len(), labels.len()), (ANCHORS.len(), ANCHORS.len()));
    }

    #[test]
    fn specs_are_valid_and_shaped_like_timm() {
        for anchor in ANCHORS {
            anchor.spec().validate().unwrap();
        }
        let swin = get("swin_base_patch4_window12_384").unwrap().spec();
        assert_eq!(swin.widths(), vec![128, 256, 512, 1024]);
        assert_eq!(swin.label(), "swin_base_384");
        let r34 = get("resnet34").unwrap().spec();
        assert_eq!(
            (r34.layout, r34.widths()),
            (Layout::Map, vec![64, 128, 256, 512])
        );
        assert!(get("deit_tiny").is_none(), "labels are not names");
    }
}
