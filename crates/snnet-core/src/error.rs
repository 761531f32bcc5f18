//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong building, initialising, running, saving or loading an SN-Net.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the stitch space (unknown stitch id, invalid space config, …).
    #[error(transparent)]
    Space(#[from] snnet_space::Error),
    /// From the zoo (unknown model, bad weights, wrong input shape, …).
    #[error(transparent)]
    Zoo(#[from] snnet_zoo::Error),
    /// From a stitching layer or the least-squares solver.
    #[error(transparent)]
    Stitch(#[from] snnet_stitch::Error),
    /// From the selector (unknown cost, infeasible budget, malformed table, …).
    #[error(transparent)]
    Select(#[from] snnet_select::Error),
    /// A weight file per anchor was expected.
    #[error("{anchors} anchors need {anchors} weight files, {files} given")]
    WeightCount {
        /// Anchors in the config.
        anchors: usize,
        /// Weight files given.
        files: usize,
    },
    /// The network's `anchors` or `stitch_layers` (public fields) no longer follow its plan.
    #[error(
        "the network has {anchors} anchor(s) and {layers} stitching layer(s), its plan \
         {plan_anchors} and {plan_layers}"
    )]
    Parts {
        /// Anchors in the network.
        anchors: usize,
        /// Stitching layers in the network.
        layers: usize,
        /// Anchors in the plan.
        plan_anchors: usize,
        /// Stitching layers in the plan.
        plan_layers: usize,
    },
    /// A [`StitchPath`](crate::StitchPath) that is not one of this network's plan.
    #[error("the path of stitch {id} is not one of this network's plan")]
    ForeignPath {
        /// The path's stitch id.
        id: snnet_space::StitchId,
    },
    /// Anchors that take images of different sizes or channels, and cannot run at the first
    /// anchor's (ViT, Swin, ResNet): one network takes one input.
    #[error(
        "one SN-Net takes one input: `{first}` takes {first_size:?} images, `{other}` \
         {other_size:?} (only anchors that run at any size, such as EfficientNet-Lite, follow \
         the first anchor's)"
    )]
    InputSize {
        /// The first anchor.
        first: String,
        /// Its input `[channels, height, width]`.
        first_size: [usize; 3],
        /// The anchor that differs.
        other: String,
        /// Its input.
        other_size: [usize; 3],
    },
    /// Anchors whose images are prepared differently (mean, std or interpolation of their
    /// pretrained config): the first anchor's preparation would silently apply to all.
    #[error(
        "one SN-Net takes one input: `{first}` and `{other}` prepare images with a different \
         {what}"
    )]
    Preprocessing {
        /// The first anchor.
        first: String,
        /// The anchor that differs.
        other: String,
        /// What differs: `mean`, `std` or `interpolation`.
        what: &'static str,
    },
    /// A stitch that would join activations of different row (token or pixel) counts.
    #[error(
        "anchors cannot be stitched: stitch {id} joins {rows} rows of `{front}` to {end_rows} \
         rows of `{end}`"
    )]
    RowMismatch {
        /// The stitch.
        id: snnet_space::StitchId,
        /// The front anchor.
        front: String,
        /// Rows of the front anchor's activation.
        rows: u64,
        /// The end anchor.
        end: String,
        /// Rows the end anchor takes.
        end_rows: u64,
    },
    /// An anchor whose per-block feature info does not cover a block the space cuts at, or
    /// whose grid overflows (a model config the space and the zoo disagree on).
    #[error("anchors cannot be stitched: anchor {anchor} has no feature info for block {block}")]
    FeatureInfo {
        /// The anchor.
        anchor: usize,
        /// The block.
        block: usize,
    },
    /// A stitching layer the reference's checkpoint layout has no key for.
    #[error("stitching layer {layer} has no checkpoint key")]
    NoCheckpointKey {
        /// The layer's flat index.
        layer: usize,
    },
    /// No images for the least-squares init.
    #[error("least-squares init: no images")]
    NoImages,
    /// Features that could not be read back from the device.
    #[error("least-squares init: cannot read features back")]
    ReadBack(#[source] burn::tensor::DataError),
    /// A feature the least-squares init needs that was not collected (the plan's fits and
    /// its feature states disagree).
    #[error("least-squares init: state {state} of anchor {anchor} was not collected")]
    MissingFeature {
        /// The anchor.
        anchor: usize,
        /// The state.
        state: usize,
    },
    /// A file that is not safetensors where a checkpoint of ours was expected.
    #[error("checkpoint {}: not a safetensors file ({reason})", .path.display())]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: &'static str,
    },
    /// A safetensors header that is not JSON.
    #[error("checkpoint {}: unreadable safetensors header", .path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint with no SN-Net config in its metadata (a reference checkpoint, or an
    /// anchor's weights): load it with [`SnNet::load_with_config`](crate::SnNet::load_with_config).
    #[error(
        "checkpoint {}: no SN-Net config in the metadata (a reference checkpoint: name its anchors)",
        .path.display()
    )]
    NoConfig {
        /// The file.
        path: PathBuf,
    },
    /// The SN-Net config in a checkpoint's metadata that does not parse.
    #[error("checkpoint {}: invalid SN-Net config", .path.display())]
    ConfigJson {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The SN-Net config could not be serialised (for a checkpoint or a fingerprint).
    #[error("cannot serialise the SN-Net config")]
    Serialize(#[source] serde_json::Error),
    /// burn-store could not read or write a checkpoint.
    #[error("checkpoint {}: {source}", .path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// burn-store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A checkpoint key rename that is not a valid pattern (built from the plan: a bug).
    #[error("checkpoint key pattern `{pattern}`: {reason}")]
    RemapPattern {
        /// The pattern.
        pattern: String,
        /// The regex error's message (burn-store's regex error is not a `std` error in every
        /// feature set).
        reason: String,
    },
    /// A stitching-layer tensor of the wrong shape.
    #[error("checkpoint {}: {key}: shape {found:?}, expected {expected:?}", .path.display())]
    TensorShape {
        /// The file.
        path: PathBuf,
        /// The tensor's file key.
        key: String,
        /// The layer's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A stitching-layer tensor that is not a float (integers or booleans are refused:
    /// converting them would hide a wrong or hostile file).
    #[error(
        "checkpoint {}: {key}: dtype {found:?}; a stitching layer's tensors are floats",
        .path.display()
    )]
    TensorDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's file key.
        key: String,
        /// The file's dtype.
        found: burn::tensor::DType,
    },
    /// A stitching-layer tensor burn-store could not read.
    #[error("checkpoint {}: {key}: cannot read the tensor", .path.display())]
    TensorRead {
        /// The file.
        path: PathBuf,
        /// The tensor's file key.
        key: String,
        /// burn-store's error.
        #[source]
        source: Box<burn::store::ApplyError>,
    },
    /// A tensor holding NaN or infinite values: a checkpoint's stitching layer (refused unless
    /// [`LoadOptions::allow_nonfinite`](crate::zoo::LoadOptions::allow_nonfinite)), or any
    /// weight of a burnpack or exported stitch file (always refused; `key` is then the module
    /// path).
    #[error("checkpoint {}: {key}: {count} NaN or infinite value(s)", .path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's file key.
        key: String,
        /// How many values.
        count: usize,
    },
    /// A path names a stitching layer (by its flat index) that the plan does not have.
    #[error("stitch {id}: no stitching layer {layer} (the plan has {layers})")]
    NoLayer {
        /// The stitch whose path names it.
        id: snnet_space::StitchId,
        /// The flat layer index.
        layer: usize,
        /// Stitching layers in the plan.
        layers: usize,
    },
    /// A stitching-layer tensor the checkpoint lacks.
    #[error("checkpoint {}: no tensor for stitching layer {layer} (tried {tried:?})", .path.display())]
    MissingLayer {
        /// The file.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// The keys looked for.
        tried: Vec<String>,
    },
    /// A device name that is not one of the forms [`DeviceSpec`](crate::DeviceSpec) reads.
    #[error(
        "unknown device `{0}`: expected cpu, ndarray, wgpu[:N], cuda[:N], tch, tch:cpu or tch:cuda:N"
    )]
    UnknownDevice(String),
    /// A device whose backend this build does not include.
    #[error(
        "device `{device}` needs the `{feature}` cargo feature, which this build does not \
         include (rebuild with `--features {feature}`{note})"
    )]
    BackendNotCompiled {
        /// The device asked for.
        device: String,
        /// The cargo feature of `snnet-core` (and `snnet-cli`) that compiles its backend in.
        feature: &'static str,
        /// What else building it needs, if anything.
        note: &'static str,
    },
    /// Writing a file safely failed (or its target is not a regular file).
    #[error(transparent)]
    Write(#[from] snnet_fs::Error),
    /// Exporting, saving or loading one stitch ([`crate::StitchModel`]).
    #[error(transparent)]
    Export(#[from] crate::stitch_file::ExportError),
    /// An I/O error on a file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// [`Error::NonFinite`] for a tensor (file key, how many values) of `path`.
    pub(crate) fn non_finite(path: &std::path::Path, (key, count): (String, usize)) -> Self {
        Self::NonFinite {
            path: path.to_owned(),
            key,
            count,
        }
    }
}

impl From<snnet_stitch::lstsq::Error> for Error {
    fn from(e: snnet_stitch::lstsq::Error) -> Self {
        Self::Stitch(e.into())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
