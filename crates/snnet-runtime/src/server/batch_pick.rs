//! Which queued deadline requests a batch takes: as many as one batch can answer in time.
//!
//! A batch's cost grows more slowly than its size (a forward of eight images costs far less
//! than eight forwards of one), so under load the server keeps up only with full batches.
//! Growing a batch in deadline order until the *most urgent* request would miss stops at the
//! first request with little time left: the batch stays small, the server's throughput falls,
//! and the requests behind it miss too. [`pick`] instead looks at every batch size: for `b`
//! images the batch takes, in deadline order, the requests that a batch of `b` answers in
//! time, and the size that answers the most requests — in it and in the best batch after it —
//! wins. A request too urgent for the chosen batch can be answered neither by it nor after
//! it; the queue refuses it at once unless another worker can still take it.

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

/// The requests a batch of `b` images finishing `completion_ms` from now takes: in deadline
/// order, those it answers in time (`left_ms - shift_ms >= completion_ms`) while they fit,
/// skipping the positions in `skip`.
fn take(
    candidates: &[Candidate],
    b: usize,
    completion_ms: f64,
    shift_ms: f64,
    skip: &[usize],
) -> (Vec<usize>, usize) {
    let mut taken = Vec::new();
    let mut images = 0usize;
    for (k, c) in candidates.iter().enumerate() {
        if c.left_ms - shift_ms < completion_ms || skip.contains(&k) {
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
    (taken, images)
}

/// How many of the requests not in `skip` one batch starting `shift_ms` from now answers in
/// time at most.
fn most_in_one(
    candidates: &[Candidate],
    max_batch: usize,
    cost: &impl Fn(usize) -> f64,
    shift_ms: f64,
    skip: &[usize],
) -> usize {
    (1..=max_batch.max(1))
        .map(|b| take(candidates, b, cost(b), shift_ms, skip).0.len())
        .max()
        .unwrap_or(0)
}

/// The batch to run now for `candidates` (earliest deadline first), when a batch of `b`
/// images completes `cost(b)` milliseconds after it starts: the one that, followed by the
/// best next batch, answers the most of them in time (ties to the batch answering more now,
/// then to the smaller batch). Looking one batch ahead keeps a burst from trading two urgent
/// requests a small batch answers now for a larger batch: the small one first and the larger
/// one after may answer all of them. `None` when no request can be answered in time. A request
/// larger than `max_batch` runs alone.
pub(super) fn pick(
    candidates: &[Candidate],
    max_batch: usize,
    cost: impl Fn(usize) -> f64,
) -> Option<Pick> {
    let mut best: Option<(usize, Pick)> = None;
    for b in 1..=max_batch.max(1) {
        let completion_ms = cost(b);
        let (taken, images) = take(candidates, b, completion_ms, 0.0, &[]);
        if taken.is_empty() {
            continue;
        }
        let total = taken.len().saturating_add(most_in_one(
            candidates,
            max_batch,
            &cost,
            completion_ms,
            &taken,
        ));
        let better = best
            .as_ref()
            .is_none_or(|(t, p)| (total, taken.len()) > (*t, p.taken.len()));
        if better {
            best = Some((
                total,
                Pick {
                    taken,
                    images,
                    completion_ms,
                },
            ));
        }
    }
    if let Some((_, pick)) = best {
        return Some(pick);
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
    fn a_small_batch_first_when_the_next_one_answers_the_rest() {
        // Two urgent requests (3 ms) and four later ones (6 ms), at 1 ms + 0.6 ms an image: a
        // batch of six (4.6 ms) answers four, the urgent two miss. Three first (2.8 ms), then
        // three more (2.8 ms, ending at 5.6 ms) answer all six.
        let cost = |b: usize| 1.0 + 0.6 * b as f64;
        let c = candidates(&[3.0, 3.0, 6.0, 6.0, 6.0, 6.0]);
        let p = pick(&c, 8, cost).unwrap();
        assert_eq!(p.taken, [0, 1, 2]);
        // Without the second batch's room, the larger batch answers more.
        let c = candidates(&[3.0, 3.0, 4.7, 4.7, 4.7, 4.7]);
        assert_eq!(pick(&c, 8, cost).unwrap().taken, [2, 3, 4, 5]);
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
