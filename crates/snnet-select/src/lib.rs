//! Pareto frontier and budget selection over the stitches of a Stitchable Neural Network.
//!
//! An SN-Net ([arXiv 2302.06586](https://arxiv.org/abs/2302.06586)) holds many *stitches*,
//! numbered `0..n`, that trade accuracy for FLOPs, parameters, latency or memory. An
//! application picks the most accurate stitch that fits its resource budget. This crate does
//! that picking; it has no tensor library and is meant to be embedded in applications.
//!
//! - [`StitchRecord`] is one stitch's evaluation: one line of the reference implementation's
//!   JSON Lines evaluation files, which read unchanged (unknown keys are kept).
//! - [`StitchTable`] holds validated records, reads and writes JSON Lines, computes the
//!   [Pareto frontier](StitchTable::pareto) over a [`CostKind`] and
//!   [selects](StitchTable::select) the most accurate stitch within a [`Budget`].
//! - [`Frontier`] is a precomputed, immutable frontier that selects in O(log n) at run time.
//! - [`limits`] documents what a table read from outside may hold (size, rows, line length,
//!   ids); accuracies must lie in [0, 100] percent and latencies be finite and non-negative,
//!   and every error names the line and field at fault.
//!
//! # Example
//!
//! ```
//! use snnet_select::{Budget, CostKind, StitchTable};
//!
//! let jsonl = r#"
//! {"cfg_id": 0, "flops": 1258411200, "params": 5717416, "acc1": 70.564}
//! {"cfg_id": 1, "flops": 4608338304, "params": 22050664, "acc1": 79.464}
//! {"cfg_id": 2, "flops": 17582740224, "params": 86567656, "acc1": 81.934}
//! {"cfg_id": 3, "flops": 4696010496, "params": 22345960, "acc1": 79.018}
//! "#;
//! let table = StitchTable::from_jsonl_str(jsonl)?;
//!
//! // Stitch 3 costs more than stitch 1 and is less accurate, so it is not on the frontier.
//! let frontier = table.pareto(CostKind::Flops)?;
//! let ids: Vec<usize> = frontier.iter().map(|r| r.id.index()).collect();
//! assert_eq!(ids, [0, 1, 2]);
//!
//! // The most accurate stitch within 5 GFLOPs.
//! let best = table.select(Budget::flops(5_000_000_000))?;
//! assert_eq!(best.id, 1);
//!
//! // The same answer from a precomputed frontier, by binary search.
//! let fast = table.frontier(CostKind::Flops)?;
//! assert_eq!(fast.select(5e9)?.id, 1);
//! # Ok::<(), snnet_select::Error>(())
//! ```

#![cfg_attr(
    not(test),
    warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

mod cost;
mod error;
mod frontier;
pub mod limits;
mod record;
mod table;

pub use cost::{Budget, CostKind};
pub use error::{Error, Result};
pub use frontier::{Frontier, FrontierPoint, LATENCY_MIN_KEY};
pub use record::StitchRecord;
pub use snnet_space::StitchId;
pub use table::StitchTable;
