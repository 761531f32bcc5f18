//! FLOPs and parameter counts in the fvcore convention, from a model's config alone.
//!
//! fvcore counts one multiply-add as one "flop": linear layers, matmuls and convolutions count
//! their MACs (bias ignored), layer norm counts `5·numel`, eval-mode batch norm `2·numel`,
//! adaptive average pooling `numel`; softmax, GELU, ReLU, additions, LayerScale multiplications,
//! max pooling and token means are free. These are the counts the SN-Net reference reports
//! (`FlopCountAnalysis(model, randn(1, 3, 224, 224))`), so per-stitch costs built from these
//! parts equal the published tables.

// Costs are computed from configs read from files: sums and products saturate at `u64::MAX`
// instead of wrapping to a small, wrong number (the config limits keep real models far below).
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::iter::Sum;
use std::ops::{Add, AddAssign, Range};

use serde::{Deserialize, Serialize};

/// FLOPs (fvcore multiply-adds) and parameters of one part of a model, for one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cost {
    /// Multiply-adds for one image.
    pub flops: u64,
    /// Parameters.
    pub params: u64,
}

impl Cost {
    /// A cost of `flops` multiply-adds and `params` parameters.
    pub const fn new(flops: u64, params: u64) -> Self {
        Self { flops, params }
    }

    /// No cost.
    pub const ZERO: Self = Self::new(0, 0);
}

impl Add for Cost {
    type Output = Self;

    fn add(self, rhs: Self) -> Self {
        Self::new(
            self.flops.saturating_add(rhs.flops),
            self.params.saturating_add(rhs.params),
        )
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, rhs: Self) {
        *self = Add::add(*self, rhs);
    }
}

impl Sum for Cost {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl<'a> Sum<&'a Cost> for Cost {
    fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        iter.copied().sum()
    }
}

/// The cost of a model split into the parts a stitched path runs separately.
///
/// `stem` is the input embedding proper (patch embedding, or a CNN's stem convolutions);
/// `tokens` holds learned tokens and position embeddings (parameters only — the reference's
/// stitched-path parameter count leaves them out); `blocks[i]` is global block `i`, stage
/// transitions that precede a stage's first block (patch merging, downsampling) included; `norm`
/// is the final norm and `head` the pooling and classifier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelCost {
    /// Input embedding.
    pub stem: Cost,
    /// Learned tokens and position embeddings.
    pub tokens: Cost,
    /// One entry per global block.
    pub blocks: Vec<Cost>,
    /// Final norm.
    pub norm: Cost,
    /// Pooling and classifier head(s).
    pub head: Cost,
    /// The part of `blocks[i]` that is a stage transition (Swin's patch merging) rather than
    /// the block proper; empty when the model has none. The reference's stitched-path
    /// parameter count leaves the front anchor's transitions out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Cost>,
}

impl ModelCost {
    /// The whole model.
    pub fn total(&self) -> Cost {
        [
            self.stem,
            self.tokens,
            self.blocks.iter().sum(),
            self.norm,
            self.head,
        ]
        .into_iter()
        .sum()
    }

    /// The stage transition inside global block `index` ([`Cost::ZERO`] when it has none).
    pub fn transition(&self, index: usize) -> Cost {
        self.transitions.get(index).copied().unwrap_or_default()
    }

    /// The stage transitions inside the blocks in `range`.
    pub fn transitions(&self, range: Range<usize>) -> Cost {
        range.map(|i| self.transition(i)).sum()
    }

    /// The blocks in `range` (clamped to the model's blocks).
    pub fn blocks(&self, range: Range<usize>) -> Cost {
        let end = range.end.min(self.blocks.len());
        self.blocks
            .get(range.start.min(end)..end)
            .map_or(Cost::ZERO, |b| b.iter().sum())
    }
}

/// The cost of a linear layer applied to `rows` vectors: `rows · d_in · d_out` MACs,
/// `d_in · d_out (+ d_out)` parameters (saturating).
pub const fn linear(rows: u64, d_in: u64, d_out: u64, bias: bool) -> Cost {
    let weights = d_in.saturating_mul(d_out);
    Cost::new(
        rows.saturating_mul(weights),
        weights.saturating_add(if bias { d_out } else { 0 }),
    )
}

/// The cost of a layer norm over `rows` vectors of `dim` channels: `5 · rows · dim` flops,
/// `2 · dim` parameters.
pub const fn layer_norm(rows: u64, dim: u64) -> Cost {
    Cost::new(
        rows.saturating_mul(dim).saturating_mul(5),
        dim.saturating_mul(2),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn sums_and_ranges() {
        let model = ModelCost {
            stem: Cost::new(1, 2),
            tokens: Cost::new(0, 3),
            blocks: vec![Cost::new(10, 1), Cost::new(20, 1), Cost::new(30, 1)],
            norm: Cost::new(4, 2),
            head: Cost::new(5, 6),
            transitions: Vec::new(),
        };
        assert_eq!(model.total(), Cost::new(70, 16));
        assert_eq!(model.blocks(1..3), Cost::new(50, 2));
        assert_eq!(model.blocks(2..9), Cost::new(30, 1));
        assert_eq!(model.blocks(5..9), Cost::ZERO);
        assert_eq!(
            linear(197, 192, 576, true),
            Cost::new(197 * 192 * 576, 192 * 576 + 576)
        );
        assert_eq!(layer_norm(197, 192), Cost::new(5 * 197 * 192, 384));
    }
}
