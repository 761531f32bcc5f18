//! What training reports: one [`EpochLog`] per epoch (the JSONL training log) and a
//! [`TrainEvent`] per step, epoch, resumption and teacher pass.

use serde::{Deserialize, Serialize};
use snnet_core::StitchId;

/// One epoch's record, as written to the JSONL training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// The epoch (from 0).
    pub epoch: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall time.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// How often each stitch was trained (`[id, count]`, ids with a count only).
    pub stitch_counts: Vec<[usize; 2]>,
}

/// What the trainer reports while it runs.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// A step finished.
    Step {
        /// The epoch.
        epoch: usize,
        /// The step within the epoch.
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// The step's loss.
        loss: f64,
        /// Its learning rate.
        lr: f64,
        /// The stitch it trained.
        stitch: StitchId,
        /// Images per second so far this epoch.
        images_per_second: f64,
    },
    /// An epoch finished (and was checkpointed, when the trainer has a checkpoint folder).
    Epoch(EpochLog),
    /// Training resumed from a checkpoint: `epoch` is the first epoch still to run.
    Resumed {
        /// The next epoch.
        epoch: usize,
    },
    /// The teacher's outputs on every training image were computed
    /// ([`TeacherTargets::Precomputed`](super::config::TeacherTargets::Precomputed)).
    TeacherTargets {
        /// Images.
        images: usize,
        /// Wall time.
        seconds: f64,
    },
}
