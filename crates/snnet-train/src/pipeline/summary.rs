//! What a run ends with: [`RunSummary`] (its folder's `summary.json`) and [`RunOutcome`] (the
//! summary with the table and network it was taken from).

use serde::{Deserialize, Serialize};
use snnet_core::SnNet;
use snnet_core::select::{StitchRecord, StitchTable};

use super::{Preset, ResultChecks};

/// What a run ends with, as its folder's `summary.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The preset of the run's settings.
    pub preset: Preset,
    /// Stitches evaluated.
    pub stitches: usize,
    /// The anchors' rows of the evaluation, small to large.
    pub anchors: Vec<StitchRecord>,
    /// The ids on the accuracy/FLOPs Pareto frontier, by rising FLOPs.
    pub frontier: Vec<usize>,
    /// The budget of the selection.
    pub budget_flops: u64,
    /// The most accurate stitch within the budget.
    pub selected: StitchRecord,
    /// Whether the result shows SN-Net interpolating between its anchors.
    pub checks: ResultChecks,
    /// The run's wall time (this invocation's, when it resumed).
    pub seconds: f64,
}

/// What [`run`](super::run) returns: the summary, and the table and network it was taken from.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary (also written as `summary.json`).
    pub summary: RunSummary,
    /// Every stitch's evaluation (also in `eval.jsonl`).
    pub table: StitchTable,
    /// The trained SN-Net (also in `snnet.safetensors`).
    pub net: SnNet,
}

impl RunOutcome {
    /// The frontier's records, by rising FLOPs.
    pub fn frontier(&self) -> Vec<&StitchRecord> {
        self.summary
            .frontier
            .iter()
            .filter_map(|id| self.table.get(*id))
            .collect()
    }
}
