//! ResNet as in timm's `resnet.py`: BasicBlock / Bottleneck, eval-mode BatchNorm from running
//! statistics (eps 1e-5), global average pooling, `fc`.
//!
//! Field names are timm's keys (`conv1`, `bn1`, `layer{1-4}.{i}.{conv1, bn1, conv2, bn2, conv3,
//! bn3, downsample.0, downsample.1}`, `fc`); int64 `num_batches_tracked` entries are accepted and
//! ignored.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_inline_default::serde_inline_default;
pub use snnet_space::builtin::BlockKind;
use snnet_space::builtin::{Arch, ResNetArch};
use snnet_space::{AnchorSpec, Layout};

use crate::anchor::{Activation, Anchor, FeatureInfo};
use crate::config::Family;
use crate::config::ModelIo;
use crate::cost::{Cost, ModelCost};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::pretrained::PretrainedConfig;

/// The architecture of a ResNet, named as timm's arguments.
///
/// ```
/// use snnet_zoo::{Family, ResNetConfig};
///
/// assert_eq!(ResNetConfig::resnet18().cost().total().flops, 1_819_065_856);
/// assert_eq!(ResNetConfig::resnet50().cost().total().flops, 4_111_512_576);
/// ```
#[serde_inline_default]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Block type.
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: [usize; 4],
    /// Block channels per stage (outputs are `channels · expansion`).
    #[serde_inline_default(ResNetArch::CHANNELS)]
    pub channels: [usize; 4],
    /// Stem output channels.
    #[serde_inline_default(64)]
    pub stem_width: usize,
    /// Classifier outputs; 0 for pooled features.
    pub num_classes: usize,
    /// Input channels.
    #[serde_inline_default(3)]
    pub in_chans: usize,
    /// Input image size `[height, width]` (for costs and input checks).
    #[serde_inline_default([224, 224])]
    pub img_size: [usize; 2],
    /// BatchNorm epsilon (timm: 1e-5).
    #[serde_inline_default(1e-5)]
    pub eps: f64,
}

/// Output size of a convolution or pooling window along one axis.
fn conv_out(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (size + 2 * pad).saturating_sub(kernel) / stride + 1
}

/// The feature-map size after the stem (conv 7×7/2, max pool 3×3/2) of an image of `size`.
fn stem_grid(size: [usize; 2]) -> [usize; 2] {
    size.map(|s| conv_out(conv_out(s, 7, 2, 3), 3, 2, 1))
}

impl ResNetConfig {
    fn new(block: BlockKind, layers: [usize; 4]) -> Self {
        Self {
            block,
            layers,
            channels: ResNetArch::CHANNELS,
            stem_width: 64,
            num_classes: 1000,
            in_chans: 3,
            img_size: [224, 224],
            eps: 1e-5,
        }
    }

    crate::config::timm_constructors! {
        ResNetArch;
        resnet18 => RESNET18,
        resnet34 => RESNET34,
        resnet50 => RESNET50,
        resnet101 => RESNET101,
    }

    /// Stage output widths.
    pub fn widths(&self) -> [usize; 4] {
        self.channels.map(|c| c * self.block.expansion())
    }

    /// The feature-map size after the stem (conv stride 2, max pool stride 2).
    fn stem_grid(&self) -> [usize; 2] {
        stem_grid(self.img_size)
    }

    /// `(stage, stride, in channels, grid in)` of every block, in order.
    fn block_plan(&self) -> Vec<(usize, usize, usize, [usize; 2])> {
        let mut plan = Vec::new();
        let mut inplanes = self.stem_width;
        let mut grid = self.stem_grid();
        for stage in 0..4 {
            for i in 0..self.layers[stage] {
                let stride = if i == 0 && stage > 0 { 2 } else { 1 };
                plan.push((stage, stride, inplanes, grid));
                if stride == 2 {
                    grid = grid.map(|s| conv_out(s, 3, 2, 1));
                }
                inplanes = self.widths()[stage];
            }
        }
        plan
    }

    /// Builds the model with random weights (load weights before use).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        self.validate()?;
        let conv = |c_in: usize, c_out: usize, k: usize, stride: usize| {
            let p = k / 2;
            Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false)
                .init(device)
        };
        let bn = |c: usize| BatchNormConfig::new(c).with_epsilon(self.eps).init(device);
        let mut layers: [Vec<ResBlock>; 4] = Default::default();
        for (stage, stride, c_in, _) in self.block_plan() {
            let planes = self.channels[stage];
            let out = self.widths()[stage];
            let downsample =
                (stride != 1 || c_in != out).then(|| (conv(c_in, out, 1, stride), bn(out)));
            let block = match self.block {
                BlockKind::Basic => ResBlock {
                    conv1: conv(c_in, planes, 3, stride),
                    bn1: bn(planes),
                    conv2: conv(planes, planes, 3, 1),
                    bn2: bn(planes),
                    conv3: None,
                    bn3: None,
                    downsample,
                },
                BlockKind::Bottleneck => ResBlock {
                    conv1: conv(c_in, planes, 1, 1),
                    bn1: bn(planes),
                    conv2: conv(planes, planes, 3, stride),
                    bn2: bn(planes),
                    conv3: Some(conv(planes, out, 1, 1)),
                    bn3: Some(bn(out)),
                    downsample,
                },
            };
            layers[stage].push(block);
        }
        let [layer1, layer2, layer3, layer4] = layers;
        Ok(ResNet {
            conv1: Conv2dConfig::new([self.in_chans, self.stem_width], [7, 7])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                .with_bias(false)
                .init(device),
            bn1: bn(self.stem_width),
            layer1,
            layer2,
            layer3,
            layer4,
            fc: (self.num_classes > 0)
                .then(|| LinearConfig::new(self.widths()[3], self.num_classes).init(device)),
            in_chans: self.in_chans,
        })
    }
}

impl From<ResNetArch> for ResNetConfig {
    /// A built-in anchor's architecture, on timm's defaults (224², 64-channel stem, 1,000
    /// classes).
    fn from(arch: ResNetArch) -> Self {
        Self::new(arch.block, arch.layers)
    }
}

impl Family for ResNetConfig {
    fn family(&self) -> &'static str {
        "resnet"
    }

    fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::invalid_config(self.family(), reason));
        if self.layers.contains(&0) || self.channels.contains(&0) || self.stem_width == 0 {
            return invalid("every stage needs blocks and channels".to_owned());
        }
        use crate::limits::{self, check};
        check(
            "resnet",
            "depth",
            self.layers.iter().fold(0usize, |a, &l| a.saturating_add(l)),
            limits::MAX_DEPTH,
            "MAX_DEPTH",
        )?;
        for &c in &self.channels {
            // Bottleneck blocks widen by 4.
            check(
                "resnet",
                "a stage's width",
                c.saturating_mul(4),
                limits::MAX_WIDTH,
                "MAX_WIDTH",
            )?;
        }
        check(
            "resnet",
            "stem_width",
            self.stem_width,
            limits::MAX_WIDTH,
            "MAX_WIDTH",
        )?;
        limits::check_io("resnet", self.in_chans, self.num_classes, self.img_size)?;
        if self.in_chans == 0 || self.img_size.iter().any(|&s| s < 32) {
            return invalid(format!(
                "in_chans must be positive and img_size at least 32×32, got {:?}",
                self.img_size
            ));
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return invalid(format!("eps must be positive, got {}", self.eps));
        }
        Ok(())
    }

    /// The anchor spec for the stitch space.
    fn spec(&self, name: &str) -> AnchorSpec {
        let stages: Vec<(usize, usize)> =
            (0..4).map(|s| (self.layers[s], self.widths()[s])).collect();
        AnchorSpec::hierarchical(name, Layout::Map, &stages)
    }

    /// Per-block output info (timm's `feature_info`, one entry per global block).
    fn feature_info(&self) -> Vec<FeatureInfo> {
        let widths = self.widths();
        let mut index_in_stage = [0usize; 4];
        self.block_plan()
            .into_iter()
            .enumerate()
            .map(|(index, (stage, stride, _, grid))| {
                let i = index_in_stage[stage];
                index_in_stage[stage] += 1;
                let grid = if stride == 2 {
                    grid.map(|s| conv_out(s, 3, 2, 1))
                } else {
                    grid
                };
                FeatureInfo {
                    index,
                    stage,
                    module: format!("layer{}.{i}", stage + 1),
                    channels: widths[stage],
                    layout: Layout::Map,
                    grid,
                    prefix_tokens: 0,
                    reduction: 4 << stage,
                }
            })
            .collect()
    }

    /// FLOPs and parameters per part for one image (fvcore: convolutions count MACs, eval
    /// BatchNorm `2·numel`, adaptive average pooling `numel`, ReLU / max pool / add free).
    fn cost(&self) -> ModelCost {
        let conv = |grid: [usize; 2], c_in: usize, c_out: usize, k: usize| {
            let macs = (grid[0] * grid[1] * c_out * c_in * k * k) as u64;
            Cost::new(macs, (c_out * c_in * k * k) as u64)
        };
        let bn = |grid: [usize; 2], c: usize| {
            Cost::new(2 * (grid[0] * grid[1] * c) as u64, 2 * c as u64)
        };
        let stem_grid = self.img_size.map(|s| conv_out(s, 7, 2, 3));
        let stem =
            conv(stem_grid, self.in_chans, self.stem_width, 7) + bn(stem_grid, self.stem_width);
        let blocks = self
            .block_plan()
            .into_iter()
            .map(|(stage, stride, c_in, grid)| {
                let planes = self.channels[stage];
                let out = self.widths()[stage];
                let g_out = if stride == 2 {
                    grid.map(|s| conv_out(s, 3, 2, 1))
                } else {
                    grid
                };
                let main = match self.block {
                    BlockKind::Basic => {
                        conv(g_out, c_in, planes, 3)
                            + bn(g_out, planes)
                            + conv(g_out, planes, planes, 3)
                            + bn(g_out, planes)
                    }
                    BlockKind::Bottleneck => {
                        conv(grid, c_in, planes, 1)
                            + bn(grid, planes)
                            + conv(g_out, planes, planes, 3)
                            + bn(g_out, planes)
                            + conv(g_out, planes, out, 1)
                            + bn(g_out, out)
                    }
                };
                let shortcut = if stride != 1 || c_in != out {
                    conv(g_out, c_in, out, 1) + bn(g_out, out)
                } else {
                    Cost::ZERO
                };
                main + shortcut
            })
            .collect();
        let last = self.widths()[3];
        let last_grid = self
            .block_plan()
            .last()
            .map_or([1, 1], |&(_, stride, _, g)| {
                if stride == 2 {
                    g.map(|s| conv_out(s, 3, 2, 1))
                } else {
                    g
                }
            });
        let pool = Cost::new((last * last_grid[0] * last_grid[1]) as u64, 0);
        let fc = if self.num_classes == 0 {
            Cost::ZERO
        } else {
            crate::cost::linear(1, last as u64, self.num_classes as u64, true)
        };
        ModelCost {
            stem,
            tokens: Cost::ZERO,
            blocks,
            norm: Cost::ZERO,
            head: pool + fc,
            transitions: Vec::new(),
        }
    }

    fn io(&self) -> ModelIo {
        ModelIo::new(self.in_chans, self.img_size, self.num_classes)
    }

    /// timm's default tags (`a1_in1k`): ImageNet mean/std, bicubic, crop 0.95.
    fn builtin_pretrained(&self, _arch: &Arch) -> PretrainedConfig {
        let mut pretrained = self.io().imagenet();
        pretrained.crop_pct = 0.95;
        pretrained
    }

    /// timm's keys are the only layout.
    fn weight_remap(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn init_model(&self, name: &str, device: &Device) -> Result<Model> {
        Ok(Model::ResNet(ResNetAnchor {
            config: self.clone(),
            model: self.init(device)?,
            name: name.to_owned(),
        }))
    }
}

/// A BasicBlock (`conv3`/`bn3` absent) or Bottleneck.
#[derive(Module, Debug)]
pub struct ResBlock {
    /// 3×3 strided (basic) or 1×1 (bottleneck).
    pub conv1: Conv2d,
    /// After `conv1`.
    pub bn1: BatchNorm,
    /// 3×3 (strided in a bottleneck).
    pub conv2: Conv2d,
    /// After `conv2`.
    pub bn2: BatchNorm,
    /// 1×1 expansion (bottleneck only).
    pub conv3: Option<Conv2d>,
    /// After `conv3` (bottleneck only).
    pub bn3: Option<BatchNorm>,
    /// Projection shortcut, timm `downsample.0` (1×1 conv) and `downsample.1` (BN).
    pub downsample: Option<(Conv2d, BatchNorm)>,
}

impl ResBlock {
    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, C_out, H / stride, W / stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some((conv, bn)) => snnet_ops::conv_bn(x.clone(), conv, bn, None, false),
            None => x.clone(),
        };
        let y = snnet_ops::conv_bn(x, &self.conv1, &self.bn1, None, true);
        match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let y = snnet_ops::conv_bn(y, &self.conv2, &self.bn2, None, true);
                snnet_ops::conv_bn(y, conv3, bn3, Some(shortcut), true)
            }
            _ => snnet_ops::conv_bn(y, &self.conv2, &self.bn2, Some(shortcut), true),
        }
    }
}

/// A ResNet.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem 7×7/2 convolution.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: BatchNorm,
    /// Stage 1 (stride 4).
    pub layer1: Vec<ResBlock>,
    /// Stage 2 (stride 8).
    pub layer2: Vec<ResBlock>,
    /// Stage 3 (stride 16).
    pub layer3: Vec<ResBlock>,
    /// Stage 4 (stride 32).
    pub layer4: Vec<ResBlock>,
    /// Classifier.
    pub fc: Option<Linear>,
    in_chans: usize,
}

impl ResNet {
    /// The blocks of all stages in order.
    pub fn blocks(&self) -> impl Iterator<Item = &ResBlock> {
        self.layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
    }

    /// Stem: conv, BN, ReLU, 3×3/2 max pool.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, stem_width, H/4, W/4]`.
    pub fn stem(&self, images: Tensor<4>) -> Tensor<4> {
        let x = snnet_ops::conv_bn(images, &self.conv1, &self.bn1, None, true);
        snnet_ops::max_pool2d(x, [3, 3], [2, 2], [1, 1])
    }

    /// Global average pooling and the classifier.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, classes]` (`[B, C]` without classifier).
    pub fn head_map(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, _, _] = x.dims();
        let pooled = x.mean_dims(&[2, 3]).reshape([b, c]);
        match &self.fc {
            Some(fc) => fc.forward(pooled),
            None => pooled,
        }
    }
}

/// A [`ResNet`] with its config: the [`Anchor`] implementation.
#[derive(Module, Debug)]
pub struct ResNetAnchor {
    /// The architecture.
    #[module(skip)]
    pub config: ResNetConfig,
    /// The model.
    pub model: ResNet,
    /// The name.
    #[module(skip)]
    pub name: String,
}

impl Anchor for ResNetAnchor {
    fn num_blocks(&self) -> usize {
        self.config.layers.iter().sum()
    }

    /// Any image size whose stem output has the configured grid (the size every block's
    /// geometry follows from), e.g. 223² or 224² for a 224² model.
    fn check_images(&self, dims: [usize; 4]) -> Result<()> {
        let [_, c, h, w] = dims;
        if c != self.model.in_chans
            || dims.contains(&0)
            || stem_grid([h, w]) != self.config.stem_grid()
        {
            let [gh, gw] = self.config.img_size;
            return Err(Error::InputShape {
                expected: format!("[batch, {}, {gh}, {gw}]", self.model.in_chans),
                found: dims.to_vec(),
            });
        }
        Ok(())
    }

    fn family_config(&self) -> &dyn Family {
        &self.config
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn embed(&self, images: Tensor<4>) -> Activation {
        Activation::Map(self.model.stem(images))
    }

    fn block(&self, index: usize, x: Activation) -> Activation {
        let Some(block) = self.model.blocks().nth(index) else {
            return x;
        };
        let grid = self.config.block_plan().get(index).map_or([1, 1], |b| b.3);
        Activation::Map(block.forward(x.into_map(grid)))
    }

    fn head(&self, x: Activation, _norm: bool) -> Tensor<2> {
        // The last block's output grid (tokens never reach a ResNet head through a plan).
        let grid = self
            .config
            .block_plan()
            .last()
            .map_or([1, 1], |&(_, stride, _, grid)| {
                grid.map(|s| if stride == 2 { conv_out(s, 3, 2, 1) } else { s })
            });
        self.model.head_map(x.into_map(grid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact() {
        assert_eq!(ResNetConfig::resnet18().cost().total().flops, 1_819_065_856);
        assert_eq!(ResNetConfig::resnet50().cost().total().flops, 4_111_512_576);
        // timm's parameter counts.
        assert_eq!(ResNetConfig::resnet18().cost().total().params, 11_689_512);
        assert_eq!(ResNetConfig::resnet50().cost().total().params, 25_557_032);
    }
}
