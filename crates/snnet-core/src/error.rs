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
    /// Anchors that cannot be stitched as configured.
    #[error("anchors cannot be stitched: {0}")]
    Incompatible(String),
    /// Images too few or of the wrong shape for the least-squares init.
    #[error("least-squares init: {0}")]
    InitInput(String),
    /// A checkpoint that cannot be read, parsed or applied.
    #[error("checkpoint {}: {reason}", .path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
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
    /// An I/O error on a file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl From<snnet_stitch::lstsq::Error> for Error {
    fn from(e: snnet_stitch::lstsq::Error) -> Self {
        Self::Stitch(e.into())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
