//! The architecture of an EfficientNet-Lite: stages of depthwise-separable and
//! inverted-residual blocks, resolved per stage, and the geometry that follows from it.

use serde::{Deserialize, Serialize};
use serde_inline_default::serde_inline_default;
use snnet_space::builtin::EfficientNetArch;

use crate::error::{Error, Result};

/// A block type of timm's EfficientNet builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MbBlockKind {
    /// timm `DepthwiseSeparableConv` (`ds`): depthwise conv, BN, act, pointwise conv, BN.
    Ds,
    /// timm `InvertedResidual` (`ir`): pointwise expansion, BN, act, depthwise conv, BN, act,
    /// pointwise projection, BN.
    Ir,
}

/// One stage of an EfficientNet: `depth` blocks of one kind, the first with `stride`, all
/// outputting `width` channels (timm's decoded block strings, resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MbStage {
    /// Block type.
    pub kind: MbBlockKind,
    /// Blocks in the stage.
    pub depth: usize,
    /// Depthwise kernel side (odd).
    pub kernel: usize,
    /// Stride of the stage's first block.
    pub stride: usize,
    /// Expansion ratio of inverted-residual blocks (1 for `ds`).
    pub expand: usize,
    /// Output channels.
    pub width: usize,
}

/// The architecture of an EfficientNet-Lite, named as timm's arguments, with TF "same"
/// padding, ReLU6 and no squeeze-excite (timm's `tf_efficientnet_lite*`).
///
/// ```
/// use snnet_zoo::{EfficientNetConfig, Family};
///
/// let lite0 = EfficientNetConfig::tf_efficientnet_lite0();
/// assert_eq!(lite0.cost().total().params, 4_652_008);
/// assert_eq!(lite0.feature_info().len(), 16);
/// ```
#[serde_inline_default]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientNetConfig {
    /// The stages in order (timm `blocks.{s}`).
    pub stages: Vec<MbStage>,
    /// Stem output channels.
    #[serde_inline_default(32)]
    pub stem_size: usize,
    /// Channels of the 1×1 head convolution (timm `num_features`).
    #[serde_inline_default(1280)]
    pub num_features: usize,
    /// Classifier outputs; 0 for pooled features.
    pub num_classes: usize,
    /// Input channels.
    #[serde_inline_default(3)]
    pub in_chans: usize,
    /// Native input image size `[height, width]` (for costs and feature grids; the model runs
    /// at any size).
    pub img_size: [usize; 2],
    /// BatchNorm epsilon (TF: 1e-3).
    #[serde_inline_default(1e-3)]
    pub eps: f64,
}

/// timm's EfficientNet-Lite block strings, without depth and width: (kind, kernel, stride,
/// expansion) per stage.
const LITE_STAGES: [(MbBlockKind, usize, usize, usize); 7] = [
    (MbBlockKind::Ds, 3, 1, 1),
    (MbBlockKind::Ir, 3, 2, 6),
    (MbBlockKind::Ir, 5, 2, 6),
    (MbBlockKind::Ir, 3, 2, 6),
    (MbBlockKind::Ir, 5, 1, 6),
    (MbBlockKind::Ir, 5, 2, 6),
    (MbBlockKind::Ir, 3, 1, 6),
];

/// The output side of a TF "same" convolution: `ceil(size / stride)`.
pub(crate) fn same_out(size: usize, stride: usize) -> usize {
    size.div_ceil(stride.max(1))
}

/// TF "same" padding `(before, after)` of a convolution along one axis (timm's
/// `get_same_padding`): the total `max((ceil(i/s) − 1)·s + k − i, 0)`, the odd pixel after.
pub(crate) fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let needed = (same_out(size, stride).saturating_sub(1))
        .saturating_mul(stride)
        .saturating_add(kernel);
    let total = needed.saturating_sub(size);
    (total / 2, total - total / 2)
}

/// One block of the plan: where it sits and what it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockPlan {
    /// Stage index.
    pub stage: usize,
    /// Index within the stage.
    pub index: usize,
    /// Block type.
    pub kind: MbBlockKind,
    /// Depthwise kernel side.
    pub kernel: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Input channels.
    pub c_in: usize,
    /// Depthwise channels (`c_in · expand` for `ir`, `c_in` for `ds`).
    pub mid: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input grid.
    pub grid_in: [usize; 2],
    /// Output grid.
    pub grid_out: [usize; 2],
    /// Whether the block adds its input (stride 1, same width).
    pub skip: bool,
}

impl From<EfficientNetArch> for EfficientNetConfig {
    /// A built-in anchor's architecture, on timm's defaults (32-channel stem, 1,280-channel head,
    /// 1,000 classes, BN eps 1e-3).
    fn from(arch: EfficientNetArch) -> Self {
        let stages = LITE_STAGES
            .iter()
            .zip(arch.depths.into_iter().zip(arch.widths))
            .map(
                |(&(kind, kernel, stride, expand), (depth, width))| MbStage {
                    kind,
                    depth,
                    kernel,
                    stride,
                    expand,
                    width,
                },
            )
            .collect();
        Self {
            stages,
            stem_size: 32,
            num_features: 1280,
            num_classes: 1000,
            in_chans: 3,
            img_size: [arch.img_size, arch.img_size],
            eps: 1e-3,
        }
    }
}

impl EfficientNetConfig {
    /// timm `tf_efficientnet_lite0`.
    pub fn tf_efficientnet_lite0() -> Self {
        EfficientNetArch::TF_EFFICIENTNET_LITE0.into()
    }
    /// timm `tf_efficientnet_lite1`.
    pub fn tf_efficientnet_lite1() -> Self {
        EfficientNetArch::TF_EFFICIENTNET_LITE1.into()
    }
    /// timm `tf_efficientnet_lite2`.
    pub fn tf_efficientnet_lite2() -> Self {
        EfficientNetArch::TF_EFFICIENTNET_LITE2.into()
    }
    /// timm `tf_efficientnet_lite3`.
    pub fn tf_efficientnet_lite3() -> Self {
        EfficientNetArch::TF_EFFICIENTNET_LITE3.into()
    }
    /// timm `tf_efficientnet_lite4`.
    pub fn tf_efficientnet_lite4() -> Self {
        EfficientNetArch::TF_EFFICIENTNET_LITE4.into()
    }

    /// Number of blocks over all stages.
    pub fn num_blocks(&self) -> usize {
        self.stages
            .iter()
            .fold(0usize, |a, s| a.saturating_add(s.depth))
    }

    /// The stem's output grid at input `size`.
    pub(crate) fn stem_grid(size: [usize; 2]) -> [usize; 2] {
        size.map(|s| same_out(s, 2))
    }

    /// Every block, in order, at the configured input size.
    pub(crate) fn block_plan(&self) -> Vec<BlockPlan> {
        let mut plan = Vec::with_capacity(self.num_blocks());
        let mut c_in = self.stem_size;
        let mut grid = Self::stem_grid(self.img_size);
        for (stage, s) in self.stages.iter().enumerate() {
            for index in 0..s.depth {
                let stride = if index == 0 { s.stride } else { 1 };
                let grid_out = grid.map(|g| same_out(g, stride));
                let mid = match s.kind {
                    MbBlockKind::Ds => c_in,
                    MbBlockKind::Ir => c_in.saturating_mul(s.expand),
                };
                plan.push(BlockPlan {
                    stage,
                    index,
                    kind: s.kind,
                    kernel: s.kernel,
                    stride,
                    c_in,
                    mid,
                    c_out: s.width,
                    grid_in: grid,
                    grid_out,
                    skip: stride == 1 && c_in == s.width,
                });
                c_in = s.width;
                grid = grid_out;
            }
        }
        plan
    }

    /// The last stage's width (the head's input), the stem's when there are no stages.
    pub(crate) fn last_width(&self) -> usize {
        self.stages.last().map_or(self.stem_size, |s| s.width)
    }

    /// The grid entering the head at the configured input size.
    pub(crate) fn head_grid(&self) -> [usize; 2] {
        self.block_plan()
            .last()
            .map_or(Self::stem_grid(self.img_size), |b| b.grid_out)
    }

    /// The checks behind [`Family::validate`](crate::Family::validate).
    pub(crate) fn check(&self) -> Result<()> {
        use crate::limits::{self, check};
        let invalid = |reason: String| {
            Err(Error::InvalidConfig {
                family: "efficientnet",
                reason,
            })
        };
        check(
            "efficientnet",
            "the number of stages",
            self.stages.len(),
            limits::MAX_STAGES,
            "MAX_STAGES",
        )?;
        check(
            "efficientnet",
            "depth",
            self.num_blocks(),
            limits::MAX_DEPTH,
            "MAX_DEPTH",
        )?;
        if self.stages.is_empty() {
            return invalid("an EfficientNet needs at least one stage".to_owned());
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.depth == 0 || s.width == 0 || s.stride == 0 || s.expand == 0 {
                return invalid(format!(
                    "stage {i}: depth, width, stride and expand must be positive, got {s:?}"
                ));
            }
            if s.kernel % 2 == 0 || s.kernel > 15 || s.stride > 4 {
                return invalid(format!(
                    "stage {i}: the kernel must be odd and at most 15, the stride at most 4, \
                     got {s:?}"
                ));
            }
            if s.kind == MbBlockKind::Ds && s.expand != 1 {
                return invalid(format!("stage {i}: a `ds` stage has expand 1, got {s:?}"));
            }
            check(
                "efficientnet",
                "a stage's width",
                s.width,
                limits::MAX_WIDTH,
                "MAX_WIDTH",
            )?;
        }
        for b in self.block_plan() {
            check(
                "efficientnet",
                "a block's expanded width",
                b.mid,
                limits::MAX_HIDDEN,
                "MAX_HIDDEN",
            )?;
        }
        for (what, value) in [
            ("stem_size", self.stem_size),
            ("num_features", self.num_features),
        ] {
            if value == 0 {
                return invalid(format!("{what} must be positive"));
            }
            check("efficientnet", what, value, limits::MAX_WIDTH, "MAX_WIDTH")?;
        }
        limits::check_io(
            "efficientnet",
            self.in_chans,
            self.num_classes,
            self.img_size,
        )?;
        if self.in_chans == 0 || self.img_size.contains(&0) {
            return invalid(format!(
                "in_chans and img_size must be positive, got {} and {:?}",
                self.in_chans, self.img_size
            ));
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return invalid(format!("eps must be positive, got {}", self.eps));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm's `get_same_padding`: the odd pixel goes after.
    #[test]
    fn same_padding_is_tf_same() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(225, 3, 2), (1, 1));
        assert_eq!(same_padding(7, 5, 2), (2, 2));
        assert_eq!(same_padding(8, 5, 2), (1, 2));
        assert_eq!(same_padding(10, 5, 1), (2, 2));
        assert_eq!(same_padding(1, 3, 2), (1, 1));
        assert_eq!(same_out(225, 2), 113);
    }

    #[test]
    fn lite_configs_resolve_timms_multipliers() {
        let lite2 = EfficientNetConfig::tf_efficientnet_lite2();
        assert_eq!(lite2.num_blocks(), 21);
        assert_eq!(lite2.img_size, [260, 260]);
        let plan = lite2.block_plan();
        assert_eq!(plan[0].kind, MbBlockKind::Ds);
        assert_eq!((plan[0].c_in, plan[0].mid, plan[0].c_out), (32, 32, 16));
        assert_eq!((plan[1].c_in, plan[1].mid, plan[1].stride), (16, 96, 2));
        assert_eq!(lite2.head_grid(), [9, 9]);
        let mut bad = lite2.clone();
        bad.stages[1].kernel = 4;
        assert!(matches!(bad.check(), Err(Error::InvalidConfig { .. })));
        let mut bad = lite2;
        bad.stages.clear();
        assert!(matches!(bad.check(), Err(Error::InvalidConfig { .. })));
    }
}
