//! ViT / DeiT / DeiT-3 as in timm's `vision_transformer.py` and `deit.py`.
//!
//! Field names follow timm's checkpoint keys (`cls_token`, `pos_embed`, `patch_embed.proj`,
//! `blocks.{i}.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}`,
//! `norm`, `head`, `head_dist`), so timm weights load with the adapter's standard renames only.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use serde_inline_default::serde_inline_default;
use snnet_ops::Epilogue;
use snnet_space::builtin::{Arch, VitArch, VitKind};
use snnet_space::{AnchorSpec, Layout};

use crate::anchor::check_image_dims;
use crate::anchor::{Activation, Anchor, FeatureInfo};
use crate::config::Family;
use crate::config::ModelIo;
use crate::cost::{self, Cost, ModelCost};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::pretrained::PretrainedConfig;

/// The architecture of a ViT, DeiT, distilled DeiT or DeiT-3 model, named as timm's arguments.
///
/// ```
/// use snnet_zoo::{Family, VitConfig};
///
/// let small = VitConfig::deit_small_patch16_224();
/// assert_eq!((small.embed_dim, small.depth, small.num_heads), (384, 12, 6));
/// assert_eq!(small.cost().total().flops, 4_608_338_304);
/// ```
#[serde_inline_default]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    /// Input image size `[height, width]`.
    pub img_size: [usize; 2],
    /// Patch size `[height, width]`.
    pub patch_size: [usize; 2],
    /// Input channels.
    #[serde_inline_default(3)]
    pub in_chans: usize,
    /// Classifier outputs; 0 for no classifier (the head returns pooled features).
    pub num_classes: usize,
    /// Token width.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads (must divide `embed_dim`).
    pub num_heads: usize,
    /// Hidden width of the MLP (`mlp_ratio · embed_dim`).
    pub mlp_hidden: usize,
    /// Whether the qkv projection has a bias.
    #[serde_inline_default(true)]
    pub qkv_bias: bool,
    /// Whether a cls token is prepended.
    #[serde_inline_default(true)]
    pub class_token: bool,
    /// DeiT distillation: a second (dist) token and a second head, averaged at inference.
    #[serde(default)]
    pub distilled: bool,
    /// DeiT-3: the position embedding covers patches only and is added before the prefix
    /// tokens are concatenated.
    #[serde(default)]
    pub no_embed_class: bool,
    /// DeiT-3: LayerScale (`ls1.gamma`, `ls2.gamma`) on both residual branches.
    #[serde(default)]
    pub layer_scale: bool,
    /// LayerNorm epsilon (timm: 1e-6).
    #[serde_inline_default(1e-6)]
    pub eps: f64,
}

impl VitConfig {
    /// A timm-style ViT at 224² with 16² patches, 1000 classes and MLP ratio 4.
    pub fn base(embed_dim: usize, depth: usize, num_heads: usize) -> Self {
        Self {
            img_size: [224, 224],
            patch_size: [16, 16],
            in_chans: 3,
            num_classes: 1000,
            embed_dim,
            depth,
            num_heads,
            mlp_hidden: 4 * embed_dim,
            qkv_bias: true,
            class_token: true,
            distilled: false,
            no_embed_class: false,
            layer_scale: false,
            eps: 1e-6,
        }
    }

    crate::config::timm_constructors! {
        VitArch;
        deit_tiny_patch16_224 => DEIT_TINY_PATCH16_224,
        deit_small_patch16_224 => DEIT_SMALL_PATCH16_224,
        deit_base_patch16_224 => DEIT_BASE_PATCH16_224,
        deit_tiny_distilled_patch16_224 => DEIT_TINY_DISTILLED_PATCH16_224,
        deit_small_distilled_patch16_224 => DEIT_SMALL_DISTILLED_PATCH16_224,
        deit_base_distilled_patch16_224 => DEIT_BASE_DISTILLED_PATCH16_224,
        deit3_small_patch16_224 => DEIT3_SMALL_PATCH16_224,
        deit3_base_patch16_224 => DEIT3_BASE_PATCH16_224,
        deit3_large_patch16_224 => DEIT3_LARGE_PATCH16_224,
        vit_tiny_patch16_224 => VIT_TINY_PATCH16_224,
        vit_small_patch16_224 => VIT_SMALL_PATCH16_224,
        vit_base_patch16_224 => VIT_BASE_PATCH16_224,
    }

    fn distilled(mut self) -> Self {
        self.distilled = true;
        self
    }

    fn deit3(mut self) -> Self {
        self.no_embed_class = true;
        self.layer_scale = true;
        self
    }

    /// Sets the number of classes (0: no classifier).
    #[must_use]
    pub fn with_num_classes(mut self, num_classes: usize) -> Self {
        self.num_classes = num_classes;
        self
    }

    /// Sets the input image size.
    #[must_use]
    pub fn with_img_size(mut self, img_size: [usize; 2]) -> Self {
        self.img_size = img_size;
        self
    }

    /// Sets the patch size.
    #[must_use]
    pub fn with_patch_size(mut self, patch_size: [usize; 2]) -> Self {
        self.patch_size = patch_size;
        self
    }

    /// The patch grid `[rows, columns]`.
    pub fn grid(&self) -> [usize; 2] {
        [
            self.img_size[0] / self.patch_size[0].max(1),
            self.img_size[1] / self.patch_size[1].max(1),
        ]
    }

    /// Number of patches.
    pub fn num_patches(&self) -> usize {
        let [h, w] = self.grid();
        h * w
    }

    /// Prefix tokens (cls and dist) in front of the patches.
    pub fn num_prefix_tokens(&self) -> usize {
        usize::from(self.class_token) + usize::from(self.distilled)
    }

    /// Tokens per image between blocks.
    pub fn num_tokens(&self) -> usize {
        self.num_patches() + self.num_prefix_tokens()
    }

    /// Builds the model with timm-like random initialisation (load weights before use).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the config does not describe a model.
    pub fn init(&self, device: &Device) -> Result<Vit> {
        self.validate()?;
        let c = self.embed_dim;
        let zeros = |shape: [usize; 3]| Param::from_tensor(Tensor::zeros(shape, device));
        let norm = || LayerNormConfig::new(c).with_epsilon(self.eps).init(device);
        let head =
            |classes: usize| (classes > 0).then(|| LinearConfig::new(c, classes).init(device));
        let pos_tokens = if self.no_embed_class {
            self.num_patches()
        } else {
            self.num_tokens()
        };
        let blocks = (0..self.depth)
            .map(|_| Block {
                norm1: norm(),
                attn: Attention {
                    qkv: LinearConfig::new(c, 3 * c)
                        .with_bias(self.qkv_bias)
                        .init(device),
                    proj: LinearConfig::new(c, c).init(device),
                    num_heads: self.num_heads,
                },
                ls1: self.layer_scale.then(|| LayerScale::new(c, device)),
                norm2: norm(),
                mlp: Mlp {
                    fc1: LinearConfig::new(c, self.mlp_hidden).init(device),
                    fc2: LinearConfig::new(self.mlp_hidden, c).init(device),
                },
                ls2: self.layer_scale.then(|| LayerScale::new(c, device)),
                eps: self.eps,
            })
            .collect();
        Ok(Vit {
            cls_token: self.class_token.then(|| zeros([1, 1, c])),
            dist_token: self.distilled.then(|| zeros([1, 1, c])),
            pos_embed: zeros([1, pos_tokens, c]),
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([self.in_chans, c], self.patch_size)
                    .with_stride(self.patch_size)
                    .init(device),
            },
            blocks,
            norm: norm(),
            head: head(self.num_classes),
            head_dist: if self.distilled {
                head(self.num_classes)
            } else {
                None
            },
            img_size: self.img_size,
            in_chans: self.in_chans,
            no_embed_class: self.no_embed_class,
            eps: self.eps,
        })
    }
}

impl From<VitArch> for VitConfig {
    /// A built-in anchor's architecture, on timm's defaults ([`VitConfig::base`]).
    fn from(arch: VitArch) -> Self {
        let config = Self::base(arch.embed_dim, arch.depth, arch.num_heads);
        match arch.kind {
            VitKind::Vit | VitKind::Deit => config,
            VitKind::DeitDistilled => config.distilled(),
            VitKind::Deit3 => config.deit3(),
        }
    }
}

impl Family for VitConfig {
    fn family(&self) -> &'static str {
        "vit"
    }

    fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::invalid_config(self.family(), reason));
        let positive = [
            ("embed_dim", self.embed_dim),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
            ("mlp_hidden", self.mlp_hidden),
            ("in_chans", self.in_chans),
            ("patch_size[0]", self.patch_size[0]),
            ("patch_size[1]", self.patch_size[1]),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return invalid(format!("{name} must be positive"));
        }
        use crate::limits::{self, check};
        check("vit", "depth", self.depth, limits::MAX_DEPTH, "MAX_DEPTH")?;
        check(
            "vit",
            "embed_dim",
            self.embed_dim,
            limits::MAX_WIDTH,
            "MAX_WIDTH",
        )?;
        check(
            "vit",
            "mlp_hidden",
            self.mlp_hidden,
            limits::MAX_HIDDEN,
            "MAX_HIDDEN",
        )?;
        limits::check_io("vit", self.in_chans, self.num_classes, self.img_size)?;
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return invalid(format!(
                "embed_dim {} is not divisible by num_heads {}",
                self.embed_dim, self.num_heads
            ));
        }
        for axis in 0..2 {
            if self.img_size[axis] < self.patch_size[axis]
                || !self.img_size[axis].is_multiple_of(self.patch_size[axis])
            {
                return invalid(format!(
                    "img_size {:?} is not a positive multiple of patch_size {:?}",
                    self.img_size, self.patch_size
                ));
            }
        }
        let grid =
            (self.img_size[0] / self.patch_size[0]) * (self.img_size[1] / self.patch_size[1]);
        check(
            "vit",
            "the number of tokens",
            grid + 2,
            limits::MAX_TOKENS,
            "MAX_TOKENS",
        )?;
        if self.distilled && !self.class_token {
            return invalid("a distilled model needs a class token".to_owned());
        }
        if !self.class_token {
            return invalid(
                "models without a class token (global average pooling) are not supported"
                    .to_owned(),
            );
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return invalid(format!("eps must be positive, got {}", self.eps));
        }
        Ok(())
    }

    /// The anchor spec of this architecture for the stitch space.
    fn spec(&self, name: &str) -> AnchorSpec {
        AnchorSpec::plain(name, self.depth, self.embed_dim)
    }

    /// Per-block output info (timm's `feature_info`, one entry per global block).
    fn feature_info(&self) -> Vec<FeatureInfo> {
        (0..self.depth)
            .map(|index| FeatureInfo {
                index,
                stage: 0,
                module: format!("blocks.{index}"),
                channels: self.embed_dim,
                layout: Layout::Tokens,
                grid: self.grid(),
                prefix_tokens: self.num_prefix_tokens(),
                reduction: self.patch_size[0],
            })
            .collect()
    }

    /// FLOPs and parameters per part for one image (fvcore convention).
    ///
    /// Block: `10NC + 3NC² + 2N²C + NC² + 2NCH` flops (two layer norms, qkv, the two attention
    /// matmuls, the projection, the MLP), `N` tokens, `C` width, `H` MLP width. Stem: patch
    /// embedding `P · C · (in_chans · p_h · p_w)`. Norm `5NC`. Head `C · classes` per head.
    fn cost(&self) -> ModelCost {
        let n = self.num_tokens() as u64;
        let c = self.embed_dim as u64;
        let h = self.mlp_hidden as u64;
        let patches = self.num_patches() as u64;
        let patch_in = (self.in_chans * self.patch_size[0] * self.patch_size[1]) as u64;
        let attention = Cost::new(2 * n * n * c, 0);
        let layer_scale = Cost::new(0, if self.layer_scale { 2 * c } else { 0 });
        let block = cost::layer_norm(n, c)
            + cost::linear(n, c, 3 * c, self.qkv_bias)
            + attention
            + cost::linear(n, c, c, true)
            + cost::layer_norm(n, c)
            + cost::linear(n, c, h, true)
            + cost::linear(n, h, c, true)
            + layer_scale;
        let pos_tokens = if self.no_embed_class { patches } else { n };
        let prefix = self.num_prefix_tokens() as u64;
        let heads = if self.distilled { 2 } else { 1 };
        let head = if self.num_classes == 0 {
            Cost::ZERO
        } else {
            let one = cost::linear(1, c, self.num_classes as u64, true);
            Cost::new(one.flops * heads, one.params * heads)
        };
        ModelCost {
            stem: cost::linear(patches, patch_in, c, true),
            tokens: Cost::new(0, (prefix + pos_tokens) * c),
            blocks: vec![block; self.depth],
            norm: cost::layer_norm(n, c),
            head,
            transitions: Vec::new(),
        }
    }

    fn io(&self) -> ModelIo {
        ModelIo::new(self.in_chans, self.img_size, self.num_classes)
    }

    /// ImageNet normalisation, crop 0.9, bicubic; Google's ViTs (`vit_*`) Inception
    /// normalisation.
    fn builtin_pretrained(&self, arch: &Arch) -> PretrainedConfig {
        let pretrained = self.io().imagenet();
        match arch {
            Arch::Vit(VitArch {
                kind: VitKind::Vit, ..
            }) => pretrained.inception(),
            _ => pretrained,
        }
    }

    /// The original DeiT-3 checkpoints name LayerScale `gamma_1`/`gamma_2` where timm has
    /// `ls1.gamma`/`ls2.gamma`.
    fn weight_remap(&self) -> &'static [(&'static str, &'static str)] {
        &[(r"\.gamma_1$", ".ls1.gamma"), (r"\.gamma_2$", ".ls2.gamma")]
    }

    fn init_model(&self, name: &str, device: &Device) -> Result<Model> {
        Ok(Model::Vit(VitAnchor {
            config: self.clone(),
            model: self.init(device)?,
            name: name.to_owned(),
        }))
    }
}

/// Patch embedding: a `patch × patch` convolution with stride `patch`.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// The projection, timm `patch_embed.proj`.
    pub proj: Conv2d,
}

impl PatchEmbed {
    /// # Shapes
    /// `[B, in_chans, H, W]` → `[B, (H/p)·(W/p), C]`, patches in row-major order.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<3> {
        let x = self.proj.forward(images);
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).swap_dims(1, 2)
    }
}

/// Multi-head self-attention with a fused qkv projection.
#[derive(Module, Debug)]
pub struct Attention {
    /// `[C → 3C]`, output ordered q | k | v with heads contiguous.
    pub qkv: Linear,
    /// `[C → C]`.
    pub proj: Linear,
    /// Number of heads.
    pub num_heads: usize,
}

impl Attention {
    /// # Shapes
    /// `[B, N, C]` → `[B, N, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_add(x, None)
    }

    /// `residual + forward(x)`, the residual added inside the output projection (one pass
    /// fewer on the CPU: `snnet_ops::linear`).
    ///
    /// # Shapes
    /// `[B, N, C]`, `[B, N, C]` → `[B, N, C]`.
    pub(crate) fn forward_add(&self, x: Tensor<3>, residual: Option<Tensor<3>>) -> Tensor<3> {
        let qkv = snnet_ops::linear(x, &self.qkv, Epilogue::None, None);
        let y = snnet_ops::attention(qkv, self.num_heads);
        snnet_ops::linear(y, &self.proj, Epilogue::None, residual)
    }
}

/// The MLP: `fc1 → GELU (erf) → fc2`.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[C → H]`.
    pub fc1: Linear,
    /// `[H → C]`.
    pub fc2: Linear,
}

impl Mlp {
    /// # Shapes
    /// `[B, N, C]` → `[B, N, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_add(x, None)
    }

    /// `residual + forward(x)`, GELU and the residual fused into the linear layers' outputs on
    /// the CPU (`snnet_ops::linear`).
    ///
    /// # Shapes
    /// `[B, N, C]`, `[B, N, C]` → `[B, N, C]`.
    pub(crate) fn forward_add(&self, x: Tensor<3>, residual: Option<Tensor<3>>) -> Tensor<3> {
        let h = snnet_ops::linear(x, &self.fc1, Epilogue::Gelu, None);
        snnet_ops::linear(h, &self.fc2, Epilogue::None, residual)
    }
}

/// DeiT-3 LayerScale: a per-channel scale on a residual branch.
#[derive(Module, Debug)]
pub struct LayerScale {
    /// `[C]`, timm `ls1.gamma` / `ls2.gamma`.
    pub gamma: Param<Tensor<1>>,
}

impl LayerScale {
    fn new(dim: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::full([dim], 1e-6, device)),
        }
    }

    /// # Shapes
    /// `[B, N, C]` → `[B, N, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        x * self.gamma.val().unsqueeze::<3>()
    }
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn: Attention,
    /// LayerScale after attention (DeiT-3).
    pub ls1: Option<LayerScale>,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    /// LayerScale after the MLP (DeiT-3).
    pub ls2: Option<LayerScale>,
    /// The epsilon `norm1` and `norm2` were built with (timm: 1e-6; Burn's `LayerNorm` keeps
    /// its own private), for the fused training path (`snnet_ops::layer_norm`).
    pub eps: f64,
}

impl Block {
    /// # Shapes
    /// `[B, N, C]` → `[B, N, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = snnet_ops::layer_norm(&self.norm1, self.eps, x.clone());
        let x = match &self.ls1 {
            Some(ls) => x + ls.forward(self.attn.forward(h)),
            None => self.attn.forward_add(h, Some(x)),
        };
        let h = snnet_ops::layer_norm(&self.norm2, self.eps, x.clone());
        match &self.ls2 {
            Some(ls) => x + ls.forward(self.mlp.forward(h)),
            None => self.mlp.forward_add(h, Some(x)),
        }
    }
}

/// A ViT / DeiT / distilled DeiT / DeiT-3 model.
#[derive(Module, Debug)]
pub struct Vit {
    /// `[1, 1, C]`.
    pub cls_token: Option<Param<Tensor<3>>>,
    /// `[1, 1, C]`, distilled models only.
    pub dist_token: Option<Param<Tensor<3>>>,
    /// `[1, N, C]` (`[1, patches, C]` with `no_embed_class`).
    pub pos_embed: Param<Tensor<3>>,
    /// The patch embedding.
    pub patch_embed: PatchEmbed,
    /// The blocks.
    pub blocks: Vec<Block>,
    /// The final norm.
    pub norm: LayerNorm,
    /// The classifier on the cls token.
    pub head: Option<Linear>,
    /// The classifier on the dist token (distilled models).
    pub head_dist: Option<Linear>,
    img_size: [usize; 2],
    in_chans: usize,
    no_embed_class: bool,
    /// The final norm's epsilon (see [`Block::eps`]).
    eps: f64,
}

impl Vit {
    /// Checks that `dims` is a batch of images this model embeds: `[B ≥ 1, in_chans,
    /// img_size]`.
    ///
    /// # Errors
    /// [`Error::InputShape`] otherwise.
    pub fn check_images(&self, dims: [usize; 4]) -> Result<()> {
        check_image_dims(dims, self.in_chans, self.img_size)
    }

    /// The tokens entering block 0: patch embedding, prefix tokens and position embedding in
    /// timm's order.
    ///
    /// # Shapes
    /// `[B, in_chans, H, W]` → `[B, N, C]`; the images pass [`Vit::check_images`].
    pub fn embed_tokens(&self, images: Tensor<4>) -> Tensor<3> {
        let b = images.dims()[0];
        let x = self.patch_embed.forward(images);
        let c = x.dims()[2];
        let prefix: Vec<Tensor<3>> = [&self.cls_token, &self.dist_token]
            .into_iter()
            .flatten()
            .map(|token| token.val().expand([b, 1, c]))
            .collect();
        let pos = self.pos_embed.val();
        if self.no_embed_class {
            Tensor::cat([prefix, vec![x + pos]].concat(), 1)
        } else {
            Tensor::cat([prefix, vec![x]].concat(), 1) + pos
        }
    }

    /// The classifier output from the final tokens: the mean of both heads for distilled
    /// models (timm's inference behaviour).
    ///
    /// # Shapes
    /// `[B, N, C]` → `[B, classes]` (`[B, C]` without classifier).
    pub fn head_tokens(&self, x: Tensor<3>, norm: bool) -> Tensor<2> {
        let x = if norm {
            snnet_ops::layer_norm(&self.norm, self.eps, x)
        } else {
            x
        };
        let [b, _, c] = x.dims();
        let token = |i: usize| x.clone().narrow(1, i, 1).reshape([b, c]);
        let cls = token(0);
        match (&self.head, &self.head_dist) {
            (Some(head), Some(head_dist)) => {
                (head.forward(cls) + head_dist.forward(token(1))).div_scalar(2.0)
            }
            (Some(head), None) => head.forward(cls),
            (None, _) => cls,
        }
    }

    /// The config this model was built from is not stored; this reports its input size.
    pub fn img_size(&self) -> [usize; 2] {
        self.img_size
    }
}

/// A [`Vit`] with its config: the [`Anchor`] implementation.
#[derive(Module, Debug)]
pub struct VitAnchor {
    /// The architecture.
    #[module(skip)]
    pub config: VitConfig,
    /// The model.
    pub model: Vit,
    /// The name (timm name for registry models).
    #[module(skip)]
    pub name: String,
}

impl Anchor for VitAnchor {
    fn num_blocks(&self) -> usize {
        self.model.blocks.len()
    }

    fn check_images(&self, dims: [usize; 4]) -> Result<()> {
        self.model.check_images(dims)
    }

    fn family_config(&self) -> &dyn Family {
        &self.config
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn embed(&self, images: Tensor<4>) -> Activation {
        Activation::Tokens(self.model.embed_tokens(images))
    }

    fn block(&self, index: usize, x: Activation) -> Activation {
        match self.model.blocks.get(index) {
            Some(block) => Activation::Tokens(block.forward(x.into_tokens())),
            None => x,
        }
    }

    fn head(&self, x: Activation, norm: bool) -> Tensor<2> {
        self.model.head_tokens(x.into_tokens(), norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deit_costs_are_exact() {
        for (config, flops, params) in [
            (VitConfig::deit_tiny_patch16_224(), 1_258_411_200, 5_717_416),
            (
                VitConfig::deit_small_patch16_224(),
                4_608_338_304,
                22_050_664,
            ),
            (
                VitConfig::deit_base_patch16_224(),
                17_582_740_224,
                86_567_656,
            ),
        ] {
            assert_eq!(
                config.cost().total(),
                Cost::new(flops, params),
                "{config:?}"
            );
        }
    }

    #[test]
    fn config_validation() {
        let mut c = VitConfig::deit_tiny_patch16_224();
        c.num_heads = 5;
        assert!(matches!(c.validate(), Err(Error::InvalidConfig { .. })));
        let c = VitConfig::deit_tiny_patch16_224().with_img_size([100, 224]);
        assert!(matches!(c.validate(), Err(Error::InvalidConfig { .. })));
        let mut c = VitConfig::deit_tiny_patch16_224();
        c.depth = 0;
        assert!(c.validate().is_err());
        VitConfig::deit3_large_patch16_224().validate().unwrap();
    }
}
