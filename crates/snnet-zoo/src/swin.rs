//! Swin Transformer as in timm's `swin_transformer.py` (timm ≥ 0.9 layout).
//!
//! Field names follow timm's keys: `patch_embed.{proj, norm}`, `layers.{s}.downsample.{norm,
//! reduction}` (patch merging at the *start* of stage `s ≥ 1`), `layers.{s}.blocks.{i}.{norm1,
//! attn.qkv, attn.relative_position_bias_table, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`,
//! `head.fc`. The original Microsoft checkpoints (merging at the *end* of stage `s`, `head.*`,
//! stored `relative_position_index` / `attn_mask` buffers) load through the family's
//! [`Family::weight_remap`] and a layout retry in [`Family::load_model`].
//!
//! Between blocks, activations are tokens `[B, H·W, C]` in timm's row order (h, then w). A stage
//! transition (patch merging) belongs to the first block of the stage it leads into.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_inline_default::serde_inline_default;
use snnet_ops::{Epilogue, Windows};
use snnet_space::builtin::{Arch, SwinArch};
use snnet_space::{AnchorSpec, Layout};

use crate::anchor::check_image_dims;
use crate::anchor::{Activation, Anchor, FeatureInfo};
use crate::config::{Family, ModelIo};
use crate::cost::{self, Cost, ModelCost};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::pretrained::PretrainedConfig;
use crate::vit::Mlp;

/// The architecture of a Swin Transformer, named as timm's arguments.
///
/// ```
/// use snnet_zoo::{Family, SwinConfig};
///
/// let tiny = SwinConfig::swin_tiny_patch4_window7_224();
/// assert_eq!(tiny.cost().total().flops, 4_509_194_496);
/// assert_eq!(tiny.cost().total().params, 28_288_354);
/// ```
#[serde_inline_default]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwinConfig {
    /// Input image size `[height, width]`.
    pub img_size: [usize; 2],
    /// Patch size (square).
    #[serde_inline_default(4)]
    pub patch_size: usize,
    /// Input channels.
    #[serde_inline_default(3)]
    pub in_chans: usize,
    /// Classifier outputs; 0 for pooled features.
    pub num_classes: usize,
    /// Stage 0 width; stage `s` has `embed_dim · 2^s`.
    pub embed_dim: usize,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Attention heads per stage.
    pub num_heads: Vec<usize>,
    /// Window size (square).
    pub window_size: usize,
    /// MLP width over block width.
    #[serde_inline_default(4.0)]
    pub mlp_ratio: f64,
    /// Whether the qkv projection has a bias.
    #[serde_inline_default(true)]
    pub qkv_bias: bool,
    /// LayerNorm epsilon (timm: 1e-5).
    #[serde_inline_default(1e-5)]
    pub eps: f64,
}

/// The geometry of one block: its stage's grid, window and shift (per axis, as timm computes
/// them: a window no larger than the grid, no shift where the window covers the grid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BlockGeometry {
    stage: usize,
    grid: [usize; 2],
    window: [usize; 2],
    shift: [usize; 2],
}

impl SwinConfig {
    fn base(embed_dim: usize, depths: [usize; 4], heads: [usize; 4]) -> Self {
        Self {
            img_size: [224, 224],
            patch_size: 4,
            in_chans: 3,
            num_classes: 1000,
            embed_dim,
            depths: depths.to_vec(),
            num_heads: heads.to_vec(),
            window_size: 7,
            mlp_ratio: 4.0,
            qkv_bias: true,
            eps: 1e-5,
        }
    }

    crate::config::timm_constructors! {
        SwinArch;
        swin_tiny_patch4_window7_224 => SWIN_TINY_PATCH4_WINDOW7_224,
        swin_small_patch4_window7_224 => SWIN_SMALL_PATCH4_WINDOW7_224,
        swin_base_patch4_window7_224 => SWIN_BASE_PATCH4_WINDOW7_224,
        swin_base_patch4_window12_384 => SWIN_BASE_PATCH4_WINDOW12_384,
    }

    /// Width of stage `s`.
    pub fn stage_dim(&self, stage: usize) -> usize {
        self.embed_dim << stage
    }

    /// Token grid of stage `s`.
    pub fn stage_grid(&self, stage: usize) -> [usize; 2] {
        self.img_size.map(|s| s / self.patch_size / (1 << stage))
    }

    fn mlp_hidden(&self, dim: usize) -> usize {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        #[allow(clippy::cast_precision_loss)]
        let hidden = (dim as f64 * self.mlp_ratio) as usize;
        hidden
    }

    fn geometry(&self) -> Vec<BlockGeometry> {
        let mut out = Vec::new();
        for (stage, &depth) in self.depths.iter().enumerate() {
            let grid = self.stage_grid(stage);
            let window = grid.map(|g| g.min(self.window_size));
            for i in 0..depth {
                let shift = [0, 1].map(|a| {
                    if i % 2 == 1 && grid[a] > self.window_size {
                        self.window_size / 2
                    } else {
                        0
                    }
                });
                out.push(BlockGeometry {
                    stage,
                    grid,
                    window,
                    shift,
                });
            }
        }
        out
    }

    /// Builds the model with random weights (load weights before use).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn init(&self, device: &Device) -> Result<Swin> {
        self.validate()?;
        let norm = |d: usize| LayerNormConfig::new(d).with_epsilon(self.eps).init(device);
        let geometry = self.geometry();
        let mut layers: Vec<SwinStage> = (0..self.depths.len())
            .map(|stage| SwinStage {
                downsample: (stage > 0).then(|| {
                    let prev = self.stage_dim(stage - 1);
                    PatchMerging {
                        norm: norm(4 * prev),
                        reduction: LinearConfig::new(4 * prev, 2 * prev)
                            .with_bias(false)
                            .init(device),
                    }
                }),
                blocks: Vec::new(),
            })
            .collect();
        for g in geometry {
            let dim = self.stage_dim(g.stage);
            let heads = self.num_heads[g.stage];
            // timm sizes the table for the block's actual window (shrunk to small grids).
            let table_rows = (2 * g.window[0] - 1) * (2 * g.window[1] - 1);
            let block = SwinBlock {
                norm1: norm(dim),
                attn: WindowAttention {
                    qkv: LinearConfig::new(dim, 3 * dim)
                        .with_bias(self.qkv_bias)
                        .init(device),
                    proj: LinearConfig::new(dim, dim).init(device),
                    relative_position_bias_table: Param::from_tensor(Tensor::zeros(
                        [table_rows, heads],
                        device,
                    )),
                    relative_position_index: relative_position_index(g.window, device),
                    num_heads: heads,
                },
                norm2: norm(dim),
                mlp: Mlp {
                    fc1: LinearConfig::new(dim, self.mlp_hidden(dim)).init(device),
                    fc2: LinearConfig::new(self.mlp_hidden(dim), dim).init(device),
                },
                attn_mask: (g.shift != [0, 0])
                    .then(|| shifted_window_mask(g.grid, g.window, g.shift, device)),
                grid_h: g.grid[0],
                grid_w: g.grid[1],
                window_h: g.window[0],
                window_w: g.window[1],
                shift_h: g.shift[0],
                shift_w: g.shift[1],
            };
            layers[g.stage].blocks.push(block);
        }
        Ok(Swin {
            patch_embed: SwinPatchEmbed {
                proj: Conv2dConfig::new(
                    [self.in_chans, self.embed_dim],
                    [self.patch_size, self.patch_size],
                )
                .with_stride([self.patch_size, self.patch_size])
                .init(device),
                norm: norm(self.embed_dim),
            },
            layers,
            norm: norm(self.stage_dim(self.depths.len() - 1)),
            head: SwinHead {
                fc: (self.num_classes > 0).then(|| {
                    LinearConfig::new(self.stage_dim(self.depths.len() - 1), self.num_classes)
                        .init(device)
                }),
            },
            img_size: self.img_size,
            in_chans: self.in_chans,
        })
    }
}

impl From<SwinArch> for SwinConfig {
    /// A built-in anchor's architecture, on timm's defaults (4² patches, MLP ratio 4, 1,000
    /// classes).
    fn from(arch: SwinArch) -> Self {
        let mut config = Self::base(arch.embed_dim, arch.depths, arch.num_heads);
        config.img_size = [arch.img_size; 2];
        config.window_size = arch.window_size;
        config
    }
}

impl Family for SwinConfig {
    fn family(&self) -> &'static str {
        "swin"
    }

    /// Checks that the config describes a model this implementation runs exactly.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::invalid_config(self.family(), reason));
        if self.depths.is_empty() || self.depths.len() != self.num_heads.len() {
            return invalid("depths and num_heads must be non-empty and of equal length".into());
        }
        if self.depths.contains(&0) || self.num_heads.contains(&0) {
            return invalid("every stage needs blocks and heads".into());
        }
        use crate::limits::{self, check};
        check(
            "swin",
            "the number of stages",
            self.depths.len(),
            limits::MAX_STAGES,
            "MAX_STAGES",
        )?;
        for &d in &self.depths {
            check("swin", "a stage's depth", d, limits::MAX_DEPTH, "MAX_DEPTH")?;
        }
        check(
            "swin",
            "depth",
            self.depths.iter().sum(),
            limits::MAX_DEPTH,
            "MAX_DEPTH",
        )?;
        check(
            "swin",
            "patch_size",
            self.patch_size,
            limits::MAX_MODEL_IMAGE_SIDE,
            "MAX_MODEL_IMAGE_SIDE",
        )?;
        check(
            "swin",
            "window_size",
            self.window_size,
            limits::MAX_MODEL_IMAGE_SIDE,
            "MAX_MODEL_IMAGE_SIDE",
        )?;
        // The last stage is the widest (embed_dim · 2^(stages − 1)); stages ≤ 8 keeps the shift
        // in range.
        let widest = self
            .embed_dim
            .checked_shl((self.depths.len() - 1) as u32)
            .unwrap_or(usize::MAX);
        check(
            "swin",
            "embed_dim · 2^(stages − 1)",
            widest,
            limits::MAX_WIDTH,
            "MAX_WIDTH",
        )?;
        limits::check_io("swin", self.in_chans, self.num_classes, self.img_size)?;
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) {
            return invalid(format!(
                "mlp_ratio must be positive, got {}",
                self.mlp_ratio
            ));
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let hidden = |dim: usize| (dim as f64 * self.mlp_ratio) as usize;
        if hidden(self.embed_dim) == 0 {
            return invalid(format!(
                "mlp_ratio {} gives stage 0 an MLP hidden width of 0",
                self.mlp_ratio
            ));
        }
        check(
            "swin",
            "the MLP hidden width",
            hidden(widest),
            limits::MAX_HIDDEN,
            "MAX_HIDDEN",
        )?;
        if self.embed_dim == 0
            || self.patch_size == 0
            || self.window_size == 0
            || self.in_chans == 0
        {
            return invalid(
                "embed_dim, patch_size, window_size and in_chans must be positive".into(),
            );
        }
        for (stage, &heads) in self.num_heads.iter().enumerate() {
            if !self.stage_dim(stage).is_multiple_of(heads) {
                return invalid(format!("stage {stage} width is not divisible by its heads"));
            }
        }
        let last = self.depths.len() - 1;
        let scale = self.patch_size << last;
        let stage0_tokens =
            (self.img_size[0] / self.patch_size) * (self.img_size[1] / self.patch_size);
        check(
            "swin",
            "the number of stage-1 tokens",
            stage0_tokens,
            limits::MAX_TOKENS,
            "MAX_TOKENS",
        )?;
        if self
            .img_size
            .iter()
            .any(|&s| s == 0 || !s.is_multiple_of(scale))
        {
            return invalid(format!(
                "img_size {:?} must be a multiple of patch_size · 2^(stages-1) = {scale}",
                self.img_size
            ));
        }
        for g in self.geometry() {
            if g.grid
                .iter()
                .zip(g.window)
                .any(|(&s, w)| !s.is_multiple_of(w))
            {
                return invalid(format!(
                    "stage {} grid {:?} is not a multiple of the window {:?} (padding is not \
                     supported)",
                    g.stage, g.grid, g.window
                ));
            }
        }
        if !(self.eps > 0.0 && self.eps.is_finite() && self.mlp_ratio > 0.0) {
            return invalid("eps and mlp_ratio must be positive".into());
        }
        Ok(())
    }

    /// The anchor spec for the stitch space.
    fn spec(&self, name: &str) -> AnchorSpec {
        let stages: Vec<(usize, usize)> = self
            .depths
            .iter()
            .enumerate()
            .map(|(s, &d)| (d, self.stage_dim(s)))
            .collect();
        AnchorSpec::hierarchical(name, Layout::Tokens, &stages)
    }

    /// Per-block output info (timm's `feature_info`, one entry per global block).
    fn feature_info(&self) -> Vec<FeatureInfo> {
        self.geometry()
            .into_iter()
            .enumerate()
            .map(|(index, g)| {
                let i = index - self.depths[..g.stage].iter().sum::<usize>();
                FeatureInfo {
                    index,
                    stage: g.stage,
                    module: format!("layers.{}.blocks.{i}", g.stage),
                    channels: self.stage_dim(g.stage),
                    layout: Layout::Tokens,
                    grid: g.grid,
                    prefix_tokens: 0,
                    reduction: self.patch_size << g.stage,
                }
            })
            .collect()
    }

    /// FLOPs and parameters per part for one image (fvcore). Block: `L·C·(10 + 2N + 12C)` for
    /// `L` tokens, `C` width, windows of `N` tokens (`L·C·(108 + 12C)` at window 7); patch
    /// merging `5LC + 2LC²` over the previous stage's `L`, `C`, counted in the first block of the
    /// stage it leads into.
    fn cost(&self) -> ModelCost {
        let stem_grid = self.stage_grid(0);
        let l0 = (stem_grid[0] * stem_grid[1]) as u64;
        let c0 = self.embed_dim as u64;
        let patch_in = (self.in_chans * self.patch_size * self.patch_size) as u64;
        let stem = cost::linear(l0, patch_in, c0, true) + cost::layer_norm(l0, c0);
        let mut first_in_stage = vec![true; self.depths.len()];
        let blocks = self
            .geometry()
            .into_iter()
            .map(|g| {
                let l = (g.grid[0] * g.grid[1]) as u64;
                let c = self.stage_dim(g.stage) as u64;
                let n = (g.window[0] * g.window[1]) as u64;
                let heads = self.num_heads[g.stage] as u64;
                let h = self.mlp_hidden(c as usize) as u64;
                let table = ((2 * g.window[0] - 1) * (2 * g.window[1] - 1)) as u64;
                let block = cost::layer_norm(l, c)
                    + cost::linear(l, c, 3 * c, self.qkv_bias)
                    + Cost::new(2 * l * n * c, table * heads)
                    + cost::linear(l, c, c, true)
                    + cost::layer_norm(l, c)
                    + cost::linear(l, c, h, true)
                    + cost::linear(l, h, c, true);
                let merge = if g.stage > 0 && first_in_stage[g.stage] {
                    let prev = self.stage_grid(g.stage - 1);
                    let (lp, cp) = ((prev[0] * prev[1]) as u64, c / 2);
                    // LayerNorm over L_prev/4 tokens of 4·C_prev = 5·L_prev·C_prev, then 4C → 2C.
                    cost::layer_norm(lp / 4, 4 * cp) + cost::linear(lp / 4, 4 * cp, 2 * cp, false)
                } else {
                    Cost::ZERO
                };
                first_in_stage[g.stage] = false;
                (block + merge, merge)
            })
            .collect::<Vec<_>>();
        let (blocks, transitions) = blocks.into_iter().unzip();
        let last = self.depths.len() - 1;
        let lg = self.stage_grid(last);
        let (ll, cl) = ((lg[0] * lg[1]) as u64, self.stage_dim(last) as u64);
        let head = if self.num_classes == 0 {
            Cost::ZERO
        } else {
            cost::linear(1, cl, self.num_classes as u64, true)
        };
        ModelCost {
            stem,
            tokens: Cost::ZERO,
            blocks,
            norm: cost::layer_norm(ll, cl),
            head,
            transitions,
        }
    }

    fn io(&self) -> ModelIo {
        ModelIo::new(self.in_chans, self.img_size, self.num_classes)
    }

    /// timm's Swin configs: ImageNet mean/std, bicubic, crop 0.9 (1.0 at 384²).
    fn builtin_pretrained(&self, _arch: &Arch) -> PretrainedConfig {
        let mut pretrained = self.io().imagenet();
        if self.img_size[0] >= 384 {
            pretrained.crop_pct = 1.0;
        }
        pretrained
    }

    /// The original Microsoft checkpoints name the classifier `head.*` where timm has
    /// `head.fc.*` (the `downsample` move is a layout retry, see [`Family::layout_retry`]).
    fn weight_remap(&self) -> &'static [(&'static str, &'static str)] {
        &[(r"^head\.(weight|bias)$", "head.fc.$1")]
    }

    fn init_model(&self, name: &str, device: &Device) -> Result<Model> {
        Ok(Model::Swin(SwinAnchor {
            config: self.clone(),
            model: self.init(device)?,
            name: name.to_owned(),
        }))
    }

    /// A checkpoint in the original Microsoft layout stores patch merging at the end of stage
    /// `s` (`layers.{s}.downsample`) where timm has it at the start of stage `s + 1`, so the
    /// timm-layout attempt lacks or mis-shapes a `downsample` tensor: then the load is retried
    /// with the merging keys moved one stage on.
    fn layout_retry(&self, failed: &Error) -> Vec<(String, String)> {
        let original_layout = match failed {
            Error::MissingTensors { keys, .. } => keys.iter().any(|k| k.contains(".downsample.")),
            Error::ShapeMismatch { key, .. } => key.contains(".downsample."),
            _ => false,
        };
        if !original_layout {
            return Vec::new();
        }
        // Shift the last stage first so that a renamed key is not renamed again.
        (0..self.depths.len().saturating_sub(1))
            .rev()
            .map(|s| {
                (
                    format!(r"^layers\.{s}\.downsample\."),
                    format!("layers.{}.downsample.", s + 1),
                )
            })
            .collect()
    }
}

/// timm `get_relative_position_index(win_h, win_w)`: `[N·N]` indices into the
/// `(2·win_h − 1)(2·win_w − 1)`-row bias table.
fn relative_position_index(window: [usize; 2], device: &Device) -> Tensor<1, Int> {
    let [wh, ww] = window;
    let n = wh * ww;
    let span = 2 * ww as i64 - 1;
    let mut index = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let dh = (i / ww) as i64 - (j / ww) as i64 + wh as i64 - 1;
            let dw = (i % ww) as i64 - (j % ww) as i64 + ww as i64 - 1;
            index.push(dh * span + dw);
        }
    }
    Tensor::from_data(TensorData::new(index, [n * n]), device)
}

/// timm's shifted-window attention mask: `[nW, N, N]`, 0 within a region, −100 across.
fn shifted_window_mask(
    grid: [usize; 2],
    window: [usize; 2],
    shift: [usize; 2],
    device: &Device,
) -> Tensor<3> {
    let region = |p: usize, size: usize, ws: usize, s: usize| -> usize {
        if p < size - ws {
            0
        } else if p < size - s {
            1
        } else {
            2
        }
    };
    let [h, w] = grid;
    let [wh, ww] = window;
    let (nh, nw) = (h / wh, w / ww);
    let n = wh * ww;
    let mut labels = vec![0usize; nh * nw * n];
    for y in 0..h {
        for x in 0..w {
            let win = (y / wh) * nw + x / ww;
            let pos = (y % wh) * ww + x % ww;
            labels[win * n + pos] = region(y, h, wh, shift[0]) * 3 + region(x, w, ww, shift[1]);
        }
    }
    let mut mask = vec![0f32; nh * nw * n * n];
    for win in 0..nh * nw {
        for i in 0..n {
            for j in 0..n {
                if labels[win * n + i] != labels[win * n + j] {
                    mask[(win * n + i) * n + j] = -100.0;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(mask, [nh * nw, n, n]), device)
}

/// Patch embedding: `patch × patch` convolution, then LayerNorm.
#[derive(Module, Debug)]
pub struct SwinPatchEmbed {
    /// timm `patch_embed.proj`.
    pub proj: Conv2d,
    /// timm `patch_embed.norm`.
    pub norm: LayerNorm,
}

/// Patch merging: 2×2 neighbours concatenated in timm's order, LayerNorm, linear `4C → 2C`.
#[derive(Module, Debug)]
pub struct PatchMerging {
    /// `[4C]`.
    pub norm: LayerNorm,
    /// `[4C → 2C]`, no bias.
    pub reduction: Linear,
}

impl PatchMerging {
    /// # Shapes
    /// `[B, H·W, C]` → `[B, H/2 · W/2, 2C]`.
    pub fn forward(&self, x: Tensor<3>, grid: [usize; 2]) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let [h, w] = grid;
        // [x(0::2, 0::2), x(1::2, 0::2), x(0::2, 1::2), x(1::2, 1::2)] along channels.
        let x = x
            .reshape([b, h / 2, 2, w / 2, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([b, (h / 2) * (w / 2), 4 * c]);
        self.reduction.forward(self.norm.forward(x))
    }
}

/// Window multi-head self-attention with a relative position bias.
#[derive(Module, Debug)]
pub struct WindowAttention {
    /// `[C → 3C]`.
    pub qkv: Linear,
    /// `[C → C]`.
    pub proj: Linear,
    /// `[(2·window − 1)², heads]`.
    pub relative_position_bias_table: Param<Tensor<2>>,
    /// `[N·N]` rows of the table (recomputed, never stored).
    relative_position_index: Tensor<1, Int>,
    /// Heads.
    pub num_heads: usize,
}

/// A Swin block: (shifted) window attention and MLP, pre-norm residuals.
#[derive(Module, Debug)]
pub struct SwinBlock {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Window attention.
    pub attn: WindowAttention,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
    attn_mask: Option<Tensor<3>>,
    grid_h: usize,
    grid_w: usize,
    window_h: usize,
    window_w: usize,
    shift_h: usize,
    shift_w: usize,
}

impl SwinBlock {
    /// # Shapes
    /// `[B, H·W, C]` → `[B, H·W, C]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let geometry = Windows {
            grid: [self.grid_h, self.grid_w],
            window: [self.window_h, self.window_w],
            shift: [self.shift_h, self.shift_w],
        };
        let (windows, n) = (geometry.count(), geometry.size());
        let heads = self.attn.num_heads;

        // Windows: [B, nW, N, C], window-major in timm's order.
        let y = snnet_ops::window_partition(self.norm1.forward(x.clone()), geometry);
        let qkv = snnet_ops::linear(y, &self.attn.qkv, Epilogue::None, None);
        // Bias [W, heads, N, N]: relative position bias, plus the shift mask per window
        // (W = nW when shifted, else 1).
        let table = self.attn.relative_position_bias_table.val();
        let bias = table
            .select(0, self.attn.relative_position_index.clone())
            .reshape([n, n, heads])
            .permute([2, 0, 1])
            .reshape([1, heads, n, n]);
        let bias = match &self.attn_mask {
            Some(mask) => bias + mask.clone().reshape([windows, 1, n, n]),
            None => bias,
        };
        let y = snnet_ops::window_attention(qkv, heads, bias);
        let y = snnet_ops::linear(y, &self.attn.proj, Epilogue::None, None);
        // Back to the grid, rolled back, plus the shortcut: [B, H·W, C].
        let x = snnet_ops::window_merge_add(y, x, geometry);
        let h = self.norm2.forward(x.clone());
        self.mlp.forward_add(h, Some(x))
    }
}

/// One stage: optional patch merging, then blocks.
#[derive(Module, Debug)]
pub struct SwinStage {
    /// timm ≥ 0.9 `layers.{s}.downsample` (stages `s ≥ 1`).
    pub downsample: Option<PatchMerging>,
    /// The blocks.
    pub blocks: Vec<SwinBlock>,
}

/// The classifier, timm `head.fc`.
#[derive(Module, Debug)]
pub struct SwinHead {
    /// `[C → classes]`.
    pub fc: Option<Linear>,
}

/// A Swin Transformer.
#[derive(Module, Debug)]
pub struct Swin {
    /// Patch embedding.
    pub patch_embed: SwinPatchEmbed,
    /// The stages.
    pub layers: Vec<SwinStage>,
    /// Final norm.
    pub norm: LayerNorm,
    /// Classifier.
    pub head: SwinHead,
    img_size: [usize; 2],
    in_chans: usize,
}

/// A [`Swin`] with its config: the [`Anchor`] implementation.
#[derive(Module, Debug)]
pub struct SwinAnchor {
    /// The architecture.
    #[module(skip)]
    pub config: SwinConfig,
    /// The model.
    pub model: Swin,
    /// The name.
    #[module(skip)]
    pub name: String,
}

impl SwinAnchor {
    /// `(stage, index in stage)` of a global block.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        let mut rest = index;
        for (stage, &depth) in self.config.depths.iter().enumerate() {
            if rest < depth {
                return Some((stage, rest));
            }
            rest -= depth;
        }
        None
    }
}

impl Anchor for SwinAnchor {
    fn num_blocks(&self) -> usize {
        self.config.depths.iter().sum()
    }

    fn check_images(&self, dims: [usize; 4]) -> Result<()> {
        check_image_dims(dims, self.model.in_chans, self.model.img_size)
    }

    fn family_config(&self) -> &dyn Family {
        &self.config
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn embed(&self, images: Tensor<4>) -> Activation {
        let x = self.model.patch_embed.proj.forward(images);
        let [b, c, gh, gw] = x.dims();
        let x = x.reshape([b, c, gh * gw]).swap_dims(1, 2);
        Activation::Tokens(self.model.patch_embed.norm.forward(x))
    }

    fn block(&self, index: usize, x: Activation) -> Activation {
        let Some((stage, i)) = self.locate(index) else {
            return x;
        };
        let mut x = x.into_tokens();
        let layer = &self.model.layers[stage];
        // Block (s, 0) of a later stage starts with patch merging from stage s - 1.
        if i == 0
            && let Some(merge) = &layer.downsample
        {
            x = merge.forward(x, self.config.stage_grid(stage - 1));
        }
        Activation::Tokens(layer.blocks[i].forward(x))
    }

    fn head(&self, x: Activation, norm: bool) -> Tensor<2> {
        let x = x.into_tokens();
        let x = if norm { self.model.norm.forward(x) } else { x };
        let [b, _, c] = x.dims();
        let pooled = x.mean_dim(1).reshape([b, c]);
        match &self.model.head.fc {
            Some(fc) => fc.forward(pooled),
            None => pooled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact() {
        for (config, flops, params) in [
            (
                SwinConfig::swin_tiny_patch4_window7_224(),
                4_509_194_496,
                28_288_354,
            ),
            (
                SwinConfig::swin_small_patch4_window7_224(),
                8_768_534_784,
                49_606_258,
            ),
            (
                SwinConfig::swin_base_patch4_window7_224(),
                15_467_826_176,
                87_768_224,
            ),
        ] {
            assert_eq!(config.cost().total(), Cost::new(flops, params));
        }
    }

    #[test]
    fn geometry_follows_timm() {
        let g = SwinConfig::swin_tiny_patch4_window7_224().geometry();
        assert_eq!(g.len(), 12);
        assert_eq!((g[0].grid, g[0].shift), ([56, 56], [0, 0]));
        assert_eq!(g[1].shift, [3, 3]);
        // Stage 3 (7×7) is covered by one window: no shift.
        assert_eq!(
            (g[11].grid, g[11].window, g[11].shift),
            ([7, 7], [7, 7], [0, 0])
        );
        SwinConfig::swin_base_patch4_window12_384()
            .validate()
            .unwrap();
    }
}
