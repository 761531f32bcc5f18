//! The stitch space: every stitch of a family of anchors, with ids identical to the reference.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::anchor::{AnchorRegistry, AnchorSpec, Layout, StageSpec};
use crate::config::{Direction, Pairing, SpaceConfig, StitchLayers};
use crate::error::{Error, Result};
use crate::limits::{MAX_ANCHOR_PATHS, MAX_ANCHORS, MAX_STITCHES};
use crate::rules::{self, PairRule};
use crate::stitch::{Cut, LayerKey, Segment, Stitch, StitchId};
use crate::text::display_safe;

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
/// This is the one rendering of a cut's geometry: stitch paths ([`StitchSpace::segments_of`]),
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

/// The serialised form of a space: its inputs. Deserialising re-enumerates, so a stored space can
/// never disagree with the rules.
#[derive(Serialize, Deserialize)]
struct SpaceDef {
    anchors: Vec<AnchorSpec>,
    #[serde(default)]
    config: SpaceConfig,
}

/// Every stitch of a family of anchors, enumerated once by the reference's rules.
///
/// Ids are the reference's config ids: the anchors first, in the given order (small → large),
/// then each anchor pair's stitches in the reference's order (per stage, for hierarchical
/// anchors). Forward, cost, least-squares init and training all read this one description.
///
/// ```
/// use snnet_space::{SpaceConfig, StitchId, StitchSpace};
///
/// let space = StitchSpace::builtin(
///     &["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"],
///     SpaceConfig::default(),
/// )?;
/// assert_eq!(space.len(), 71);
/// let stitch = space.get(StitchId(24))?;
/// assert_eq!(space.describe(stitch), "deit_tiny[..=7] →L6→ deit_small[7..]");
/// assert_eq!(space.layer_groups()[0].num_layers(), 11);
/// # Ok::<(), snnet_space::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SpaceDef", into = "SpaceDef")]
pub struct StitchSpace {
    anchors: Vec<AnchorSpec>,
    config: SpaceConfig,
    stages: Vec<usize>,
    stitches: Vec<Stitch>,
    groups: Vec<LayerGroup>,
    /// `(stage, front, end)` → index into `groups`.
    group_index: BTreeMap<(Option<usize>, usize, usize), usize>,
}

impl TryFrom<SpaceDef> for StitchSpace {
    type Error = Error;

    fn try_from(def: SpaceDef) -> Result<Self> {
        Self::new(def.anchors, def.config)
    }
}

impl From<StitchSpace> for SpaceDef {
    fn from(space: StitchSpace) -> Self {
        Self {
            anchors: space.anchors,
            config: space.config,
        }
    }
}

impl StitchSpace {
    /// Enumerates the space of `anchors` (listed small → large) under `config`.
    ///
    /// # Errors
    /// [`Error::NoAnchors`], [`Error::InvalidAnchor`], [`Error::DuplicateAnchor`],
    /// [`Error::StageCountMismatch`] (plain and hierarchical anchors mixed),
    /// [`Error::AnchorOrder`] (anchors not listed small → large), [`Error::InvalidWindow`],
    /// [`Error::StageOutOfRange`], [`Error::NoStages`], and [`Error::Unsupported`] for two-way
    /// stitching of hierarchical anchors or of a deeper anchor into a shallower one;
    /// [`Error::LimitExceeded`] when the anchors or the space are over one of the
    /// [limits](crate::limits) ([`MAX_ANCHORS`], [`MAX_ANCHOR_PATHS`], [`MAX_STITCHES`], and the
    /// anchors' sizes), found before the stitches are built.
    pub fn new(anchors: Vec<AnchorSpec>, config: SpaceConfig) -> Result<Self> {
        let stages = validate(&anchors, &config)?;
        let mut builder = Builder::new(&anchors, &config, &stages);
        builder.enumerate()?;
        let (stitches, groups) = builder.finish();
        let group_index = index_groups(&groups);
        Ok(Self {
            anchors,
            config,
            stages,
            stitches,
            groups,
            group_index,
        })
    }

    /// Enumerates the space of built-in anchors given by name (see [`crate::builtin_names`]).
    ///
    /// # Errors
    /// [`Error::UnknownAnchor`] with close matches, otherwise as [`StitchSpace::new`].
    pub fn builtin<S: AsRef<str>>(names: &[S], config: SpaceConfig) -> Result<Self> {
        Self::new(AnchorRegistry::builtin().resolve(names)?, config)
    }

    /// The anchors, in id order.
    pub fn anchors(&self) -> &[AnchorSpec] {
        &self.anchors
    }

    /// The settings the space was enumerated with.
    pub fn config(&self) -> &SpaceConfig {
        &self.config
    }

    /// The stages stitched (resolved defaults included); `[0]` for plain anchors.
    pub fn stages(&self) -> &[usize] {
        &self.stages
    }

    /// Whether the anchors are hierarchical (several stages).
    pub fn is_hierarchical(&self) -> bool {
        self.anchors
            .first()
            .is_some_and(AnchorSpec::is_hierarchical)
    }

    /// Number of stitches, anchors and stitches the reference does not evaluate included.
    pub fn len(&self) -> usize {
        self.stitches.len()
    }

    /// Whether the space has no stitch (never true for a constructed space).
    pub fn is_empty(&self) -> bool {
        self.stitches.is_empty()
    }

    /// Every stitch, in id order.
    pub fn stitches(&self) -> &[Stitch] {
        &self.stitches
    }

    /// The stitches the reference trains and evaluates (all but SN-Netv2's empty-end ones).
    pub fn evaluated(&self) -> impl Iterator<Item = &Stitch> {
        self.stitches.iter().filter(|s| s.evaluated)
    }

    /// Every id, in order.
    pub fn ids(&self) -> impl Iterator<Item = StitchId> + '_ {
        self.stitches.iter().map(|s| s.id)
    }

    /// The ids of the stitched paths (every stitch but the anchors themselves), in order.
    ///
    /// ```
    /// use snnet_space::{SpaceConfig, StitchSpace};
    ///
    /// let space = StitchSpace::builtin(
    ///     &["deit_tiny_patch16_224", "deit_small_patch16_224"],
    ///     SpaceConfig::default(),
    /// )?;
    /// let stitched: Vec<_> = space.stitched_ids().collect();
    /// assert_eq!(stitched.len(), space.len() - 2);
    /// assert!(stitched.iter().all(|&id| !space.get(id).unwrap().is_anchor()));
    /// # Ok::<(), snnet_space::Error>(())
    /// ```
    pub fn stitched_ids(&self) -> impl Iterator<Item = StitchId> + '_ {
        self.stitches
            .iter()
            .filter(|s| !s.is_anchor())
            .map(|s| s.id)
    }

    /// The stitch with id `id`.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] when the id is out of range.
    pub fn get(&self, id: StitchId) -> Result<&Stitch> {
        self.stitches.get(id.0).ok_or(Error::UnknownStitch {
            id: id.0,
            count: self.stitches.len(),
        })
    }

    /// The stitching-layer groups, in the reference's module order: per stitched stage (for
    /// hierarchical anchors), per anchor pair.
    pub fn layer_groups(&self) -> &[LayerGroup] {
        &self.groups
    }

    /// Every stitching layer of the space, group by group.
    pub fn layer_keys(&self) -> impl Iterator<Item = LayerKey> + '_ {
        self.groups.iter().flat_map(LayerGroup::keys)
    }

    /// The index into [`StitchSpace::layer_groups`] of the group joining `front` to `end` at
    /// `stage` (an indexed lookup).
    pub fn group_index(&self, stage: Option<usize>, front: usize, end: usize) -> Option<usize> {
        self.group_index.get(&(stage, front, end)).copied()
    }

    /// The group holding the layers from `front` to `end` at `stage`.
    pub fn group(&self, stage: Option<usize>, front: usize, end: usize) -> Option<&LayerGroup> {
        self.group_index(stage, front, end)
            .and_then(|g| self.groups.get(g))
    }

    /// Where the layer joining `front` to `end` (at `stage`) hands over at `cut`, in global
    /// blocks (see [`Junction`]).
    ///
    /// # Errors
    /// [`Error::UnknownLayer`] when an anchor index is out of range or the stage is missing.
    pub fn junction(
        &self,
        stage: Option<usize>,
        front: usize,
        end: usize,
        cut: Cut,
    ) -> Result<Junction> {
        let stage_index = stage.unwrap_or(0);
        let global = |anchor: usize, block: usize| {
            self.anchors
                .get(anchor)
                .filter(|a| stage_index < a.stages.len())
                .map(|a| a.global_block(stage_index, block))
                .ok_or_else(|| {
                    let key = LayerKey {
                        stage,
                        front,
                        end,
                        index: 0,
                    };
                    Error::UnknownLayer(key.to_string())
                })
        };
        Ok(Junction {
            front,
            after: global(front, cut.front)?,
            end,
            before: global(end, cut.end)?,
        })
    }

    /// The cuts that share stitching layer `key` (the least-squares averaging set).
    ///
    /// # Errors
    /// [`Error::UnknownLayer`] when the space has no such layer.
    pub fn positions(&self, key: LayerKey) -> Result<&[Cut]> {
        self.group(key.stage, key.front, key.end)
            .and_then(|g| g.positions.get(key.index))
            .map(Vec::as_slice)
            .ok_or_else(|| Error::UnknownLayer(key.to_string()))
    }

    /// The path of stitch `id` as runs of global blocks, one per anchor segment.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] when the id is out of range.
    pub fn segments(&self, id: StitchId) -> Result<Vec<Segment>> {
        self.segments_of(self.get(id)?)
    }

    /// The handovers of a stitch of this space, one per stitching layer it runs.
    ///
    /// # Errors
    /// [`Error::UnknownLayer`] for a stitch that is not of this space.
    pub fn junctions_of(&self, stitch: &Stitch) -> Result<Vec<Junction>> {
        stitch
            .anchors
            .iter()
            .zip(stitch.anchors.iter().skip(1))
            .zip(&stitch.cuts)
            .map(|((&front, &end), &cut)| self.junction(stitch.stage, front, end, cut))
            .collect()
    }

    /// The path of a stitch of this space as runs of global blocks, one per anchor segment:
    /// each segment runs from the previous junction's `before` to its own junction's `after`.
    ///
    /// # Errors
    /// [`Error::UnknownLayer`] for a stitch that is not of this space.
    pub fn segments_of(&self, stitch: &Stitch) -> Result<Vec<Segment>> {
        let junctions = self.junctions_of(stitch)?;
        let last = stitch.anchors.len().saturating_sub(1);
        stitch
            .anchors
            .iter()
            .enumerate()
            .map(|(i, &anchor)| {
                let spec = self.anchors.get(anchor).ok_or(Error::UnknownStitch {
                    id: stitch.id.0,
                    count: self.stitches.len(),
                })?;
                let start = match i.checked_sub(1) {
                    None => 0,
                    Some(prev) => junctions.get(prev).map_or(0, |j| j.before),
                };
                let end = junctions
                    .get(i)
                    .map_or_else(|| spec.depth(), Junction::front_state);
                Ok(Segment {
                    anchor,
                    start,
                    end,
                    stem: i == 0,
                    head: i == last,
                })
            })
            .collect()
    }

    /// A readable one-line description of a stitch of this space, e.g.
    /// `deit_tiny[..=7] →L6→ deit_small[7..]` or `swin_tiny[..=s2.b1] →L0→ swin_small[s2.b3..]`.
    pub fn describe(&self, stitch: &Stitch) -> String {
        StitchDisplay {
            space: self,
            stitch,
        }
        .to_string()
    }

    /// A [`fmt::Display`] of stitch `id` (see [`StitchSpace::describe`]).
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] when the id is out of range.
    pub fn display(&self, id: StitchId) -> Result<StitchDisplay<'_>> {
        Ok(StitchDisplay {
            space: self,
            stitch: self.get(id)?,
        })
    }
}

/// Displays a stitch with its anchors' labels; see [`StitchSpace::describe`].
#[derive(Debug, Clone, Copy)]
pub struct StitchDisplay<'a> {
    space: &'a StitchSpace,
    stitch: &'a Stitch,
}

impl fmt::Display for StitchDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stitch = self.stitch;
        let anchors = self.space.anchors();
        let label = |i: usize| {
            let label = stitch
                .anchors
                .get(i)
                .and_then(|&a| anchors.get(a))
                .map_or("?", AnchorSpec::label);
            display_safe(label)
        };
        if stitch.is_anchor() {
            return f.write_str(&label(0));
        }
        let block = |b: Option<&Cut>, end: bool| match (b, stitch.stage) {
            (None, _) => "?".to_owned(),
            (Some(c), Some(s)) => format!("s{s}.b{}", if end { c.end } else { c.front }),
            (Some(c), None) => (if end { c.end } else { c.front }).to_string(),
        };
        let last = stitch.anchors.len().saturating_sub(1);
        for i in 0..=last {
            let from = i
                .checked_sub(1)
                .map(|prev| block(stitch.cuts.get(prev), true));
            let to = (i < last).then(|| block(stitch.cuts.get(i), false));
            write!(
                f,
                "{}[{}..{}]",
                label(i),
                from.unwrap_or_default(),
                to.map(|t| format!("={t}")).unwrap_or_default()
            )?;
            if i < last {
                match stitch.layers.get(i) {
                    Some(layer) => write!(f, " →L{layer}→ ")?,
                    None => f.write_str(" →L?→ ")?,
                }
            }
        }
        Ok(())
    }
}

/// Checks the anchors and settings; returns the stages to stitch.
fn validate(anchors: &[AnchorSpec], config: &SpaceConfig) -> Result<Vec<usize>> {
    let first = anchors.first().ok_or(Error::NoAnchors)?;
    if anchors.len() > MAX_ANCHORS {
        return Err(limit(
            "anchors",
            anchors.len() as u128,
            MAX_ANCHORS,
            "MAX_ANCHORS",
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for anchor in anchors {
        anchor.validate()?;
        if !names.insert(anchor.name.as_str()) {
            return Err(Error::DuplicateAnchor {
                name: anchor.name.clone(),
            });
        }
        if anchor.num_stages() != first.num_stages() {
            return Err(Error::StageCountMismatch {
                first: first.name.clone(),
                first_stages: first.num_stages(),
                other: anchor.name.clone(),
                other_stages: anchor.num_stages(),
            });
        }
    }
    if config.kernel_size == 0 {
        return Err(Error::InvalidWindow {
            what: "kernel size",
            value: 0,
        });
    }
    if config.stride == 0 {
        return Err(Error::InvalidWindow {
            what: "stride",
            value: 0,
        });
    }
    let num_stages = first.num_stages();
    let stages = match &config.stages {
        Some(stages) => {
            if stages.is_empty() {
                return Err(Error::NoStages);
            }
            if let Some(&stage) = stages.iter().find(|&&s| s >= num_stages) {
                return Err(Error::StageOutOfRange { stage, num_stages });
            }
            let mut stages = stages.clone();
            stages.sort_unstable();
            stages.dedup();
            stages
        }
        None if num_stages == 1 => vec![0],
        // The reference stitches every stage but the last; with a CNN among the anchors it also
        // skips stage 0 (`stitching_resnet_swin`).
        None if anchors.iter().any(|a| a.layout == Layout::Map) => {
            (1..num_stages.saturating_sub(1)).collect()
        }
        None => (0..num_stages.saturating_sub(1)).collect(),
    };
    if stages.is_empty() {
        return Err(Error::NoStages);
    }
    for (front_anchor, end_anchor) in anchors.iter().zip(anchors.iter().skip(1)) {
        for &stage in &stages {
            let (Some(front), Some(end)) =
                (front_anchor.stages.get(stage), end_anchor.stages.get(stage))
            else {
                return Err(Error::StageOutOfRange { stage, num_stages });
            };
            if front.width > end.width {
                return Err(Error::AnchorOrder {
                    front: front_anchor.name.clone(),
                    end: end_anchor.name.clone(),
                    stage,
                    front_width: front.width,
                    end_width: end.width,
                });
            }
        }
    }
    if config.direction == Direction::TwoWay {
        if num_stages > 1 {
            return Err(Error::Unsupported(
                "two-way stitching (SN-Netv2) is defined for plain anchors only".to_owned(),
            ));
        }
        if let Some((small, large)) = anchors
            .iter()
            .zip(anchors.iter().skip(1))
            .find(|(small, large)| small.depth() > large.depth())
        {
            return Err(Error::Unsupported(format!(
                "two-way stitching needs the smaller anchor to be no deeper than the larger: \
                 `{}` has {} blocks, `{}` has {}",
                small.name,
                small.depth(),
                large.name,
                large.depth()
            )));
        }
    }
    Ok(stages)
}

/// A [`Error::LimitExceeded`] of the space (no anchor in particular).
fn limit(what: &'static str, value: u128, limit: usize, constant: &'static str) -> Error {
    Error::LimitExceeded {
        what,
        value,
        limit: limit as u64,
        constant,
        anchor: None,
    }
}

/// Adds `more` stitches to the running count `total`.
///
/// # Errors
/// [`Error::LimitExceeded`] when the count goes over [`MAX_STITCHES`]; counting stops there, so
/// its value is a lower bound of the space's size.
fn count_stitches(total: &mut u128, more: u128) -> Result<()> {
    *total = total.saturating_add(more);
    if *total > MAX_STITCHES as u128 {
        return Err(limit(
            "number of stitches (at least)",
            *total,
            MAX_STITCHES,
            "MAX_STITCHES",
        ));
    }
    Ok(())
}

/// How many paths through `chain`'s rules [`Builder::chains`] enumerates: sequences of one cut
/// per rule, each cut leaving its front anchor no earlier than the previous cut entered it
/// (`next.front ≥ prev.end`). Counted level by level over the cuts' end blocks, in time linear
/// in the cuts; saturates at `u128::MAX`.
fn chain_count(chain: &[&PairRule]) -> u128 {
    let Some((first, rest)) = chain.split_first() else {
        return 0;
    };
    let mut weights: Vec<u128> = vec![1; first.cuts.len()];
    let mut prev = first;
    for rule in rest {
        // at_most[e]: the paths so far whose last cut enters its end anchor at a block ≤ e.
        let last_end = prev.cuts.iter().map(|(c, _)| c.end).max().unwrap_or(0);
        let mut at_most = vec![0u128; last_end.saturating_add(1)];
        for ((cut, _), weight) in prev.cuts.iter().zip(&weights) {
            if let Some(slot) = at_most.get_mut(cut.end) {
                *slot = slot.saturating_add(*weight);
            }
        }
        let mut running = 0u128;
        for slot in &mut at_most {
            running = running.saturating_add(*slot);
            *slot = running;
        }
        weights = rule
            .cuts
            .iter()
            .map(|(cut, _)| at_most.get(cut.front.min(last_end)).copied().unwrap_or(0))
            .collect();
        prev = rule;
    }
    weights.iter().fold(0, |sum, w| sum.saturating_add(*w))
}

/// How many stitches [`Builder::two_way`] builds for a pair with rules `sl` (small→large) and
/// `ls` (large→small), the large anchor being `d_l` blocks deep.
fn two_way_count(sl: &PairRule, ls: &PairRule, d_l: usize) -> u128 {
    let runs_end = |cut: &Cut| cut.end < d_l;
    let mut count = (sl.cuts.len() as u128).saturating_add(ls.cuts.len() as u128);
    for (first, _) in &ls.cuts {
        let n = sl
            .cuts
            .iter()
            .filter(|(c, _)| runs_end(c) && c.front >= first.end)
            .count();
        count = count.saturating_add(n as u128);
    }
    for (first, _) in &sl.cuts {
        let n = ls.cuts.iter().filter(|(c, _)| c.front >= first.end).count();
        count = count.saturating_add(n as u128);
    }
    count
}

/// `(stage, front, end)` → group position.
fn index_groups(groups: &[LayerGroup]) -> BTreeMap<(Option<usize>, usize, usize), usize> {
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| ((g.stage, g.front, g.end), i))
        .collect()
}

/// All combinations of `k` items of `0..n`, in lexicographic order (Python's
/// `itertools.combinations`).
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let Some(spare) = n.checked_sub(k) else {
        return out;
    };
    if k == 0 {
        return out;
    }
    // Every value below stays at most `n`, so the saturating operations never saturate.
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        out.push(idx.clone());
        // The rightmost position `i` that has not reached its last value, `i + n - k`.
        let Some(i) = idx
            .iter()
            .enumerate()
            .rev()
            .find(|&(i, &v)| v != i.saturating_add(spare))
            .map(|(i, _)| i)
        else {
            return out;
        };
        // Advance it and reset every later position to follow it consecutively.
        let mut next = idx.get(i).map_or(0, |v| v.saturating_add(1));
        for slot in idx.iter_mut().skip(i) {
            *slot = next;
            next = next.saturating_add(1);
        }
    }
}

/// Builds the stitches and layer groups in id order.
struct Builder<'a> {
    anchors: &'a [AnchorSpec],
    config: &'a SpaceConfig,
    stages: &'a [usize],
    hierarchical: bool,
    stitches: Vec<Stitch>,
    groups: Vec<LayerGroup>,
    /// The number of stitches counted before they were built (anchors included).
    counted: u128,
}

impl<'a> Builder<'a> {
    fn new(anchors: &'a [AnchorSpec], config: &'a SpaceConfig, stages: &'a [usize]) -> Self {
        let stitches = (0..anchors.len())
            .map(|a| Stitch {
                id: StitchId(a),
                anchors: vec![a],
                cuts: Vec::new(),
                layers: Vec::new(),
                stage: None,
                evaluated: true,
            })
            .collect();
        Self {
            anchors,
            config,
            stages,
            hierarchical: anchors.first().is_some_and(AnchorSpec::is_hierarchical),
            stitches,
            groups: Vec::new(),
            counted: 0,
        }
    }

    /// Anchor combinations to stitch, each in execution order: the neighbour pairs (nearest) or
    /// every combination of 2 (and, for plain one-way spaces, up to all) anchors, reversed for
    /// Slow-to-Fast.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when there would be more than [`MAX_ANCHOR_PATHS`], found
    /// before any is built.
    fn combinations(&self) -> Result<Vec<Vec<usize>>> {
        let n = self.anchors.len();
        let wide = n as u128;
        let only_pairs = self.hierarchical || self.config.direction == Direction::TwoWay;
        let count = match self.config.pairing {
            Pairing::Nearest => wide.saturating_sub(1),
            Pairing::All if only_pairs => wide.saturating_mul(wide.saturating_sub(1)) / 2,
            // Every subset of two or more anchors (n ≤ MAX_ANCHORS, so the shift fits).
            Pairing::All => (1u128 << n.min(120)).saturating_sub(wide.saturating_add(1)),
        };
        if count > MAX_ANCHOR_PATHS as u128 {
            return Err(limit(
                "anchor paths",
                count,
                MAX_ANCHOR_PATHS,
                "MAX_ANCHOR_PATHS",
            ));
        }
        let mut combos: Vec<Vec<usize>> = match self.config.pairing {
            Pairing::Nearest => (0..n).zip(1..n).map(|(a, b)| vec![a, b]).collect(),
            Pairing::All => {
                let longest = if only_pairs { 2 } else { n };
                (2..=longest).flat_map(|k| combinations(n, k)).collect()
            }
        };
        if self.config.direction == Direction::SlowToFast {
            for combo in &mut combos {
                combo.reverse();
            }
        }
        Ok(combos)
    }

    /// Anchor `anchor`'s spec and its stage `stage`; both were validated by [`validate`], so
    /// the error is only a guard.
    fn stage(&self, anchor: usize, stage: usize) -> Result<(&'a AnchorSpec, &'a StageSpec)> {
        let spec = self
            .anchors
            .get(anchor)
            .ok_or_else(|| Error::UnknownAnchor {
                name: format!("#{anchor}"),
                suggestions: Vec::new(),
            })?;
        let stage_spec = spec.stages.get(stage).ok_or(Error::StageOutOfRange {
            stage,
            num_stages: spec.num_stages(),
        })?;
        Ok((spec, stage_spec))
    }

    fn depth(&self, anchor: usize, stage: usize) -> Result<usize> {
        Ok(self.stage(anchor, stage)?.1.depth)
    }

    /// `rule` with the configured layer sharing: as the reference allocates, or one layer per cut.
    fn sharing(&self, rule: PairRule) -> PairRule {
        match self.config.layers {
            StitchLayers::Shared => rule,
            StitchLayers::PerCut => rule.per_cut(),
        }
    }

    fn add_group(
        &mut self,
        stage: usize,
        front: usize,
        end: usize,
        num_layers: usize,
    ) -> Result<()> {
        let ((f, f_stage), (e, e_stage)) = (self.stage(front, stage)?, self.stage(end, stage)?);
        self.groups.push(LayerGroup {
            stage: self.hierarchical.then_some(stage),
            front,
            end,
            in_width: f_stage.width,
            out_width: e_stage.width,
            in_layout: f.layout,
            out_layout: e.layout,
            positions: vec![Vec::new(); num_layers],
        });
        Ok(())
    }

    fn push(&mut self, stage: usize, anchors: &[usize], cuts: &[(Cut, usize)], evaluated: bool) {
        self.stitches.push(Stitch {
            id: StitchId(self.stitches.len()),
            anchors: anchors.to_vec(),
            cuts: cuts.iter().map(|&(c, _)| c).collect(),
            layers: cuts.iter().map(|&(_, l)| l).collect(),
            stage: self.hierarchical.then_some(stage),
            evaluated,
        });
    }

    /// Enumerates the stitches. Before any stitch is built, their number is computed (exactly,
    /// stage by stage, from the pair rules) and checked against [`MAX_STITCHES`]; each pair
    /// rule is checked as soon as it is computed, so the rules held stay within the limit too.
    fn enumerate(&mut self) -> Result<()> {
        let combos = self.combinations()?;
        let mut total = self.stitches.len() as u128;
        if self.config.direction == Direction::TwoWay {
            let mut rules = Vec::with_capacity(combos.len());
            for combo in &combos {
                let &[small, large] = combo.as_slice() else {
                    return Err(Error::Unsupported(format!(
                        "two-way anchor path {combo:?} is not a pair"
                    )));
                };
                let (d_s, d_l) = (self.depth(small, 0)?, self.depth(large, 0)?);
                let sl = self.sharing(rules::small_to_large(d_s, d_l));
                let ls = self.sharing(rules::deep_to_shallow(d_l, d_s));
                count_stitches(&mut total, two_way_count(&sl, &ls, d_l))?;
                rules.push((small, large, sl, ls));
            }
            for (small, large, sl, ls) in &rules {
                self.two_way(*small, *large, sl, ls)?;
            }
            self.counted = total;
            return Ok(());
        }
        let (kernel, stride) = (self.config.kernel_size, self.config.stride);
        let allow_backward = !self.hierarchical;
        for &stage in self.stages {
            // One rule (and one layer group) per anchor pair, in pair order; every rule's cuts
            // are stitches of the pair's own path.
            let mut pair_rules: Vec<((usize, usize), PairRule)> = Vec::new();
            let mut counted = total;
            for combo in &combos {
                let &[front, end] = combo.as_slice() else {
                    continue;
                };
                let (d_f, d_e) = (self.depth(front, stage)?, self.depth(end, stage)?);
                let rule = self.sharing(rules::one_way(d_f, d_e, kernel, stride, allow_backward));
                count_stitches(&mut counted, rule.cuts.len() as u128)?;
                pair_rules.push(((front, end), rule));
            }
            let mut chains: Vec<(&Vec<usize>, Vec<&PairRule>)> = Vec::with_capacity(combos.len());
            for combo in &combos {
                let chain: Vec<&PairRule> = combo
                    .iter()
                    .zip(combo.iter().skip(1))
                    .filter_map(|(&front, &end)| {
                        pair_rules
                            .iter()
                            .find(|(pair, _)| *pair == (front, end))
                            .map(|(_, rule)| rule)
                    })
                    .collect();
                if chain.len().checked_add(1) != Some(combo.len()) {
                    return Err(Error::Unsupported(format!(
                        "anchor path {combo:?} uses a pair that is not stitched"
                    )));
                }
                if combo.len() > 2 {
                    count_stitches(&mut counted, chain_count(&chain))?;
                }
                chains.push((combo, chain));
            }
            total = counted;
            for ((front, end), rule) in &pair_rules {
                self.add_group(stage, *front, *end, rule.num_layers)?;
            }
            for (combo, chain) in &chains {
                let mut prefix = Vec::with_capacity(chain.len());
                self.chains(stage, combo, chain, &mut prefix);
            }
        }
        self.counted = total;
        Ok(())
    }

    /// Pushes every path through `combo` whose cuts follow `chain`'s rules in order, each cut
    /// entering the middle anchor no later than the next one leaves it (`next.front ≥
    /// prev.end`), in the reference's nested-loop order.
    fn chains(
        &mut self,
        stage: usize,
        combo: &[usize],
        chain: &[&PairRule],
        prefix: &mut Vec<(Cut, usize)>,
    ) {
        let Some(rule) = chain.get(prefix.len()) else {
            self.push(stage, combo, prefix, true);
            return;
        };
        for &(cut, layer) in &rule.cuts {
            if prefix.last().is_none_or(|(prev, _)| cut.front >= prev.end) {
                prefix.push((cut, layer));
                self.chains(stage, combo, chain, prefix);
                prefix.pop();
            }
        }
    }

    /// SN-Netv2's two-way space for a (small, large) pair, in the reference's order:
    /// S→L, L→S, L→S→L, S→L→S; `sl` and `ls` are the pair's small→large and large→small rules.
    fn two_way(&mut self, small: usize, large: usize, sl: &PairRule, ls: &PairRule) -> Result<()> {
        let d_l = self.depth(large, 0)?;
        self.add_group(0, small, large, sl.num_layers)?;
        self.add_group(0, large, small, ls.num_layers)?;
        // The S→L cut entering the large anchor past its last block runs no large block.
        let runs_end = |cut: &Cut| cut.end < d_l;
        for &c in &sl.cuts {
            self.push(0, &[small, large], &[c], runs_end(&c.0));
        }
        for &c in &ls.cuts {
            self.push(0, &[large, small], &[c], true);
        }
        for &first in &ls.cuts {
            for &second in sl.cuts.iter().filter(|(c, _)| runs_end(c)) {
                if second.0.front >= first.0.end {
                    self.push(0, &[large, small, large], &[first, second], true);
                }
            }
        }
        for &first in &sl.cuts {
            for &second in &ls.cuts {
                if second.0.front >= first.0.end {
                    self.push(0, &[small, large, small], &[first, second], true);
                }
            }
        }
        Ok(())
    }

    /// Fills every group's positions from the stitches and returns the result.
    fn finish(mut self) -> (Vec<Stitch>, Vec<LayerGroup>) {
        let index = index_groups(&self.groups);
        // (group, layer, cut) already placed: a set, as one layer may share thousands of cuts.
        let mut placed = HashSet::new();
        for stitch in &self.stitches {
            for (key, cut) in stitch.layer_keys().zip(&stitch.cuts) {
                let Some(&g) = index.get(&(key.stage, key.front, key.end)) else {
                    continue;
                };
                if let Some(positions) = self
                    .groups
                    .get_mut(g)
                    .and_then(|group| group.positions.get_mut(key.index))
                    && placed.insert((g, key.index, *cut))
                {
                    positions.push(*cut);
                }
            }
        }
        (self.stitches, self.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_match_itertools() {
        assert_eq!(combinations(3, 2), [[0, 1], [0, 2], [1, 2]]);
        assert_eq!(combinations(4, 3).len(), 4);
        assert_eq!(combinations(3, 3), [[0, 1, 2]]);
        assert!(combinations(2, 3).is_empty());
    }

    /// The number of stitches counted before building, and the number built; `None` when the
    /// space is refused.
    fn counted_and_built(anchors: &[AnchorSpec], config: &SpaceConfig) -> Option<(u128, usize)> {
        let stages = validate(anchors, config).ok()?;
        let mut builder = Builder::new(anchors, config, &stages);
        builder.enumerate().ok()?;
        Some((builder.counted, builder.stitches.len()))
    }

    #[test]
    fn stitches_are_counted_exactly_before_they_are_built() {
        let mut checked = 0;
        let windows = [
            (1, 1),
            (2, 1),
            (2, 2),
            (3, 1),
            (5, 2),
            (usize::MAX, usize::MAX),
        ];
        let depth_sets: [&[usize]; 8] = [
            &[1, 1, 1, 1],
            &[2, 3, 4, 4],
            &[4, 4, 4, 4],
            &[3, 6, 12, 12],
            &[6, 6, 18, 24],
            &[12, 12, 12, 12],
            &[12, 12, 24, 24],
            &[5, 2, 7, 3],
        ];
        for depths in depth_sets {
            for n in 2..=depths.len() {
                let anchors: Vec<AnchorSpec> = (0..n)
                    .map(|i| AnchorSpec::plain(format!("a{i}"), depths[i], 8 * (i + 1)))
                    .collect();
                for pairing in [Pairing::Nearest, Pairing::All] {
                    for direction in [
                        Direction::FastToSlow,
                        Direction::SlowToFast,
                        Direction::TwoWay,
                    ] {
                        for (kernel, stride) in windows {
                            let config = SpaceConfig::default()
                                .with_pairing(pairing)
                                .with_direction(direction)
                                .with_kernel_size(kernel)
                                .with_stride(stride);
                            if let Some((counted, built)) = counted_and_built(&anchors, &config) {
                                assert_eq!(counted, built as u128, "{depths:?} {n} {config:?}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        let families: [&[&str]; 3] = [
            &[
                "swin_tiny_patch4_window7_224",
                "swin_small_patch4_window7_224",
                "swin_base_patch4_window7_224",
            ],
            &["resnet18", "resnet50"],
            &["resnet18", "swin_tiny_patch4_window7_224"],
        ];
        for names in families {
            let anchors = AnchorRegistry::builtin().resolve(names).unwrap();
            for pairing in [Pairing::Nearest, Pairing::All] {
                let config = SpaceConfig::default().with_pairing(pairing);
                let (counted, built) = counted_and_built(&anchors, &config).unwrap();
                assert_eq!(counted, built as u128, "{names:?} {pairing}");
                checked += 1;
            }
        }
        assert!(checked > 400, "{checked}");
    }

    #[test]
    fn chains_are_counted_without_enumerating() {
        let rule = |cuts: &[(usize, usize)]| PairRule {
            cuts: cuts.iter().map(|&(f, e)| (Cut::new(f, e), 0)).collect(),
            num_layers: 1,
        };
        let ab = rule(&[(0, 0), (0, 1), (1, 3), (2, 2)]);
        let bc = rule(&[(0, 5), (1, 1), (2, 0), (3, 3)]);
        // By hand: next.front >= prev.end.
        let expected = [(0, 0), (0, 1), (1, 3), (2, 2)]
            .iter()
            .map(|&(_, end)| [0, 1, 2, 3].iter().filter(|&&f| f >= end).count())
            .sum::<usize>();
        assert_eq!(chain_count(&[&ab, &bc]), expected as u128);
        assert_eq!(chain_count(&[&ab]), 4);
        assert_eq!(chain_count(&[]), 0);
        // Long chains saturate instead of overflowing.
        let wide = rule(&vec![(0, 0); 65_536]);
        let chain = vec![&wide; 12];
        assert_eq!(chain_count(&chain), u128::MAX);
    }

    fn deit() -> StitchSpace {
        StitchSpace::builtin(
            &[
                "deit_tiny_patch16_224",
                "deit_small_patch16_224",
                "deit_base_patch16_224",
            ],
            SpaceConfig::default(),
        )
        .unwrap()
    }

    #[test]
    fn per_cut_layers_keep_the_stitches_and_give_each_cut_its_own_layer() {
        let shared = deit();
        let per_cut = StitchSpace::builtin(
            &[
                "deit_tiny_patch16_224",
                "deit_small_patch16_224",
                "deit_base_patch16_224",
            ],
            SpaceConfig::default().with_layers(StitchLayers::PerCut),
        )
        .unwrap();
        assert_eq!(per_cut.stitches().len(), 71);
        for (a, b) in shared.stitches().iter().zip(per_cut.stitches()) {
            assert_eq!((a.id, &a.anchors, &a.cuts), (b.id, &b.anchors, &b.cuts));
        }
        for group in per_cut.layer_groups() {
            assert_eq!(group.num_layers(), 34);
            assert!(group.positions.iter().all(|p| p.len() == 1));
        }
        // Ti→S cut (0, 1) shares layer 0 with three other cuts in the reference's space; here
        // it has layer 1 to itself.
        assert_eq!(
            (
                shared.stitches()[4].layers[0],
                per_cut.stitches()[4].layers[0]
            ),
            (0, 1)
        );
        assert_eq!(shared.layer_groups()[0].positions[0].len(), 4);
    }

    #[test]
    fn display_forms() {
        let space = deit();
        assert_eq!(space.display(StitchId(0)).unwrap().to_string(), "deit_tiny");
        assert_eq!(
            space.describe(&space.stitches()[3]),
            "deit_tiny[..=0] →L0→ deit_small[0..]"
        );
        assert_eq!(
            space.describe(&space.stitches()[70]),
            "deit_small[..=11] →L10→ deit_base[11..]"
        );
        let swin = StitchSpace::builtin(
            &[
                "swin_tiny_patch4_window7_224",
                "swin_small_patch4_window7_224",
                "swin_base_patch4_window7_224",
            ],
            SpaceConfig::default(),
        )
        .unwrap();
        assert_eq!(
            swin.describe(&swin.stitches()[9]),
            "swin_tiny[..=s2.b1] →L0→ swin_small[s2.b3..]"
        );
    }

    #[test]
    fn serde_round_trip_re_enumerates() {
        let space = deit();
        let json = serde_json::to_string(&space).unwrap();
        assert!(json.contains("deit_base_patch16_224") && !json.contains("positions"));
        let back: StitchSpace = serde_json::from_str(&json).unwrap();
        assert_eq!(back, space);
        let bad = json.replace("\"kernel_size\":2", "\"kernel_size\":0");
        let err = serde_json::from_str::<StitchSpace>(&bad).unwrap_err();
        assert!(err.to_string().contains("kernel size must be at least 1"));
    }

    #[test]
    fn segments_of_a_deit_stitch() {
        let space = deit();
        let segments = space.segments(StitchId(24)).unwrap();
        assert_eq!(
            segments,
            [
                Segment {
                    anchor: 0,
                    start: 0,
                    end: 8,
                    stem: true,
                    head: false
                },
                Segment {
                    anchor: 1,
                    start: 7,
                    end: 12,
                    stem: false,
                    head: true
                },
            ]
        );
        assert!(matches!(
            space.segments(StitchId(71)),
            Err(Error::UnknownStitch { .. })
        ));
    }

    #[test]
    fn invalid_inputs_are_typed_errors() {
        let tiny = AnchorSpec::plain("t", 4, 8);
        let small = AnchorSpec::plain("s", 4, 16);
        let cfg = SpaceConfig::default();
        assert!(matches!(
            StitchSpace::new(vec![], cfg.clone()),
            Err(Error::NoAnchors)
        ));
        assert!(matches!(
            StitchSpace::new(vec![small.clone(), tiny.clone()], cfg.clone()),
            Err(Error::AnchorOrder { stage: 0, .. })
        ));
        assert!(matches!(
            StitchSpace::new(vec![tiny.clone(), tiny.clone()], cfg.clone()),
            Err(Error::DuplicateAnchor { .. })
        ));
        assert!(matches!(
            StitchSpace::new(
                vec![tiny.clone(), small.clone()],
                cfg.clone().with_kernel_size(0)
            ),
            Err(Error::InvalidWindow {
                what: "kernel size",
                ..
            })
        ));
        assert!(matches!(
            StitchSpace::new(
                vec![tiny.clone(), small.clone()],
                cfg.clone().with_stride(0)
            ),
            Err(Error::InvalidWindow { what: "stride", .. })
        ));
        assert!(matches!(
            StitchSpace::new(
                vec![tiny.clone(), small.clone()],
                cfg.clone().with_stages([1])
            ),
            Err(Error::StageOutOfRange {
                stage: 1,
                num_stages: 1
            })
        ));
        assert!(matches!(
            StitchSpace::new(
                vec![tiny.clone(), small.clone()],
                cfg.clone().with_stages([])
            ),
            Err(Error::NoStages)
        ));
        let swin = AnchorSpec::hierarchical("w", Layout::Tokens, &[(2, 8), (2, 16)]);
        assert!(matches!(
            StitchSpace::new(vec![tiny.clone(), swin.clone()], cfg.clone()),
            Err(Error::StageCountMismatch { .. })
        ));
        let swin2 = AnchorSpec::hierarchical("w2", Layout::Tokens, &[(2, 8), (2, 32)]);
        assert!(matches!(
            StitchSpace::new(
                vec![swin, swin2],
                cfg.clone().with_direction(Direction::TwoWay)
            ),
            Err(Error::Unsupported(_))
        ));
        let deep_small = AnchorSpec::plain("ds", 8, 8);
        assert!(matches!(
            StitchSpace::new(
                vec![deep_small, small],
                cfg.with_direction(Direction::TwoWay)
            ),
            Err(Error::Unsupported(_))
        ));
    }
}
