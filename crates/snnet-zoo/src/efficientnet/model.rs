//! The EfficientNet-Lite modules, named as timm's checkpoint keys: `conv_stem`, `bn1`,
//! `blocks.{s}.{i}.{conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3}`, `conv_head`, `bn2`,
//! `classifier`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use super::config::{EfficientNetConfig, MbBlockKind, same_padding};

/// ReLU6, timm's activation for the Lite models.
fn relu6(x: Tensor<4>) -> Tensor<4> {
    x.clamp(0.0, 6.0)
}

/// Pads `x` for a TF "same" convolution by `conv` (timm's `Conv2dSame` / `pad_same`): the
/// padding follows from the input size, the odd pixel after. The convolutions themselves are
/// unpadded.
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, H + pad_h, W + pad_w]`.
fn pad_same(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [kh, kw] = conv.kernel_size;
    let [sh, sw] = conv.stride;
    let (top, bottom) = same_padding(h, kh, sh);
    let (left, right) = same_padding(w, kw, sw);
    if top + bottom + left + right == 0 {
        return x;
    }
    x.pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
}

/// `bn(conv(same_pad(x)))` (+ `residual`), through the workspace's fused conv + BN.
fn conv_bn(x: Tensor<4>, conv: &Conv2d, bn: &BatchNorm, residual: Option<Tensor<4>>) -> Tensor<4> {
    snnet_ops::conv_bn(pad_same(x, conv), conv, bn, residual, false)
}

/// A depthwise-separable (`ds`) or inverted-residual (`ir`) block, with timm's key names for
/// both: `ds` is `conv_dw`, `bn1`, `conv_pw`, `bn2`; `ir` is `conv_pw`, `bn1`, `conv_dw`,
/// `bn2`, `conv_pwl`, `bn3`. A block with `conv_pwl` runs as `ir`.
#[derive(Module, Debug)]
pub struct MbBlock {
    /// `ir`: the 1×1 expansion; `ds`: the 1×1 projection after the depthwise conv.
    pub conv_pw: Conv2d,
    /// `ir`: after `conv_pw`; `ds`: after `conv_dw`.
    pub bn1: BatchNorm,
    /// The depthwise convolution (groups = channels), TF "same" padding.
    pub conv_dw: Conv2d,
    /// `ir`: after `conv_dw`; `ds`: after `conv_pw`.
    pub bn2: BatchNorm,
    /// `ir` only: the 1×1 projection.
    pub conv_pwl: Option<Conv2d>,
    /// `ir` only: after `conv_pwl`.
    pub bn3: Option<BatchNorm>,
    /// Whether the block adds its input (stride 1 and the same width).
    skip: bool,
}

impl MbBlock {
    /// # Shapes
    /// `[B, C_in, H, W]` → `[B, C_out, ceil(H / stride), ceil(W / stride)]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = self.skip.then(|| x.clone());
        match (&self.conv_pwl, &self.bn3) {
            (Some(conv_pwl), Some(bn3)) => {
                let y = relu6(conv_bn(x, &self.conv_pw, &self.bn1, None));
                let y = relu6(conv_bn(y, &self.conv_dw, &self.bn2, None));
                conv_bn(y, conv_pwl, bn3, shortcut)
            }
            _ => {
                let y = relu6(conv_bn(x, &self.conv_dw, &self.bn1, None));
                conv_bn(y, &self.conv_pw, &self.bn2, shortcut)
            }
        }
    }
}

/// An EfficientNet-Lite (timm's `EfficientNet` with TF "same" padding, ReLU6, no SE).
#[derive(Module, Debug)]
pub struct EfficientNet {
    /// Stem 3×3/2 convolution.
    pub conv_stem: Conv2d,
    /// Stem BatchNorm.
    pub bn1: BatchNorm,
    /// The blocks by stage.
    pub blocks: Vec<Vec<MbBlock>>,
    /// The 1×1 head convolution.
    pub conv_head: Conv2d,
    /// Head BatchNorm.
    pub bn2: BatchNorm,
    /// Classifier.
    pub classifier: Option<Linear>,
}

impl EfficientNet {
    /// Builds the modules of a validated `config` with random weights.
    pub(crate) fn new(config: &EfficientNetConfig, device: &Device) -> Self {
        let conv = |c_in: usize, c_out: usize, k: usize, stride: usize, groups: usize| {
            Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([stride, stride])
                .with_groups(groups)
                .with_padding(PaddingConfig2d::Valid)
                .with_bias(false)
                .init(device)
        };
        let bn = |c: usize| {
            BatchNormConfig::new(c)
                .with_epsilon(config.eps)
                .init(device)
        };
        let mut blocks: Vec<Vec<MbBlock>> = config.stages.iter().map(|_| Vec::new()).collect();
        for b in config.block_plan() {
            let dw = conv(b.mid, b.mid, b.kernel, b.stride, b.mid);
            let block = match b.kind {
                MbBlockKind::Ds => MbBlock {
                    conv_dw: dw,
                    bn1: bn(b.mid),
                    conv_pw: conv(b.mid, b.c_out, 1, 1, 1),
                    bn2: bn(b.c_out),
                    conv_pwl: None,
                    bn3: None,
                    skip: b.skip,
                },
                MbBlockKind::Ir => MbBlock {
                    conv_pw: conv(b.c_in, b.mid, 1, 1, 1),
                    bn1: bn(b.mid),
                    conv_dw: dw,
                    bn2: bn(b.mid),
                    conv_pwl: Some(conv(b.mid, b.c_out, 1, 1, 1)),
                    bn3: Some(bn(b.c_out)),
                    skip: b.skip,
                },
            };
            if let Some(stage) = blocks.get_mut(b.stage) {
                stage.push(block);
            }
        }
        Self {
            conv_stem: conv(config.in_chans, config.stem_size, 3, 2, 1),
            bn1: bn(config.stem_size),
            blocks,
            conv_head: conv(config.last_width(), config.num_features, 1, 1, 1),
            bn2: bn(config.num_features),
            classifier: (config.num_classes > 0)
                .then(|| LinearConfig::new(config.num_features, config.num_classes).init(device)),
        }
    }

    /// The blocks of all stages in order.
    pub fn all_blocks(&self) -> impl Iterator<Item = &MbBlock> {
        self.blocks.iter().flatten()
    }

    /// Stem: TF-"same" conv 3×3/2, BN, ReLU6.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, stem_size, ceil(H/2), ceil(W/2)]`.
    pub fn stem(&self, images: Tensor<4>) -> Tensor<4> {
        relu6(conv_bn(images, &self.conv_stem, &self.bn1, None))
    }

    /// Head: 1×1 conv, BN, ReLU6, global average pooling, classifier.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, classes]` (`[B, num_features]` without classifier).
    pub fn head_map(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu6(conv_bn(x, &self.conv_head, &self.bn2, None));
        let [b, c, _, _] = x.dims();
        let pooled = x.mean_dims(&[2, 3]).reshape([b, c]);
        match &self.classifier {
            Some(fc) => fc.forward(pooled),
            None => pooled,
        }
    }
}
