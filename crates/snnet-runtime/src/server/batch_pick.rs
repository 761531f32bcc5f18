//! Which queued deadline requests a batch takes: as many as one batch can answer in time.
//!
//! A batch's cost grows more slowly than its size (a forward of eight images costs far less
//! than eight forwards of one), so under load the server keeps up only with full batches.
//! Growing a batch in deadline order until the *most urgent* request would miss stops at the
//! first request with little time left: the batch stays small, the server's throughput falls,
//! and the requests behind it miss too. [`pick`] instead looks at every batch size: for `b`
//! images the batch takes, in deadline order, the requests that a batch of `b` answers in
//! time, and the size that answers the most requests wins (ties to the smaller, faster
//! batch). A request too urgent for the chosen batch is one that no batch of that size could
//! have answered; the queue refuses it at once unless another worker can still take it.

/// A queued deadline request as [`pick`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Candidate {
    /// Its position in the queue.
    pub(super) index: usize,
    /// Milliseconds left until it is due.
    pub(super) left_ms: f64,
    /// Its images.
    pub(super) size: usize,
}

/// The chosen batch: its requests and its predicted completion.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pick {
    /// Positions in the candidate list (deadline order), ascending.
    pub(super) taken: Vec<usize>,
    /// Its images.
    pub(super) images: usize,
    /// The completion the choice rested on: `cost` of the batch size it was chosen at.
    pub(super) completion_ms: f64,
}

/// The batch answering the most of `candidates` (earliest deadline first) in time, when a
/// batch of `b` images completes `cost(b)` milliseconds after it starts; `None` when no
/// request can be answered in time. A request larger than `max_batch` runs alone.
pub(super) fn pick(
    candidates: &[Candidate],
    max_batch: usize,
    cost: impl Fn(usize) -> f64,
) -> Option<Pick> {
    let mut best: Option<Pick> = None;
    for b in 1..=max_batch.max(1) {
        let completion_ms = cost(b);
        let mut taken = Vec::new();
        let mut images = 0usize;
        for (k, c) in candidates.iter().enumerate() {
            if c.left_ms < completion_ms {
                continue;
            }
            let grown = images.saturating_add(c.size);
            if grown > b {
                // Smaller requests behind it may still fit.
                continue;
            }
            images = grown;
            taken.push(k);
            if images == b {
                break;
            }
        }
        if best.as_ref().is_none_or(|p| taken.len() > p.taken.len()) && !taken.is_empty() {
            best = Some(Pick {
                taken,
                images,
                completion_ms,
            });
        }
    }
    if best.is_some() {
        return best;
    }
    // A request larger than a batch runs alone if it can.
    let (k, c) = candidates
        .iter()
        .enumerate()
        .find(|(_, c)| c.size > max_batch && c.left_ms >= cost(c.size))?;
    Some(Pick {
        taken: vec![k],
        images: c.size,
        completion_ms: cost(c.size),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn candidates(lefts: &[f64]) -> Vec<Candidate> {
        lefts
            .iter()
            .enumerate()
            .map(|(index, &left_ms)| Candidate {
                index,
                left_ms,
                size: 1,
            })
            .collect()
    }

    /// 1 ms fixed plus 0.25 ms an image.
    fn cost(b: usize) -> f64 {
        1.0 + 0.25 * b as f64
    }

    #[test]
    fn an_urgent_request_does_not_keep_the_batch_small() {
        // The first can only be answered alone (1.25 ms); the five behind it by a batch of
        // five (2.25 ms): that batch answers more.
        let c = candidates(&[1.3, 3.0, 3.0, 3.0, 3.0, 3.0]);
        let p = pick(&c, 8, cost).unwrap();
        assert_eq!(p.taken, [1, 2, 3, 4, 5]);
        assert_eq!(p.images, 5);
        assert!((p.completion_ms - 2.25).abs() < 1e-12);
    }

    #[test]
    fn ties_go_to_the_smaller_batch_with_the_urgent_request() {
        // Alone, the first is answered (and the second after it); a batch of two would
        // answer only the second.
        let c = candidates(&[1.3, 3.0]);
        let p = pick(&c, 8, cost).unwrap();
        assert_eq!(p.taken, [0]);
        // Both fit a batch of two: it answers both.
        let c = candidates(&[1.6, 3.0]);
        assert_eq!(pick(&c, 8, cost).unwrap().taken, [0, 1]);
    }

    #[test]
    fn fills_up_to_the_largest_batch_in_deadline_order() {
        let c = candidates(&[9.0; 12]);
        let p = pick(&c, 8, cost).unwrap();
        assert_eq!(p.taken, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn nothing_in_time_picks_nothing_and_large_requests_run_alone() {
        assert_eq!(pick(&candidates(&[1.0, 0.5]), 8, cost), None);
        let big = [Candidate {
            index: 3,
            left_ms: 9.0,
            size: 12,
        }];
        let p = pick(&big, 8, cost).unwrap();
        assert_eq!((p.taken, p.images), (vec![0], 12));
        // Smaller requests fill the room a large one leaves.
        let mixed = [
            Candidate {
                index: 0,
                left_ms: 9.0,
                size: 3,
            },
            Candidate {
                index: 1,
                left_ms: 9.0,
                size: 6,
            },
            Candidate {
                index: 2,
                left_ms: 9.0,
                size: 2,
            },
        ];
        let p = pick(&mixed, 8, cost).unwrap();
        assert_eq!((p.taken, p.images), (vec![0, 2], 5));
    }
}
