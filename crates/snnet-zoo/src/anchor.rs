//! The interface stitching needs from every anchor family.

use std::ops::Range;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use snnet_space::{AnchorSpec, Layout};

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

    /// The token tensor.
    ///
    /// # Errors
    /// [`Error::Layout`] for a feature map.
    pub fn into_tokens(self) -> Result<Tensor<3>> {
        match self {
            Self::Tokens(t) => Ok(t),
            Self::Map(_) => Err(Error::Layout {
                expected: Layout::Tokens,
                found: Layout::Map,
            }),
        }
    }

    /// The token tensor, checked to be `[B, tokens, channels]` with `B ≥ 1`.
    ///
    /// # Errors
    /// [`Error::Layout`] for a feature map, [`Error::InputShape`] for other dimensions.
    pub fn into_tokens_of(self, tokens: usize, channels: usize) -> Result<Tensor<3>> {
        let t = self.into_tokens()?;
        let [b, n, c] = t.dims();
        if b == 0 || n != tokens || c != channels {
            return Err(Error::InputShape {
                expected: format!("tokens [batch, {tokens}, {channels}]"),
                found: vec![b, n, c],
            });
        }
        Ok(t)
    }

    /// The feature-map tensor, checked to have `channels` channels (and, when given, the
    /// spatial `grid`) with `B ≥ 1`.
    ///
    /// # Errors
    /// [`Error::Layout`] for tokens, [`Error::InputShape`] for other dimensions.
    pub fn into_map_of(self, channels: usize, grid: Option<[usize; 2]>) -> Result<Tensor<4>> {
        let m = self.into_map()?;
        let [b, c, h, w] = m.dims();
        if b == 0 || c != channels || grid.is_some_and(|g| g != [h, w]) || h == 0 || w == 0 {
            return Err(Error::InputShape {
                expected: match grid {
                    Some([gh, gw]) => format!("a map [batch, {channels}, {gh}, {gw}]"),
                    None => format!("a map [batch, {channels}, H, W]"),
                },
                found: vec![b, c, h, w],
            });
        }
        Ok(m)
    }

    /// The feature-map tensor.
    ///
    /// # Errors
    /// [`Error::Layout`] for tokens.
    pub fn into_map(self) -> Result<Tensor<4>> {
        match self {
            Self::Map(m) => Ok(m),
            Self::Tokens(_) => Err(Error::Layout {
                expected: Layout::Map,
                found: Layout::Tokens,
            }),
        }
    }
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
    /// The anchor's shape for the stitch space.
    fn spec(&self) -> AnchorSpec;

    /// Per-block output info.
    fn feature_info(&self) -> Vec<FeatureInfo>;

    /// Number of blocks over all stages.
    fn num_blocks(&self) -> usize;

    /// Embeds images (`[B, C, H, W]`, normalised) into the input of block 0.
    ///
    /// # Errors
    /// [`Error::InputShape`] when the images do not match the model's input size or channels.
    fn embed(&self, images: Tensor<4>) -> Result<Activation>;

    /// Runs global block `index`.
    ///
    /// # Errors
    /// [`Error::BlockOutOfRange`], [`Error::Layout`], and [`Error::InputShape`] when the
    /// activation's dimensions are not those the block takes (a wrong width never reaches the
    /// tensor kernels).
    fn block(&self, index: usize, x: Activation) -> Result<Activation>;

    /// Runs the blocks in `range`, in order.
    ///
    /// # Errors
    /// As [`Anchor::block`].
    fn blocks(&self, range: Range<usize>, x: Activation) -> Result<Activation> {
        self.blocks_with_states(range, x, &mut |_, _| Ok(()))
    }

    /// Runs the blocks in `range`, in order, handing every state on the way to `visit`: the
    /// input of global block `s` as state `s` for `s` in `range`, then the output of the last
    /// block as state `range.end`. The one block loop: [`Anchor::blocks`], the least-squares
    /// init's feature collection and per-block feature export all run through it.
    ///
    /// # Errors
    /// As [`Anchor::block`], and whatever `visit` returns.
    fn blocks_with_states(
        &self,
        range: Range<usize>,
        x: Activation,
        visit: &mut dyn FnMut(usize, &Activation) -> Result<()>,
    ) -> Result<Activation> {
        let mut x = x;
        let end = range.end;
        for index in range {
            visit(index, &x)?;
            x = self.block(index, x)?;
        }
        visit(end, &x)?;
        Ok(x)
    }

    /// Runs the head on the output of the last block: the final norm when `norm` is set, then
    /// pooling and the classifier.
    ///
    /// # Shapes
    /// Returns `[B, num_classes]` (`[B, channels]` pooled features for a model without
    /// classifier).
    ///
    /// # Errors
    /// [`Error::Layout`] and [`Error::InputShape`].
    fn head(&self, x: Activation, norm: bool) -> Result<Tensor<2>>;

    /// The whole model, as timm runs it: embed, every block, head with the final norm.
    ///
    /// # Errors
    /// As [`Anchor::embed`].
    fn forward(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        let x = self.embed(images)?;
        let x = self.blocks(0..self.num_blocks(), x)?;
        self.head(x, true)
    }

    /// FLOPs and parameters per part, for one image of the model's input size.
    fn cost(&self) -> ModelCost;
}
