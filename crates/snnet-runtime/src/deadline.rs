//! Deadlines: predict when each stitch would finish and run the most accurate one in time.
//!
//! A request with a [`Deadline`] is answered by the most accurate stitch of the latency
//! frontier whose *predicted completion* fits the time it has left:
//!
//! ```text
//! waited + forward(stitch, batch) + overhead <= deadline
//! ```
//!
//! - `forward(stitch, batch)` starts from the profile at the runtime's batch size `N`
//!   (`snnet profile --batch N`): the stitch's median times a batching factor, `batch / N` to
//!   start with (a batch of `b` costs `b / N` profiled forwards). A server that batches
//!   requests ranks its stitches best from a profile at its largest batch: at batch 1 a
//!   per-forward overhead hides their differences (docs/RUNTIME.md). Every forward the
//!   runtime runs refines the factor of its batch size online: the ratio of the measured
//!   latency to the profiled one, as a running mean and mean absolute deviation (TCP's
//!   retransmission timer does the same with round trips), so the prediction follows the
//!   machine as it is now, loaded or not.
//! - `overhead` is what a request costs besides its forward (stacking the batch, top-k,
//!   waking its handler), measured online on this runtime in the same way, plus a fixed
//!   [`margin_ms`](DeadlineConfig::margin_ms).
//! - The stitch choice rests on the *expected* completion (the means) times one plus a margin
//!   learned from lateness ([`LatencyModel::late_margin`]): a running estimate of the
//!   quantile of actual over expected completions that
//!   [`late_share`](DeadlineConfig::late_share) of them exceed. Which requests a batch takes
//!   (and so which are refused) rests on the same with a looser share,
//!   [`refusal_share`](DeadlineConfig::refusal_share) ([`LatencyModel::refusal_margin`]):
//!   refusing a request loses it for certain, answering it loses it only if it comes late.
//!   Admission rests on the expectation alone, shedding a queued request on one deviation
//!   above it, the check that a stitch keeps up with the arrivals on
//!   [`deviations`](DeadlineConfig::deviations).
//! - What was learned fades back to the profile while nothing new is measured (half-life
//!   [`idle_half_life_ms`](DeadlineConfig::idle_half_life_ms)): an overload that made every
//!   prediction pessimistic, and so every request refused, cannot keep the server refusing
//!   after it ends. The overhead fades faster
//!   ([`overhead_half_life_ms`](DeadlineConfig::overhead_half_life_ms)): it alone can price
//!   even the cheapest stitch out of every deadline (a stall of a few milliseconds on a batch's
//!   way out feeds one such observation per answer), and a refused request measures nothing,
//!   so while it refuses everything only fading can correct it.
//!
//! A request nothing can answer in time is refused ([`Error::DeadlineUnreachable`]), never
//! answered late without saying so. The [`LatencyModel`] is lock-light: one short mutex per
//! observation and per prediction, never held across a forward.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use snnet_core::StitchId;
use snnet_core::select::Frontier;

use crate::adaptive::Rung;
use crate::error::{Error, Result};

mod feedback;
pub use feedback::RefusalFeedback;
use feedback::RefusalShare;

/// The longest deadline a request may ask for, in milliseconds (one minute).
pub const MAX_DEADLINE_MS: f64 = 60_000.0;

/// A request's deadline: a positive, finite number of milliseconds, at most
/// [`MAX_DEADLINE_MS`], counted from when the request arrived.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Deadline(Duration);

impl Deadline {
    /// A deadline of `ms` milliseconds.
    ///
    /// # Errors
    /// [`Error::InvalidDeadline`] for 0, a negative number, NaN, infinity or more than
    /// [`MAX_DEADLINE_MS`].
    pub fn from_ms(ms: f64) -> Result<Self> {
        let reason = if ms.is_nan() {
            Some("it is not a number")
        } else if ms <= 0.0 {
            Some("it must be positive")
        } else if ms > MAX_DEADLINE_MS {
            Some("it is above the maximum of 60000 ms")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidDeadline { ms, reason }),
            None => Ok(Deadline(Duration::from_secs_f64(ms / 1e3))),
        }
    }

    /// The deadline as a duration.
    pub fn duration(&self) -> Duration {
        self.0
    }

    /// The deadline in milliseconds.
    pub fn ms(&self) -> f64 {
        self.0.as_secs_f64() * 1e3
    }
}

/// The latency model's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlineConfig {
    /// How many mean absolute deviations above the mean a stitch's usual cost is (2 by
    /// default; [`LatencyModel::completion_ms`]): the check that the server keeps up with the
    /// arrival rate at a stitch rests on it.
    pub deviations: f64,
    /// Added to every prediction, in milliseconds (0.2 by default): what the model cannot see
    /// (writing the answer to the socket).
    pub margin_ms: f64,
    /// The weight of a new observation in the running means (1/8 by default).
    pub gain: f64,
    /// The largest batch size whose factor is learned on its own; larger batches scale the
    /// largest one's linearly.
    pub max_batch: usize,
    /// Without new measurements for longer than this, what was learned fades back to the
    /// prior (the profile, no overhead, no learned margin) with this half-life, in
    /// milliseconds (250 by default); shorter gaps between measurements do not fade it.
    pub idle_half_life_ms: f64,
    /// As [`idle_half_life_ms`](Self::idle_half_life_ms), for the overhead estimate alone
    /// (40 ms by default): after a stall that made the server refuse every request (nothing
    /// answered, nothing measured), it answers again within about two half-lives, while the
    /// margin learned from lateness and the batching factors still remember the stall.
    pub overhead_half_life_ms: f64,
    /// The share of completions allowed to take longer than the expectation plus the learned
    /// margin (1 % by default): the margin ([`LatencyModel::observe_completion`]) is the
    /// quantile of actual / expected completion over the last 512 completions that this share
    /// exceed, so that it tracks this machine's tail as it is now (a loaded machine, the
    /// answer's way out) and follows a burst's start and end within a fraction of a second.
    /// Only the tightest request of a batch is at that risk, so fewer answers than this are
    /// late. (0.3 % until the profile and the served batches were both at batch 8: there it
    /// refused about twice as many burst requests, with no fewer answers late; docs/RUNTIME.md.)
    pub late_share: f64,
    /// The share of completions allowed above the margin that decides whether a request is
    /// *answered at all* by the cheapest stitch (10 % by default;
    /// [`LatencyModel::refusal_margin`]): which requests a deadline batch takes and which
    /// left-out requests are refused as the workers being busy. Refusing a request loses its
    /// answer for certain, answering it loses it only if it comes late, so this is larger than
    /// [`late_share`](Self::late_share), on whose tail the choice of a more accurate (slower)
    /// stitch rests. At 1 % (the late share's tail until then) the bursts of the measured runs
    /// refused 5.75 % of their requests, against 3.07 % at 10 %, with about as many answers
    /// late; at 50 % a burst's answers went late in cascades (docs/RUNTIME.md).
    pub refusal_share: f64,
    /// Steer [`refusal_share`](Self::refusal_share) by lateness (`None` by default: fixed):
    /// the share starts there and moves between [`late_share`](Self::late_share) and
    /// [`RefusalFeedback::max_share`], loosened by every deadline answer on time and tightened
    /// by every late one, so that about [`RefusalFeedback::late_target`] of the answers are
    /// late ([`LatencyModel::observe_answer`], [`LatencyModel::refusal_share`]).
    pub refusal_feedback: Option<RefusalFeedback>,
    /// The most of the workers' time a stitch may need at the measured arrival rate (0.9 by
    /// default): above it the queue would grow, so a cheaper stitch runs.
    pub max_utilization: f64,
    /// How many mean absolute deviations above the mean the predictions that *refusals* rest on
    /// are (1 by default; [`LatencyModel::refusal_ms`]): fewer than
    /// [`deviations`](Self::deviations), so that a request is refused only when even a likely
    /// completion misses, while the stitch is chosen against the tail. Shedding a queued
    /// request and which requests a deadline batch takes rest on it (the batch with the
    /// margin learned from lateness too).
    pub refusal_deviations: f64,
    /// How many mean absolute deviations above the mean the prediction that *admission* rests
    /// on is (0 by default; [`LatencyModel::admission_ms`]): a request joins the queue unless
    /// even its expected completion misses. A longer queue fills larger batches, and a forward's
    /// cost grows far more slowly than its batch, so under load admitting on the expectation
    /// and deciding on the tail when the batch is formed answers more requests in time.
    pub admission_deviations: f64,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        DeadlineConfig {
            deviations: 2.0,
            margin_ms: 0.2,
            gain: 0.125,
            max_batch: 64,
            idle_half_life_ms: 250.0,
            overhead_half_life_ms: 40.0,
            late_share: 0.01,
            refusal_share: 0.1,
            refusal_feedback: None,
            max_utilization: 0.9,
            refusal_deviations: 1.0,
            admission_deviations: 0.0,
        }
    }
}

impl DeadlineConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::Config`] unless `deviations >= 0`, `margin_ms >= 0`, `0 < gain <= 1`,
    /// `max_batch >= 1`, both half-lives `> 0`, `0 < late_share < 1`, `0 < refusal_share < 1`,
    /// a [`refusal_feedback`](Self::refusal_feedback) with `0 < late_target < 1`,
    /// `0 < max_share < 1` and `0 < gain <= 1`,
    /// `max_utilization > 0`, `refusal_deviations >= 0` and `admission_deviations >= 0`, all
    /// finite.
    pub fn validate(&self) -> Result<()> {
        let ok = self.deviations.is_finite()
            && self.deviations >= 0.0
            && self.margin_ms.is_finite()
            && self.margin_ms >= 0.0
            && self.gain > 0.0
            && self.gain <= 1.0
            && self.max_batch >= 1
            && self.idle_half_life_ms.is_finite()
            && self.idle_half_life_ms > 0.0
            && self.overhead_half_life_ms.is_finite()
            && self.overhead_half_life_ms > 0.0
            && self.late_share > 0.0
            && self.late_share < 1.0
            && self.refusal_share > 0.0
            && self.refusal_share < 1.0
            && self.refusal_feedback.is_none_or(|f| f.is_valid())
            && self.max_utilization.is_finite()
            && self.max_utilization > 0.0
            && self.refusal_deviations.is_finite()
            && self.refusal_deviations >= 0.0
            && self.admission_deviations.is_finite()
            && self.admission_deviations >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::Config(format!("invalid deadline config {self:?}")))
        }
    }
}

/// The share of what was learned that is left at `now` after the last measurement at `last`.
/// A gap shorter than one half-life is not idleness (requests arriving at a steady rate must
/// not wear the estimate down between measurements); beyond it, the estimate halves every
/// half-life.
fn kept(now: Instant, last: Option<Instant>, half_life_ms: f64) -> f64 {
    last.map_or(1.0, |last| {
        let gap_ms = now.saturating_duration_since(last).as_secs_f64() * 1e3;
        0.5f64.powf((gap_ms - half_life_ms).max(0.0) / half_life_ms)
    })
}

/// A running mean and mean absolute deviation, fading back to a prior while idle.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    prior: f64,
    mean: f64,
    dev: f64,
    samples: u64,
    /// The mean and deviation as of the last measurement, and when it was.
    measured: (f64, f64),
    last: Option<Instant>,
}

impl Estimate {
    fn prior(mean: f64) -> Self {
        Estimate {
            prior: mean,
            mean,
            dev: 0.0,
            samples: 0,
            measured: (mean, 0.0),
            last: None,
        }
    }

    /// Fades the estimate towards its prior for the time since the last *measurement*
    /// (reading it does not restart that clock: a steady stream of measurements is not idle).
    fn fade(&mut self, now: Instant, half_life_ms: f64) {
        let keep = kept(now, self.last, half_life_ms);
        let (mean, dev) = self.measured;
        self.mean = self.prior + (mean - self.prior) * keep;
        self.dev = dev * keep;
    }

    fn observe(&mut self, x: f64, gain: f64, now: Instant, half_life_ms: f64) {
        if !x.is_finite() || x < 0.0 {
            return;
        }
        self.fade(now, half_life_ms);
        if self.samples == 0 {
            // The first measurement replaces the prior, with a deviation of a quarter of it.
            self.mean = x;
            self.dev = x / 4.0;
        } else {
            let err = x - self.mean;
            self.mean += gain * err;
            self.dev += gain * (err.abs() - self.dev);
        }
        self.samples = self.samples.saturating_add(1);
        self.measured = (self.mean, self.dev);
        self.last = Some(now);
    }

    fn upper(&self, k: f64) -> f64 {
        self.mean + k * self.dev
    }
}

#[derive(Debug)]
struct ModelState {
    /// The batching factor of batch `b` at index `b - 1`.
    factors: Vec<Estimate>,
    overhead_ms: Estimate,
    late: LateMargin,
    /// The share the refusals' margin is the quantile at.
    refusal: RefusalShare,
}

/// The completions the learned margin is the quantile of: the most recent ones, so that it
/// follows the machine within a fraction of a second of a burst's start (and of its end).
const LATE_WINDOW: usize = 512;
/// How many completions between recomputations of the quantile.
const LATE_EVERY: usize = 8;
/// The learned margin at most, as a share of the prediction: an overload on a shared machine
/// must not leave the model refusing everything once it is over.
const LATE_MAX: f64 = 1.0;

/// Where [`LateMargin`] keeps the margin at [`DeadlineConfig::late_share`] (the stitch choice's).
const AT_LATE: usize = 0;
/// Where [`LateMargin`] keeps the margin at [`DeadlineConfig::refusal_share`] (the refusals').
const AT_REFUSAL: usize = 1;

/// Margins learned from completions that took longer than expected, as shares of the
/// expectation: the quantiles of actual / expected over the last [`LATE_WINDOW`] completions
/// that [`DeadlineConfig::late_share`] and [`DeadlineConfig::refusal_share`] of them exceed,
/// minus one (within 0..=1); they fade back to 0 while idle.
#[derive(Debug, Clone, Default)]
struct LateMargin {
    /// The margins now (faded), at [`AT_LATE`] and [`AT_REFUSAL`].
    share: [f64; 2],
    /// The recent ratios of actual to expected completion, oldest first.
    ratios: std::collections::VecDeque<f64>,
    /// Completions since the quantiles were last computed.
    since: usize,
    /// The margins as of the last computation, and when the last completion was.
    measured: [f64; 2],
    last: Option<Instant>,
}

impl LateMargin {
    /// Fades the margins towards 0 for the time since the last completion.
    fn fade(&mut self, now: Instant, half_life_ms: f64) {
        let kept = kept(now, self.last, half_life_ms);
        self.share = self.measured.map(|m| m * kept);
    }

    /// The smallest ratio in `sorted` (ascending) that at most `share` of it exceed.
    fn quantile(sorted: &[f64], share: f64) -> f64 {
        let n = sorted.len();
        let exceed = (share * n as f64).floor() as usize;
        sorted
            .get(n.saturating_sub(exceed.saturating_add(1)))
            .copied()
            .unwrap_or(1.0)
    }

    fn observe(&mut self, ratio: f64, shares: [f64; 2], now: Instant, half_life_ms: f64) {
        if !ratio.is_finite() || ratio < 0.0 {
            return;
        }
        if kept(now, self.last, half_life_ms) < 1.0 {
            // Idle for longer than a half-life: what was seen before is another machine.
            self.ratios.clear();
            self.measured = [0.0; 2];
        }
        if self.ratios.len() >= LATE_WINDOW {
            self.ratios.pop_front();
        }
        self.ratios.push_back(ratio);
        self.since = self.since.saturating_add(1);
        if self.since >= LATE_EVERY || self.ratios.len() < LATE_EVERY {
            self.since = 0;
            let mut sorted: Vec<f64> = self.ratios.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            self.measured =
                shares.map(|share| (Self::quantile(&sorted, share) - 1.0).clamp(0.0, LATE_MAX));
        }
        self.share = self.measured;
        self.last = Some(now);
    }
}

/// What the runtime predicts a stitch costs on this machine now (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct LatencyModel {
    config: DeadlineConfig,
    /// The latency frontier, cheapest first.
    ladder: Vec<Rung>,
    /// The profiled latency of every stitch the table has, by id.
    base_ms: Vec<Option<f64>>,
    /// The batch size the profile was measured at.
    profile_batch: usize,
    state: Mutex<ModelState>,
}

impl LatencyModel {
    /// The model of `frontier` (a latency frontier, its points' costs in milliseconds at
    /// `profile_batch` images), with the profiled latency of every stitch in `base_ms`
    /// (`(id, ms)`, for requests pinned off the frontier).
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid config or a zero `profile_batch`.
    pub fn new(
        frontier: &Frontier,
        base_ms: impl IntoIterator<Item = (StitchId, f64)>,
        profile_batch: usize,
        config: DeadlineConfig,
    ) -> Result<Self> {
        config.validate()?;
        if profile_batch == 0 {
            return Err(Error::Config(
                "the profile's batch size must be >= 1".to_owned(),
            ));
        }
        let ladder = Rung::ladder(frontier);
        let mut table: Vec<Option<f64>> = Vec::new();
        for (id, ms) in base_ms
            .into_iter()
            .chain(ladder.iter().map(|r| (r.id, r.cost)))
        {
            let i = id.index();
            if table.len() <= i {
                table.resize(i + 1, None);
            }
            if let Some(slot) = table.get_mut(i) {
                *slot = Some(ms);
            }
        }
        let factors = (1..=config.max_batch)
            .map(|b| Estimate::prior(b as f64 / profile_batch as f64))
            .collect();
        Ok(LatencyModel {
            config,
            ladder,
            base_ms: table,
            profile_batch,
            state: Mutex::new(ModelState {
                factors,
                overhead_ms: Estimate::prior(0.0),
                late: LateMargin::default(),
                refusal: RefusalShare::new(
                    config.refusal_share,
                    config.late_share,
                    config.refusal_feedback,
                ),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DeadlineConfig {
        &self.config
    }

    /// The ladder (the latency frontier), cheapest first.
    pub fn ladder(&self) -> &[Rung] {
        &self.ladder
    }

    /// The cheapest rung.
    pub fn cheapest(&self) -> Option<Rung> {
        self.ladder.first().copied()
    }

    /// The batch size the profile was measured at.
    pub fn profile_batch(&self) -> usize {
        self.profile_batch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ModelState> {
        // A panic while holding the lock cannot leave the estimates half-updated in a way
        // that matters (each is a few floats): keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state, faded for the time nothing was measured.
    fn read(&self) -> std::sync::MutexGuard<'_, ModelState> {
        let mut state = self.lock();
        let now = Instant::now();
        let half_life = self.config.idle_half_life_ms;
        for e in &mut state.factors {
            e.fade(now, half_life);
        }
        state
            .overhead_ms
            .fade(now, self.config.overhead_half_life_ms);
        state.late.fade(now, half_life);
        state
    }

    /// The predicted factor of a batch of `batch` images over the profiled latency.
    fn factor(state: &ModelState, batch: usize, k: f64) -> f64 {
        let batch = batch.max(1);
        let learned = state.factors.len();
        match state.factors.get(batch - 1) {
            Some(e) => e.upper(k),
            None => state
                .factors
                .last()
                .map_or(batch as f64, |e| e.upper(k) * batch as f64 / learned as f64),
        }
    }

    /// The predicted forward latency of `stitch` on `batch` images, in milliseconds; `None`
    /// for a stitch without a profiled latency.
    pub fn forward_ms(&self, stitch: StitchId, batch: usize) -> Option<f64> {
        let base = self.base_ms.get(stitch.index()).copied().flatten()?;
        let state = self.read();
        Some(base * Self::factor(&state, batch, self.config.deviations))
    }

    /// The predicted overhead of a request besides its forward, in milliseconds (the
    /// configured margin included).
    pub fn overhead_ms(&self) -> f64 {
        self.read().overhead_ms.upper(self.config.deviations) + self.config.margin_ms
    }

    /// The predicted time from taking a batch of `batch` images of `stitch` off the queue to
    /// answering it, in milliseconds, [`DeadlineConfig::deviations`] above the mean, without
    /// the margin learned from lateness ([`late_margin`](Self::late_margin)): what a stitch's
    /// usual cost is when the server checks that it keeps up with the arrivals.
    pub fn completion_ms(&self, stitch: StitchId, batch: usize) -> Option<f64> {
        self.completion_at(stitch, batch, self.config.deviations)
    }

    /// The prediction refusals rest on: as [`completion_ms`](Self::completion_ms) with
    /// [`DeadlineConfig::refusal_deviations`] deviations. Shedding and which requests a
    /// deadline batch takes use it; the stitch choice does not.
    pub fn refusal_ms(&self, stitch: StitchId, batch: usize) -> Option<f64> {
        self.completion_at(stitch, batch, self.config.refusal_deviations)
    }

    /// The prediction admission rests on: as [`completion_ms`](Self::completion_ms) with
    /// [`DeadlineConfig::admission_deviations`] deviations.
    pub fn admission_ms(&self, stitch: StitchId, batch: usize) -> Option<f64> {
        self.completion_at(stitch, batch, self.config.admission_deviations)
    }

    /// The expected completion of `stitch` on `batch` images (the mean, no deviation, no
    /// learned margin), in milliseconds: what [`late_margin`](Self::late_margin) is learned
    /// against.
    pub fn expected_ms(&self, stitch: StitchId, batch: usize) -> Option<f64> {
        self.completion_at(stitch, batch, 0.0)
    }

    /// The completion of `stitch` on `batch` images, `k` deviations above the mean.
    fn completion_at(&self, stitch: StitchId, batch: usize, k: f64) -> Option<f64> {
        let state = self.read();
        let base = self.base_ms.get(stitch.index()).copied().flatten()?;
        Some(
            base * Self::factor(&state, batch, k)
                + state.overhead_ms.upper(k)
                + self.config.margin_ms,
        )
    }

    /// How long a worker is predicted to be busy with a forward of `stitch` on `batch` images,
    /// in milliseconds: the forward alone (the answers go out after the worker is free), with
    /// [`DeadlineConfig::refusal_deviations`] deviations, as the refusals it feeds. `None` for a
    /// stitch without a profiled latency.
    pub fn busy_ms(&self, stitch: StitchId, batch: usize) -> Option<f64> {
        let base = self.base_ms.get(stitch.index()).copied().flatten()?;
        let state = self.read();
        Some(base * Self::factor(&state, batch, self.config.refusal_deviations))
    }

    /// The predicted completion of every rung at `batch` images, cheapest rung first: the
    /// expectation times one plus the margin learned from lateness, what the choice of a
    /// stitch rests on.
    pub fn ladder_completion_ms(&self, batch: usize) -> Vec<(Rung, f64)> {
        let state = self.read();
        let factor = Self::factor(&state, batch, 0.0);
        let fixed = state.overhead_ms.mean + self.config.margin_ms;
        let late = 1.0 + state.late.share[AT_LATE];
        self.ladder
            .iter()
            .map(|r| (*r, (r.cost * factor + fixed) * late))
            .collect()
    }

    /// The most accurate rung whose predicted completion at `batch` images is at most
    /// `left_ms`; `None` when not even the cheapest is.
    pub fn best_within(&self, left_ms: f64, batch: usize) -> Option<Rung> {
        self.ladder_completion_ms(batch)
            .into_iter()
            .filter(|(_, ms)| *ms <= left_ms)
            .map(|(r, _)| r)
            .next_back()
    }

    /// Records a forward of `stitch` on `batch` images that took `latency`.
    pub fn observe_forward(&self, stitch: StitchId, batch: usize, latency: Duration) {
        let Some(base) = self.base_ms.get(stitch.index()).copied().flatten() else {
            return;
        };
        if base <= 0.0 || batch == 0 {
            return;
        }
        let ratio = latency.as_secs_f64() * 1e3 / base;
        let (gain, half_life) = (self.config.gain, self.config.idle_half_life_ms);
        let mut state = self.lock();
        if let Some(e) = state.factors.get_mut(batch - 1) {
            e.observe(ratio, gain, Instant::now(), half_life);
        }
    }

    /// Records the overhead of one request besides its forward.
    pub fn observe_overhead(&self, overhead: Duration) {
        let (gain, half_life) = (self.config.gain, self.config.overhead_half_life_ms);
        self.lock().overhead_ms.observe(
            overhead.as_secs_f64() * 1e3,
            gain,
            Instant::now(),
            half_life,
        );
    }

    /// Records a request whose answer was ready `actual` after it was taken off the queue,
    /// where [`expected_ms`](Self::expected_ms) had expected `expected_ms`: its ratio joins
    /// the window of recent completions whose quantile the learned margin is
    /// ([`DeadlineConfig::late_share`]).
    pub fn observe_completion(&self, expected_ms: f64, actual: Duration) {
        if !expected_ms.is_finite() {
            return;
        }
        let half_life = self.config.idle_half_life_ms;
        if expected_ms <= 0.0 {
            return;
        }
        let ratio = actual.as_secs_f64() * 1e3 / expected_ms;
        let mut state = self.lock();
        let mut shares = [0.0; 2];
        shares[AT_LATE] = self.config.late_share;
        shares[AT_REFUSAL] = state.refusal.get();
        state.late.observe(ratio, shares, Instant::now(), half_life);
    }

    /// Records a deadline answer that went out on time or late, as the server's clock sees
    /// it: with a [`DeadlineConfig::refusal_feedback`] it moves the share the refusals rest on
    /// ([`refusal_share`](Self::refusal_share)); without one it does nothing.
    pub fn observe_answer(&self, on_time: bool) {
        if self.config.refusal_feedback.is_some() {
            self.lock().refusal.observe(on_time);
        }
    }

    /// The share of completions the refusals' margin ([`refusal_margin`](Self::refusal_margin))
    /// leaves above it now: [`DeadlineConfig::refusal_share`], or where the
    /// [`DeadlineConfig::refusal_feedback`] has moved it since.
    pub fn refusal_share(&self) -> f64 {
        self.lock().refusal.get()
    }

    /// The margin learned from completions that took longer than expected, as a share of the
    /// expectation (0.1: the tail is 10 % above it), at most 1: the tail of this machine's
    /// completions as they are now, at [`DeadlineConfig::late_share`]. The stitch choice rests
    /// on it, so that a slower, more accurate stitch runs only when it would rarely be late.
    pub fn late_margin(&self) -> f64 {
        self.read().late.share[AT_LATE]
    }

    /// As [`late_margin`](Self::late_margin), at [`DeadlineConfig::refusal_share`]: the tail
    /// that decides whether the cheapest stitch answers a request at all (which requests a
    /// deadline batch takes, which left-out ones are refused).
    pub fn refusal_margin(&self) -> f64 {
        self.read().late.share[AT_REFUSAL]
    }

    /// The learned batching factors (`(batch, mean, deviation, samples)`) of the batch sizes
    /// observed so far.
    pub fn learned_factors(&self) -> Vec<(usize, f64, f64, u64)> {
        self.lock()
            .factors
            .iter()
            .enumerate()
            .filter(|(_, e)| e.samples > 0)
            .map(|(i, e)| (i + 1, e.mean, e.dev, e.samples))
            .collect()
    }
}

/// Stitches 0, 1, 2 at 1, 2, 4 ms for one image, accuracy 60, 70, 80 %.
#[cfg(test)]
pub(crate) const THREE_RUNGS: [(usize, f64, f64); 3] =
    [(0, 1.0, 60.0), (1, 2.0, 70.0), (2, 4.0, 80.0)];

/// Feeds `m` with `n` completions expected at 4 ms, one in twenty of them (the first among
/// them) taking twice as long: the 1 % tail at its cap, the 10 % one at the expectation;
/// tests only.
#[cfg(test)]
pub(crate) fn one_in_twenty_late(m: &LatencyModel, n: usize) {
    for k in 0..n {
        let actual = if k % 20 == 0 { 8 } else { 4 };
        m.observe_completion(4.0, Duration::from_millis(actual));
    }
}

/// A model of the latency frontier of `rungs` (`(id, ms, accuracy)`, profiled at batch 1),
/// `config` with no fixed margin; tests only.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_model(
    rungs: &[(usize, f64, f64)],
    base_ms: impl IntoIterator<Item = (StitchId, f64)>,
    config: DeadlineConfig,
) -> LatencyModel {
    use snnet_core::select::{CostKind, StitchRecord, StitchTable};
    let table = StitchTable::from_records(
        rungs
            .iter()
            .map(|&(id, ms, acc)| StitchRecord::new(id, acc).with_latency_ms(ms))
            .collect(),
    )
    .unwrap();
    let frontier = table.frontier(CostKind::LatencyMs).unwrap();
    let config = DeadlineConfig {
        margin_ms: 0.0,
        ..config
    };
    LatencyModel::new(&frontier, base_ms, 1, config).unwrap()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn model() -> LatencyModel {
        test_model(
            &THREE_RUNGS,
            [(StitchId(5), 3.0)],
            DeadlineConfig::default(),
        )
    }

    #[test]
    fn deadlines_are_validated() {
        assert_eq!(Deadline::from_ms(8.0).unwrap().ms(), 8.0);
        assert_eq!(Deadline::from_ms(MAX_DEADLINE_MS).unwrap().ms(), 60_000.0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_DEADLINE_MS + 1.0] {
            assert!(
                matches!(Deadline::from_ms(bad), Err(Error::InvalidDeadline { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn picks_the_most_accurate_rung_in_time() {
        let m = model();
        assert_eq!(m.best_within(10.0, 1).unwrap().id, StitchId(2));
        assert_eq!(m.best_within(3.0, 1).unwrap().id, StitchId(1));
        assert_eq!(m.best_within(1.0, 1).unwrap().id, StitchId(0));
        assert!(m.best_within(0.9, 1).is_none());
        // Batch 4 starts at 4x the profile.
        assert_eq!(m.best_within(10.0, 4).unwrap().id, StitchId(1));
        assert_eq!(m.forward_ms(StitchId(5), 2), Some(6.0));
        // Without measurements there is no deviation: refusals and choices agree.
        assert_eq!(
            m.refusal_ms(StitchId(2), 1),
            m.completion_ms(StitchId(2), 1)
        );
        assert_eq!(m.forward_ms(StitchId(4), 1), None);
    }

    #[test]
    fn learns_batching_and_overhead_online() {
        let m = model();
        // Batch 4 really costs 2x the batch-1 profile, steadily.
        for _ in 0..200 {
            m.observe_forward(StitchId(2), 4, Duration::from_millis(8));
        }
        let f = m.forward_ms(StitchId(2), 4).unwrap();
        assert!((f - 8.0).abs() < 0.05, "{f}");
        assert_eq!(m.best_within(8.1, 4).unwrap().id, StitchId(2));
        // An overhead of 1 ms a request now counts.
        for _ in 0..200 {
            m.observe_overhead(Duration::from_millis(1));
        }
        assert!((m.overhead_ms() - 1.0).abs() < 0.05);
        assert_eq!(m.best_within(8.1, 4).unwrap().id, StitchId(1));
        // Noisy latencies raise the prediction above their mean.
        for i in 0..200 {
            let ms = if i % 2 == 0 { 1.0 } else { 3.0 };
            m.observe_forward(StitchId(0), 1, Duration::from_secs_f64(ms / 1e3));
        }
        let f = m.forward_ms(StitchId(0), 1).unwrap();
        assert!(f > 2.5 && f < 4.5, "{f}");
        // Refusals rest on one deviation, not two: between the mean (2 ms) and the choice's.
        let refusal = m.refusal_ms(StitchId(0), 1).unwrap() - m.overhead_ms();
        let choice = m.completion_ms(StitchId(0), 1).unwrap() - m.overhead_ms();
        assert!(refusal > 2.0 && refusal < choice, "{refusal} {choice}");
        assert!(m.learned_factors().iter().any(|&(b, ..)| b == 4));
    }

    /// Completions that take longer than predicted raise a learned margin until about
    /// `late_share` of them do; on-time ones bring it back down.
    #[test]
    fn learns_a_margin_from_late_completions() {
        let m = model();
        assert_eq!(m.late_margin(), 0.0);
        let before = m.expected_ms(StitchId(0), 1).unwrap();
        let ladder_ms = || m.ladder_completion_ms(1)[0].1;
        assert_eq!(ladder_ms(), before);
        // Completions take 30 % longer than predicted, steadily.
        for _ in 0..2000 {
            m.observe_completion(before, Duration::from_secs_f64(1.3 * before / 1e3));
        }
        let learned = m.late_margin();
        assert!((0.29..0.36).contains(&learned), "{learned}");
        // The stitch choice sees it; the model's own predictions (refusals rest on them) do not.
        let after = ladder_ms();
        assert!(
            (after / before - 1.0 - learned).abs() < 1e-3,
            "{after} {before} {learned}"
        );
        assert_eq!(m.expected_ms(StitchId(0), 1).unwrap(), before);
        // Every completion on time again: the margin falls back to 0.
        for _ in 0..10_000 {
            m.observe_completion(before, Duration::from_secs_f64(before / 1e3));
        }
        assert_eq!(m.late_margin(), 0.0);
        // However late they are, predictions at most double.
        for _ in 0..10_000 {
            m.observe_completion(1.0, Duration::from_secs(1));
        }
        assert!((m.late_margin() - LATE_MAX).abs() < 1e-3);
    }

    /// Both shares are validated: within (0, 1), finite.
    #[test]
    fn the_shares_are_validated() {
        assert!(DeadlineConfig::default().validate().is_ok());
        for bad in [0.0, 1.0, -0.1, f64::NAN, f64::INFINITY] {
            for config in [
                DeadlineConfig {
                    late_share: bad,
                    ..DeadlineConfig::default()
                },
                DeadlineConfig {
                    refusal_share: bad,
                    ..DeadlineConfig::default()
                },
            ] {
                assert!(
                    matches!(config.validate(), Err(Error::Config(_))),
                    "{config:?}"
                );
            }
        }
    }

    /// The margin refusals rest on is its own quantile of the same completions: with one
    /// completion in twenty at twice its expectation, the 1 % tail is at its cap and the 10 %
    /// one at the expectation.
    #[test]
    fn the_refusal_margin_is_its_own_quantile() {
        let m = test_model(
            &THREE_RUNGS,
            [],
            DeadlineConfig {
                refusal_share: 0.1,
                ..DeadlineConfig::default()
            },
        );
        one_in_twenty_late(&m, 2000);
        assert!((m.late_margin() - 1.0).abs() < 1e-9, "{}", m.late_margin());
        assert_eq!(m.refusal_margin(), 0.0);
        // The stitch choice rests on the late share's margin.
        let expected = m.expected_ms(StitchId(0), 1).unwrap();
        assert!((m.ladder_completion_ms(1)[0].1 - 2.0 * expected).abs() < 1e-9);
    }

    /// With a refusal feedback, late answers tighten the refusals' share and the margin follows
    /// at the next recomputation: one completion in twenty at twice its expectation is below
    /// the 10 % tail and at the 1 % one.
    #[test]
    fn late_answers_tighten_the_refusals_tail() {
        let m = test_model(
            &THREE_RUNGS,
            [],
            DeadlineConfig {
                refusal_feedback: Some(RefusalFeedback::default()),
                ..DeadlineConfig::default()
            },
        );
        one_in_twenty_late(&m, 2000);
        assert_eq!(m.refusal_share(), 0.1);
        assert_eq!(m.refusal_margin(), 0.0);
        for _ in 0..100 {
            m.observe_answer(false);
        }
        assert_eq!(m.refusal_share(), m.config().late_share);
        one_in_twenty_late(&m, LATE_EVERY);
        assert!(
            (m.refusal_margin() - 1.0).abs() < 1e-9,
            "{}",
            m.refusal_margin()
        );
        // A feedback with bad values is refused with the config.
        let bad = DeadlineConfig {
            refusal_feedback: Some(RefusalFeedback {
                late_target: 0.0,
                ..RefusalFeedback::default()
            }),
            ..DeadlineConfig::default()
        };
        assert!(matches!(bad.validate(), Err(Error::Config(_))));
        // `{}` in a config file turns it on with the defaults.
        let on: DeadlineConfig = serde_json::from_str(r#"{"refusal_feedback": {}}"#).unwrap();
        assert_eq!(on.refusal_feedback, Some(RefusalFeedback::default()));
    }

    /// A steady stream of measurements is not idleness: with one every 5 ms (10 ms
    /// half-life), and the model read in between, the estimate stays where they put it.
    #[test]
    fn only_idle_time_fades() {
        let config = DeadlineConfig {
            deviations: 0.0,
            idle_half_life_ms: 10.0,
            ..DeadlineConfig::default()
        };
        let m = test_model(&[(0, 1.0, 60.0)], [], config);
        for _ in 0..100 {
            m.observe_forward(StitchId(0), 1, Duration::from_millis(3));
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(1));
                let _ = m.completion_ms(StitchId(0), 1);
            }
        }
        m.observe_forward(StitchId(0), 1, Duration::from_millis(3));
        let ms = m.completion_ms(StitchId(0), 1).unwrap();
        assert!(ms > 2.9, "{ms}");
    }

    /// An overload made every prediction pessimistic; once nothing is measured any more, the
    /// model fades back to the profile, so that the server does not keep refusing.
    #[test]
    fn fades_back_to_the_profile_when_idle() {
        let config = DeadlineConfig {
            idle_half_life_ms: 10.0,
            overhead_half_life_ms: 10.0,
            ..DeadlineConfig::default()
        };
        let m = test_model(&[(0, 1.0, 60.0)], [], config);
        for _ in 0..50 {
            m.observe_forward(StitchId(0), 1, Duration::from_millis(100));
            m.observe_overhead(Duration::from_millis(50));
        }
        assert!(m.completion_ms(StitchId(0), 1).unwrap() > 100.0);
        std::thread::sleep(Duration::from_millis(200));
        let ms = m.completion_ms(StitchId(0), 1).unwrap();
        assert!(ms < 1.1, "{ms}");
    }

    /// A stall on a batch's way out: eight answers 10 ms late, eight overhead observations,
    /// price even the cheapest stitch out of a 6.5 ms deadline, and every request is refused,
    /// so nothing more is measured. The overhead fades on its own half-life (40 ms), so the
    /// cheapest stitch is back within a few of them, while the margin learned from lateness
    /// still remembers the stall and keeps the choice careful (its idle half-life, 250 ms by
    /// default, is 10 s here, so that a test thread that oversleeps cannot fade it).
    #[test]
    fn a_stall_does_not_lock_out_every_request() {
        let config = DeadlineConfig {
            idle_half_life_ms: 10_000.0,
            ..DeadlineConfig::default()
        };
        let m = test_model(&THREE_RUNGS, [], config);
        for _ in 0..200 {
            m.observe_forward(StitchId(0), 1, Duration::from_micros(1000));
            m.observe_overhead(Duration::from_micros(300));
            m.observe_completion(1.3, Duration::from_micros(1300));
        }
        assert_eq!(m.best_within(6.5, 1).map(|r| r.id), Some(StitchId(2)));
        for _ in 0..8 {
            m.observe_overhead(Duration::from_millis(10));
            m.observe_completion(1.3, Duration::from_millis(11));
        }
        let locked = m.refusal_ms(StitchId(0), 1).unwrap();
        assert!(locked > 6.5, "{locked}");
        assert!(m.best_within(1.5, 1).is_none());
        std::thread::sleep(Duration::from_millis(160));
        let refusal = m.refusal_ms(StitchId(0), 1).unwrap();
        assert!(refusal < 3.0, "{refusal}");
        assert!(m.late_margin() > 0.5, "{}", m.late_margin());
        assert!(m.best_within(6.5, 1).is_some());
    }
}
