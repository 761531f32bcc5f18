//! Whether a run shows SN-Net's result ([`ResultChecks`]): the acceptance criteria measured on
//! its evaluation table, with Spearman's rank correlation per anchor pair ([`PairTrend`]).

use serde::{Deserialize, Serialize};
use snnet_core::select::{CostKind, StitchRecord, StitchTable};

use crate::error::{Error, Result};

/// Spearman's rank correlation between FLOPs and top-1 across the stitches of one anchor pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairTrend {
    /// The front (smaller) anchor's index.
    pub front: usize,
    /// The end (larger) anchor's index.
    pub end: usize,
    /// Stitches of the pair.
    pub stitches: usize,
    /// Spearman's ρ of (FLOPs, top-1) over them (average ranks for ties); `None` for fewer
    /// than two stitches or a constant column.
    pub rho: Option<f64>,
}

/// Whether a run shows SN-Net's result: the stitches interpolate between the anchors. The
/// criteria (issue 11, docs/REPRODUCTION.md): the frontier runs from the smallest to the largest
/// anchor through ≥ 6 points; ≥ 80 % of the stitches lie in [acc(S) − 0.5, acc(L) + 0.5]; none
/// below acc(S) − 1.0; per anchor pair, top-1 rises with FLOPs (Spearman ρ ≥ 0.6); the budget
/// halfway between S and L selects a stitch more accurate than M.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultChecks {
    /// Points on the accuracy/FLOPs frontier.
    pub frontier_points: usize,
    /// Whether the frontier starts at the smallest anchor and ends at the largest.
    pub frontier_spans_anchors: bool,
    /// Stitches that are not anchors.
    pub stitches: usize,
    /// Of them, those with top-1 in [acc(S) − 0.5, acc(L) + 0.5].
    pub in_band: usize,
    /// Of them, those below acc(S) − 1.0.
    pub below_floor: usize,
    /// FLOPs–accuracy trend per anchor pair.
    pub pairs: Vec<PairTrend>,
    /// Whether the selection beats the middle anchor (`None` with fewer than three anchors).
    pub selected_beats_middle: Option<bool>,
}

impl ResultChecks {
    /// The checks of `table` (every stitch evaluated) for the SN-Net of `space`, whose anchors
    /// are its first stitches, with `selected` the budget's choice.
    ///
    /// # Errors
    /// [`Error::Select`] for a table without FLOPs; [`Error::NoSuchRow`] for a table
    /// without the anchors' rows; [`Error::InvalidConfig`] for a stitch without FLOPs.
    pub fn measure(
        table: &StitchTable,
        space: &snnet_core::StitchSpace,
        selected: &StitchRecord,
    ) -> Result<Self> {
        let anchors = space.anchors().len();
        let acc = |id: usize| table.get(id).map(|r| r.acc1).ok_or(Error::NoSuchRow { id });
        let (low, high) = (acc(0)?, acc(anchors - 1)?);
        let frontier: Vec<usize> = table
            .pareto(CostKind::Flops)?
            .iter()
            .map(|r| r.id.index())
            .collect();
        let others: Vec<&StitchRecord> = table.iter().filter(|r| r.id >= anchors).collect();
        let mut pairs: Vec<PairTrend> = Vec::new();
        let mut groups: std::collections::BTreeMap<(usize, usize), Vec<(f64, f64)>> =
            std::collections::BTreeMap::new();
        for r in &others {
            let stitch = space.get(r.id).map_err(snnet_core::Error::from)?;
            let (Some(&front), Some(&end)) = (stitch.anchors.first(), stitch.anchors.last()) else {
                continue;
            };
            let flops = r.flops.ok_or_else(|| Error::InvalidConfig {
                what: "evaluation table",
                reason: format!("stitch {} has no FLOPs", r.id),
            })?;
            groups
                .entry((front, end))
                .or_default()
                .push((flops as f64, r.acc1));
        }
        for ((front, end), points) in groups {
            pairs.push(PairTrend {
                front,
                end,
                stitches: points.len(),
                rho: spearman(&points),
            });
        }
        Ok(Self {
            frontier_points: frontier.len(),
            frontier_spans_anchors: frontier.first() == Some(&0)
                && frontier.last() == Some(&(anchors - 1)),
            stitches: others.len(),
            in_band: others
                .iter()
                .filter(|r| r.acc1 >= low - 0.5 && r.acc1 <= high + 0.5)
                .count(),
            below_floor: others.iter().filter(|r| r.acc1 < low - 1.0).count(),
            pairs,
            selected_beats_middle: (anchors >= 3)
                .then(|| acc(anchors / 2).map(|m| selected.acc1 > m))
                .transpose()?,
        })
    }

    /// The criteria that fail, as sentences (empty: the result holds).
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        if !self.frontier_spans_anchors || self.frontier_points < 6 {
            failed.push(format!(
                "the frontier has {} points{} (wanted ≥ 6, from S to L)",
                self.frontier_points,
                if self.frontier_spans_anchors {
                    ""
                } else {
                    " and does not run from S to L"
                }
            ));
        }
        if self.in_band * 5 < self.stitches * 4 {
            failed.push(format!(
                "{} of {} stitches in [acc(S) − 0.5, acc(L) + 0.5] (wanted ≥ 80 %)",
                self.in_band, self.stitches
            ));
        }
        if self.below_floor > 0 {
            failed.push(format!(
                "{} stitches below acc(S) − 1.0 (wanted none)",
                self.below_floor
            ));
        }
        for p in &self.pairs {
            if p.rho.is_none_or(|rho| rho < 0.6) {
                failed.push(format!(
                    "anchors {}→{}: Spearman ρ(FLOPs, top-1) {} over {} stitches (wanted ≥ 0.6)",
                    p.front,
                    p.end,
                    p.rho.map_or("undefined".to_owned(), |r| format!("{r:.2}")),
                    p.stitches
                ));
            }
        }
        if self.selected_beats_middle == Some(false) {
            failed.push("the halfway budget's stitch is not more accurate than M".to_owned());
        }
        failed
    }
}

/// Average ranks (ties share the mean of their positions), 1-based.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's ρ of the pairs `(x, y)`: Pearson's correlation of their average ranks.
fn spearman(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let x = ranks(&points.iter().map(|p| p.0).collect::<Vec<_>>());
    let y = ranks(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_ranks() {
        let rising = [(1.0, 10.0), (2.0, 20.0), (3.0, 25.0), (4.0, 40.0)];
        assert_eq!(spearman(&rising), Some(1.0));
        let falling: Vec<_> = rising.iter().map(|&(x, y)| (x, -y)).collect();
        assert_eq!(spearman(&falling), Some(-1.0));
        assert_eq!(spearman(&[(1.0, 1.0), (2.0, 1.0)]), None); // constant accuracy
        assert_eq!(spearman(&[(1.0, 1.0)]), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        // Ties: x ranks 1, 2.5, 2.5, 4 against y ranks 1, 2, 3, 4.
        let tied = spearman(&[(1.0, 1.0), (2.0, 2.0), (2.0, 3.0), (3.0, 4.0)]).unwrap_or(0.0);
        assert!((tied - 0.9486832980505138).abs() < 1e-12, "{tied}");
    }
}
