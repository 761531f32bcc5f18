//! The stitching layers of a space: the groups joining anchor pairs, and where each layer hands
//! over between two anchors.

use serde::{Deserialize, Serialize};

use crate::anchor::Layout;
use crate::stitch::{Cut, LayerKey};

/// The stitching layers joining one anchor pair (at one stage, for hierarchical anchors).
///
/// The layers are indexed `0..num_layers()`; `positions[i]` lists the cuts that share layer
/// `i` — the least-squares initialiser solves each of them and averages the solutions, as the
/// reference does. A layer with no positions exists in the reference's module (and so in its
/// checkpoints) but no stitch uses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerGroup {
    /// The stage the layers work in; `None` for plain anchors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
    /// The anchor whose activations the layers read.
    pub front: usize,
    /// The anchor whose blocks the layers feed.
    pub end: usize,
    /// Input channels (the front anchor's width at the stage).
    pub in_width: usize,
    /// Output channels (the end anchor's width at the stage).
    pub out_width: usize,
    /// The front anchor's activation layout.
    pub in_layout: Layout,
    /// The end anchor's activation layout.
    pub out_layout: Layout,
    /// For every layer index, the cuts that share the layer, in first-use order.
    pub positions: Vec<Vec<Cut>>,
}

impl LayerGroup {
    /// Number of stitching layers in the group.
    pub fn num_layers(&self) -> usize {
        self.positions.len()
    }

    /// The key of layer `index` of the group.
    pub fn key(&self, index: usize) -> LayerKey {
        LayerKey {
            stage: self.stage,
            front: self.front,
            end: self.end,
            index,
        }
    }

    /// The keys of all the group's layers.
    pub fn keys(&self) -> impl Iterator<Item = LayerKey> + '_ {
        (0..self.num_layers()).map(|i| self.key(i))
    }
}

/// Where one stitching layer hands over, in global blocks: the output of the front anchor's
/// block `after` feeds the end anchor's block `before`.
///
/// This is the one rendering of a cut's geometry: stitch paths ([`StitchSpace::segments_of`](crate::StitchSpace::segments_of)),
/// costs, the least-squares init and the checkpoint layout all derive from it.
///
/// An anchor's *states* number the activations between its blocks: state `s` is the input of
/// global block `s` (state 0: the embedded image; state `depth`: the last block's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Junction {
    /// The anchor whose activation the layer reads.
    pub front: usize,
    /// The front anchor's last block run (global index).
    pub after: usize,
    /// The anchor whose blocks the layer feeds.
    pub end: usize,
    /// The end anchor's first block run (global index).
    pub before: usize,
}

impl Junction {
    /// The front anchor's state the layer reads: the output of block `after`.
    pub fn front_state(&self) -> usize {
        // `after` is a block index, below `MAX_DEPTH`, so this never saturates.
        self.after.saturating_add(1)
    }

    /// The end anchor's state the layer produces: the input of block `before`.
    pub fn end_state(&self) -> usize {
        self.before
    }
}
