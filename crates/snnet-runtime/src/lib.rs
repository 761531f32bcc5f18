//! Serve one Stitchable Neural Network and switch stitch at run time to meet a budget on the
//! hardware that runs it.
//!
//! An SN-Net holds dozens of *stitches* between its anchors, each a different accuracy/cost
//! trade-off, all in one set of weights. This crate turns that into a service:
//!
//! The network served is a [`Network`]: a whole [`SnNet`](snnet_core::SnNet) or one exported
//! stitch ([`StitchModel`](snnet_core::StitchModel), which answers only its own id);
//! [`load_network`] loads either from any file snnet-rs writes.
//!
//! 1. **Profile** ([`Profiler`]): measure every stitch's latency (median, p90, min, max) and
//!    memory on the serving device, at the serving batch size; the result is a stitch table in
//!    the reference's format, merged with the evaluation table, that records what it was
//!    measured on ([`ProfileMeta`]).
//! 2. **Frontier**: the [`Runtime`] keeps the Pareto frontier of that table per cost (FLOPs,
//!    params, latency, memory).
//! 3. **Budget or SLO** ([`Objective`]): a budget picks the most accurate stitch that fits; a
//!    latency objective (p95 ≤ X ms) makes the runtime watch its own latencies and move along
//!    the frontier as load changes ([`adaptive`]).
//! 4. **Stitch**: each request runs the stitch its budget (or the objective in force) picks;
//!    the objective changes live, from any thread, without a lock on the request path and
//!    without copying weights.
//!
//! The [`server`] module (feature `server`) puts the runtime behind HTTP: `snnet serve`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use snnet_core::SnNet;
//! use snnet_core::burn::tensor::{Device, Tensor};
//! use snnet_core::select::{Budget, StitchTable};
//! use snnet_runtime::{Choice, Runtime};
//!
//! let device = Device::default();
//! let (net, _) = SnNet::load(std::path::Path::new("snnet.safetensors"), &device)?; // weights → SN-Net
//! let table = StitchTable::read_jsonl("profile.jsonl")?; // from `snnet profile`
//! let runtime = Runtime::new(Arc::new(net), table, device.clone())?;
//! let stitch = runtime.select(Budget::latency_ms(15.0))?; // the best stitch within 15 ms here
//! let images = Tensor::<4>::zeros([1, 3, 224, 224], &device);
//! let answer = runtime.infer(images, Choice::Stitch(stitch))?;
//! println!("stitch {} took {:?}: logits {:?}", answer.stitch, answer.latency, answer.logits.dims());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod adaptive;
pub mod deadline;
pub mod error;
pub mod input;
pub mod network;
pub mod objective;
pub mod profile;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;

pub use adaptive::{AdaptiveConfig, Clock, Controller, Decision, Rung, SimulatedLoad, WallClock};
pub use deadline::{Deadline, DeadlineConfig, LatencyModel, MAX_DEADLINE_MS, RefusalFeedback};
pub use error::{Error, Result};
pub use input::{Prediction, top_k};
pub use network::{Network, into_network, load_network};
pub use objective::{Choice, Objective, ObjectiveJson};
pub use profile::{
    LatencyStats, Profile, ProfileMeta, ProfileProgress, Profiler, ProfilerConfig, Setup,
    StitchProfile,
};
pub use runtime::{Inference, Runtime, RuntimeBuilder};
#[cfg(feature = "server")]
pub use server::{Server, ServerConfig, ServerHandle};
