//! Refusals steered by lateness ([`RefusalFeedback`]): the share of completions the refusals'
//! tail leaves above it, loosened while answers come in time and tightened when they come late.

use serde::{Deserialize, Serialize};

/// How the refusals' share follows lateness; `None` in
/// [`DeadlineConfig::refusal_feedback`](super::DeadlineConfig::refusal_feedback) keeps it at
/// [`refusal_share`](super::DeadlineConfig::refusal_share).
///
/// That share fixes how far into the tail of this machine's completions the cheapest stitch
/// must still meet a request's deadline for the request to be answered rather than refused.
/// Too strict a tail refuses requests a plain server would have answered in time; too loose a
/// one answers late in cascades under a burst (docs/RUNTIME.md measured both). Which is right
/// depends on the machine and the moment, so with a feedback the share follows the answers
/// themselves, by the online quantile rule (Robbins–Monro) in log space:
///
/// ```text
/// on time: share *= exp(gain * late_target)
/// late:    share *= exp(-gain * (1 - late_target))
/// ```
///
/// The share stands still where `late_target` of the deadline answers are late, and stays
/// within `late_share ..= max_share`: refusals never stricter than the stitch choice's own tail
/// ([`DeadlineConfig::late_share`](super::DeadlineConfig::late_share)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefusalFeedback {
    /// The share of deadline answers allowed late, as the server's clock sees them, against
    /// the deadline the request carries (0.5 % by default; a client that sends its own
    /// deadline minus a margin for the network, as `load-generator` does, sees fewer).
    pub late_target: f64,
    /// The loosest share the refusals may rest on (0.5 by default: the median).
    pub max_share: f64,
    /// The step in log space of one late answer (0.1 by default: one late answer takes the
    /// share down by about 10 %, 1,400 on-time answers at a 0.5 % target double it).
    pub gain: f64,
}

impl Default for RefusalFeedback {
    fn default() -> Self {
        RefusalFeedback {
            late_target: 0.005,
            max_share: 0.5,
            gain: 0.1,
        }
    }
}

impl RefusalFeedback {
    /// Whether the values are usable: `0 < late_target < 1`, `0 < max_share < 1`,
    /// `0 < gain <= 1`, all finite.
    pub(super) fn is_valid(&self) -> bool {
        self.late_target > 0.0
            && self.late_target < 1.0
            && self.max_share > 0.0
            && self.max_share < 1.0
            && self.gain > 0.0
            && self.gain <= 1.0
    }
}

/// The share the refusals rest on now.
#[derive(Debug, Clone, Copy)]
pub(super) struct RefusalShare {
    share: f64,
    min: f64,
    max: f64,
    feedback: Option<RefusalFeedback>,
}

impl RefusalShare {
    /// Starts at `start` (the configured share), kept within `min..=max_share`; with no
    /// feedback it stays at `start`.
    pub(super) fn new(start: f64, min: f64, feedback: Option<RefusalFeedback>) -> Self {
        let max = feedback.map_or(start, |f| f.max_share.max(min));
        let min = min.min(max);
        RefusalShare {
            share: start.clamp(min, max),
            min,
            max,
            feedback,
        }
    }

    /// The share now.
    pub(super) fn get(&self) -> f64 {
        self.share
    }

    /// A deadline answer went out, on time or late.
    pub(super) fn observe(&mut self, on_time: bool) {
        let Some(f) = self.feedback else {
            return;
        };
        let step = if on_time {
            f.gain * f.late_target
        } else {
            -f.gain * (1.0 - f.late_target)
        };
        self.share = (self.share * step.exp()).clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without feedback the share never moves.
    #[test]
    fn without_feedback_the_share_is_fixed() {
        let mut s = RefusalShare::new(0.1, 0.01, None);
        for k in 0..1000 {
            s.observe(k % 2 == 0);
        }
        assert_eq!(s.get(), 0.1);
    }

    /// On-time answers loosen the share up to its cap, late ones tighten it down to the
    /// stitch choice's share; in between it settles where `late_target` of the answers are
    /// late.
    #[test]
    fn the_share_follows_lateness_within_its_bounds() {
        let f = RefusalFeedback::default();
        let mut s = RefusalShare::new(0.1, 0.01, Some(f));
        for _ in 0..20_000 {
            s.observe(true);
        }
        assert_eq!(s.get(), f.max_share);
        // About 7 late answers halve it: a cascade is stopped within a few dozen answers.
        for _ in 0..7 {
            s.observe(false);
        }
        assert!((0.22..0.27).contains(&s.get()), "{}", s.get());
        for _ in 0..1000 {
            s.observe(false);
        }
        assert_eq!(s.get(), 0.01);
        // One late answer in 200 (the target): the share stands still, up to one step.
        for _ in 0..2_000 {
            s.observe(true);
        }
        let start = s.get();
        assert!(start > 0.01 && start < f.max_share, "{start}");
        for k in 0..20_000 {
            s.observe(k % 200 != 0);
        }
        let ratio = s.get() / start;
        assert!((0.85..1.15).contains(&ratio), "{ratio}");
        // Twice the target: it falls to the floor; a tenth of it: it rises to the cap.
        for k in 0..20_000 {
            s.observe(k % 100 != 99);
        }
        assert_eq!(s.get(), 0.01);
        for k in 0..200_000 {
            s.observe(k % 2_000 != 0);
        }
        assert_eq!(s.get(), f.max_share);
    }

    /// Bad values are caught by `is_valid`.
    #[test]
    fn bad_values_are_invalid() {
        assert!(RefusalFeedback::default().is_valid());
        for bad in [0.0, 1.0, -0.1, f64::NAN, f64::INFINITY] {
            for f in [
                RefusalFeedback {
                    late_target: bad,
                    ..RefusalFeedback::default()
                },
                RefusalFeedback {
                    max_share: bad,
                    ..RefusalFeedback::default()
                },
                RefusalFeedback {
                    gain: if bad == 1.0 { 1.5 } else { bad },
                    ..RefusalFeedback::default()
                },
            ] {
                assert!(!f.is_valid(), "{f:?}");
            }
        }
    }
}
