//! Counting a space's stitches before they are built, so that a space over
//! [`MAX_STITCHES`] is refused without being enumerated.

use crate::error::Result;
use crate::limits::MAX_STITCHES;
use crate::rules::PairRule;
use crate::stitch::Cut;
use crate::validate::limit;

/// Adds `more` stitches to the running count `total`.
///
/// # Errors
/// [`Error::LimitExceeded`] when the count goes over [`MAX_STITCHES`]; counting stops there, so
/// its value is a lower bound of the space's size.
pub(crate) fn count_stitches(total: &mut u128, more: u128) -> Result<()> {
    *total = total.saturating_add(more);
    if *total > MAX_STITCHES as u128 {
        return Err(limit(
            "number of stitches (at least)",
            *total,
            MAX_STITCHES,
            "MAX_STITCHES",
        ));
    }
    Ok(())
}

/// How many paths through `chain`'s rules `Builder::chains` (enumerate.rs) enumerates: sequences of one cut
/// per rule, each cut leaving its front anchor no earlier than the previous cut entered it
/// (`next.front ≥ prev.end`). Counted level by level over the cuts' end blocks, in time linear
/// in the cuts; saturates at `u128::MAX`.
pub(crate) fn chain_count(chain: &[&PairRule]) -> u128 {
    let Some((first, rest)) = chain.split_first() else {
        return 0;
    };
    let mut weights: Vec<u128> = vec![1; first.cuts.len()];
    let mut prev = first;
    for rule in rest {
        // at_most[e]: the paths so far whose last cut enters its end anchor at a block ≤ e.
        let last_end = prev.cuts.iter().map(|(c, _)| c.end).max().unwrap_or(0);
        let mut at_most = vec![0u128; last_end.saturating_add(1)];
        for ((cut, _), weight) in prev.cuts.iter().zip(&weights) {
            if let Some(slot) = at_most.get_mut(cut.end) {
                *slot = slot.saturating_add(*weight);
            }
        }
        let mut running = 0u128;
        for slot in &mut at_most {
            running = running.saturating_add(*slot);
            *slot = running;
        }
        weights = rule
            .cuts
            .iter()
            .map(|(cut, _)| at_most.get(cut.front.min(last_end)).copied().unwrap_or(0))
            .collect();
        prev = rule;
    }
    weights.iter().fold(0, |sum, w| sum.saturating_add(*w))
}

/// How many stitches `Builder::two_way` (enumerate.rs) builds for a pair with rules `sl` (small→large) and
/// `ls` (large→small), the large anchor being `d_l` blocks deep.
pub(crate) fn two_way_count(sl: &PairRule, ls: &PairRule, d_l: usize) -> u128 {
    let runs_end = |cut: &Cut| cut.end < d_l;
    let mut count = (sl.cuts.len() as u128).saturating_add(ls.cuts.len() as u128);
    for (first, _) in &ls.cuts {
        let n = sl
            .cuts
            .iter()
            .filter(|(c, _)| runs_end(c) && c.front >= first.end)
            .count();
        count = count.saturating_add(n as u128);
    }
    for (first, _) in &sl.cuts {
        let n = ls.cuts.iter().filter(|(c, _)| c.front >= first.end).count();
        count = count.saturating_add(n as u128);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_are_counted_without_enumerating() {
        let rule = |cuts: &[(usize, usize)]| PairRule {
            cuts: cuts.iter().map(|&(f, e)| (Cut::new(f, e), 0)).collect(),
            num_layers: 1,
        };
        let ab = rule(&[(0, 0), (0, 1), (1, 3), (2, 2)]);
        let bc = rule(&[(0, 5), (1, 1), (2, 0), (3, 3)]);
        // By hand: next.front >= prev.end.
        let expected = [(0, 0), (0, 1), (1, 3), (2, 2)]
            .iter()
            .map(|&(_, end)| [0, 1, 2, 3].iter().filter(|&&f| f >= end).count())
            .sum::<usize>();
        assert_eq!(chain_count(&[&ab, &bc]), expected as u128);
        assert_eq!(chain_count(&[&ab]), 4);
        assert_eq!(chain_count(&[]), 0);
        // Long chains saturate instead of overflowing.
        let wide = rule(&vec![(0, 0); 65_536]);
        let chain = vec![&wide; 12];
        assert_eq!(chain_count(&chain), u128::MAX);
    }
}
