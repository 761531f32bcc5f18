//! A precomputed Pareto frontier for fast selection at run time.

use serde::{Deserialize, Serialize};

use crate::cost::{Budget, CostKind};
use crate::error::{Error, Result};
use crate::table::{StitchTable, cmp_f64};
use snnet_space::StitchId;

/// One stitch on a [`Frontier`]: its id, its cost and its top-1 accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    /// The stitch id.
    pub id: StitchId,
    /// The stitch's value of the frontier's [`CostKind`].
    pub cost: f64,
    /// Top-1 accuracy in percent.
    pub acc1: f64,
}

/// The key of a profiled record's fastest measured latency (milliseconds), beside its median
/// `latency_ms`: the low end of its measured spread.
pub const LATENCY_MIN_KEY: &str = "latency_min_ms";

/// An immutable Pareto frontier over one cost, for selecting a stitch at run time in
/// O(log n) without the table.
///
/// Its points are sorted by cost ascending, with cost and accuracy both strictly increasing,
/// so the best stitch within a budget is the last point whose cost fits.
///
/// **Noise.** A measured latency is a spread, not a number: a stitch counts as cheaper than a
/// more accurate one only when its median is below the other's fastest measured run
/// ([`LATENCY_MIN_KEY`], written by `snnet profile`), so a difference inside the profile's own
/// noise never puts a less accurate stitch on the frontier: ties go to the more accurate
/// stitch. Costs without a recorded spread (FLOPs, params, memory, a latency without
/// `latency_min_ms`) are exact, and then the points are those of [`StitchTable::pareto`] and
/// [`select`](Frontier::select) returns the same stitch as [`StitchTable::select`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frontier {
    cost: CostKind,
    points: Vec<FrontierPoint>,
}

impl Frontier {
    /// The frontier of `table` over `cost`.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTable`] when the table is empty; [`Error::MissingCost`] when a record
    /// lacks `cost`.
    pub fn new(table: &StitchTable, cost: CostKind) -> Result<Self> {
        // (point, the low end of its spread).
        let mut costed = table
            .iter()
            .map(|r| {
                r.require_cost(cost).map(|c| {
                    let low = match cost {
                        CostKind::LatencyMs => r
                            .extra
                            .get(LATENCY_MIN_KEY)
                            .and_then(serde_json::Value::as_f64)
                            .filter(|m| m.is_finite())
                            .map_or(c, |m| m.min(c)),
                        _ => c,
                    };
                    (
                        FrontierPoint {
                            id: r.id,
                            cost: c,
                            acc1: r.acc1,
                        },
                        low,
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Most accurate first, then cheapest, then lowest id: a point joins the frontier when
        // it is clearly cheaper (below the low end of the spread) than every point kept
        // before it, all of which are at least as accurate.
        costed.sort_by(|(a, _), (b, _)| {
            cmp_f64(b.acc1, a.acc1)
                .then_with(|| cmp_f64(a.cost, b.cost))
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut kept: Vec<(FrontierPoint, f64)> = Vec::new();
        for (point, low) in costed {
            if kept.iter().all(|(_, kept_low)| point.cost < *kept_low) {
                kept.push((point, low));
            }
        }
        if kept.is_empty() {
            return Err(Error::EmptyTable);
        }
        let points = kept.into_iter().rev().map(|(p, _)| p).collect();
        Ok(Frontier { cost, points })
    }

    /// The cost the frontier is over.
    pub fn cost(&self) -> CostKind {
        self.cost
    }

    /// The frontier's points, by cost ascending; never empty.
    pub fn points(&self) -> &[FrontierPoint] {
        &self.points
    }

    /// The number of points; at least one.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Always `false`: a frontier has at least one point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The cheapest point.
    pub fn cheapest(&self) -> Option<FrontierPoint> {
        self.points.first().copied()
    }

    /// The most accurate point.
    pub fn most_accurate(&self) -> Option<FrontierPoint> {
        self.points.last().copied()
    }

    /// The most accurate point whose cost is at most `max`, found by binary search.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBudget`] when `max` is NaN or negative; [`Error::NothingFits`], with the
    /// cheapest cost, when every point costs more than `max`.
    pub fn select(&self, max: f64) -> Result<FrontierPoint> {
        let budget = Budget::new(self.cost, max).validated()?;
        let fitting = self.points.partition_point(|p| p.cost <= max);
        match fitting.checked_sub(1).and_then(|i| self.points.get(i)) {
            Some(point) => Ok(*point),
            None => Err(Error::NothingFits {
                budget,
                cheapest: self.points.first().map_or(f64::NAN, |p| p.cost),
            }),
        }
    }

    /// Like [`select`](Frontier::select), taking a [`Budget`] that must be over the
    /// frontier's cost.
    ///
    /// # Errors
    ///
    /// [`Error::CostMismatch`] when the budget is over another cost, and the errors of
    /// [`select`](Frontier::select).
    pub fn select_budget(&self, budget: Budget) -> Result<FrontierPoint> {
        if budget.cost != self.cost {
            return Err(Error::CostMismatch {
                expected: self.cost,
                found: budget.cost,
            });
        }
        self.select(budget.max)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::StitchRecord;

    fn rec(id: usize, flops: u64, acc1: f64) -> StitchRecord {
        StitchRecord::new(id, acc1).with_flops(flops)
    }

    fn sample() -> StitchTable {
        StitchTable::from_records(vec![
            rec(0, 10, 70.0),
            rec(1, 40, 80.0),
            rec(2, 20, 75.0),
            rec(3, 30, 74.0),
            rec(4, 5, 60.0),
        ])
        .unwrap()
    }

    #[test]
    fn new_copies_the_pareto_frontier() {
        let t = sample();
        let f = Frontier::new(&t, CostKind::Flops).unwrap();
        assert_eq!(f.cost(), CostKind::Flops);
        assert_eq!(f.len(), 4);
        assert!(!f.is_empty());
        let ids: Vec<_> = f.points().iter().map(|p| p.id).collect();
        assert_eq!(ids, [4, 0, 2, 1]);
        assert_eq!(
            f.points()[1],
            FrontierPoint {
                id: StitchId(0),
                cost: 10.0,
                acc1: 70.0
            }
        );
        assert_eq!(f.cheapest().unwrap().id, 4);
        assert_eq!(f.most_accurate().unwrap().id, 1);
        assert_eq!(t.frontier(CostKind::Flops).unwrap(), f);
    }

    #[test]
    fn select_by_binary_search() {
        let f = sample().frontier(CostKind::Flops).unwrap();
        assert_eq!(f.select(5.0).unwrap().id, 4);
        assert_eq!(f.select(9.99).unwrap().id, 4);
        assert_eq!(f.select(10.0).unwrap().id, 0);
        assert_eq!(f.select(35.0).unwrap().id, 2);
        assert_eq!(f.select(1e12).unwrap().id, 1);
        assert_eq!(f.select(f64::INFINITY).unwrap().id, 1);
        assert_eq!(f.select_budget(Budget::flops(20)).unwrap().id, 2);
    }

    #[test]
    fn select_errors() {
        let f = sample().frontier(CostKind::Flops).unwrap();
        assert!(matches!(
            f.select(4.0),
            Err(Error::NothingFits { budget, cheapest }) if budget == Budget::flops(4) && cheapest == 5.0
        ));
        assert!(matches!(
            f.select(f64::NAN),
            Err(Error::InvalidBudget { .. })
        ));
        assert!(matches!(f.select(-1.0), Err(Error::InvalidBudget { .. })));
        let err = f.select_budget(Budget::params(10)).unwrap_err();
        assert!(matches!(
            err,
            Error::CostMismatch {
                expected: CostKind::Flops,
                found: CostKind::Params
            }
        ));
        assert!(err.to_string().contains("flops"));
    }

    #[test]
    fn new_errors() {
        assert!(matches!(
            Frontier::new(&StitchTable::new(), CostKind::Flops),
            Err(Error::EmptyTable)
        ));
        assert!(matches!(
            Frontier::new(&sample(), CostKind::LatencyMs),
            Err(Error::MissingCost {
                id: 0,
                cost: CostKind::LatencyMs
            })
        ));
    }

    /// Medians that differ inside the measured spread: the less accurate stitch is not
    /// "cheaper" (the issue's stitch 16 at 0.3444 ms against the small anchor at 0.3464 ms).
    #[test]
    fn latency_ties_inside_the_spread_go_to_the_more_accurate() {
        let profiled = |id: usize, acc1: f64, median: f64, min: f64| {
            let mut r = StitchRecord::new(id, acc1).with_latency_ms(median);
            r.extra
                .insert(LATENCY_MIN_KEY.into(), serde_json::Value::from(min));
            r
        };
        let table = StitchTable::from_records(vec![
            profiled(0, 79.96, 0.3464, 0.3390),  // the small anchor
            profiled(16, 79.51, 0.3444, 0.3380), // 2 us cheaper, inside the spread
            profiled(1, 85.0, 0.90, 0.88),
            profiled(7, 84.0, 0.60, 0.58), // clearly cheaper than 1: kept
            profiled(8, 83.0, 0.595, 0.50), // inside 7's spread: dropped
            profiled(2, 90.0, 2.0, 1.9),
        ])
        .unwrap();
        let f = table.frontier(CostKind::LatencyMs).unwrap();
        let ids: Vec<_> = f.points().iter().map(|p| p.id.index()).collect();
        assert_eq!(ids, [0, 7, 1, 2]);
        // The exact Pareto frontier (no spread) keeps both noisy ones.
        let pareto: Vec<_> = table
            .pareto(CostKind::LatencyMs)
            .unwrap()
            .iter()
            .map(|r| r.id.index())
            .collect();
        assert_eq!(pareto, [16, 0, 8, 7, 1, 2]);
        // Selection within a budget runs on the noise-free frontier.
        let budget = f.select(0.35).unwrap();
        assert_eq!(budget.id, StitchId(0));
        assert!(f.select(0.34).is_err());
    }

    #[test]
    fn serializes_points() {
        let f = StitchTable::from_records(vec![rec(3, 7, 1.5)])
            .unwrap()
            .frontier(CostKind::Flops)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"cost":"flops","points":[{"id":3,"cost":7.0,"acc1":1.5}]}"#
        );
    }

    /// Whether `a` dominates `b`: no more costly, no less accurate, one of them strictly.
    fn dominates(a: (f64, f64), b: (f64, f64)) -> bool {
        a.0 <= b.0 && a.1 >= b.1 && (a.0 < b.0 || a.1 > b.1)
    }

    /// Random tables over small value ranges, so that ties in cost and accuracy are common;
    /// ids are a random permutation so that id tie-breaking is exercised.
    fn tables() -> impl Strategy<Value = StitchTable> {
        prop::collection::vec((0u64..24, 0u8..12, any::<bool>()), 1..40).prop_flat_map(|rows| {
            let n = rows.len();
            let ids: Vec<usize> = (0..n).map(|i| i * 3 + 1).collect();
            Just(ids).prop_shuffle().prop_map(move |ids| {
                let records = rows
                    .iter()
                    .zip(ids)
                    .map(|(&(flops, acc, half), id)| {
                        let acc1 = f64::from(acc) * 2.5 + if half { 0.5 } else { 0.0 };
                        StitchRecord::new(id, acc1)
                            .with_flops(flops * 1000)
                            .with_latency_ms(flops as f64 / 4.0)
                    })
                    .collect();
                StitchTable::from_records(records).unwrap()
            })
        })
    }

    fn budgets() -> impl Strategy<Value = f64> {
        prop_oneof![
            (0u64..26).prop_map(|v| v as f64 * 1000.0),
            0.0f64..30_000.0,
            Just(f64::INFINITY),
            Just(-1.0),
            Just(f64::NAN),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn frontier_select_agrees_with_table_select(table in tables(), max in budgets()) {
            for cost in [CostKind::Flops, CostKind::LatencyMs] {
                let max = if cost == CostKind::LatencyMs { max / 4000.0 } else { max };
                let frontier = Frontier::new(&table, cost).unwrap();
                let fast = frontier.select(max);
                let slow = table.select(Budget::new(cost, max));
                match (fast, slow) {
                    (Ok(p), Ok(r)) => {
                        prop_assert_eq!(p.id, r.id);
                        prop_assert_eq!(p.acc1, r.acc1);
                        prop_assert_eq!(Some(p.cost), r.cost(cost));
                    }
                    (
                        Err(Error::NothingFits { budget: b1, cheapest: c1 }),
                        Err(Error::NothingFits { budget: b2, cheapest: c2 }),
                    ) => {
                        prop_assert_eq!(b1, b2);
                        prop_assert_eq!(c1, c2);
                    }
                    (Err(Error::InvalidBudget { .. }), Err(Error::InvalidBudget { .. })) => {
                        prop_assert!(max.is_nan() || max < 0.0);
                    }
                    (fast, slow) => prop_assert!(false, "disagree: {fast:?} vs {slow:?}"),
                }
            }
        }

        #[test]
        fn frontier_is_exactly_the_non_dominated_set(table in tables()) {
            let cost = CostKind::Flops;
            let frontier = Frontier::new(&table, cost).unwrap();
            let points = frontier.points();
            for w in points.windows(2) {
                prop_assert!(w[0].cost < w[1].cost);
                prop_assert!(w[0].acc1 < w[1].acc1);
            }
            let on_frontier = |id: StitchId| points.iter().any(|p| p.id == id);
            for p in points {
                for r in &table {
                    let rc = (r.cost(cost).unwrap(), r.acc1);
                    prop_assert!(!dominates(rc, (p.cost, p.acc1)), "{} dominated by {}", p.id, r.id);
                    if rc == (p.cost, p.acc1) {
                        // Of identical records, the frontier keeps the lowest id.
                        prop_assert!(p.id <= r.id);
                    }
                }
            }
            for r in &table {
                if on_frontier(r.id) {
                    continue;
                }
                let rc = (r.cost(cost).unwrap(), r.acc1);
                let covered = points.iter().any(|p| {
                    dominates((p.cost, p.acc1), rc) || ((p.cost, p.acc1) == rc && p.id < r.id)
                });
                prop_assert!(covered, "record {} is neither on nor below the frontier", r.id);
            }
            // The table's own frontier is the same sequence.
            let ids: Vec<_> = table.pareto(cost).unwrap().iter().map(|r| r.id).collect();
            let fids: Vec<_> = points.iter().map(|p| p.id).collect();
            prop_assert_eq!(ids, fids);
        }

        #[test]
        fn missing_cost_agrees(table in tables(), victim in any::<prop::sample::Index>()) {
            let mut records = table.into_records();
            let i = victim.index(records.len());
            records[i].flops = None;
            let id = records[i].id.index();
            let table = StitchTable::from_records(records).unwrap();
            let slow = matches!(
                table.select(Budget::flops(u64::MAX)),
                Err(Error::MissingCost { id: got, cost: CostKind::Flops }) if got == id
            );
            let fast = matches!(
                Frontier::new(&table, CostKind::Flops),
                Err(Error::MissingCost { id: got, cost: CostKind::Flops }) if got == id
            );
            prop_assert!(slow, "table.select did not name stitch {}", id);
            prop_assert!(fast, "Frontier::new did not name stitch {}", id);
        }
    }
}
