//! What a [`Trainer`](super::Trainer) trains ([`Trainable`]): an SN-Net, every stitch of it
//! ([`SnNet`]), or one anchor on its own, its one path ([`Model`]).

use burn::module::Module;
use burn::tensor::Tensor;
use snnet_core::{Anchor, Model, SnNet, StitchId, StitchingLayer};

use crate::error::Result;

/// One path a [`Trainable`] runs from images to logits, as the [`StitchSampler`](super::StitchSampler)
/// sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainablePath {
    /// Its id, for [`Trainable::logits`].
    pub id: StitchId,
    /// Its FLOPs per image (0 where unknown).
    pub flops: u64,
    /// Whether it is an anchor's own path (no stitching layer on it).
    pub anchor: bool,
}

/// A network the [`Trainer`](super::Trainer) trains: paths from images to logits, one per step,
/// and parameters in two groups with their own optimiser and learning-rate scale — the anchors'
/// ([`TrainConfig::anchor_lr_scale`](super::TrainConfig::anchor_lr_scale), frozen with
/// [`TrainConfig::stitch_only`](super::TrainConfig::stitch_only)) and the stitching layers'
/// ([`TrainConfig::stitch_lr_scale`](super::TrainConfig::stitch_lr_scale)).
///
/// - [`SnNet`]: every evaluated stitch of its space, its anchors and stitching layers;
/// - [`Model`]: one anchor trained alone (pretraining): its own path, [`StitchId`]`(0)`, and no
///   stitching layers.
pub trait Trainable: Module + Sized {
    /// The anchors' part of the module.
    type Anchors: Module;
    /// The stitching layers' part of the module.
    type StitchLayers: Module;

    /// The anchors' part.
    fn anchors(&self) -> &Self::Anchors;

    /// The stitching layers' part (`None`: the network has none).
    fn stitch_layers(&self) -> Option<&Self::StitchLayers>;

    /// The network with its anchors' part replaced by `f` of it.
    #[must_use]
    fn map_anchors(self, f: impl FnOnce(Self::Anchors) -> Self::Anchors) -> Self;

    /// The network with its stitching layers' part replaced by `f` of it (without stitching
    /// layers, the network as it is).
    #[must_use]
    fn map_stitch_layers(self, f: impl FnOnce(Self::StitchLayers) -> Self::StitchLayers) -> Self;

    /// The logits of path `id` on `images`.
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, num_classes]`.
    ///
    /// # Errors
    /// An unknown path, images of the wrong shape or an empty batch.
    fn logits(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>>;

    /// The paths training draws from, in id order.
    fn paths(&self) -> Vec<TrainablePath>;

    /// One more than the largest path id (the length of a per-path table).
    fn num_paths(&self) -> usize;

    /// A SHA-256 fingerprint of the network's configuration and every parameter, recorded in
    /// training checkpoints so that resuming from another network is an error.
    ///
    /// # Errors
    /// When the configuration cannot be serialised.
    fn fingerprint(&self) -> Result<String>;
}

impl Trainable for SnNet {
    type Anchors = Vec<Model>;
    type StitchLayers = Vec<StitchingLayer>;

    fn anchors(&self) -> &Vec<Model> {
        &self.anchors
    }

    fn stitch_layers(&self) -> Option<&Vec<StitchingLayer>> {
        Some(&self.stitch_layers)
    }

    fn map_anchors(mut self, f: impl FnOnce(Vec<Model>) -> Vec<Model>) -> Self {
        self.anchors = f(self.anchors);
        self
    }

    fn map_stitch_layers(
        mut self,
        f: impl FnOnce(Vec<StitchingLayer>) -> Vec<StitchingLayer>,
    ) -> Self {
        self.stitch_layers = f(self.stitch_layers);
        self
    }

    fn logits(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>> {
        Ok(self.forward(images, id)?)
    }

    fn paths(&self) -> Vec<TrainablePath> {
        self.space()
            .evaluated()
            .map(|s| TrainablePath {
                id: s.id,
                flops: self.cost(s.id).map_or(0, |c| c.flops),
                anchor: s.is_anchor(),
            })
            .collect()
    }

    fn num_paths(&self) -> usize {
        self.num_stitches()
    }

    fn fingerprint(&self) -> Result<String> {
        Ok(SnNet::fingerprint(self)?)
    }
}

/// The one path of an anchor trained alone.
const OWN_PATH: StitchId = StitchId(0);

impl Trainable for Model {
    type Anchors = Model;
    type StitchLayers = Vec<StitchingLayer>;

    fn anchors(&self) -> &Model {
        self
    }

    fn stitch_layers(&self) -> Option<&Vec<StitchingLayer>> {
        None
    }

    fn map_anchors(self, f: impl FnOnce(Model) -> Model) -> Self {
        f(self)
    }

    fn map_stitch_layers(self, _: impl FnOnce(Vec<StitchingLayer>) -> Vec<StitchingLayer>) -> Self {
        self
    }

    fn logits(&self, images: Tensor<4>, id: StitchId) -> Result<Tensor<2>> {
        if id != OWN_PATH {
            let unknown = snnet_core::space::Error::UnknownStitch {
                id: id.index(),
                count: 1,
            };
            return Err(snnet_core::Error::from(unknown).into());
        }
        Ok(Anchor::forward(self, images)?)
    }

    fn paths(&self) -> Vec<TrainablePath> {
        vec![TrainablePath {
            id: OWN_PATH,
            flops: self.cost().total().flops,
            anchor: true,
        }]
    }

    fn num_paths(&self) -> usize {
        1
    }

    /// Every parameter's shape and `f32` values, in module order (as [`SnNet::fingerprint`]
    /// hashes them after its configuration).
    fn fingerprint(&self) -> Result<String> {
        Ok(snnet_core::module_digest(&[], self))
    }
}
