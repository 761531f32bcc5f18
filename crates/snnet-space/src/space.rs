//! The stitch space: every stitch of a family of anchors, with ids identical to the reference.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::anchor::{AnchorRegistry, AnchorSpec};
use crate::config::SpaceConfig;
use crate::enumerate::{Builder, index_groups};
use crate::error::{Error, Result};
use crate::layers::{Junction, LayerGroup};
#[cfg(doc)]
use crate::limits::{MAX_ANCHOR_PATHS, MAX_ANCHORS, MAX_STITCHES};
use crate::stitch::{Cut, LayerKey, Segment, Stitch, StitchId};
use crate::untrusted::display_safe;
use crate::validate::validate;

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
                .ok_or(Error::UnknownLayer(LayerKey {
                    stage,
                    front,
                    end,
                    index: 0,
                }))
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
            .ok_or(Error::UnknownLayer(key))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchor::Layout;
    use crate::config::{Direction, StitchLayers};
    use crate::error::Unsupported;

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
        let swin = StitchSpace::builtin(
            &[
                "swin_tiny_patch4_window7_224",
                "swin_small_patch4_window7_224",
                "swin_base_patch4_window7_224",
            ],
            SpaceConfig::default(),
        )
        .unwrap();
        for (space, id, described) in [
            (&space, 3, "deit_tiny[..=0] →L0→ deit_small[0..]"),
            (&space, 70, "deit_small[..=11] →L10→ deit_base[11..]"),
            (&swin, 9, "swin_tiny[..=s2.b1] →L0→ swin_small[s2.b3..]"),
        ] {
            assert_eq!(space.describe(&space.stitches()[id]), described);
        }
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
            Err(Error::Unsupported(Unsupported::TwoWayHierarchical))
        ));
        let deep_small = AnchorSpec::plain("ds", 8, 8);
        assert!(matches!(
            StitchSpace::new(
                vec![deep_small, small],
                cfg.with_direction(Direction::TwoWay)
            ),
            Err(Error::Unsupported(Unsupported::TwoWayDeeperSmall {
                small_depth: 8,
                large_depth: 4,
                ..
            }))
        ));
    }
}
