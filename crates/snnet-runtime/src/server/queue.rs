//! The request queue: admission control bounded by predicted drain time, and the choice of
//! each batch (its requests and its stitch) when a worker frees up.
//!
//! A request joins the queue only when the queue is predicted to drain in time: in at most
//! [`ServerConfig::max_queue_ms`], and, for a request with a deadline, early enough that the
//! cheapest stitch could still answer it. Otherwise it is refused at once (503 with
//! `Retry-After`), so that an overload sheds what would miss instead of growing a backlog that
//! makes every later answer late too.
//!
//! When a worker frees up, the oldest request decides the kind of batch:
//!
//! - a request with a stitch (named, from a budget, or the objective's) batches with the
//!   queued requests of the same stitch, as before deadlines existed;
//! - a request with a deadline batches with the other deadline requests, earliest deadline
//!   first, as many as a stitch can still answer in time, and the batch runs the most
//!   accurate stitch predicted to answer all of them in time, that keeps up with the measured
//!   arrival rate ([`DeadlineConfig::max_utilization`](crate::DeadlineConfig)), and that does
//!   not make more of the requests still queued *or predicted to arrive meanwhile* miss their
//!   deadline than the cheapest stitch would (see [`lookahead`](super::lookahead)). Queued
//!   deadline requests that no stitch can answer in time any more are refused there and then.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use snnet_core::StitchId;
use snnet_core::burn::tensor::Tensor;
use tokio::sync::{Notify, oneshot};

use super::api_error::{ApiError, Refusal};
use super::config::ServerConfig;
use super::lookahead::{self, Arrivals, Pending};
use crate::deadline::LatencyModel;
use crate::input::Prediction;

/// Queued deadline requests looked at when predicting who a batch's stitch makes miss.
const LOOKAHEAD: usize = 64;

/// What a queued request runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Target {
    /// This stitch.
    Stitch(StitchId),
    /// The most accurate stitch in time for this deadline.
    Deadline {
        /// When the answer is due.
        due: Instant,
    },
}

/// One decoded request waiting for a forward.
pub(super) struct Job {
    pub(super) images: Tensor<4>,
    pub(super) size: usize,
    pub(super) target: Target,
    /// When it joined the queue (decoded).
    pub(super) queued: Instant,
    /// Predicted work it adds to the queue, in milliseconds of one worker.
    pub(super) work_ms: f64,
    pub(super) reply: oneshot::Sender<Result<Answer, ApiError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("target", &self.target)
            .field("images", &self.images.dims())
            .finish_non_exhaustive()
    }
}

/// A request's share of a batch.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) stitch: StitchId,
    /// The forward's latency.
    pub(super) latency: Duration,
    /// Time from joining the queue to being taken off it.
    pub(super) queue: Duration,
    /// When the batch was taken off the queue.
    pub(super) dequeued: Instant,
    /// The batch's predicted completion from `dequeued`, in milliseconds.
    pub(super) predicted_ms: Option<f64>,
    pub(super) batch: usize,
    pub(super) predictions: Vec<Vec<Prediction>>,
}

/// A batch to run.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) stitch: StitchId,
    pub(super) jobs: Vec<Job>,
    pub(super) images: usize,
    pub(super) dequeued: Instant,
    /// Its predicted completion from `dequeued`, in milliseconds (with a latency profile).
    pub(super) predicted_ms: Option<f64>,
    /// The slot it holds in [`Queue::running`]'s accounting.
    pub(super) ticket: u64,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: VecDeque<Job>,
    work_ms: f64,
    /// Batches running: (ticket, predicted end).
    running: Vec<(u64, Instant)>,
    next_ticket: u64,
    closed: bool,
    /// Every request that asked to join, admitted or not.
    arrivals: Arrivals,
}

/// The queue shared by the handlers (who push) and the batcher (who takes batches).
#[derive(Debug)]
pub(super) struct Queue {
    inner: Mutex<Inner>,
    notify: Notify,
    config: ServerConfig,
}

impl Queue {
    pub(super) fn new(config: ServerConfig) -> Self {
        Queue {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Requests waiting.
    pub(super) fn depth(&self) -> usize {
        self.lock().jobs.len()
    }

    /// No more requests join; the batcher finishes what is queued.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// The predicted time until a request joining now would be taken off the queue, in ms.
    fn drain_ms(&self, inner: &Inner, now: Instant) -> f64 {
        let workers = self.config.workers.max(1);
        let slot_wait = if inner.running.len() < workers {
            0.0
        } else {
            inner
                .running
                .iter()
                .map(|(_, end)| end.saturating_duration_since(now).as_secs_f64() * 1e3)
                .fold(f64::INFINITY, f64::min)
        };
        slot_wait + inner.work_ms / workers as f64
    }

    /// Admits `job` or refuses it at once.
    pub(super) fn push(&self, job: Job, model: Option<&LatencyModel>) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let deadline_ms = match job.target {
            Target::Deadline { due } => {
                Some(due.saturating_duration_since(now).as_secs_f64() * 1e3)
            }
            Target::Stitch(_) => None,
        };
        inner.arrivals.record(now, deadline_ms);
        if inner.closed {
            return Err(Refusal::ShuttingDown.error("the server is shutting down", None));
        }
        if inner.jobs.len() >= self.config.queue {
            return Err(Refusal::QueueFull.error(
                format!("the queue is full ({} requests)", self.config.queue),
                Some(1.0),
            ));
        }
        let drain = self.drain_ms(&inner, now);
        if drain > self.config.max_queue_ms {
            return Err(Refusal::QueueDrain.error(
                format!(
                    "overloaded: the queue drains in {drain:.1} ms, more than the limit of {} ms",
                    self.config.max_queue_ms
                ),
                Some(drain / 1e3),
            ));
        }
        if let (Target::Deadline { due }, Some(model)) = (job.target, model) {
            let left = due.saturating_duration_since(now).as_secs_f64() * 1e3;
            let fastest = model
                .cheapest()
                .and_then(|r| model.refusal_ms(r.id, job.size))
                .unwrap_or(0.0);
            if drain + fastest > left {
                return Err(Refusal::DeadlineUnreachable.error(
                    format!(
                        "no stitch can answer within the deadline: {left:.2} ms left, the queue drains in {drain:.2} ms and the fastest stitch needs {fastest:.2} ms"
                    ),
                    Some(drain / 1e3),
                ));
            }
        }
        inner.work_ms += job.work_ms;
        inner.jobs.push_back(job);
        drop(inner);
        self.notify.notify_one();
        Ok(())
    }

    /// A batch finished: its worker is free.
    pub(super) fn finished(&self, ticket: u64) {
        self.lock().running.retain(|(t, _)| *t != ticket);
    }

    /// Waits for the next batch; `None` once the queue is closed and empty. Requests refused
    /// on the way (their deadline out of reach) are answered here.
    pub(super) async fn next_batch(&self, model: Option<&LatencyModel>) -> Option<Batch> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (batch, refused, closed) = {
                let mut inner = self.lock();
                let now = Instant::now();
                let refused = shed(&mut inner, now, model);
                let batch = self.form(&mut inner, now, model);
                (batch, refused, inner.closed)
            };
            for (job, left, fastest) in refused {
                let _ = job.reply.send(Err(Refusal::DeadlineUnreachable.error(
                    format!(
                        "no stitch can answer within the deadline any more: {left:.2} ms left after queueing, the fastest stitch needs {fastest:.2} ms"
                    ),
                    Some(fastest / 1e3),
                )));
            }
            if let Some(batch) = batch {
                return Some(batch);
            }
            if closed {
                return None;
            }
            notified.await;
        }
    }

    /// Takes the next batch off the queue (under its lock).
    fn form(&self, inner: &mut Inner, now: Instant, model: Option<&LatencyModel>) -> Option<Batch> {
        let front = inner.jobs.front()?.target;
        let max_batch = self.config.max_batch;
        let (stitch, picked) = match (front, model) {
            (Target::Stitch(stitch), _) => {
                let mut picked = Vec::new();
                let mut images: usize = 0;
                for (i, job) in inner.jobs.iter().enumerate() {
                    let grown = images.saturating_add(job.size);
                    if job.target == Target::Stitch(stitch)
                        && (picked.is_empty() || grown <= max_batch)
                    {
                        images = grown;
                        picked.push(i);
                    }
                }
                (stitch, picked)
            }
            (Target::Deadline { .. }, Some(model)) => {
                self.plan_deadline_batch(inner, now, model)?
            }
            // Deadline requests are refused at admission without a model; none can be here.
            (Target::Deadline { .. }, None) => return None,
        };
        let mut jobs = Vec::with_capacity(picked.len());
        // Remove from the back so that the indices stay valid.
        for &i in picked.iter().rev() {
            if let Some(job) = inner.jobs.remove(i) {
                inner.work_ms = (inner.work_ms - job.work_ms).max(0.0);
                jobs.push(job);
            }
        }
        jobs.reverse();
        if inner.jobs.is_empty() {
            inner.work_ms = 0.0;
        }
        let images = jobs
            .iter()
            .map(|j| j.size)
            .fold(0usize, usize::saturating_add);
        let predicted_ms = model.and_then(|m| m.completion_ms(stitch, images));
        let predicted = predicted_ms.unwrap_or(0.0);
        let ticket = inner.next_ticket;
        inner.next_ticket = inner.next_ticket.wrapping_add(1);
        let end = now
            .checked_add(Duration::from_secs_f64(predicted.max(0.0) / 1e3))
            .unwrap_or(now);
        inner.running.push((ticket, end));
        Some(Batch {
            stitch,
            jobs,
            images,
            dequeued: now,
            predicted_ms,
            ticket,
        })
    }

    /// The deadline batch (indices into the queue) and its stitch.
    fn plan_deadline_batch(
        &self,
        inner: &Inner,
        now: Instant,
        model: &LatencyModel,
    ) -> Option<(StitchId, Vec<usize>)> {
        let left_ms = |due: Instant| due.saturating_duration_since(now).as_secs_f64() * 1e3;
        // Deadline requests, earliest deadline first.
        let mut edf: Vec<(usize, f64, usize)> = inner
            .jobs
            .iter()
            .enumerate()
            .filter_map(|(i, j)| match j.target {
                Target::Deadline { due } => Some((i, left_ms(due), j.size)),
                Target::Stitch(_) => None,
            })
            .collect();
        edf.sort_by(|a, b| a.1.total_cmp(&b.1));
        let cheapest = model.cheapest()?;
        // Grow the batch while the cheapest stitch still answers all of it in time.
        let mut picked = Vec::new();
        let mut images: usize = 0;
        let mut min_left = f64::INFINITY;
        let mut rest = Vec::new();
        for &(i, left, size) in &edf {
            let grown = images.saturating_add(size);
            let fits = grown <= self.config.max_batch || picked.is_empty();
            let in_time = model
                .refusal_ms(cheapest.id, grown)
                .is_some_and(|ms| ms <= left.min(min_left));
            if fits && in_time && rest.is_empty() {
                picked.push(i);
                images = grown;
                min_left = min_left.min(left);
            } else {
                rest.push((left, size));
            }
        }
        if picked.is_empty() {
            return None;
        }
        rest.truncate(LOOKAHEAD);
        // Who comes after this batch: the queued deadline requests, earliest deadline first,
        // then those predicted to arrive meanwhile at the measured rate.
        let mut pending: Vec<Pending> = rest
            .iter()
            .map(|&(left, size)| Pending {
                arrive_ms: 0.0,
                due_ms: left,
                size,
            })
            .collect();
        pending.extend(inner.arrivals.predicted(now));
        // Other workers: when each frees up, from now.
        let workers = self.config.workers.max(1);
        let others: Vec<f64> = (1..workers)
            .map(|w| {
                inner
                    .running
                    .get(w.saturating_sub(1))
                    .map_or(0.0, |(_, end)| left_ms(*end))
            })
            .collect();
        let cheapest_ms = |chunk: usize| {
            model
                .refusal_ms(cheapest.id, chunk)
                .unwrap_or(f64::INFINITY)
        };
        let misses_after = |first_ms: f64| {
            let mut slots = Vec::with_capacity(workers);
            slots.push(first_ms);
            slots.extend_from_slice(&others);
            lookahead::misses(&slots, &pending, self.config.max_batch, cheapest_ms)
        };
        let ladder = model.ladder_completion_ms(images);
        let floor = ladder
            .first()
            .map_or(usize::MAX, |&(_, ms)| misses_after(ms));
        let max_utilization = model.config().max_utilization;
        // Keeping up is about the stitch's usual cost (the model's own prediction), meeting
        // the deadline about its tail (with the margin learned from lateness).
        let stitch = ladder
            .iter()
            .rev()
            .find(|&&(rung, ms)| {
                let usual = model.completion_ms(rung.id, images).unwrap_or(ms);
                ms <= min_left
                    && inner.arrivals.utilization(now, usual, images, workers) <= max_utilization
                    && (pending.is_empty() || misses_after(ms) <= floor)
            })
            .map_or(cheapest.id, |(r, _)| r.id);
        Some((stitch, picked))
    }
}

/// Takes off the queue the deadline requests that not even the cheapest stitch can answer in
/// time any more: (job, ms left, ms the cheapest needs).
fn shed(inner: &mut Inner, now: Instant, model: Option<&LatencyModel>) -> Vec<(Job, f64, f64)> {
    let Some(model) = model else {
        return Vec::new();
    };
    let Some(cheapest) = model.cheapest() else {
        return Vec::new();
    };
    let mut refused = Vec::new();
    let mut kept = VecDeque::with_capacity(inner.jobs.len());
    for job in inner.jobs.drain(..) {
        if let Target::Deadline { due } = job.target {
            let left = due.saturating_duration_since(now).as_secs_f64() * 1e3;
            let fastest = model.refusal_ms(cheapest.id, job.size).unwrap_or(0.0);
            if fastest > left {
                inner.work_ms = (inner.work_ms - job.work_ms).max(0.0);
                refused.push((job, left, fastest));
                continue;
            }
        }
        kept.push_back(job);
    }
    inner.jobs = kept;
    refused
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::deadline::{DeadlineConfig, THREE_RUNGS, test_model};
    use snnet_core::burn::tensor::Device;

    /// Stitches 0, 1, 2 at 1, 2, 4 ms for one image, accuracy rising.
    fn model(config: DeadlineConfig) -> LatencyModel {
        test_model(&THREE_RUNGS, [], config)
    }

    /// A queue holding one deadline request due in `left_ms`, after arrivals `gap_ms` apart
    /// with deadlines of `left_ms`.
    fn queue(left_ms: f64, gap_ms: f64) -> (Queue, Instant) {
        let queue = Queue::new(ServerConfig::default());
        let now = Instant::now();
        let device = Device::default();
        let (reply, _answer) = oneshot::channel();
        let due = now
            .checked_add(Duration::from_secs_f64(left_ms / 1e3))
            .unwrap();
        {
            let mut inner = queue.lock();
            for k in (0..64u32).rev() {
                let at = now
                    .checked_sub(Duration::from_secs_f64(gap_ms * f64::from(k) / 1e3))
                    .unwrap();
                inner.arrivals.record(at, Some(left_ms));
            }
            inner.jobs.push_back(Job {
                images: Tensor::<4>::zeros([1, 1, 2, 2], &device),
                size: 1,
                target: Target::Deadline { due },
                queued: now,
                work_ms: 1.0,
                reply,
            });
        }
        (queue, now)
    }

    fn chosen(queue: &Queue, now: Instant, model: &LatencyModel) -> StitchId {
        let inner = queue.lock();
        queue.plan_deadline_batch(&inner, now, model).unwrap().0
    }

    #[test]
    fn calm_arrivals_get_the_most_accurate_stitch_in_time() {
        let m = model(DeadlineConfig::default());
        // One arrival every 20 ms: the large stitch (4 ms) keeps up easily.
        let (q, now) = queue(10.0, 20.0);
        assert_eq!(chosen(&q, now, &m), StitchId(2));
        // Its deadline leaves 3 ms: the middle one.
        let (q, now) = queue(3.0, 20.0);
        assert_eq!(chosen(&q, now, &m), StitchId(1));
    }

    #[test]
    fn a_burst_gets_the_stitch_that_keeps_up() {
        // One arrival every 2.5 ms: the large stitch (4 ms an image) would need 160 % of the
        // worker, the middle one 80 %, under the 90 % limit.
        let m = model(DeadlineConfig::default());
        let (q, now) = queue(10.0, 2.5);
        assert_eq!(chosen(&q, now, &m), StitchId(1));
        // Without the utilization limit, the arrivals predicted meanwhile still make the
        // large stitch cost misses that the cheapest would not: with 5 ms deadlines and one
        // arrival every 1.1 ms, the three that arrive during its 4 ms would wait for a
        // 3-image batch ending at 7 ms, after the first is due (6.1 ms). The middle one
        // leaves them time.
        let m = model(DeadlineConfig {
            max_utilization: 100.0,
            ..DeadlineConfig::default()
        });
        let (q, now) = queue(5.0, 1.1);
        assert_eq!(chosen(&q, now, &m), StitchId(1));
        // With nothing arriving, the large one fits the same deadline.
        let (q, now) = queue(5.0, 1000.0);
        assert_eq!(chosen(&q, now, &m), StitchId(2));
    }
}
