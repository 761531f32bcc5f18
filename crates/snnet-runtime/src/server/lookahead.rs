//! What the queue expects next: the arrival rate measured over the last requests, the
//! requests it predicts from it, and a simulation of how the queued and predicted requests
//! would be served, for the batcher to see what a slower stitch costs the requests after it.
//!
//! A stitch chosen for one batch delays every request behind it. Counting only the requests
//! already queued misses the ones about to arrive: in a burst the queue is short at the moment
//! a batch is formed, so a slow, accurate stitch looks free, and the backlog it leaves grows
//! with every batch until requests are refused. With the arrivals predicted from the measured
//! rate, a stitch is chosen only when the cheapest stitch could still serve what arrives
//! meanwhile in time ([`misses`]), and only when the server keeps up with the arrival rate at
//! that stitch's cost per image ([`Arrivals::utilization`]).

use std::collections::VecDeque;
use std::time::Instant;

/// Arrivals the rate is measured over.
const WINDOW: usize = 64;
/// Requests predicted at most.
const MAX_PREDICTED: usize = 64;
/// How far ahead requests are predicted, in deadlines: a slow batch's delay takes a while to
/// drain when the cheapest stitch is busy too, and its misses come late.
const HORIZON_DEADLINES: f64 = 4.0;
/// The weight of a new deadline in the running mean of deadline lengths.
const DEADLINE_GAIN: f64 = 0.125;

/// A request the simulation serves: queued (arriving at 0) or predicted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pending {
    /// When it arrives, in milliseconds from now (0 for a queued one).
    pub(super) arrive_ms: f64,
    /// When it is due, in milliseconds from now.
    pub(super) due_ms: f64,
    /// Its images.
    pub(super) size: usize,
}

/// The recent arrivals: their rate and the length of their deadlines.
#[derive(Debug, Default)]
pub(super) struct Arrivals {
    times: VecDeque<Instant>,
    /// Running mean of the deadlines of arriving deadline requests, in milliseconds.
    deadline_ms: Option<f64>,
}

impl Arrivals {
    /// Records a request arriving at `now` (admitted or not: both are load), with its
    /// deadline in milliseconds if it has one.
    pub(super) fn record(&mut self, now: Instant, deadline_ms: Option<f64>) {
        if self.times.len() >= WINDOW {
            self.times.pop_front();
        }
        self.times.push_back(now);
        if let Some(d) = deadline_ms.filter(|d| d.is_finite() && *d > 0.0) {
            self.deadline_ms = Some(match self.deadline_ms {
                Some(mean) => mean + DEADLINE_GAIN * (d - mean),
                None => d,
            });
        }
    }

    /// Requests per millisecond over the last arrivals up to `now` (0 with fewer than two):
    /// falls as soon as arrivals stop, since the window's age grows.
    pub(super) fn rate_per_ms(&self, now: Instant) -> f64 {
        let (Some(first), n) = (self.times.front(), self.times.len()) else {
            return 0.0;
        };
        if n < 2 {
            return 0.0;
        }
        let span_ms = now.saturating_duration_since(*first).as_secs_f64() * 1e3;
        if span_ms <= 0.0 {
            return 0.0;
        }
        n as f64 / span_ms
    }

    /// The fraction of the workers' time that serving every arrival with batches of `batch`
    /// images each taking `batch_ms` would take: above 1 the queue grows without bound.
    pub(super) fn utilization(
        &self,
        now: Instant,
        batch_ms: f64,
        batch: usize,
        workers: usize,
    ) -> f64 {
        let per_image = batch_ms / batch.max(1) as f64;
        self.rate_per_ms(now) * per_image / workers.max(1) as f64
    }

    /// The deadline requests predicted to arrive within a few deadlines from `now` (at most
    /// 64), at the measured rate, each with the running mean deadline and one image.
    pub(super) fn predicted(&self, now: Instant) -> Vec<Pending> {
        let rate = self.rate_per_ms(now);
        let Some(deadline) = self.deadline_ms else {
            return Vec::new();
        };
        if rate <= 0.0 || !rate.is_finite() {
            return Vec::new();
        }
        let gap = 1.0 / rate;
        (1..=MAX_PREDICTED)
            .map(|k| k as f64 * gap)
            .take_while(|t| *t <= HORIZON_DEADLINES * deadline)
            .map(|arrive_ms| Pending {
                arrive_ms,
                due_ms: arrive_ms + deadline,
                size: 1,
            })
            .collect()
    }
}

/// How many of `pending` (ordered as the queue serves them: queued ones earliest deadline
/// first, then predicted ones by arrival) would miss their deadline if every worker served
/// them, as soon as it is free (`slots`: when each is free, in milliseconds from now), in
/// batches of what has arrived by then, up to `max_batch` images, each batch taking
/// `cost(images)` milliseconds.
pub(super) fn misses(
    slots: &[f64],
    pending: &[Pending],
    max_batch: usize,
    cost: impl Fn(usize) -> f64,
) -> usize {
    let mut slots = slots.to_vec();
    if slots.is_empty() {
        slots.push(0.0);
    }
    let mut missed = 0usize;
    let mut next = 0usize;
    while let Some(first) = pending.get(next) {
        let Some((slot, free)) = slots
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        let start = free.max(first.arrive_ms);
        let mut size = 0usize;
        let mut end_index = next;
        while let Some(p) = pending.get(end_index) {
            let grown = size.saturating_add(p.size);
            let taken = end_index > next;
            if p.arrive_ms > start || (taken && grown > max_batch) {
                break;
            }
            size = grown;
            end_index = end_index.saturating_add(1);
        }
        let end = start + cost(size);
        missed = missed.saturating_add(
            pending
                .get(next..end_index)
                .map_or(0, |batch| batch.iter().filter(|p| p.due_ms < end).count()),
        );
        if let Some(s) = slots.get_mut(slot) {
            *s = end;
        }
        next = end_index;
    }
    missed
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn queued(due_ms: f64) -> Pending {
        Pending {
            arrive_ms: 0.0,
            due_ms,
            size: 1,
        }
    }

    #[test]
    fn measures_the_rate_and_lets_it_fall_when_arrivals_stop() {
        let start = Instant::now();
        let mut a = Arrivals::default();
        assert_eq!(a.rate_per_ms(start), 0.0);
        for i in 0..100u64 {
            a.record(start + Duration::from_micros(500 * i), Some(8.0));
        }
        // 64 arrivals 0.5 ms apart: 2 per ms.
        let now = start + Duration::from_micros(500 * 99);
        let rate = a.rate_per_ms(now);
        assert!((rate - 64.0 / 31.5).abs() < 1e-9, "{rate}");
        // A second later, the same window is old: the rate has fallen.
        assert!(a.rate_per_ms(now + Duration::from_secs(1)) < 0.07);
        // Four deadlines (32 ms) hold 65 arrivals at ~2 per ms: 64 are predicted.
        let p = a.predicted(now);
        assert_eq!(p.len(), 64);
        assert!((p[0].due_ms - p[0].arrive_ms - 8.0).abs() < 1e-9);
        // Serving each image in 0.4 ms on one worker takes ~80% of its time.
        let u = a.utilization(now, 1.6, 4, 1);
        assert!((u - 0.4 * 64.0 / 31.5).abs() < 1e-9, "{u}");
    }

    #[test]
    fn no_deadline_requests_predict_nothing() {
        let now = Instant::now();
        let mut a = Arrivals::default();
        a.record(now, None);
        a.record(now, None);
        assert!(a.predicted(now + Duration::from_millis(1)).is_empty());
    }

    #[test]
    fn simulates_batches_of_what_has_arrived() {
        // One worker free at 1 ms, batches cost 1 ms + 0.5 ms an image, up to 2 images.
        let cost = |n: usize| 1.0 + 0.5 * n as f64;
        // Two queued requests due at 3 ms: one batch 1..3 ms, both in time.
        assert_eq!(misses(&[1.0], &[queued(3.0), queued(3.0)], 2, cost), 0);
        // A third queued one waits for the next batch: 3..4.5 ms, due at 4 ms: missed.
        assert_eq!(
            misses(&[1.0], &[queued(3.0), queued(3.0), queued(4.0)], 2, cost),
            1
        );
        // Two workers: it runs at once beside them.
        assert_eq!(
            misses(
                &[1.0, 0.0],
                &[queued(3.0), queued(3.0), queued(4.0)],
                2,
                cost
            ),
            0
        );
        // A request that arrives later starts when it arrives, not before.
        let late = Pending {
            arrive_ms: 10.0,
            due_ms: 11.4,
            size: 1,
        };
        assert_eq!(misses(&[1.0], &[late], 2, cost), 1);
        let roomy = Pending {
            due_ms: 11.5,
            ..late
        };
        assert_eq!(misses(&[1.0], &[roomy], 2, cost), 0);
    }

    #[test]
    fn a_burst_makes_a_slow_first_batch_cost_misses() {
        // The cheapest serves 1 image in 1 ms, up to 8 in 2 ms; requests arrive every 0.5 ms
        // with 4 ms deadlines. After a first batch ending at 1 ms, the cheapest keeps up;
        // after one ending at 5 ms, the backlog makes later requests miss.
        let cost = |n: usize| 1.0 + n as f64 / 8.0;
        let arrivals: Vec<Pending> = (1..=16)
            .map(|k| Pending {
                arrive_ms: k as f64 * 0.5,
                due_ms: k as f64 * 0.5 + 4.0,
                size: 1,
            })
            .collect();
        assert_eq!(misses(&[1.0], &arrivals, 8, cost), 0);
        assert!(misses(&[5.0], &arrivals, 8, cost) > 0);
    }
}
