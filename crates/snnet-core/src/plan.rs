//! An SN-Net's configuration and its plan: the one traversal of the stitch space that forward,
//! cost, least-squares init, checkpoints and training all read.

use std::collections::{BTreeMap, BTreeSet};

use derive_setters::Setters;
use serde::{Deserialize, Serialize};
use snnet_space::{
    Cut, Direction, Junction, LayerGroup, LayerKey, Layout, Segment, SpaceConfig, StitchId,
    StitchSpace,
};
use snnet_stitch::{LoraConfig, StitchingLayerConfig};
use snnet_zoo::{Cost, FeatureInfo, ModelCost, ModelEntry, PretrainedConfig, Registry};

use crate::error::{Error, Result};

/// What an SN-Net is made of: the anchors (small → large), the stitch space's rules, the
/// stitching layers' LoRA update and the reference-compatibility switch.
///
/// It is self-describing: a checkpoint stores it, so a saved SN-Net loads without naming its
/// anchors again.
///
/// ```
/// use snnet_core::{Registry, SnNetConfig, SpaceConfig, StitchId};
///
/// let names = ["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"];
/// let config = SnNetConfig::from_registry(&Registry::builtin(), &names, SpaceConfig::default())?
///     .with_reference_compat(true);
/// let plan = config.plan()?;
/// assert_eq!(plan.len(), 71);
/// // The published cost of stitch 24 (snnet-spec.md §3).
/// let cost = plan.cost(StitchId(24))?;
/// assert_eq!((cost.flops, cost.params), (2_758_967_808, 13_038_760));
/// # Ok::<(), snnet_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_", generate = false)]
pub struct SnNetConfig {
    /// The anchors, small → large: names, architectures and preprocessing.
    pub anchors: Vec<ModelEntry>,
    /// The stitch space's rules.
    #[serde(default)]
    pub space: SpaceConfig,
    /// A low-rank update on every stitching layer (SN-Netv2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[setters(generate)]
    pub lora: Option<LoraConfig>,
    /// Run and count stitches as the released reference checkpoints were trained and measured:
    /// stitched plain-ViT paths (SN-Net v1) skip the end anchor's final norm and leave the
    /// class token and position embedding out of their parameter count; stitched Swin paths
    /// leave the front anchor's patch-merging parameters out of theirs.
    #[serde(default)]
    #[setters(generate)]
    pub reference_compat: bool,
}

impl SnNetConfig {
    /// An SN-Net of `anchors` (small → large) under `space`.
    ///
    /// Anchors that run at any input size are set to the first anchor's (see
    /// [`SnNetConfig::at_first_input_size`]).
    pub fn new(anchors: Vec<ModelEntry>, space: SpaceConfig) -> Self {
        Self {
            anchors,
            space,
            lora: None,
            reference_compat: false,
        }
        .at_first_input_size()
    }

    /// One input for the network: every later anchor whose family runs at any input size
    /// (EfficientNet-Lite; see [`ModelEntry::at_input_size`]) and whose native size differs
    /// from the first anchor's is set to run at the first anchor's input size — its config and
    /// preprocessing then state that size, and its costs and feature grids are counted at it.
    /// Anchors tied to their input size (ViT, Swin, ResNet) are left as they are, and the plan
    /// refuses them when their size differs ([`Error::InputSize`]).
    #[must_use]
    pub fn at_first_input_size(mut self) -> Self {
        let Some(input) = self.anchors.first().map(|a| a.pretrained().input_size) else {
            return self;
        };
        for anchor in self.anchors.iter_mut().skip(1) {
            let [h, w] = anchor.config.img_size();
            let native = [anchor.config.in_chans(), h, w];
            if native == input && anchor.pretrained().input_size == input {
                continue;
            }
            if let Some(resized) = anchor.at_input_size(input) {
                *anchor = resized;
            }
        }
        self
    }

    /// An SN-Net of registry models, by name.
    ///
    /// # Errors
    /// [`Error::Zoo`] for an unknown name.
    pub fn from_registry<S: AsRef<str>>(
        registry: &Registry,
        names: &[S],
        space: SpaceConfig,
    ) -> Result<Self> {
        let anchors = names
            .iter()
            .map(|n| registry.get(n.as_ref()).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(anchors, space))
    }

    /// An SN-Net of the zoo's built-in models, by timm name (small → large).
    ///
    /// # Errors
    /// [`Error::Zoo`] for an unknown name (with close matches).
    pub fn builtin<S: AsRef<str>>(names: &[S], space: SpaceConfig) -> Result<Self> {
        Self::from_registry(&Registry::builtin(), names, space)
    }

    /// The anchors' names.
    pub fn anchor_names(&self) -> Vec<&str> {
        self.anchors.iter().map(|a| a.name.as_str()).collect()
    }

    /// Enumerates the stitch space and checks that the anchors fit together.
    ///
    /// # Errors
    /// [`Error::Zoo`] for an invalid anchor config, [`Error::Space`] for an invalid space,
    /// [`Error::RowMismatch`] when a stitch would join activations of different token counts
    /// or grids, [`Error::InputSize`] when anchors mix input sizes and
    /// [`Error::Preprocessing`] when they prepare images differently (mean, std,
    /// interpolation).
    pub fn plan(&self) -> Result<Plan> {
        Plan::new(self.clone())
    }
}

/// How a stitch runs: its anchor segments and the stitching layers between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StitchPath {
    /// The stitch.
    pub id: StitchId,
    /// The anchors' runs of global blocks, in order (the first runs the stem, the last the
    /// head).
    pub segments: Vec<Segment>,
    /// Between `segments[i]` and `segments[i + 1]`: the stitching layer (flat index into
    /// [`Plan::layer_keys`]).
    pub layers: Vec<usize>,
    /// Where each of `layers` hands over (`junctions[i]` joins `segments[i]` to
    /// `segments[i + 1]`).
    pub junctions: Vec<Junction>,
    /// Whether the head applies the final norm.
    pub norm: bool,
}

impl StitchPath {
    /// Whether the path is a single anchor.
    pub fn is_anchor(&self) -> bool {
        self.segments.len() == 1
    }
}

/// What the least-squares init fits for one stitching layer: the cuts that share it and where
/// each hands over. The layer's weights are the mean of the cuts' solutions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFitPlan {
    /// The layer's flat index.
    pub layer: usize,
    /// The layer's key.
    pub key: LayerKey,
    /// The cuts, in first-use order.
    pub cuts: Vec<Cut>,
    /// Each cut's handover: fit the front anchor's [`Junction::front_state`] to the end
    /// anchor's [`Junction::end_state`].
    pub junctions: Vec<Junction>,
}

/// The plan of an SN-Net: its space, every stitching layer's shape (flat, in
/// [`StitchSpace::layer_keys`] order), every stitch's path and cost. Built once from the
/// config; cloning the network shares it.
#[derive(Debug, Clone)]
pub struct Plan {
    config: SnNetConfig,
    pretrained: PretrainedConfig,
    space: StitchSpace,
    feature_info: Vec<Vec<FeatureInfo>>,
    anchor_costs: Vec<ModelCost>,
    group_offsets: Vec<usize>,
    layer_keys: Vec<LayerKey>,
    layers: Vec<StitchingLayerConfig>,
    paths: Vec<StitchPath>,
    costs: Vec<Cost>,
    fits: Vec<LayerFitPlan>,
}

/// The one input config of a network of `anchors`: the first anchor's, once every anchor is
/// checked to take the same images prepared the same way (input size, channels, mean, std,
/// interpolation). The crop may differ between families (timm crops ResNets at 0.95, ViTs at
/// 0.9): the first anchor's applies.
fn input_config(anchors: &[ModelEntry]) -> Result<PretrainedConfig> {
    let Some(first) = anchors.first() else {
        return Err(snnet_space::Error::NoAnchors.into());
    };
    let input = first.pretrained();
    for a in &anchors[1..] {
        let other = a.pretrained();
        // The models' input sizes, then the sizes their preprocessing produces.
        let size = |e: &ModelEntry| {
            let [h, w] = e.config.img_size();
            [e.config.in_chans(), h, w]
        };
        for (first_size, other_size) in
            [(size(first), size(a)), (input.input_size, other.input_size)]
        {
            if first_size != other_size {
                return Err(Error::InputSize {
                    first: first.name.clone(),
                    first_size,
                    other: a.name.clone(),
                    other_size,
                });
            }
        }
        let what = if other.mean != input.mean {
            Some("mean")
        } else if other.std != input.std {
            Some("std")
        } else if other.interpolation != input.interpolation {
            Some("interpolation")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::Preprocessing {
                first: first.name.clone(),
                other: a.name.clone(),
                what,
            });
        }
    }
    Ok(input)
}

impl Plan {
    fn new(config: SnNetConfig) -> Result<Self> {
        let config = config.at_first_input_size();
        if config.anchors.is_empty() {
            return Err(snnet_space::Error::NoAnchors.into());
        }
        for entry in &config.anchors {
            entry.config.validate()?;
        }
        let specs = config
            .anchors
            .iter()
            .map(|a| a.config.spec(&a.name))
            .collect();
        let space = StitchSpace::new(specs, config.space.clone())?;
        let feature_info: Vec<Vec<FeatureInfo>> = config
            .anchors
            .iter()
            .map(|a| a.config.feature_info())
            .collect();
        let anchor_costs: Vec<ModelCost> = config.anchors.iter().map(|a| a.config.cost()).collect();
        let pretrained = input_config(&config.anchors)?;
        let mut group_offsets = Vec::new();
        let mut layer_keys = Vec::new();
        let mut layers = Vec::new();
        for group in space.layer_groups() {
            group_offsets.push(layers.len());
            let layer = StitchingLayerConfig {
                in_width: group.in_width,
                out_width: group.out_width,
                in_layout: group.in_layout,
                out_layout: group.out_layout,
                lora: config.lora,
            };
            layer.validate()?;
            for key in group.keys() {
                layer_keys.push(key);
                layers.push(layer.clone());
            }
        }

        let mut plan = Self {
            config,
            pretrained,
            space,
            feature_info,
            anchor_costs,
            group_offsets,
            layer_keys,
            layers,
            paths: Vec::new(),
            costs: Vec::new(),
            fits: Vec::new(),
        };
        let mut paths = Vec::with_capacity(plan.space.len());
        let mut costs = Vec::with_capacity(plan.space.len());
        for stitch in plan.space.stitches() {
            let segments = plan.space.segments_of(stitch)?;
            let junctions = plan.space.junctions_of(stitch)?;
            let layers = stitch
                .layer_keys()
                .map(|key| plan.layer_index(key))
                .collect::<Result<Vec<_>>>()?;
            let stitched = segments.len() > 1;
            let path = StitchPath {
                id: stitch.id,
                norm: !(stitched && plan.compat_plain()),
                segments,
                layers,
                junctions,
            };
            costs.push(plan.path_cost(&path)?);
            paths.push(path);
        }
        let mut fits = Vec::new();
        for (group, offset) in plan.groups() {
            for (index, cuts) in group.positions.iter().enumerate() {
                if cuts.is_empty() {
                    continue;
                }
                let junctions = cuts
                    .iter()
                    .map(|&cut| {
                        plan.space
                            .junction(group.stage, group.front, group.end, cut)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                fits.push(LayerFitPlan {
                    layer: offset + index,
                    key: group.key(index),
                    cuts: cuts.clone(),
                    junctions,
                });
            }
        }
        plan.paths = paths;
        plan.costs = costs;
        plan.fits = fits;
        Ok(plan)
    }

    /// Whether the reference's SN-Net v1 plain-ViT quirks apply (no final norm on stitched
    /// paths, class token and position embedding not counted).
    fn compat_plain(&self) -> bool {
        self.config.reference_compat
            && !self.space.is_hierarchical()
            && self.config.space.direction != Direction::TwoWay
            && self
                .space
                .anchors()
                .iter()
                .all(|a| a.layout == Layout::Tokens)
    }

    /// The flat index of stitching layer `key` (an indexed lookup), the position of its
    /// weights in [`Plan::layers`] and in the network's `stitch_layers`.
    ///
    /// # Errors
    /// [`Error::Space`] (unknown layer) when the space has no such layer.
    pub fn layer_index(&self, key: LayerKey) -> Result<usize> {
        self.space
            .group_index(key.stage, key.front, key.end)
            .filter(|&g| {
                self.space
                    .layer_groups()
                    .get(g)
                    .is_some_and(|group| key.index < group.num_layers())
            })
            .and_then(|g| self.group_offsets.get(g))
            .map(|offset| offset + key.index)
            .ok_or_else(|| snnet_space::Error::UnknownLayer(key).into())
    }

    /// Rows (tokens or pixels) of `anchor`'s state `state`: the activation entering global
    /// block `state` (see [`Junction`]). The embedded input (state 0) has block 0's grid: a
    /// grid changes only at a stage's first block, and stage 0 has no transition.
    fn rows_at(&self, anchor: usize, state: usize) -> Result<u64> {
        let block = state.saturating_sub(1);
        let info = self
            .feature_info
            .get(anchor)
            .and_then(|f| f.get(block))
            .ok_or(Error::FeatureInfo { anchor, block })?;
        let rows = info.grid[0]
            .checked_mul(info.grid[1])
            .and_then(|r| r.checked_add(info.prefix_tokens))
            .ok_or(Error::FeatureInfo { anchor, block })?;
        Ok(rows as u64)
    }

    fn path_cost(&self, path: &StitchPath) -> Result<Cost> {
        let stitched = !path.is_anchor();
        let compat = self.config.reference_compat;
        let mut cost = Cost::ZERO;
        for (i, segment) in path.segments.iter().enumerate() {
            let model = &self.anchor_costs[segment.anchor];
            if segment.stem {
                cost += model.stem;
                if !(stitched && self.compat_plain()) {
                    cost += model.tokens;
                }
            }
            cost += model.blocks(segment.blocks());
            if stitched && compat && segment.stem && self.space.is_hierarchical() {
                // The reference counts the front anchor's blocks, not its patch merging.
                cost.params -= model.transitions(segment.blocks()).params;
            }
            if segment.head {
                cost += model.head;
                cost += if path.norm {
                    model.norm
                } else {
                    // Skipped, yet the reference counts its parameters.
                    Cost::new(0, model.norm.params)
                };
            }
            if let (Some(&layer), Some(junction)) = (path.layers.get(i), path.junctions.get(i)) {
                let rows = self.rows_at(junction.front, junction.front_state())?;
                let end_rows = self.rows_at(junction.end, junction.end_state())?;
                if rows != end_rows {
                    return Err(Error::RowMismatch {
                        id: path.id,
                        front: self.anchor_name(junction.front).to_owned(),
                        rows,
                        end: self.anchor_name(junction.end).to_owned(),
                        end_rows,
                    });
                }
                let config = self.layers.get(layer).ok_or(Error::NoLayer {
                    id: path.id,
                    layer,
                    layers: self.layers.len(),
                })?;
                cost += Cost::new(config.flops(rows), config.num_params());
            }
        }
        Ok(cost)
    }

    fn anchor_name(&self, anchor: usize) -> &str {
        self.config
            .anchors
            .get(anchor)
            .map_or("?", |a| a.name.as_str())
    }

    /// The configuration.
    pub fn config(&self) -> &SnNetConfig {
        &self.config
    }

    /// How the network's input images are prepared (timm's `pretrained_cfg`): the one input
    /// config of every anchor, derived once when the plan is built (anchors that differ in
    /// input size, channels, mean, std or interpolation are refused then). Its `num_classes`
    /// and crop are the first anchor's.
    pub fn pretrained(&self) -> &PretrainedConfig {
        &self.pretrained
    }

    /// The stitch space.
    pub fn space(&self) -> &StitchSpace {
        &self.space
    }

    /// Number of stitches (anchors included).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether the space has no stitch (never, for a valid config).
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The path of stitch `id`.
    ///
    /// # Errors
    /// [`Error::Space`] (unknown stitch) when the id is out of range.
    pub fn path(&self, id: StitchId) -> Result<&StitchPath> {
        self.paths.get(id.index()).ok_or_else(|| {
            snnet_space::Error::UnknownStitch {
                id: id.index(),
                count: self.paths.len(),
            }
            .into()
        })
    }

    /// Every stitch's path, by id.
    pub fn paths(&self) -> &[StitchPath] {
        &self.paths
    }

    /// FLOPs (fvcore, one image) and parameters of stitch `id`.
    ///
    /// # Errors
    /// As [`Plan::path`].
    pub fn cost(&self, id: StitchId) -> Result<Cost> {
        self.path(id)?;
        Ok(self.costs[id.index()])
    }

    /// Every stitch's cost, by id.
    pub fn costs(&self) -> &[Cost] {
        &self.costs
    }

    /// What the least-squares init fits: every stitching layer some stitch uses, with its cuts'
    /// handovers, in flat order.
    pub fn fits(&self) -> &[LayerFitPlan] {
        &self.fits
    }

    /// The anchor states the least-squares init reads, per anchor: every fit's front and end
    /// states.
    pub fn fit_states(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let mut states: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for junction in self.fits.iter().flat_map(|f| &f.junctions) {
            states
                .entry(junction.front)
                .or_default()
                .insert(junction.front_state());
            states
                .entry(junction.end)
                .or_default()
                .insert(junction.end_state());
        }
        states
    }

    /// The stitching layers' keys, in flat order.
    pub fn layer_keys(&self) -> &[LayerKey] {
        &self.layer_keys
    }

    /// The stitching layers' shapes, in flat order.
    pub fn layers(&self) -> &[StitchingLayerConfig] {
        &self.layers
    }

    /// The flat index of the first layer of each of [`StitchSpace::layer_groups`].
    pub fn group_offsets(&self) -> &[usize] {
        &self.group_offsets
    }

    /// The layer group and flat index range of every group.
    pub fn groups(&self) -> impl Iterator<Item = (&LayerGroup, usize)> {
        self.space
            .layer_groups()
            .iter()
            .zip(self.group_offsets.iter().copied())
    }

    /// Each anchor's per-block feature info.
    pub fn feature_info(&self, anchor: usize) -> &[FeatureInfo] {
        self.feature_info.get(anchor).map_or(&[], Vec::as_slice)
    }

    /// Each anchor's cost parts.
    pub fn anchor_cost(&self, anchor: usize) -> Option<&ModelCost> {
        self.anchor_costs.get(anchor)
    }

    /// The reference's checkpoint key prefix of flat layer `index`:
    /// `stitch_layers.{pair}.{layer}` (SN-Net DeiT), `stitch_layers.{stage}.{pair}.{layer}`
    /// (Swin, ResNet: stage = position among the stitched stages) or
    /// `stitch_layers.{front}.{layer}` (SN-Netv2 two-way).
    pub fn reference_layer_prefix(&self, index: usize) -> Option<String> {
        let key = self.layer_keys.get(index)?;
        let groups = self.space.layer_groups();
        let group = self.space.group_index(key.stage, key.front, key.end)?;
        // The pair's position among the groups of its stage (groups are stored stage by stage).
        let pair = groups
            .get(..group)?
            .iter()
            .filter(|g| g.stage == key.stage)
            .count();
        Some(match key.stage {
            Some(stage) => {
                let position = self.space.stages().iter().position(|&s| s == stage)?;
                format!("stitch_layers.{position}.{pair}.{}", key.index)
            }
            None if self.config.space.direction == Direction::TwoWay => {
                format!("stitch_layers.{}.{}", key.front, key.index)
            }
            None => format!("stitch_layers.{pair}.{}", key.index),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(names: &[&str], compat: bool) -> Plan {
        SnNetConfig::from_registry(&Registry::builtin(), names, SpaceConfig::default())
            .unwrap()
            .with_reference_compat(compat)
            .plan()
            .unwrap()
    }

    #[test]
    fn deit_paths_and_layer_keys() {
        let plan = plan(
            &[
                "deit_tiny_patch16_224",
                "deit_small_patch16_224",
                "deit_base_patch16_224",
            ],
            true,
        );
        assert_eq!(plan.len(), 71);
        assert_eq!(plan.layer_keys().len(), 22);
        let path = plan.path(StitchId(24)).unwrap();
        assert_eq!(path.segments.len(), 2);
        assert!(!path.norm);
        assert!(plan.path(StitchId(1)).unwrap().norm);
        assert_eq!(
            plan.reference_layer_prefix(11 + 3).as_deref(),
            Some("stitch_layers.1.3")
        );
        assert!(plan.path(StitchId(71)).is_err());
    }

    #[test]
    fn default_counts_what_runs() {
        let names = ["deit_tiny_patch16_224", "deit_small_patch16_224"];
        let honest = plan(&names, false);
        let compat = plan(&names, true);
        let (h, c) = (
            honest.cost(StitchId(5)).unwrap(),
            compat.cost(StitchId(5)).unwrap(),
        );
        // The end's final norm: 5·197·384 flops; cls + pos of the front: (1 + 197)·192 params.
        assert_eq!(h.flops - c.flops, 5 * 197 * 384);
        assert_eq!(h.params - c.params, 198 * 192);
        // Anchors are the same either way.
        assert_eq!(
            honest.cost(StitchId(0)).unwrap(),
            compat.cost(StitchId(0)).unwrap()
        );
    }

    #[test]
    fn mixed_input_sizes_are_rejected() {
        let registry = Registry::builtin();
        let mut config = SnNetConfig::from_registry(
            &registry,
            &["deit_tiny_patch16_224", "deit_small_patch16_224"],
            SpaceConfig::default(),
        )
        .unwrap();
        let snnet_zoo::ModelConfig::Vit(vit) = &mut config.anchors[1].config else {
            panic!("a ViT")
        };
        vit.img_size = [384, 384];
        let err = config.plan().unwrap_err();
        assert!(matches!(err, Error::InputSize { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "one SN-Net takes one input: `deit_tiny_patch16_224` takes [3, 224, 224] images, \
             `deit_small_patch16_224` [3, 384, 384] (only anchors that run at any size, such as \
             EfficientNet-Lite, follow the first anchor's)"
        );
    }

    /// EfficientNet-Lite0/1/2 (native 224², 240², 260²) make one network at Lite0's input
    /// config; a ViT at another size is still refused.
    #[test]
    fn cnn_anchors_run_at_the_first_anchors_input_size() {
        let names = [
            "tf_efficientnet_lite0",
            "tf_efficientnet_lite1",
            "tf_efficientnet_lite2",
        ];
        let config = SnNetConfig::builtin(&names, SpaceConfig::default()).unwrap();
        for anchor in &config.anchors {
            assert_eq!(anchor.config.img_size(), [224, 224], "{}", anchor.name);
            assert_eq!(anchor.pretrained().input_size, [3, 224, 224]);
        }
        // Lite1 keeps its own crop; the network's is the first anchor's.
        assert!((config.anchors[1].pretrained().crop_pct - 0.882).abs() < 1e-6);
        let plan = config.plan().unwrap();
        assert_eq!(plan.pretrained().input_size, [3, 224, 224]);
        assert!((plan.pretrained().crop_pct - 0.875).abs() < 1e-6);
        // A config written with native sizes (e.g. by hand) is planned at the first's too.
        let registry = Registry::builtin();
        let mut native = config.clone();
        native.anchors = names
            .iter()
            .map(|n| registry.get(n).unwrap().clone())
            .collect();
        assert_eq!(native.anchors[2].config.img_size(), [260, 260]);
        let replanned = native.plan().unwrap();
        assert_eq!(replanned.config().anchors[2].config.img_size(), [224, 224]);
        // Anchors tied to their size keep it (and are refused by the plan when it differs).
        let mixed = SnNetConfig::builtin(
            &["tf_efficientnet_lite0", "swin_base_patch4_window12_384"],
            SpaceConfig::default(),
        )
        .unwrap();
        assert_eq!(mixed.anchors[1].config.img_size(), [384, 384]);
        assert!(mixed.plan().is_err());
    }

    #[test]
    fn one_input_config() {
        let names = ["deit_tiny_patch16_224", "deit_small_patch16_224"];
        let config = SnNetConfig::builtin(&names, SpaceConfig::default()).unwrap();
        let plan = config.plan().unwrap();
        assert_eq!(plan.pretrained(), &config.anchors[0].pretrained());
        // Google's ViTs use Inception normalisation, DeiTs ImageNet's: refused, not silently
        // normalised as the first anchor says.
        let mut mixed = config.clone();
        mixed.anchors[1].pretrained = Some(mixed.anchors[1].pretrained().inception());
        let err = mixed.plan().unwrap_err();
        assert!(
            matches!(err, Error::Preprocessing { what: "mean", .. }),
            "{err}"
        );
        let mut mixed = config.clone();
        let mut bilinear = mixed.anchors[1].pretrained();
        bilinear.interpolation = snnet_zoo::Interpolation::Bilinear;
        mixed.anchors[1].pretrained = Some(bilinear);
        assert!(matches!(
            mixed.plan(),
            Err(Error::Preprocessing {
                what: "interpolation",
                ..
            })
        ));
        // A different crop is allowed (timm crops families differently): the first applies.
        let mut cropped = config.clone();
        let mut crop = cropped.anchors[1].pretrained();
        crop.crop_pct = 0.95;
        cropped.anchors[1].pretrained = Some(crop);
        let plan = cropped.plan().unwrap();
        assert_eq!(plan.pretrained().crop_pct, 0.9);
        // An explicit input size that differs from the other anchors' is refused too.
        let mut sized = config;
        let mut size = sized.anchors[1].pretrained();
        size.input_size = [3, 256, 256];
        sized.anchors[1].pretrained = Some(size);
        assert!(matches!(sized.plan(), Err(Error::InputSize { .. })));
    }
}
