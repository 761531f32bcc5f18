//! One stitch on its own: [`SnNet::export_stitch`] → [`StitchModel`], a Burn module holding
//! only the anchors and stitching layers that stitch runs, which saves to (and loads from) a
//! self-describing safetensors file without the rest of the SN-Net (see [`crate::stitch_file`]).

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use snnet_space::{Segment, StitchId};
use snnet_stitch::{Init, StitchingLayer};
use snnet_zoo::{Activation, Anchor, Cost, FeatureInfo, Model, PretrainedConfig};

use crate::error::Result;
use crate::net::{SnNet, stitch};
use crate::plan::{Plan, SnNetConfig, StitchPath};

/// What a stitch file describes: the SN-Net's configuration it was cut from and the stitch's
/// id in it. The plan of `snnet` (enumerated again on load, so every junction's geometry is
/// checked as when the SN-Net was built) gives the stitch's path; the file holds only the
/// tensors that path runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StitchConfig {
    /// The stitch's id in the SN-Net it was exported from.
    pub stitch: StitchId,
    /// That SN-Net's configuration (anchors, space rules, LoRA, reference compatibility).
    pub snnet: SnNetConfig,
}

/// The plan-derived description of an exported stitch (not saved: recomputed from
/// [`StitchConfig`]).
#[derive(Debug, Clone)]
struct StitchInfo {
    config: StitchConfig,
    /// The path, with each segment's `anchor` an index into [`StitchModel::anchors`].
    path: StitchPath,
    /// [`StitchModel::anchors`]' indices in the SN-Net.
    anchor_ids: Vec<usize>,
    /// [`StitchModel::stitch_layers`]' flat indices in the SN-Net.
    layer_ids: Vec<usize>,
    pretrained: PretrainedConfig,
    cost: Cost,
    description: String,
    feature_info: Vec<Vec<FeatureInfo>>,
}

/// One stitch of an SN-Net as a model of its own: the anchors its path runs (in first-use
/// order) and its stitching layers (in path order). Its logits equal
/// [`SnNet::forward`]`(images, id)`'s bit for bit: the same modules run the same operations.
///
/// Saved, only the tensors the path runs are written (the front anchor's stem and blocks up to
/// the cut, the stitching layers, the end anchor's blocks from the cut, its norm and head); on
/// load the parts the path skips are never materialised (Burn initialises parameters lazily).
/// LoRA stitching layers are kept as they are (weight, bias, `lora_A`, `lora_B`):
/// [`StitchModel::merged`] folds them.
///
/// ```no_run
/// use snnet_core::burn::tensor::{Device, Tensor};
/// use snnet_core::{SnNet, StitchId, StitchModel};
///
/// let device = Device::default();
/// let (net, _) = SnNet::load("snnet.safetensors".as_ref(), &device)?;
/// net.export_stitch(StitchId(24))?.save("stitch24.safetensors".as_ref())?;
/// let stitch = StitchModel::load("stitch24.safetensors".as_ref(), &device)?;
/// let logits = stitch.forward(Tensor::zeros([1, 3, 224, 224], &device))?;
/// # Ok::<(), snnet_core::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct StitchModel {
    /// The anchors the path runs, in first-use order.
    pub anchors: Vec<Model>,
    /// The stitching layers, in path order.
    pub stitch_layers: Vec<StitchingLayer>,
    #[module(skip)]
    info: Arc<StitchInfo>,
}

impl StitchInfo {
    /// The description of stitch `id` of `plan`.
    fn new(plan: &Plan, id: StitchId) -> Result<Self> {
        let path = plan.path(id)?;
        let mut anchor_ids: Vec<usize> = Vec::new();
        let mut local = path.clone();
        for segment in &mut local.segments {
            let index = match anchor_ids.iter().position(|&a| a == segment.anchor) {
                Some(i) => i,
                None => {
                    anchor_ids.push(segment.anchor);
                    anchor_ids.len() - 1
                }
            };
            segment.anchor = index;
        }
        let description = plan.space().display(id)?.to_string();
        Ok(Self {
            config: StitchConfig {
                stitch: id,
                snnet: plan.config().clone(),
            },
            layer_ids: path.layers.clone(),
            feature_info: anchor_ids
                .iter()
                .map(|&a| plan.feature_info(a).to_vec())
                .collect(),
            anchor_ids,
            path: local,
            pretrained: plan.pretrained().clone(),
            cost: plan.cost(id)?,
            description,
        })
    }
}

impl SnNet {
    /// Stitch `id` as a model of its own: this network's anchors and stitching layers on its
    /// path (shared, not copied: Burn's tensors are reference-counted). Save it with
    /// [`StitchModel::save`].
    ///
    /// # Errors
    /// [`Error::Space`](crate::Error::Space) for an id out of range, and
    /// [`Error::Parts`](crate::Error::Parts) when the network's parts no longer follow its
    /// plan.
    pub fn export_stitch(&self, id: StitchId) -> Result<StitchModel> {
        let info = StitchInfo::new(self.plan(), id)?;
        self.check_parts()?;
        Ok(StitchModel {
            anchors: info
                .anchor_ids
                .iter()
                .map(|&a| self.anchors[a].clone())
                .collect(),
            stitch_layers: info
                .layer_ids
                .iter()
                .map(|&l| self.stitch_layers[l].clone())
                .collect(),
            info: Arc::new(info),
        })
    }
}

impl StitchModel {
    /// The model of `config` with its parameters not yet loaded (lazily initialised: a
    /// parameter that no file fills is never allocated).
    pub(crate) fn init(config: StitchConfig, device: &Device) -> Result<Self> {
        let plan = config.snnet.plan()?;
        let info = StitchInfo::new(&plan, config.stitch)?;
        let anchors = info
            .anchor_ids
            .iter()
            .map(|&a| {
                let entry = &plan.config().anchors[a];
                entry.config.init(&entry.name, device)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stitch_layers = info
            .layer_ids
            .iter()
            .map(|&l| Ok(plan.layers()[l].init(Init::Zeros, device)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            anchors,
            stitch_layers,
            info: Arc::new(info),
        })
    }

    /// What the file stores: the SN-Net's configuration and the stitch's id in it.
    pub fn config(&self) -> &StitchConfig {
        &self.info.config
    }

    /// The stitch's id in the SN-Net it was exported from.
    pub fn stitch_id(&self) -> StitchId {
        self.info.config.stitch
    }

    /// The path: segments (each `anchor` an index into [`StitchModel::anchors`]), the
    /// stitching layers' flat indices in the SN-Net, junctions, final norm.
    pub fn path(&self) -> &StitchPath {
        &self.info.path
    }

    /// The segments of the path, with anchors indexing [`StitchModel::anchors`].
    pub fn segments(&self) -> &[Segment] {
        &self.info.path.segments
    }

    /// [`StitchModel::anchors`]' indices in the SN-Net's anchors.
    pub fn anchor_ids(&self) -> &[usize] {
        &self.info.anchor_ids
    }

    /// How images are prepared (the SN-Net's one input config).
    pub fn pretrained(&self) -> &PretrainedConfig {
        &self.info.pretrained
    }

    /// FLOPs (fvcore, one image) and parameters, as [`SnNet::cost`] counts them.
    pub fn cost(&self) -> Cost {
        self.info.cost
    }

    /// The stitch in words, e.g. `deit_tiny[..=7] →L6→ deit_small[7..]`.
    pub fn description(&self) -> &str {
        &self.info.description
    }

    /// Per-block output info of [`StitchModel::anchors`]`[a]`.
    pub fn anchor_feature_info(&self, a: usize) -> &[FeatureInfo] {
        self.info.feature_info.get(a).map_or(&[], Vec::as_slice)
    }

    /// Checks the images (the first anchor's [`Anchor::check_images`]) and the parts against
    /// the path: the one check of a forward.
    ///
    /// # Errors
    /// [`Error::Parts`](crate::Error::Parts), [`Error::Zoo`](crate::Error::Zoo) (images).
    pub fn check_entry(&self, dims: [usize; 4]) -> Result<()> {
        if self.anchors.len() != self.info.anchor_ids.len()
            || self.stitch_layers.len() != self.info.layer_ids.len()
        {
            return Err(crate::Error::Parts {
                anchors: self.anchors.len(),
                layers: self.stitch_layers.len(),
                plan_anchors: self.info.anchor_ids.len(),
                plan_layers: self.info.layer_ids.len(),
            });
        }
        let first = self.segments().first().map_or(0, |s| s.anchor);
        self.anchors[first].check_images(dims)?;
        Ok(())
    }

    /// Runs the stitch on `images`, as [`SnNet::forward`] runs it.
    ///
    /// # Shapes
    /// `[B, C, H, W]` (normalised as [`StitchModel::pretrained`] says) → `[B, num_classes]`.
    ///
    /// # Errors
    /// As [`StitchModel::check_entry`].
    pub fn forward(&self, images: Tensor<4>) -> Result<Tensor<2>> {
        self.check_entry(images.dims())?;
        let x = self.run_segments(images, &mut |_, _, _| {});
        let last = self.segments().last().map_or(0, |s| s.anchor);
        Ok(self.anchors[last].head(x, self.info.path.norm))
    }

    /// Runs the checked path up to its head, handing every block's output to `visit` as
    /// `(segment, global block, activation)`.
    pub(crate) fn run_segments(
        &self,
        images: Tensor<4>,
        visit: &mut dyn FnMut(usize, usize, &Activation),
    ) -> Activation {
        let segments = self.segments();
        let Some(first) = segments.first() else {
            return self.anchors[0].embed(images);
        };
        let anchor = &self.anchors[first.anchor];
        let mut x = anchor.blocks_with_states(first.blocks(), anchor.embed(images), &mut |s, a| {
            if s > first.start {
                visit(0, s - 1, a);
            }
        });
        for (i, (segment, layer)) in segments.iter().skip(1).zip(&self.stitch_layers).enumerate() {
            let anchor = &self.anchors[segment.anchor];
            x = anchor.blocks_with_states(segment.blocks(), stitch(layer, x), &mut |s, a| {
                if s > segment.start {
                    visit(i + 1, s - 1, a);
                }
            });
        }
        x
    }

    /// Folds every LoRA update into its base weight: the same outputs, one matrix per
    /// stitching layer.
    #[must_use]
    pub fn merged(mut self) -> Self {
        self.stitch_layers = self
            .stitch_layers
            .into_iter()
            .map(StitchingLayer::merged)
            .collect();
        self
    }
}
