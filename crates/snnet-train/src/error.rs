//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong preparing data or training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A dataset file or folder that is missing, unreadable or corrupt.
    #[error("dataset {}: {reason}{}", .path.display(), hint_text(.hint))]
    Dataset {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
        /// How to fix it, e.g. which package to install.
        hint: Option<String>,
    },
    /// A configuration that cannot work (batch size 0, a flip probability above 1, ...).
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// What is configured.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A stitch id that an evaluation table has no row for (e.g. an anchor to mark in a plot).
    #[error("the evaluation table has no row for stitch {id}")]
    NoSuchRow {
        /// The stitch id.
        id: usize,
    },
    /// An item index past the end of a dataset.
    #[error("item {index} does not exist: the dataset has {len} items")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of items.
        len: usize,
    },
    /// An error from the model zoo (e.g. an invalid pretrained config).
    #[error(transparent)]
    Zoo(#[from] snnet_zoo::Error),
    /// An error from the SN-Net (unknown stitch, forward, checkpoint).
    #[error(transparent)]
    Core(#[from] snnet_core::Error),
    /// An error from an evaluation table (no stitch fits a budget, a stitch without FLOPs).
    #[error(transparent)]
    Select(#[from] snnet_core::select::Error),
    /// An evaluation table or training checkpoint that belongs to another network, other data
    /// or another recipe: resuming it would mix results.
    #[error(
        "{}: cannot resume: {reason}; delete it (or name another) to start over",
        .path.display()
    )]
    ResumeMismatch {
        /// The table or checkpoint folder being resumed.
        path: std::path::PathBuf,
        /// What differs.
        reason: String,
    },
    /// A training checkpoint, evaluation file or plot that cannot be written or read.
    #[error("{}: {reason}", .path.display())]
    Checkpoint {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file whose SHA-256 differs from the recorded one: damaged or replaced.
    #[error(
        "{}: SHA-256 {actual} differs from the recorded {expected}: the file is damaged or not the shipped one (restore it from the repository, or pretrain the anchors instead)",
        .path.display()
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The recorded SHA-256.
        expected: String,
        /// The file's SHA-256.
        actual: String,
    },
    /// An anchor without shipped pretrained weights.
    #[error(
        "no shipped pretrained weights for {0} (those of the Fashion-MNIST family only: fmnist_vit_s, fmnist_vit_m, fmnist_vit_l); pretrain it instead"
    )]
    NoPretrained(String),
    /// An SN-Net without a path to train: no stitch at all, or, with the anchors frozen
    /// (`stitch_only`), no stitched path.
    #[error("{}", if *.stitch_only {
        "the SN-Net has no stitched path to train with its anchors frozen (stitch_only)"
    } else {
        "the SN-Net has no path to train"
    })]
    NothingToTrain {
        /// Whether only the stitching layers were to train ([`TrainConfig::stitch_only`]).
        ///
        /// [`TrainConfig::stitch_only`]: crate::train::TrainConfig::stitch_only
        stitch_only: bool,
    },
    /// The training loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, step {step}: loss {loss}")]
    Diverged {
        /// The epoch.
        epoch: usize,
        /// The step within it.
        step: usize,
        /// The loss.
        loss: f64,
    },
    /// A data-parallel shard's thread panicked (e.g. the backend ran out of memory).
    #[error("a data-parallel worker failed: {reason}")]
    Worker {
        /// The panic's message.
        reason: String,
    },
    /// The threads of a data-parallel shard could not be started.
    #[error("cannot start the threads of a data-parallel shard")]
    ThreadPool(#[source] rayon::ThreadPoolBuildError),
}

fn hint_text(hint: &Option<String>) -> String {
    hint.as_ref().map_or_else(String::new, |h| format!("; {h}"))
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_hint() {
        let e = Error::Dataset {
            path: "/x/y.gz".into(),
            reason: "not found".into(),
            hint: Some("install it".into()),
        };
        assert_eq!(e.to_string(), "dataset /x/y.gz: not found; install it");
        let e = Error::Dataset {
            path: "/x".into(),
            reason: "empty".into(),
            hint: None,
        };
        assert_eq!(e.to_string(), "dataset /x: empty");
    }
}
