//! What the main job reports while it runs ([`Event`]), and who receives it ([`Observer`],
//! [`Quiet`]).

use std::path::Path;

use snnet_core::LsReport;
use snnet_core::select::StitchRecord;

use crate::train::TrainEvent;

/// What the pipeline reports while it runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An anchor's weights are already in the run folder: its pretraining is skipped.
    AnchorExists {
        /// The anchor.
        name: &'a str,
        /// Its weights.
        path: &'a Path,
    },
    /// An anchor's shipped pretrained weights are in the run folder (checked against their
    /// recorded SHA-256).
    AnchorShipped {
        /// The anchor.
        name: &'a str,
        /// Its weights.
        path: &'a Path,
    },
    /// An anchor was pretrained.
    AnchorTrained {
        /// The anchor.
        name: &'a str,
        /// Wall time.
        seconds: f64,
    },
    /// A training reports: an anchor's pretraining (`what` is its name) or the joint
    /// training (`what` is `"joint"`).
    Train {
        /// What is trained.
        what: &'a str,
        /// Its epochs in all.
        epochs: usize,
        /// The trainer's event.
        event: TrainEvent,
    },
    /// The training of `what` stopped (finished or failed).
    TrainEnded {
        /// What was trained.
        what: &'a str,
    },
    /// The stitching layers were initialised by least squares.
    LeastSquares(&'a LsReport),
    /// The evaluation of `total` stitches starts (some may be in the output file already).
    EvalStarted {
        /// Stitches to evaluate in all.
        total: usize,
    },
    /// A stitch was evaluated.
    Evaluated {
        /// Its record.
        record: &'a StitchRecord,
        /// Stitches evaluated so far, earlier runs' included.
        done: usize,
        /// Stitches in all.
        total: usize,
    },
    /// The evaluation stopped (finished or failed).
    EvalEnded,
}

/// Receives the pipeline's [`Event`]s: a closure `FnMut(Event<'_>)`, [`Quiet`], or your type.
pub trait Observer {
    /// Called for every event, in order.
    fn event(&mut self, event: Event<'_>);
}

impl<F: FnMut(Event<'_>)> Observer for F {
    fn event(&mut self, event: Event<'_>) {
        self(event);
    }
}

/// An [`Observer`] that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _event: Event<'_>) {}
}
