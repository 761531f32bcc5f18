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
use super::batch_pick::{self, Candidate};
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
    /// The batch's expected completion from `dequeued`, in milliseconds.
    pub(super) expected_ms: Option<f64>,
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
    /// Its expected completion from `dequeued`, in milliseconds (with a latency profile).
    pub(super) expected_ms: Option<f64>,
    /// The slot it holds in [`Queue::running`]'s accounting.
    pub(super) ticket: u64,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: VecDeque<Job>,
    work_ms: f64,
    /// Batches running: (ticket, predicted end of the forward).
    running: Vec<(u64, Instant)>,
    next_ticket: u64,
    closed: bool,
    /// Every request that asked to join, admitted or not.
    arrivals: Arrivals,
}

/// Why a queued deadline request is refused.
#[derive(Debug, Clone, Copy)]
enum Unreachable {
    /// Not even the cheapest stitch alone answers it in the time left.
    Alone { left: f64, fastest: f64 },
    /// The next batch answers more requests in time without it, and no other worker frees
    /// up early enough: `busy` ms until one could start it.
    Busy { left: f64, busy: f64 },
}

impl Unreachable {
    /// How long a client should wait before trying again, in ms.
    fn retry_ms(self) -> f64 {
        match self {
            Unreachable::Alone { fastest, .. } => fastest,
            Unreachable::Busy { busy, .. } => busy,
        }
    }
}

/// A deadline batch planned from the queue.
#[derive(Debug)]
struct DeadlinePlan {
    stitch: StitchId,
    /// Queue positions of its requests.
    picked: Vec<usize>,
    /// Queue positions of requests too urgent for it that no worker can answer in time.
    doomed: Vec<(usize, Unreachable)>,
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

    /// The predicted time until a worker frees up, in ms (0 with one idle).
    fn slot_wait_ms(&self, inner: &Inner, now: Instant) -> f64 {
        if inner.running.len() < self.config.workers.max(1) {
            return 0.0;
        }
        inner
            .running
            .iter()
            .map(|(_, end)| end.saturating_duration_since(now).as_secs_f64() * 1e3)
            .fold(f64::INFINITY, f64::min)
    }

    /// The predicted time until a request joining now would be taken off the queue, in ms.
    fn drain_ms(&self, inner: &Inner, now: Instant) -> f64 {
        self.slot_wait_ms(inner, now) + inner.work_ms / self.config.workers.max(1) as f64
    }

    /// For a deadline request of `size` images joining now, once a worker is free: the
    /// predicted time the requests ahead of it take, and the time to answer the batch it
    /// joins, both at the cheapest stitch as admission predicts it
    /// ([`LatencyModel::admission_ms`]), in ms. The deadline requests queued fill batches
    /// of `max_batch` images before it (the workers taking one each), and the requests pinned
    /// to a stitch add their predicted work.
    fn join_ms(&self, inner: &Inner, model: &LatencyModel, size: usize) -> (f64, f64) {
        let Some(cheapest) = model.cheapest() else {
            return (0.0, 0.0);
        };
        let cost = |b: usize| model.admission_ms(cheapest.id, b).unwrap_or(f64::INFINITY);
        let (mut images, mut pinned_ms) = (0usize, 0.0);
        for job in &inner.jobs {
            match job.target {
                Target::Deadline { .. } => images = images.saturating_add(job.size),
                Target::Stitch(_) => pinned_ms += job.work_ms,
            }
        }
        let workers = self.config.workers.max(1);
        let max_batch = self.config.max_batch.max(1);
        if size > max_batch {
            // It runs alone, after the queued batches.
            let rounds = images
                .checked_div(max_batch)
                .map_or(0, |full| {
                    full.saturating_add(usize::from(images.checked_rem(max_batch).unwrap_or(0) > 0))
                })
                .checked_div(workers)
                .unwrap_or(0);
            return (
                pinned_ms / workers as f64 + rounds as f64 * cost(max_batch),
                cost(size),
            );
        }
        let total = images.saturating_add(size);
        let before = total.saturating_sub(1).checked_div(max_batch).unwrap_or(0);
        let own = total.saturating_sub(before.saturating_mul(max_batch));
        (
            pinned_ms / workers as f64
                + before.checked_div(workers).unwrap_or(0) as f64 * cost(max_batch),
            cost(own),
        )
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
            let slot_wait = self.slot_wait_ms(&inner, now);
            let (ahead, answered) = self.join_ms(&inner, model, job.size);
            if slot_wait + ahead + answered > left {
                return Err(Refusal::DeadlineUnreachable.error(
                    format!(
                        "no stitch can answer within the deadline: {left:.2} ms left, a worker frees up in {slot_wait:.2} ms, the requests ahead take {ahead:.2} ms and the fastest stitch needs {answered:.2} ms for the batch this one would join"
                    ),
                    Some((slot_wait + ahead) / 1e3),
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
                let mut refused = shed(&mut inner, now, model);
                let batch = self.form(&mut inner, now, model, &mut refused);
                (batch, refused, inner.closed)
            };
            for (job, why) in refused {
                let message = match why {
                    Unreachable::Alone { left, fastest } => format!(
                        "no stitch can answer within the deadline any more: {left:.2} ms left after queueing, the fastest stitch needs {fastest:.2} ms"
                    ),
                    Unreachable::Busy { left, busy } => format!(
                        "no stitch can answer within the deadline any more: {left:.2} ms left after queueing, and the workers are busy for {busy:.2} ms with requests they can answer in time"
                    ),
                };
                let _ = job.reply.send(Err(
                    Refusal::DeadlineUnreachable.error(message, Some(why.retry_ms() / 1e3))
                ));
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
    /// Requests it finds no worker can answer in time join `refused`.
    fn form(
        &self,
        inner: &mut Inner,
        now: Instant,
        model: Option<&LatencyModel>,
        refused: &mut Vec<(Job, Unreachable)>,
    ) -> Option<Batch> {
        let front = inner.jobs.front()?.target;
        let max_batch = self.config.max_batch;
        let (stitch, picked, doomed) = match (front, model) {
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
                (stitch, picked, Vec::new())
            }
            (Target::Deadline { .. }, Some(model)) => {
                let plan = self.plan_deadline_batch(inner, now, model)?;
                (plan.stitch, plan.picked, plan.doomed)
            }
            // Deadline requests are refused at admission without a model; none can be here.
            (Target::Deadline { .. }, None) => return None,
        };
        // Remove from the back so that the positions stay valid; the batch keeps its order.
        let mut removals: Vec<(usize, Result<usize, Unreachable>)> = picked
            .iter()
            .enumerate()
            .map(|(k, &i)| (i, Ok(k)))
            .chain(doomed.iter().map(|&(i, why)| (i, Err(why))))
            .collect();
        removals.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut taken: Vec<(usize, Job)> = Vec::with_capacity(picked.len());
        for (i, slot) in removals {
            let Some(job) = inner.jobs.remove(i) else {
                continue;
            };
            inner.work_ms = (inner.work_ms - job.work_ms).max(0.0);
            match slot {
                Ok(k) => taken.push((k, job)),
                Err(why) => refused.push((job, why)),
            }
        }
        taken.sort_by_key(|(k, _)| *k);
        let jobs: Vec<Job> = taken.into_iter().map(|(_, job)| job).collect();
        if inner.jobs.is_empty() {
            inner.work_ms = 0.0;
        }
        let images = jobs
            .iter()
            .map(|j| j.size)
            .fold(0usize, usize::saturating_add);
        let expected_ms = model.and_then(|m| m.expected_ms(stitch, images));
        // The worker is free again once the forward is done (the answers go out after).
        let busy = model.and_then(|m| m.busy_ms(stitch, images)).unwrap_or(0.0);
        let ticket = inner.next_ticket;
        inner.next_ticket = inner.next_ticket.wrapping_add(1);
        let end = now
            .checked_add(Duration::from_secs_f64(busy.max(0.0) / 1e3))
            .unwrap_or(now);
        inner.running.push((ticket, end));
        Some(Batch {
            stitch,
            jobs,
            images,
            dequeued: now,
            expected_ms,
            ticket,
        })
    }

    /// The deadline batch (indices into the queue) and its stitch.
    fn plan_deadline_batch(
        &self,
        inner: &Inner,
        now: Instant,
        model: &LatencyModel,
    ) -> Option<DeadlinePlan> {
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
        let max_batch = self.config.max_batch;
        // The pick and the simulation below ask for these many times: read the model once.
        let cheapest_ms = per_batch(max_batch, |b| {
            model.refusal_ms(cheapest.id, b).unwrap_or(f64::INFINITY)
        });
        // The batch that answers the most requests in time at the cheapest stitch.
        let candidates: Vec<Candidate> = edf
            .iter()
            .map(|&(index, left_ms, size)| Candidate {
                index,
                left_ms,
                size,
            })
            .collect();
        // At the tail of this machine's completions (the expectation plus the margin learned
        // against it, at `refusal_share`) when that still answers someone: a request the batch
        // would likely answer late is refused now rather than answered late.
        let tail = 1.0 + model.refusal_margin();
        let tail_ms = per_batch(max_batch, |b| {
            model
                .expected_ms(cheapest.id, b)
                .map_or(f64::INFINITY, |ms| ms * tail)
        });
        // The standard the batch was picked at: the tail when it answers someone, else the
        // likely completion.
        let (chosen, standard): (_, &dyn Fn(usize) -> f64) =
            match batch_pick::pick(&candidates, max_batch, &tail_ms) {
                Some(chosen) => (chosen, &tail_ms),
                None => (
                    batch_pick::pick(&candidates, max_batch, &cheapest_ms)?,
                    &cheapest_ms,
                ),
            };
        // The worker is free again once the batch's forward is done: a request left out can
        // still be answered by the next batch if it starts then and answers it at the same
        // standard. Only the requests that cannot are refused now; the others stay queued and
        // the next batch decides, when this one's actual cost is known.
        let free_ms = model
            .busy_ms(cheapest.id, chosen.images)
            .unwrap_or(chosen.completion_ms);
        let mut picked = Vec::with_capacity(chosen.taken.len());
        let mut min_left = f64::INFINITY;
        let mut taken = chosen.taken.iter().copied().peekable();
        let workers = self.config.workers.max(1);
        // Other workers: when each frees up, from now.
        let others: Vec<f64> = (1..workers)
            .map(|w| {
                inner
                    .running
                    .get(w.saturating_sub(1))
                    .map_or(0.0, |(_, end)| left_ms(*end))
            })
            .collect();
        let mut rest = Vec::new();
        let mut doomed = Vec::new();
        for (k, &(i, left, size)) in edf.iter().enumerate() {
            if taken.next_if_eq(&k).is_some() {
                picked.push(i);
                min_left = min_left.min(left);
            } else if left < free_ms + standard(size)
                && !others.iter().any(|free| free + cheapest_ms(size) <= left)
            {
                // Too urgent for this batch, and no other worker frees up in time.
                doomed.push((
                    i,
                    Unreachable::Busy {
                        left,
                        busy: chosen.completion_ms,
                    },
                ));
            } else {
                rest.push((left, size));
            }
        }
        let images = chosen.images;
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
        let misses_after = |first_ms: f64| {
            let mut slots = Vec::with_capacity(workers);
            slots.push(first_ms);
            slots.extend_from_slice(&others);
            lookahead::misses(&slots, &pending, self.config.max_batch, &cheapest_ms)
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
        Some(DeadlinePlan {
            stitch,
            picked,
            doomed,
        })
    }
}

/// `f` of batches of 1 to `max_batch` images computed once, larger batches on demand.
fn per_batch(max_batch: usize, f: impl Fn(usize) -> f64) -> impl Fn(usize) -> f64 {
    let table: Vec<f64> = (1..=max_batch).map(&f).collect();
    move |b| match b.checked_sub(1).and_then(|i| table.get(i)) {
        Some(&ms) => ms,
        None => f(b),
    }
}

/// Takes off the queue the deadline requests that not even the cheapest stitch can answer in
/// time any more.
fn shed(inner: &mut Inner, now: Instant, model: Option<&LatencyModel>) -> Vec<(Job, Unreachable)> {
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
                refused.push((job, Unreachable::Alone { left, fastest }));
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
    use crate::deadline::{DeadlineConfig, THREE_RUNGS, one_in_twenty_late, test_model};
    use snnet_core::burn::tensor::Device;

    /// Stitches 0, 1, 2 at 1, 2, 4 ms for one image, accuracy rising.
    fn model(config: DeadlineConfig) -> LatencyModel {
        test_model(&THREE_RUNGS, [], config)
    }

    /// A queue holding one deadline request due in `left_ms`, after arrivals `gap_ms` apart
    /// with deadlines of `left_ms`.
    fn queue(left_ms: f64, gap_ms: f64) -> (Queue, Instant) {
        let (queue, now) = queue_of(&[left_ms]);
        {
            let mut inner = queue.lock();
            for k in (0..64u32).rev() {
                let at = now
                    .checked_sub(Duration::from_secs_f64(gap_ms * f64::from(k) / 1e3))
                    .unwrap();
                inner.arrivals.record(at, Some(left_ms));
            }
        }
        (queue, now)
    }

    fn chosen(queue: &Queue, now: Instant, model: &LatencyModel) -> StitchId {
        let inner = queue.lock();
        queue
            .plan_deadline_batch(&inner, now, model)
            .unwrap()
            .stitch
    }

    /// A queue holding deadline requests due in `lefts` ms, in that order.
    fn queue_of(lefts: &[f64]) -> (Queue, Instant) {
        let queue = Queue::new(ServerConfig::default());
        let now = Instant::now();
        let device = Device::default();
        {
            let mut inner = queue.lock();
            for &left in lefts {
                let (reply, _answer) = oneshot::channel();
                let due = now
                    .checked_add(Duration::from_secs_f64(left / 1e3))
                    .unwrap();
                inner.jobs.push_back(Job {
                    images: Tensor::<4>::zeros([1, 1, 2, 2], &device),
                    size: 1,
                    target: Target::Deadline { due },
                    queued: now,
                    work_ms: 1.0,
                    reply,
                });
            }
        }
        (queue, now)
    }

    #[test]
    fn an_urgent_request_does_not_keep_a_burst_batch_small() {
        // The cheapest stitch takes 1 ms an image. The first request can only be answered
        // alone, and then three of the four behind it; a batch of those four answers four,
        // and with one worker nothing can answer the first after that batch: it is refused
        // now, not left to miss.
        let m = model(DeadlineConfig::default());
        let (q, now, batch, refused) = formed(&m, &[1.5, 4.5, 4.5, 4.5, 4.5]);
        assert_eq!(
            (batch.stitch, batch.images, batch.jobs.len()),
            (StitchId(0), 4, 4)
        );
        assert!(batch.jobs.iter().all(
            |j| matches!(j.target, Target::Deadline { due } if due > now + Duration::from_millis(4))
        ));
        assert_eq!(refused.len(), 1);
        assert!(matches!(refused[0].1, Unreachable::Busy { left, .. } if left < 2.0));
        assert_eq!(q.depth(), 0);
        // With 5 ms for the four, the first alone and then the four answer all five.
        let (q, _, batch, refused) = formed(&m, &[1.5, 5.0, 5.0, 5.0, 5.0]);
        assert_eq!((batch.images, refused.len(), q.depth()), (1, 0, 4));
    }

    #[test]
    fn a_request_the_next_batch_can_answer_is_not_refused_for_this_ones_tail() {
        // Completions have taken twice what was expected: the batch is picked at twice the
        // expectation (the cheapest stitch, 1 ms an image: a batch of 8 at 16 ms).
        let m = model(DeadlineConfig::default());
        for _ in 0..64 {
            m.observe_completion(4.0, Duration::from_millis(8));
        }
        assert!((m.late_margin() - 1.0).abs() < 1e-9);
        // Sixteen requests due in 20 ms fill the batch; the one due in 11 ms does not fit it
        // at its tail (16 ms). The worker is expected to be free after the batch's forward
        // (8 ms), and a batch of one then answers it at its own tail (2 ms) in time: it stays
        // queued for the next batch to decide, instead of being refused now.
        let mut lefts = vec![11.0];
        lefts.extend([20.0; 16]);
        let (q, _, batch, refused) = formed(&m, &lefts);
        assert_eq!(batch.images, 8);
        assert!(
            refused.is_empty(),
            "{:?}",
            refused.iter().map(|r| r.1).collect::<Vec<_>>()
        );
        assert_eq!(q.depth(), 9);
        // Due in 9 ms it cannot make it even so: refused now.
        let mut lefts = vec![9.0];
        lefts.extend([20.0; 16]);
        let (q, _, _, refused) = formed(&m, &lefts);
        assert_eq!(refused.len(), 1);
        assert!(matches!(refused[0].1, Unreachable::Busy { left, .. } if left < 9.5));
        assert_eq!(q.depth(), 8);
    }

    #[test]
    fn a_request_is_refused_on_the_refusal_share_s_tail() {
        // One completion in twenty took twice what was expected: refusals at the 1 % tail
        // (the late share's) have the margin at its cap, and the request due in 9 ms is
        // refused as above.
        let mut lefts = vec![9.0];
        lefts.extend([20.0; 16]);
        let m = model(DeadlineConfig {
            refusal_share: 0.01,
            ..DeadlineConfig::default()
        });
        one_in_twenty_late(&m, 512);
        let (_, _, _, refused) = formed(&m, &lefts);
        assert_eq!(refused.len(), 1);
        // At the default 10 % tail (the expectation here) the batch of eight takes it,
        // answered by the cheapest stitch, since the 1 % tail still rules out a slower one.
        let m = model(DeadlineConfig::default());
        one_in_twenty_late(&m, 512);
        assert!((m.late_margin() - 1.0).abs() < 1e-9);
        let (q, now, batch, refused) = formed(&m, &lefts);
        assert!(refused.is_empty());
        assert_eq!((batch.stitch, batch.images, q.depth()), (StitchId(0), 8, 9));
        assert!(batch.jobs.iter().any(
            |j| matches!(j.target, Target::Deadline { due } if due < now + Duration::from_millis(10))
        ));
    }

    /// The batch formed from a queue of deadline requests due in `lefts` ms, and the requests
    /// refused on the way.
    fn formed(m: &LatencyModel, lefts: &[f64]) -> (Queue, Instant, Batch, Vec<(Job, Unreachable)>) {
        let (q, now) = queue_of(lefts);
        let mut refused = Vec::new();
        let batch = {
            let mut inner = q.lock();
            q.form(&mut inner, now, Some(m), &mut refused).unwrap()
        };
        (q, now, batch, refused)
    }

    #[test]
    fn a_request_joining_a_burst_counts_the_batch_it_joins() {
        let m = model(DeadlineConfig::default());
        // Three queued: a fourth joins their batch of four images (4 ms).
        let (q, _) = queue_of(&[9.0, 9.0, 9.0]);
        let inner = q.lock();
        assert_eq!(q.join_ms(&inner, &m, 1), (0.0, 4.0));
        // Eight queued fill the first batch (8 ms): a ninth runs in the next, alone.
        drop(inner);
        let (q, _) = queue_of(&[9.0; 8]);
        let inner = q.lock();
        assert_eq!(q.join_ms(&inner, &m, 1), (8.0, 1.0));
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
