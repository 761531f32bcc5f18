//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong profiling, selecting, running or serving an SN-Net.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the network (unknown stitch, wrong input shape, bad checkpoint, …).
    #[error(transparent)]
    Core(#[from] snnet_core::Error),
    /// From the stitch table or the selector (nothing fits the budget, invalid budget, …).
    #[error(transparent)]
    Select(#[from] snnet_core::select::Error),
    /// From the zoo (image preprocessing, tensor files).
    #[error(transparent)]
    Zoo(#[from] snnet_core::zoo::Error),
    /// From the stitch space (an id the network does not have).
    #[error(transparent)]
    Space(#[from] snnet_core::space::Error),

    /// A latency (or memory) budget, or a deadline, against a profile measured elsewhere: on
    /// another device, CPU, batch size or number of forward threads than the runtime serves
    /// with ([`RuntimeBuilder::batch`](crate::RuntimeBuilder::batch),
    /// [`RuntimeBuilder::threads`](crate::RuntimeBuilder::threads)). Profile on the serving
    /// machine at the runtime's batch size and threads, or allow it explicitly
    /// ([`RuntimeBuilder::allow_foreign_profile`](crate::RuntimeBuilder::allow_foreign_profile)).
    #[error(
        "{what} uses a latency profile measured on {measured}, but the runtime serves on {serving}; profile on this machine at the runtime's batch size and threads (`snnet profile --batch N --threads T`, `snnet serve --batch N --threads T`) or allow a foreign profile explicitly"
    )]
    ForeignProfile {
        /// What needed the profile (a budget, a deadline).
        what: String,
        /// What the profile was measured on.
        measured: String,
        /// What the runtime serves on.
        serving: String,
    },

    /// A latency (or memory) budget, or an SLO, for a table without measured latencies.
    #[error(
        "{what} needs measured latencies, but the stitch table has no `latency_ms` with a `profile` record; run `snnet profile` first"
    )]
    NoProfile {
        /// What needed the profile.
        what: String,
    },

    /// The table's latencies come from several different measurements.
    #[error("the table's latencies were measured on different setups: {first} and {second}")]
    MixedProfiles {
        /// One setup.
        first: String,
        /// Another.
        second: String,
    },

    /// A stitch id the network or the table does not have.
    #[error("unknown stitch {id}: {reason}")]
    UnknownStitch {
        /// The id asked for.
        id: usize,
        /// Why it is unknown.
        reason: String,
    },

    /// A stitch other than the one an exported stitch file runs (a served
    /// [`StitchModel`](snnet_core::StitchModel) answers only its own id).
    #[error(
        "stitch {id} is not served: this network is one exported stitch and runs only stitch {served}"
    )]
    StitchNotServed {
        /// The id asked for.
        id: usize,
        /// The one stitch served.
        served: snnet_core::StitchId,
    },

    /// An input that cannot be classified: undecodable bytes, a wrong shape or dtype.
    #[error("bad input: {0}")]
    Input(String),

    /// A deadline that is 0, negative, not a number, or above
    /// [`MAX_DEADLINE_MS`](crate::deadline::MAX_DEADLINE_MS).
    #[error("invalid deadline_ms {ms}: {reason}")]
    InvalidDeadline {
        /// The deadline asked for, in milliseconds.
        ms: f64,
        /// Why it is refused.
        reason: &'static str,
    },

    /// No stitch can answer within the time a request has left.
    #[error(
        "no stitch can answer within the deadline: {left_ms:.3} ms left, the fastest needs {fastest_ms:.3} ms"
    )]
    DeadlineUnreachable {
        /// The time the request had left, in milliseconds.
        left_ms: f64,
        /// The predicted completion of the cheapest stitch, in milliseconds.
        fastest_ms: f64,
    },

    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The device failed to run or synchronise.
    #[error("device: {0}")]
    Device(String),

    /// An I/O error on a file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },

    /// The thread pool that forwards run on could not be built.
    #[error("cannot build the forward thread pool")]
    ThreadPool(#[source] rayon::ThreadPoolBuildError),

    /// The forward threads' nice value could not be set ([`RuntimeBuilder::forward_nice`]):
    /// a value below the process's needs `CAP_SYS_NICE`; other systems than Linux have no
    /// per-thread nice value.
    ///
    /// [`RuntimeBuilder::forward_nice`]: crate::RuntimeBuilder::forward_nice
    #[error("cannot set the forward threads' nice value to {nice}")]
    ThreadPriority {
        /// The nice value asked for.
        nice: i32,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },

    /// The server could not bind, run or shut down.
    #[error("server: {0}")]
    Server(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
