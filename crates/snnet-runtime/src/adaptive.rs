//! Adaptive mode: meet a latency objective (p95 ≤ X ms) by moving along the frontier.
//!
//! The controller keeps a *ladder*: the Pareto frontier of the table, cheapest first (over
//! measured latency when the table has a profile, over FLOPs otherwise). It starts on the most
//! accurate rung whose profiled latency is at most [`up_target`](AdaptiveConfig::up_target) ×
//! objective, then watches the latencies the runtime measures on the current rung:
//!
//! - **Down** when the window's p95 is over the objective: to the most accurate rung whose
//!   predicted p95 is at most [`down_target`](AdaptiveConfig::down_target) × objective (the
//!   cheapest rung if none is), possibly several rungs at once, so the objective is met again
//!   after one window.
//! - **Up**, one rung at a time, when the window's p95 leaves headroom: the next rung's
//!   predicted p95 is at most [`up_target`](AdaptiveConfig::up_target) × objective.
//!
//! A rung's predicted p95 is *additive*: the overhead observed on the current rung (the
//! window's p95 of whole requests minus its p95 of forwards alone: queueing, decoding, HTTP)
//! plus the rung's profiled cost times the slow-down of the forward observed on the current
//! rung. A fixed per-request overhead therefore no longer inflates the prediction of costlier
//! rungs, and after load falls the controller climbs back to the most accurate rung predicted
//! within `up_target` × objective. Latencies given without their forward part
//! ([`Controller::observe`]) count as all forward (no overhead term).
//!
//! Hysteresis comes from the gap between the two rules (going up needs predicted room below
//! `up_target` × objective, going down needs a measured p95 above the objective itself) and
//! from the window: after every move the samples are discarded and no decision is taken until
//! [`min_samples`](AdaptiveConfig::min_samples) new ones of the new rung have arrived.
//!
//! Nothing here blocks a request: latencies go into a ring of atomics, the rung is an atomic,
//! and a decision runs under a `try_lock` that a concurrent request skips rather than waits on.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use snnet_core::StitchId;
use snnet_core::select::Frontier;

use crate::error::{Error, Result};
use crate::profile::quantile_sorted;

/// The controller's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveConfig {
    /// Latencies kept (the most recent of the current rung).
    pub window: usize,
    /// New latencies of the current rung needed before a decision.
    pub min_samples: usize,
    /// The quantile the objective is on (0.95 for p95).
    pub quantile: f64,
    /// A move down aims at a predicted latency of at most this fraction of the objective.
    pub down_target: f64,
    /// A move up needs the next rung's predicted latency to be at most this fraction of the
    /// objective; below `down_target`, so that a move up is not followed by a move down.
    pub up_target: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            window: 64,
            min_samples: 20,
            quantile: 0.95,
            down_target: 0.85,
            up_target: 0.7,
        }
    }
}

impl AdaptiveConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] unless `1 <= min_samples <= window`, `0 < quantile <= 1` and
    /// `0 < up_target <= down_target <= 1`.
    pub fn validate(&self) -> Result<()> {
        let ok = self.min_samples >= 1
            && self.min_samples <= self.window
            && self.quantile > 0.0
            && self.quantile <= 1.0
            && self.up_target > 0.0
            && self.up_target <= self.down_target
            && self.down_target <= 1.0;
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!("invalid adaptive config {self:?}")))
        }
    }
}

/// How the runtime turns the wall time of a forward pass into the latency it reports and
/// adapts to. [`WallClock`] reports the wall time; [`SimulatedLoad`] injects a load.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The latency of a forward of `stitch` on `batch` images that took `wall`.
    fn latency(&self, stitch: StitchId, batch: usize, wall: Duration) -> Duration;
}

/// The wall time, as measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn latency(&self, _stitch: StitchId, _batch: usize, wall: Duration) -> Duration {
        wall
    }
}

/// A simulated load for tests and demonstrations: reported latencies are a base latency times
/// a load factor that can be changed at any time from any thread. Nothing sleeps.
///
/// The base is either the measured wall time ([`SimulatedLoad::scaling_wall`]) or a fixed
/// latency per stitch ([`SimulatedLoad::fixed`]), which makes adaptive runs deterministic.
#[derive(Debug)]
pub struct SimulatedLoad {
    base_ms: Vec<Option<f64>>,
    factor: AtomicU64,
}

impl SimulatedLoad {
    /// Reports the wall time times the load factor (1 to start with).
    pub fn scaling_wall() -> Self {
        SimulatedLoad {
            base_ms: Vec::new(),
            factor: AtomicU64::new(1f64.to_bits()),
        }
    }

    /// Reports `base_ms(stitch)` times the load factor, whatever the wall time; stitches the
    /// list lacks fall back to the wall time.
    pub fn fixed(base_ms: impl IntoIterator<Item = (StitchId, f64)>) -> Self {
        let mut table: Vec<Option<f64>> = Vec::new();
        for (id, ms) in base_ms {
            let i = id.index();
            if table.len() <= i {
                table.resize(i + 1, None);
            }
            if let Some(slot) = table.get_mut(i) {
                *slot = Some(ms);
            }
        }
        SimulatedLoad {
            base_ms: table,
            factor: AtomicU64::new(1f64.to_bits()),
        }
    }

    /// Sets the load factor (1 is no extra load, 3 makes everything three times slower).
    pub fn set_factor(&self, factor: f64) {
        self.factor.store(factor.to_bits(), Ordering::Relaxed);
    }

    /// The load factor.
    pub fn factor(&self) -> f64 {
        f64::from_bits(self.factor.load(Ordering::Relaxed))
    }
}

impl Clock for SimulatedLoad {
    fn latency(&self, stitch: StitchId, _batch: usize, wall: Duration) -> Duration {
        let base = self
            .base_ms
            .get(stitch.index())
            .copied()
            .flatten()
            .map_or(wall.as_secs_f64(), |ms| ms / 1e3);
        Duration::try_from_secs_f64(base * self.factor().max(0.0)).unwrap_or(Duration::MAX)
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The stitch.
    pub id: StitchId,
    /// Its profiled cost (milliseconds, or FLOPs when the table has no profile).
    pub cost: f64,
    /// Its top-1 accuracy.
    pub acc1: f64,
}

impl Rung {
    /// The frontier's points as rungs, cheapest first.
    pub fn ladder(frontier: &Frontier) -> Vec<Rung> {
        frontier
            .points()
            .iter()
            .map(|p| Rung {
                id: p.id,
                cost: p.cost,
                acc1: p.acc1,
            })
            .collect()
    }
}

/// What the controller decided after an observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Not enough samples, or another request is deciding.
    Wait,
    /// The current rung is right.
    Stay,
    /// Moved from one rung to another.
    Moved {
        /// The stitch before.
        from: StitchId,
        /// The stitch now.
        to: StitchId,
        /// The window's latency quantile that triggered the move, in milliseconds.
        p_ms: f64,
    },
}

/// The adaptive controller (see the [module docs](self)).
#[derive(Debug)]
pub struct Controller {
    config: AdaptiveConfig,
    ladder: Vec<Rung>,
    objective_ms: AtomicU64,
    level: AtomicUsize,
    ring: Box<[AtomicU64]>,
    /// The forward part of each latency in `ring`.
    forward_ring: Box<[AtomicU64]>,
    /// Observations of the current rung since the start.
    count: AtomicU64,
    /// `count` at the last move: older samples belong to another rung.
    epoch: AtomicU64,
    moves: AtomicU64,
    deciding: Mutex<()>,
}

impl Controller {
    /// A controller over `frontier` (its points become the ladder) with objective
    /// `objective_ms` on the `config.quantile` latency. `ms_per_cost` converts the frontier's
    /// cost to the expected milliseconds (1 for a latency frontier); it picks the starting
    /// rung.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or objective.
    pub fn new(
        frontier: &Frontier,
        objective_ms: f64,
        ms_per_cost: f64,
        config: AdaptiveConfig,
    ) -> Result<Self> {
        config.validate()?;
        check_objective(objective_ms)?;
        let ladder = Rung::ladder(frontier);
        let controller = Controller {
            config,
            objective_ms: AtomicU64::new(objective_ms.to_bits()),
            level: AtomicUsize::new(0),
            ring: (0..config.window).map(|_| AtomicU64::new(0)).collect(),
            forward_ring: (0..config.window).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            moves: AtomicU64::new(0),
            deciding: Mutex::new(()),
            ladder,
        };
        let start = controller.best_fitting(0.0, ms_per_cost, objective_ms * config.up_target, 0);
        controller.level.store(start, Ordering::Relaxed);
        Ok(controller)
    }

    /// The ladder, cheapest first.
    pub fn ladder(&self) -> &[Rung] {
        &self.ladder
    }

    /// The configuration.
    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// The objective in milliseconds.
    pub fn objective_ms(&self) -> f64 {
        f64::from_bits(self.objective_ms.load(Ordering::Relaxed))
    }

    /// Changes the objective; the current rung stays until the next decision.
    ///
    /// # Errors
    /// [`Error::Config`] unless positive and finite.
    pub fn set_objective_ms(&self, ms: f64) -> Result<()> {
        check_objective(ms)?;
        self.objective_ms.store(ms.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// The current rung's stitch.
    pub fn current(&self) -> StitchId {
        self.rung(self.level.load(Ordering::Acquire)).id
    }

    /// The current rung's index in the ladder.
    pub fn level(&self) -> usize {
        self.level.load(Ordering::Acquire)
    }

    /// Moves made so far.
    pub fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }

    /// The configured quantile of the current rung's latencies in the window, in ms; `None`
    /// before the first sample.
    pub fn window_quantile_ms(&self) -> Option<f64> {
        let mut samples = self.samples(&self.ring);
        samples.sort_by(f64::total_cmp);
        quantile_sorted(&samples, self.config.quantile)
    }

    /// The configured quantile of the forward part of the current rung's latencies in the
    /// window, in ms; `None` before the first sample.
    pub fn window_forward_quantile_ms(&self) -> Option<f64> {
        let mut samples = self.samples(&self.forward_ring);
        samples.sort_by(f64::total_cmp);
        quantile_sorted(&samples, self.config.quantile)
    }

    fn rung(&self, level: usize) -> Rung {
        self.ladder
            .get(level)
            .or_else(|| self.ladder.last())
            .copied()
            .unwrap_or(Rung {
                id: StitchId(0),
                cost: 0.0,
                acc1: 0.0,
            })
    }

    /// The most accurate rung at or above `floor` whose predicted latency `overhead` + cost ×
    /// `scale` is at most `max`, or `floor` when none is.
    fn best_fitting(&self, overhead: f64, scale: f64, max: f64, floor: usize) -> usize {
        self.ladder
            .iter()
            .enumerate()
            .skip(floor)
            .filter(|(_, r)| overhead + r.cost * scale <= max)
            .map(|(i, _)| i)
            .next_back()
            .unwrap_or(floor)
    }

    /// The current rung's samples in the window.
    fn samples(&self, ring: &[AtomicU64]) -> Vec<f64> {
        let count = self.count.load(Ordering::Acquire);
        let epoch = self.epoch.load(Ordering::Acquire);
        let window = self.ring.len() as u64;
        let start = epoch.max(count.saturating_sub(window));
        (start..count)
            .filter_map(|i| usize::try_from(i % window.max(1)).ok())
            .filter_map(|i| ring.get(i))
            .map(|slot| f64::from_bits(slot.load(Ordering::Relaxed)))
            .collect()
    }

    /// Records the latency of a forward of `stitch` and decides whether to move. Latencies of
    /// other stitches than the current rung's (requests that named their stitch, or ran
    /// before a move) are ignored.
    pub fn observe(&self, stitch: StitchId, latency: Duration) -> Decision {
        self.observe_parts(stitch, latency, latency)
    }

    /// Like [`observe`](Controller::observe), with the forward's part of the request's
    /// `total` latency given apart: the difference is the overhead the controller adds to
    /// every rung's prediction.
    pub fn observe_parts(&self, stitch: StitchId, forward: Duration, total: Duration) -> Decision {
        let latency = total;
        let level = self.level.load(Ordering::Acquire);
        let rung = self.rung(level);
        if stitch != rung.id {
            return Decision::Wait;
        }
        let ms = latency.as_secs_f64() * 1e3;
        let i = self.count.fetch_add(1, Ordering::AcqRel);
        let window = self.ring.len() as u64;
        if let Some(slot) = usize::try_from(i % window.max(1))
            .ok()
            .and_then(|i| self.ring.get(i))
        {
            slot.store(ms.to_bits(), Ordering::Release);
        }
        if let Some(slot) = usize::try_from(i % window.max(1))
            .ok()
            .and_then(|i| self.forward_ring.get(i))
        {
            let forward_ms = (forward.as_secs_f64() * 1e3).min(ms);
            slot.store(forward_ms.to_bits(), Ordering::Release);
        }
        let fresh = (i + 1).saturating_sub(self.epoch.load(Ordering::Acquire));
        if fresh < self.config.min_samples as u64 {
            return Decision::Wait;
        }
        let Ok(_guard) = self.deciding.try_lock() else {
            return Decision::Wait;
        };
        if self.level.load(Ordering::Acquire) != level {
            return Decision::Wait;
        }
        let Some(p) = self.window_quantile_ms() else {
            return Decision::Wait;
        };
        let objective = self.objective_ms();
        // The overhead (whole minus forward) plus the forward's slow-down over the current
        // rung's profiled cost predict the others.
        let forward = self.window_forward_quantile_ms().unwrap_or(p).min(p);
        let overhead = p - forward;
        let scale = if rung.cost > 0.0 {
            forward / rung.cost
        } else {
            f64::INFINITY
        };
        let target = if p > objective {
            if level == 0 {
                return Decision::Stay;
            }
            self.best_fitting(overhead, scale, objective * self.config.down_target, 0)
                .min(level - 1)
        } else {
            let next = level + 1;
            match self.ladder.get(next) {
                Some(up)
                    if p <= objective * self.config.up_target
                        && overhead + up.cost * scale <= objective * self.config.up_target =>
                {
                    next
                }
                _ => return Decision::Stay,
            }
        };
        self.level.store(target, Ordering::Release);
        self.epoch
            .store(self.count.load(Ordering::Acquire), Ordering::Release);
        self.moves.fetch_add(1, Ordering::Relaxed);
        Decision::Moved {
            from: rung.id,
            to: self.rung(target).id,
            p_ms: p,
        }
    }
}

fn check_objective(ms: f64) -> Result<()> {
    if ms.is_finite() && ms > 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "a latency objective must be a positive number of milliseconds, not {ms}"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use snnet_core::select::{StitchRecord, StitchTable};

    use super::*;

    /// Four stitches of 1, 2, 4 and 8 ms.
    fn frontier() -> Frontier {
        let table = StitchTable::from_records(
            [
                (0, 1.0, 60.0),
                (1, 2.0, 70.0),
                (2, 4.0, 75.0),
                (3, 8.0, 80.0),
            ]
            .into_iter()
            .map(|(id, ms, acc)| StitchRecord::new(id, acc).with_latency_ms(ms))
            .collect(),
        )
        .unwrap();
        table
            .frontier(snnet_core::select::CostKind::LatencyMs)
            .unwrap()
    }

    fn config() -> AdaptiveConfig {
        AdaptiveConfig {
            window: 8,
            min_samples: 4,
            ..AdaptiveConfig::default()
        }
    }

    fn run(c: &Controller, load: f64, n: usize) -> Vec<StitchId> {
        let base = [1.0, 2.0, 4.0, 8.0];
        (0..n)
            .map(|_| {
                let id = c.current();
                let ms = base[id.index()] * load;
                c.observe(id, Duration::from_secs_f64(ms / 1e3));
                id
            })
            .collect()
    }

    #[test]
    fn starts_on_the_best_rung_that_fits() {
        let c = Controller::new(&frontier(), 5.0, 1.0, config()).unwrap();
        assert_eq!(c.current(), StitchId(1));
        let c = Controller::new(&frontier(), 6.0, 1.0, config()).unwrap();
        assert_eq!(c.current(), StitchId(2));
        let c = Controller::new(&frontier(), 0.5, 1.0, config()).unwrap();
        assert_eq!(c.current(), StitchId(0));
        let c = Controller::new(&frontier(), 100.0, 1.0, config()).unwrap();
        assert_eq!(c.current(), StitchId(3));
    }

    #[test]
    fn moves_down_under_load_and_back_up_after() {
        let c = Controller::new(&frontier(), 6.0, 1.0, config()).unwrap();
        // Steady: stays on 4 ms (8 ms would break 0.7 x 6).
        assert!(run(&c, 1.0, 40).iter().all(|&id| id == StitchId(2)));
        assert_eq!(c.moves(), 0);
        // Load x3: 12 ms; one move down to the rung predicted at 3 ms.
        let ids = run(&c, 3.0, 40);
        assert_eq!(ids[4], StitchId(0));
        assert!(ids[4..].iter().all(|&id| id == StitchId(0)));
        assert_eq!(c.moves(), 1);
        // Load gone: back up one rung per window, to where it was, and no further.
        let ids = run(&c, 1.0, 40);
        assert_eq!(*ids.last().unwrap(), StitchId(2));
        assert_eq!(c.moves(), 3);
    }

    /// A fixed overhead of 2 ms on every request (HTTP, queueing): the controller climbs back
    /// to the most accurate rung predicted within `up_target` x objective (4 ms + 2 ms <= 7),
    /// where a multiplied slow-down would stop one rung lower.
    #[test]
    fn climbs_back_with_an_additive_overhead() {
        let c = Controller::new(&frontier(), 10.0, 1.0, config()).unwrap();
        assert_eq!(c.current(), StitchId(2));
        let base = [1.0, 2.0, 4.0, 8.0];
        let step = |c: &Controller, load: f64, n: usize| {
            for _ in 0..n {
                let id = c.current();
                let forward = base[id.index()] * load;
                c.observe_parts(
                    id,
                    Duration::from_secs_f64(forward / 1e3),
                    Duration::from_secs_f64((forward + 2.0) / 1e3),
                );
            }
        };
        // Load x4: 18 ms on rung 2, down.
        step(&c, 4.0, 20);
        assert!(c.current() < StitchId(2));
        // Load gone: back up to rung 2 (predicted 6 ms) and not to rung 3 (10 ms).
        step(&c, 1.0, 100);
        assert_eq!(c.current(), StitchId(2));
        // The multiplied prediction (all of it forward) stops at rung 1 from below.
        let m = Controller::new(&frontier(), 10.0, 1.0, config()).unwrap();
        for _ in 0..20 {
            let id = m.current();
            m.observe(
                id,
                Duration::from_secs_f64((base[id.index()] * 4.0 + 2.0) / 1e3),
            );
        }
        for _ in 0..100 {
            let id = m.current();
            m.observe(id, Duration::from_secs_f64((base[id.index()] + 2.0) / 1e3));
        }
        assert_eq!(m.current(), StitchId(1));
    }

    #[test]
    fn ignores_other_stitches_and_bad_configs() {
        let c = Controller::new(&frontier(), 5.0, 1.0, config()).unwrap();
        for _ in 0..20 {
            assert_eq!(
                c.observe(StitchId(3), Duration::from_secs(1)),
                Decision::Wait
            );
        }
        assert_eq!(c.current(), StitchId(1));
        assert!(Controller::new(&frontier(), 0.0, 1.0, config()).is_err());
        assert!(Controller::new(&frontier(), f64::NAN, 1.0, config()).is_err());
        let bad = AdaptiveConfig {
            min_samples: 9,
            ..config()
        };
        assert!(Controller::new(&frontier(), 5.0, 1.0, bad).is_err());
        assert!(c.set_objective_ms(-1.0).is_err());
    }

    #[test]
    fn simulated_load_scales() {
        let load = SimulatedLoad::fixed([(StitchId(1), 2.0)]);
        let wall = Duration::from_millis(5);
        assert_eq!(load.latency(StitchId(1), 1, wall), Duration::from_millis(2));
        assert_eq!(load.latency(StitchId(0), 1, wall), wall);
        load.set_factor(3.0);
        assert_eq!(load.latency(StitchId(1), 1, wall), Duration::from_millis(6));
        let w = SimulatedLoad::scaling_wall();
        w.set_factor(2.0);
        assert_eq!(w.latency(StitchId(7), 1, wall), Duration::from_millis(10));
        assert_eq!(WallClock.latency(StitchId(0), 1, wall), wall);
    }
}
