//! The stitched network.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use snnet_space::{LayerKey, StitchId, StitchSpace};
use snnet_stitch::{Init, StitchingLayer};
use snnet_zoo::{Activation, Anchor, Cost, LoadOptions, LoadReport, Model};

use crate::error::{Error, Result};
use crate::plan::{Plan, SnNetConfig, StitchPath};

/// A Stitchable Neural Network: the anchors and the stitching layers of every anchor pair (and
/// stage), able to run any stitch of its space by id.
///
/// The stitch is an explicit argument of [`SnNet::forward`]: the module holds no random state
/// and no "current stitch", so switching stitches is choosing another id — nothing is copied
/// or rebuilt, and one network can serve different stitches from different threads.
///
/// As a Burn module, its tensors are keyed `anchors.{a}.model.<timm key>` and
/// `stitch_layers.{flat index}.transform.{weight,bias,lora_a,lora_b}`; checkpoints use the
/// reference's keys instead (see [`SnNet::save`]).
///
/// ```no_run
/// use snnet_core::burn::tensor::{Device, Tensor};
/// use snnet_core::{Registry, SnNetConfig, SpaceConfig, StitchId};
///
/// let names = ["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"];
/// let device = Device::default();
/// let net = SnNetConfig::from_registry(&Registry::builtin(), &names, SpaceConfig::default())?
///     .init(&device)?;
/// let images = Tensor::<4>::zeros([1, 3, 224, 224], &device);
/// let logits = net.forward(images.clone(), StitchId(24))?; // Ti[..=7] → S[7..]
/// let logits = net.forward(images, StitchId(56))?; // another stitch, same network
/// # Ok::<(), snnet_core::Error>(())
/// ```
#[derive(Module, Debug)]
pub struct SnNet {
    /// The anchors, small → large.
    pub anchors: Vec<Model>,
    /// The stitching layers, in [`Plan::layer_keys`] order.
    pub stitch_layers: Vec<StitchingLayer>,
    #[module(skip)]
    plan: Arc<Plan>,
}

impl SnNetConfig {
    /// Builds the SN-Net: anchors with random weights (load pretrained weights, then run the
    /// least-squares init) and stitching layers with PyTorch's default (Kaiming-uniform)
    /// initialisation, seeded by layer index.
    ///
    /// # Errors
    /// As [`SnNetConfig::plan`].
    pub fn init(&self, device: &Device) -> Result<SnNet> {
        self.init_with(Init::Kaiming { seed: 0 }, device)
    }

    /// As [`SnNetConfig::init`], with the stitching layers' initialisation chosen (a Kaiming
    /// seed is offset by each layer's flat index).
    ///
    /// # Errors
    /// As [`SnNetConfig::plan`].
    pub fn init_with(&self, init: Init, device: &Device) -> Result<SnNet> {
        let plan = self.plan()?;
        SnNet::from_plan(Arc::new(plan), init, device)
    }
}

/// The stitching layers of a plan, initialised (a Kaiming seed is offset by each layer's flat
/// index).
pub(crate) fn init_stitch_layers(
    plan: &Plan,
    init: Init,
    device: &Device,
) -> Result<Vec<StitchingLayer>> {
    plan.layers()
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let init = match init {
                Init::Kaiming { seed } => Init::Kaiming {
                    seed: seed.wrapping_add(i as u64),
                },
                other => other,
            };
            Ok(layer.init(init, device)?)
        })
        .collect()
}

impl SnNet {
    /// Builds the network of a plan.
    ///
    /// # Errors
    /// [`Error::Zoo`] and [`Error::Stitch`] for invalid configs.
    pub fn from_plan(plan: Arc<Plan>, init: Init, device: &Device) -> Result<Self> {
        let anchors = plan
            .config()
            .anchors
            .iter()
            .map(|a| a.config.init(&a.name, device))
            .collect::<Result<Vec<_>, _>>()?;
        let stitch_layers = init_stitch_layers(&plan, init, device)?;
        Ok(Self {
            anchors,
            stitch_layers,
            plan,
        })
    }

    /// Builds an SN-Net from pretrained anchors: anchor `i` of `config` loads its timm weights
    /// from `weights[i]` (safetensors or `.pth`, either timm layout); the stitching layers start
    /// Kaiming-initialised — run [`SnNet::init_least_squares`] next, or load a trained SN-Net
    /// with [`SnNet::load`] instead. No anchor is built with random weights first.
    ///
    /// ```no_run
    /// use snnet_core::burn::tensor::{Device, Tensor};
    /// use snnet_core::{SnNet, SnNetConfig, SpaceConfig, StitchId};
    ///
    /// let config = SnNetConfig::builtin(
    ///     &["deit_tiny_patch16_224", "deit_small_patch16_224"],
    ///     SpaceConfig::default(),
    /// )?;
    /// let device = Device::default();
    /// let (net, _reports) =
    ///     SnNet::from_pretrained(config, &["deit_tiny.safetensors", "deit_small.safetensors"], &device)?;
    /// let logits = net.forward(Tensor::zeros([1, 3, 224, 224], &device), StitchId(0))?;
    /// # Ok::<(), snnet_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WeightCount`] unless there is one file per anchor; as [`SnNetConfig::plan`];
    /// [`Error::Zoo`] for a missing, unreadable or mismatched weight file.
    pub fn from_pretrained<P: AsRef<std::path::Path>>(
        config: SnNetConfig,
        weights: &[P],
        device: &Device,
    ) -> Result<(Self, Vec<LoadReport>)> {
        Self::from_pretrained_with(
            config,
            weights,
            Init::Kaiming { seed: 0 },
            LoadOptions::default(),
            device,
        )
    }

    /// As [`SnNet::from_pretrained`], with the stitching layers initialised by `init` (a
    /// Kaiming seed is offset by each layer's flat index) and the weights loaded with `options`
    /// (e.g. [`LoadOptions::allow_nonfinite`]).
    ///
    /// # Errors
    /// As [`SnNet::from_pretrained`].
    pub fn from_pretrained_with<P: AsRef<std::path::Path>>(
        config: SnNetConfig,
        weights: &[P],
        init: Init,
        options: LoadOptions,
        device: &Device,
    ) -> Result<(Self, Vec<LoadReport>)> {
        if weights.len() != config.anchors.len() {
            return Err(Error::WeightCount {
                anchors: config.anchors.len(),
                files: weights.len(),
            });
        }
        let plan = Arc::new(config.plan()?);
        // The plan's anchors: CNNs set to the network's one input size.
        let (anchors, reports): (Vec<Model>, Vec<LoadReport>) = plan
            .config()
            .anchors
            .iter()
            .zip(weights)
            .map(|(entry, path)| entry.load_with(path.as_ref(), options, device))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let stitch_layers = init_stitch_layers(&plan, init, device)?;
        Ok((Self::from_parts(anchors, stitch_layers, plan), reports))
    }

    /// Assembles a network from its parts (which must follow `plan`).
    pub(crate) fn from_parts(
        anchors: Vec<Model>,
        stitch_layers: Vec<StitchingLayer>,
        plan: Arc<Plan>,
    ) -> Self {
        Self {
            anchors,
            stitch_layers,
            plan,
        }
    }

    /// The plan: space, paths, costs, layer keys.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The configuration.
    pub fn config(&self) -> &SnNetConfig {
        self.plan.config()
    }

    /// The stitch space.
    pub fn space(&self) -> &StitchSpace {
        self.plan.space()
    }

    /// Number of stitches (anchors included).
    pub fn num_stitches(&self) -> usize {
        self.plan.len()
    }

    /// FLOPs (fvcore, one image) and parameters of stitch `id`, without running it.
    ///
    /// # Errors
    /// [`Error::Space`] for an unknown id.
    pub fn cost(&self, id: StitchId) -> Result<Cost> {
        self.plan.cost(id)
    }

    /// The stitching layer of `key`, if the network has it.
    pub fn stitch_layer(&self, key: LayerKey) -> Option<&StitchingLayer> {
        let index = self.plan.layer_index(key).ok()?;
        self.stitch_layers.get(index)
    }

    /// Runs stitch `id` on `images`.
    ///
    /// The images are checked here, once (batch, channels, size: [`Anchor::check_images`] of
    /// the anchor that embeds them); the blocks and stitching layers after it run unchecked,
    /// as Burn's modules do, on shapes the plan has checked when it was built.
    ///
    /// # Shapes
    /// `[B, C, H, W]` (normalised as [`Plan::pretrained`] says) → `[B, num_classes]`.
    ///
    /// # Errors
    /// [`Error::Space`] for an unknown id, [`Error::Zoo`] for images of the wrong shape or an
    /// empty batch, [`Error::Parts`] when `anchors` or `stitch_layers` were changed so that
    /// they no longer follow the plan.
    pub fn forward(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>> {
        let path = self.plan.path(id)?;
        self.forward_path(images, path)
    }

    /// Runs a path of this network's plan.
    ///
    /// # Errors
    /// As [`SnNet::forward`], and [`Error::ForeignPath`] for a path that is not this plan's.
    pub fn forward_path(&self, images: Tensor<4>, path: &StitchPath) -> Result<Tensor<2>> {
        self.check_entry(images.dims(), [path])?;
        Ok(self.head_of(path, self.run_checked(images, path)))
    }

    /// Runs a path up to, not including, the head: the last block's activation.
    ///
    /// # Errors
    /// As [`SnNet::forward_path`].
    pub fn run_segments(&self, images: Tensor<4>, path: &StitchPath) -> Result<Activation> {
        self.check_entry(images.dims(), [path])?;
        Ok(self.run_checked(images, path))
    }

    /// Runs several stitches on the same images, computing what their paths share once: every
    /// anchor that begins one of the paths runs its stem and its blocks a single time, up to
    /// the deepest block where one of them leaves it, and each path goes on from the state it
    /// leaves at (an anchor's own path leaves at its last block). The outputs are
    /// [`SnNet::forward`]'s, bit for bit, in the order of `ids` — the same operations on the
    /// same values, without the repeated front parts: evaluating all 35 stitches of a
    /// three-anchor DeiT-style space this way skips about a fifth of the FLOPs.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → one `[B, num_classes]` per id.
    ///
    /// # Errors
    /// As [`SnNet::forward`] (no ids: no output, and the images are not checked).
    pub fn forward_many(&self, images: Tensor<4>, ids: &[StitchId]) -> Result<Vec<Tensor<2>>> {
        let paths = ids
            .iter()
            .map(|&id| self.plan.path(id))
            .collect::<Result<Vec<_>>>()?;
        self.check_entry(images.dims(), paths.iter().copied())?;
        // Per first anchor, the states (block inputs, by global block) its paths leave at.
        let mut fronts: BTreeMap<usize, BTreeMap<usize, Option<Activation>>> = BTreeMap::new();
        for path in &paths {
            if let Some(first) = path.segments.first().filter(|f| f.start == 0 && f.stem) {
                fronts
                    .entry(first.anchor)
                    .or_default()
                    .insert(first.end, None);
            }
        }
        for (&a, states) in &mut fronts {
            let anchor = &self.anchors[a];
            let deepest = states.keys().next_back().copied().unwrap_or(0);
            anchor.blocks_with_states(0..deepest, anchor.embed(images.clone()), &mut |s, x| {
                if let Some(slot) = states.get_mut(&s) {
                    *slot = Some(x.clone());
                }
            });
        }
        Ok(paths
            .iter()
            .map(|path| {
                let shared = path
                    .segments
                    .first()
                    .filter(|f| f.start == 0 && f.stem)
                    .and_then(|f| fronts.get(&f.anchor)?.get(&f.end)?.clone());
                let x = match shared {
                    Some(x) => self.continue_path(path, x),
                    None => self.run_checked(images.clone(), path),
                };
                self.head_of(path, x)
            })
            .collect())
    }

    /// Checks the images against every anchor that embeds them on `paths` (the paths'
    /// first anchors), that each path is this plan's, and that the network's parts still
    /// follow the plan: the one check of a forward. What runs after it cannot fail.
    ///
    /// # Errors
    /// [`Error::Parts`], [`Error::ForeignPath`], [`Error::Zoo`] (images).
    pub fn check_entry<'p>(
        &self,
        dims: [usize; 4],
        paths: impl IntoIterator<Item = &'p StitchPath>,
    ) -> Result<()> {
        self.check_parts()?;
        let mut checked = Vec::new();
        for path in paths {
            if self.plan.paths().get(path.id.index()) != Some(path) {
                return Err(Error::ForeignPath { id: path.id });
            }
            let first = path.segments.first().map_or(0, |s| s.anchor);
            if !checked.contains(&first) {
                self.anchors[first].check_images(dims)?;
                checked.push(first);
            }
        }
        Ok(())
    }

    /// Checks that the network's parts (public fields) still follow the plan.
    ///
    /// # Errors
    /// [`Error::Parts`].
    pub(crate) fn check_parts(&self) -> Result<()> {
        if self.anchors.len() != self.config().anchors.len()
            || self.stitch_layers.len() != self.plan.layers().len()
        {
            return Err(Error::Parts {
                anchors: self.anchors.len(),
                layers: self.stitch_layers.len(),
                plan_anchors: self.config().anchors.len(),
                plan_layers: self.plan.layers().len(),
            });
        }
        Ok(())
    }

    /// Runs a checked path up to its head.
    fn run_checked(&self, images: Tensor<4>, path: &StitchPath) -> Activation {
        let Some(first) = path.segments.first() else {
            // A plan's paths all have a first segment; an empty one runs the first anchor.
            return self.anchors[0].embed(images);
        };
        let anchor = &self.anchors[first.anchor];
        let x = anchor.blocks(first.blocks(), anchor.embed(images));
        self.continue_path(path, x)
    }

    /// The head of a checked path's last anchor.
    fn head_of(&self, path: &StitchPath, x: Activation) -> Tensor<2> {
        let last = path.segments.last().map_or(0, |s| s.anchor);
        self.anchors[last].head(x, path.norm)
    }

    /// Runs a checked path's segments after the first on `x`, the first segment's output:
    /// through each stitching layer into the next anchor's blocks.
    fn continue_path(&self, path: &StitchPath, mut x: Activation) -> Activation {
        for (segment, &layer) in path.segments.iter().skip(1).zip(&path.layers) {
            x = self.anchors[segment.anchor]
                .blocks(segment.blocks(), stitch(&self.stitch_layers[layer], x));
        }
        x
    }

    /// Folds every LoRA update into its base weight (for inference): the same outputs, one
    /// matrix per stitching layer.
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

/// Runs a stitching layer on an activation of either layout.
pub(crate) fn stitch(layer: &StitchingLayer, x: Activation) -> Activation {
    match (x, layer.out_layout()) {
        (Activation::Tokens(x), _) => Activation::Tokens(layer.forward_tokens(x)),
        (Activation::Map(x), snnet_space::Layout::Map) => Activation::Map(layer.forward_map(x)),
        (Activation::Map(x), snnet_space::Layout::Tokens) => {
            Activation::Tokens(layer.forward_map_to_tokens(x))
        }
    }
}
