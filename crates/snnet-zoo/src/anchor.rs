//! The interface stitching needs from every anchor family.

use std::ops::Range;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use snnet_space::{AnchorSpec, Layout};

use crate::config::Family;
use crate::cost::ModelCost;
use crate::error::{Error, Result};

/// An activation between blocks: tokens or a feature map.
///
/// # Shapes
/// - `Tokens`: `[batch, tokens, channels]` (prefix tokens such as cls first, then patches in
///   row-major order).
/// - `Map`: `[batch, channels, height, width]`.
#[derive(Debug, Clone)]
pub enum Activation {
    /// Token sequences `[B, N, C]`.
    Tokens(Tensor<3>),
    /// Feature maps `[B, C, H, W]`.
    Map(Tensor<4>),
}

impl Activation {
    /// The activation's layout.
    pub fn layout(&self) -> Layout {
        match self {
            Self::Tokens(_) => Layout::Tokens,
            Self::Map(_) => Layout::Map,
        }
    }

    /// The channel count (last dim of tokens, dim 1 of maps).
    pub fn channels(&self) -> usize {
        match self {
            Self::Tokens(t) => t.dims()[2],
            Self::Map(m) => m.dims()[1],
        }
    }

    /// The token tensor. A feature map reads as its pixels in row-major order, as timm's
    /// `flatten(2).transpose(1, 2)` does: `[B, C, H, W]` → `[B, H·W, C]`.
    pub fn into_tokens(self) -> Tensor<3> {
        match self {
            Self::Tokens(t) => t,
            Self::Map(m) => m.flatten::<3>(2, 3).swap_dims(1, 2),
        }
    }

    /// The feature-map tensor. Tokens read as the pixels of `grid` in row-major order:
    /// `[B, H·W, C]` → `[B, C, H, W]`.
    ///
    /// # Shapes
    /// Tokens must number `grid[0] · grid[1]` (Burn's reshape checks it).
    pub fn into_map(self, grid: [usize; 2]) -> Tensor<4> {
        match self {
            Self::Map(m) => m,
            Self::Tokens(t) => {
                let [b, _, c] = t.dims();
                t.swap_dims(1, 2).reshape([b, c, grid[0], grid[1]])
            }
        }
    }
}

/// Checks that `dims` is a batch of images a model of `in_chans` channels and `img_size`
/// takes: `[B ≥ 1, in_chans, img_size[0], img_size[1]]`.
///
/// # Errors
/// [`Error::InputShape`] otherwise.
pub(crate) fn check_image_dims(
    dims: [usize; 4],
    in_chans: usize,
    img_size: [usize; 2],
) -> Result<()> {
    let [b, chans, h, w] = dims;
    if chans != in_chans || [h, w] != img_size || b == 0 {
        return Err(Error::InputShape {
            expected: format!("[batch, {in_chans}, {}, {}]", img_size[0], img_size[1]),
            found: dims.to_vec(),
        });
    }
    Ok(())
}

/// What one block outputs: timm's `feature_info`, per block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FeatureInfo {
    /// The global block index.
    pub index: usize,
    /// The stage the block belongs to.
    pub stage: usize,
    /// The module path in timm's checkpoint (`blocks.3`, `layers.2.blocks.1`, `layer3.0`).
    pub module: String,
    /// Channels of the block's output.
    pub channels: usize,
    /// Token or map layout.
    pub layout: Layout,
    /// The spatial grid `[height, width]` of patches or pixels at the block's output.
    pub grid: [usize; 2],
    /// Prefix tokens (cls, dist) in front of the grid's tokens; 0 for maps.
    pub prefix_tokens: usize,
    /// The input pixels per grid step (timm's `reduction`).
    pub reduction: usize,
}

/// An anchor: a model that runs stem, blocks and head separately, so that a stitched path can
/// run some of one anchor's blocks and some of another's.
///
/// Blocks are numbered globally over all stages. A stage transition (patch merging, strided
/// downsampling) belongs to the first block of the stage it leads into, so the output of every
/// block of stage `s` has stage `s`'s width — the activation a stitching layer at stage `s` reads
/// or writes.
pub trait Anchor {
    /// The architecture the anchor was built from; [`Anchor::spec`], [`Anchor::feature_info`]
    /// and [`Anchor::cost`] follow from it.
    fn family_config(&self) -> &dyn Family;

    /// The anchor's name (the timm name for registry models).
    fn name(&self) -> &str;

    /// The anchor's shape for the stitch space.
    fn spec(&self) -> AnchorSpec {
        self.family_config().spec(self.name())
    }

    /// Per-block output info.
    fn feature_info(&self) -> Vec<FeatureInfo> {
        self.family_config().feature_info()
    }

    /// Number of blocks over all stages.
    fn num_blocks(&self) -> usize;

    /// Checks that `dims` is a batch of images this anchor embeds (batch ≥ 1, its channels,
    /// its input size): the one check on the way in, made by every entry point
    /// ([`Anchor::forward`], the SN-Net's forward and least-squares init) before
    /// [`Anchor::embed`].
    ///
    /// # Errors
    /// [`Error::InputShape`] when the images do not match the model's input size or channels,
    /// or the batch is empty.
    fn check_images(&self, dims: [usize; 4]) -> Result<()>;

    /// Embeds images (`[B, C, H, W]`, normalised) into the input of block 0.
    ///
    /// # Shapes
    /// `images` passes [`Anchor::check_images`] (unchecked here, as in Burn's modules: a
    /// mismatched tensor fails in Burn's own shape checks).
    fn embed(&self, images: Tensor<4>) -> Activation;

    /// Runs global block `index` (`index < num_blocks()`; a block past the last runs nothing
    /// and returns `x`).
    ///
    /// # Shapes
    /// `x` is the activation entering block `index`: what [`Anchor::embed`] or block
    /// `index - 1` of this anchor returns, or a stitching layer's output of the same shape
    /// (the plan checks every junction's shape once, when it is built).
    fn block(&self, index: usize, x: Activation) -> Activation;

    /// Runs the blocks in `range`, in order.
    ///
    /// # Shapes
    /// As [`Anchor::block`], for block `range.start`.
    fn blocks(&self, range: Range<usize>, x: Activation) -> Activation {
        self.blocks_with_states(range, x, &mut |_, _| {})
    }

    /// Runs the blocks in `range`, in order, handing every state on the way to `visit`: the
    /// input of global block `s` as state `s` for `s` in `range`, then the output of the last
    /// block as state `range.end`. The one block loop: [`Anchor::blocks`], the least-squares
    /// init's feature collection and per-block feature export all run through it.
    ///
    /// # Shapes
    /// As [`Anchor::block`], for block `range.start`.
    fn blocks_with_states(
        &self,
        range: Range<usize>,
        x: Activation,
        visit: &mut dyn FnMut(usize, &Activation),
    ) -> Activation {
        let mut x = x;
        let end = range.end;
        for index in range {
            visit(index, &x);
            x = self.block(index, x);
        }
        visit(end, &x);
        x
    }

    /// Runs the head on the output of the last block: the final norm when `norm` is set, then
    /// pooling and the classifier.
    ///
    /// # Shapes
    /// `x`: the last block's output → `[B, num_classes]` (`[B, channels]` pooled features for
    /// a model without classifier).
    fn head(&self, x: Activation, norm: bool) -> Tensor<2>;

    /// The whole model, as timm runs it: embed, every block, head with the final norm.
    ///
    /// # Errors
    /// As [`Anchor::check_images`], the one check.
    fn forward(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        self.check_images(images.dims())?;
        let x = self.embed(images);
        let x = self.blocks(0..self.num_blocks(), x);
        Ok(self.head(x, true))
    }

    /// FLOPs and parameters per part, for one image of the model's input size.
    fn cost(&self) -> ModelCost {
        self.family_config().cost()
    }
}
