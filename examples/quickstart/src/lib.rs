//! The SN-Net workflow on DeiT-Ti/S/B without weights: enumerate the 71 stitches with the
//! reference's ids, read an evaluation table (the reference's published results, embedded), take
//! the accuracy/FLOPs Pareto frontier, and pick the stitch for several FLOPs budgets.
//!
//! ```sh
//! cargo run --release -p quickstart
//! ```

use std::fmt::Write;

use snnet_core::select::{CostKind, Frontier, StitchTable};
use snnet_core::space::{SpaceConfig, StitchId, StitchSpace};

/// The reference's evaluation of its released DeiT-Ti/S/B SN-Net checkpoint (ziplab/SN-Net,
/// Apache-2.0): one JSON line per stitch with `cfg_id`, `flops`, `params` and `acc1` (the
/// workspace's `fixtures/reference/deit_ti_s_b.jsonl`).
pub const DEIT_RESULTS: &str = include_str!("../../../fixtures/reference/deit_ti_s_b.jsonl");

/// The anchors, small to large, by timm name.
pub const DEIT: [&str; 3] = [
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
];

/// The FLOPs budgets the report selects for, in GFLOPs.
pub const BUDGETS_GFLOPS: [f64; 7] = [1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0];

type BoxError = Box<dyn std::error::Error>;

/// The stitch chosen for one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The stitch.
    pub id: StitchId,
    /// Its top-1 accuracy in the table, in %.
    pub acc1: f64,
    /// Its FLOPs.
    pub flops: f64,
    /// Its path, e.g. `deit_tiny[..=5] →L5→ deit_small[6..]`.
    pub path: String,
}

/// The DeiT-Ti/S/B stitch space with the reference's settings.
///
/// # Errors
/// Never for the built-in anchors; the space's error otherwise.
pub fn deit_space() -> Result<StitchSpace, BoxError> {
    Ok(StitchSpace::builtin(&DEIT, SpaceConfig::default())?)
}

/// The most accurate stitch of `frontier` within `gflops` GFLOPs, described by `space`.
///
/// # Errors
/// When no stitch fits the budget.
pub fn select(
    space: &StitchSpace,
    frontier: &Frontier,
    gflops: f64,
) -> Result<Selection, BoxError> {
    let point = frontier.select(gflops * 1e9)?;
    Ok(Selection {
        id: point.id,
        acc1: point.acc1,
        flops: point.cost,
        path: space.describe(space.get(point.id)?),
    })
}

/// The whole walk-through as text: the space, a few stitches, the frontier and the stitch of
/// every budget of [`BUDGETS_GFLOPS`].
///
/// # Errors
/// Space, table and selection errors.
pub fn report() -> Result<String, BoxError> {
    let space = deit_space()?;
    let mut out = String::new();
    let layers: usize = space.layer_groups().iter().map(|g| g.num_layers()).sum();
    writeln!(
        out,
        "DeiT-Ti/S/B stitch space: {} stitches, {} stitching layers",
        space.len(),
        layers
    )?;
    for id in [0, 1, 2, 3, 24, 56, 70] {
        writeln!(out, "  {id:>3}  {}", space.display(StitchId(id))?)?;
    }

    let table: StitchTable = DEIT_RESULTS.parse()?;
    let frontier = Frontier::new(&table, CostKind::Flops)?;
    writeln!(
        out,
        "\nPublished evaluation: {} stitches, {} on the accuracy/FLOPs Pareto frontier",
        table.len(),
        frontier.len()
    )?;

    writeln!(
        out,
        "\n{:>12}  {:>4}  {:>7}  {:>9}  path",
        "budget", "id", "top-1", "GFLOPs"
    )?;
    for gflops in BUDGETS_GFLOPS {
        let s = select(&space, &frontier, gflops)?;
        writeln!(
            out,
            "{:>9.1} G  {:>4}  {:>6.2}%  {:>9.3}  {}",
            gflops,
            s.id,
            s.acc1,
            s.flops / 1e9,
            s.path
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_gflops_pick_the_readme_stitch() -> Result<(), BoxError> {
        let space = deit_space()?;
        let table: StitchTable = DEIT_RESULTS.parse()?;
        let frontier = Frontier::new(&table, CostKind::Flops)?;
        let s = select(&space, &frontier, 3.0)?;
        assert_eq!(s.id, StitchId(19));
        assert_eq!(s.path, "deit_tiny[..=5] →L5→ deit_small[6..]");
        assert!(s.flops <= 3e9);
        Ok(())
    }

    #[test]
    fn report_covers_the_space_and_every_budget() -> Result<(), BoxError> {
        let report = report()?;
        assert!(report.starts_with("DeiT-Ti/S/B stitch space: 71 stitches"));
        assert!(report.contains("Published evaluation: 71 stitches"));
        for gflops in BUDGETS_GFLOPS {
            assert!(report.contains(&format!("{gflops:>9.1} G")), "{gflops}");
        }
        Ok(())
    }

    #[test]
    fn a_budget_below_every_stitch_is_an_error() -> Result<(), BoxError> {
        let space = deit_space()?;
        let table: StitchTable = DEIT_RESULTS.parse()?;
        let frontier = Frontier::new(&table, CostKind::Flops)?;
        assert!(select(&space, &frontier, 0.1).is_err());
        Ok(())
    }
}
