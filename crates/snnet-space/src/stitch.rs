//! Stitches: typed descriptions of the paths through the anchors.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The id of a stitch: its index in the space, identical to the reference's config id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StitchId(pub usize);

impl StitchId {
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for StitchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<usize> for StitchId {
    fn from(id: usize) -> Self {
        Self(id)
    }
}

impl From<StitchId> for usize {
    fn from(id: StitchId) -> Self {
        id.0
    }
}

/// An id compares with its index (`record.id == 3`, `id >= anchors`).
impl PartialEq<usize> for StitchId {
    fn eq(&self, other: &usize) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<usize> for StitchId {
    fn partial_cmp(&self, other: &usize) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl FromStr for StitchId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        s.trim().parse().map(Self).map_err(|_| Error::Parse {
            what: "a stitch id",
            value: s.to_owned(),
            expected: "a non-negative integer",
        })
    }
}

/// Where one anchor hands over to the next: the front anchor runs through block `front`, the
/// stitching layer maps its output, and the end anchor starts at block `end`.
///
/// For hierarchical anchors both are block indices inside the stitch's stage. Serialised as the
/// reference does, as a two-element array `[front, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "[usize; 2]", into = "[usize; 2]")]
pub struct Cut {
    /// The last block the front anchor runs (inclusive).
    pub front: usize,
    /// The first block the end anchor runs.
    pub end: usize,
}

impl Cut {
    /// A cut after front block `front`, into end block `end`.
    pub const fn new(front: usize, end: usize) -> Self {
        Self { front, end }
    }
}

impl From<[usize; 2]> for Cut {
    fn from([front, end]: [usize; 2]) -> Self {
        Self { front, end }
    }
}

impl From<Cut> for [usize; 2] {
    fn from(cut: Cut) -> Self {
        [cut.front, cut.end]
    }
}

/// What kind of path a stitch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StitchKind {
    /// One anchor, unchanged.
    Anchor,
    /// Two anchors joined by one stitching layer.
    Single,
    /// Three or more anchor segments joined by two or more stitching layers (SN-Netv2's
    /// L→S→L / S→L→S, or the reference's non-nearest three-anchor paths).
    Chain,
}

/// Names one stitching layer: the `index`-th layer joining anchor `front` to anchor `end` (at
/// `stage` for hierarchical anchors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LayerKey {
    /// The stage the layer works in; `None` for plain anchors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
    /// The anchor whose activation the layer reads.
    pub front: usize,
    /// The anchor whose block the layer feeds.
    pub end: usize,
    /// The layer's index among the pair's layers.
    pub index: usize,
}

impl fmt::Display for LayerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(stage) = self.stage {
            write!(f, "stage {stage}, ")?;
        }
        write!(
            f,
            "anchor {} → anchor {}, layer {}",
            self.front, self.end, self.index
        )
    }
}

/// One stitch of a space: which anchors run, where they hand over, and through which layers.
///
/// `anchors` lists the anchors in execution order; between `anchors[i]` and `anchors[i + 1]` the
/// cut `cuts[i]` applies through stitching layer `layers[i]` (an index among the pair's layers;
/// see [`Stitch::layer_keys`]). An anchor stitch has one anchor and no cuts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stitch {
    /// The stitch's id.
    pub id: StitchId,
    /// Anchor indices in execution order.
    pub anchors: Vec<usize>,
    /// One cut per hand-over.
    pub cuts: Vec<Cut>,
    /// The stitching layer of each cut, as an index among the pair's layers.
    pub layers: Vec<usize>,
    /// The stage the cuts lie in (hierarchical anchors only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
    /// Whether the reference trains and evaluates the stitch. Only SN-Netv2 generates stitches
    /// it does not: the small→large stitch whose end anchor would run no block.
    #[serde(default = "yes")]
    pub evaluated: bool,
}

fn yes() -> bool {
    true
}

impl Stitch {
    /// The kind of path.
    pub fn kind(&self) -> StitchKind {
        match self.cuts.len() {
            0 => StitchKind::Anchor,
            1 => StitchKind::Single,
            _ => StitchKind::Chain,
        }
    }

    /// Whether this is one anchor, unchanged.
    pub fn is_anchor(&self) -> bool {
        self.cuts.is_empty()
    }

    /// The stitching layers the path runs through, in order (one per pair of consecutive
    /// anchors; a malformed stitch with more layers than hand-overs yields only the first ones).
    pub fn layer_keys(&self) -> impl Iterator<Item = LayerKey> + '_ {
        self.layers
            .iter()
            .zip(self.anchors.iter().zip(self.anchors.iter().skip(1)))
            .map(|(&index, (&front, &end))| LayerKey {
                stage: self.stage,
                front,
                end,
                index,
            })
    }
}

/// A run of consecutive blocks of one anchor inside a stitch's path.
///
/// Blocks are numbered globally over all stages of the anchor (so a hierarchical anchor's
/// block `b` of stage `s` is `sum(depths[..s]) + b`); a hierarchical forward runs the stage
/// transitions (patch merging, downsampling) that lie inside the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Segment {
    /// The anchor that runs.
    pub anchor: usize,
    /// First global block (inclusive).
    pub start: usize,
    /// One past the last global block.
    pub end: usize,
    /// Whether the segment starts with the anchor's stem (patch embedding) on the input image.
    pub stem: bool,
    /// Whether the segment ends with the anchor's head (final norm, pooling, classifier).
    pub head: bool,
}

impl Segment {
    /// The global blocks the segment runs.
    pub fn blocks(&self) -> Range<usize> {
        self.start..self.end
    }

    /// Number of blocks in the segment.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the segment runs no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_serialises_as_pair() {
        assert_eq!(serde_json::to_string(&Cut::new(7, 8)).unwrap(), "[7,8]");
        let cut: Cut = serde_json::from_str("[3, 1]").unwrap();
        assert_eq!(cut, Cut::new(3, 1));
    }

    #[test]
    fn stitch_id_parses() {
        assert_eq!("24".parse::<StitchId>().unwrap(), StitchId(24));
        assert!(matches!("x".parse::<StitchId>(), Err(Error::Parse { .. })));
        assert!(matches!("-1".parse::<StitchId>(), Err(Error::Parse { .. })));
    }

    #[test]
    fn layer_keys_follow_the_anchor_order() {
        let stitch = Stitch {
            id: StitchId(40),
            anchors: vec![1, 0, 1],
            cuts: vec![Cut::new(3, 2), Cut::new(5, 12)],
            layers: vec![1, 5],
            stage: None,
            evaluated: true,
        };
        let keys: Vec<_> = stitch.layer_keys().collect();
        assert_eq!(
            keys[0],
            LayerKey {
                stage: None,
                front: 1,
                end: 0,
                index: 1
            }
        );
        assert_eq!(
            keys[1],
            LayerKey {
                stage: None,
                front: 0,
                end: 1,
                index: 5
            }
        );
        assert_eq!(stitch.kind(), StitchKind::Chain);
        let json = serde_json::to_string(&stitch).unwrap();
        assert_eq!(serde_json::from_str::<Stitch>(&json).unwrap(), stitch);
    }
}
