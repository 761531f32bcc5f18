//! What the verbs share: the error type, the output format, shared flag groups and registry
//! loading ([`args`]), number formats and progress bars ([`format`](mod@format)), and reading
//! and writing tensors, labels and JSON ([`io`]).

use std::path::PathBuf;

use clap::ValueEnum;

pub(crate) mod args;
pub(crate) mod format;
pub(crate) mod io;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A human-readable table.
    Table,
    /// JSON on one line.
    Json,
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Space(#[from] snnet_core::space::Error),
    #[error("{path}: {source}")]
    Table {
        path: PathBuf,
        source: snnet_core::select::Error,
    },
    #[error(transparent)]
    Select(#[from] snnet_core::select::Error),
    #[error(transparent)]
    Zoo(#[from] snnet_core::zoo::Error),
    #[error(transparent)]
    Core(#[from] snnet_core::Error),
    #[error(transparent)]
    Train(#[from] snnet_train::Error),
    /// A library error with what to do about it in the CLI's terms (its flags).
    #[error("{source}; {hint}")]
    Hinted {
        source: Box<snnet_train::Error>,
        hint: &'static str,
    },
    #[error(transparent)]
    Runtime(#[from] snnet_runtime::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
    /// A file named by a flag that cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON file named by a flag that does not hold what the flag expects.
    #[error("{path}: {source}")]
    JsonFile {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}
