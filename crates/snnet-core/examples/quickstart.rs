//! The SN-Net workflow on DeiT-Ti/S/B without weights: enumerate the 71 stitches with the
//! reference's ids, read an evaluation table (the reference's published results, embedded), take
//! the accuracy/FLOPs Pareto frontier, and pick the stitch for several FLOPs budgets.
//!
//! Run: `cargo run --release -p snnet-core --example quickstart`

use snnet_core::select::{CostKind, Frontier, StitchTable};
use snnet_core::space::{SpaceConfig, StitchId, StitchSpace};

/// The reference's evaluation of its released DeiT-Ti/S/B SN-Net checkpoint (ziplab/SN-Net,
/// Apache-2.0): one JSON line per stitch with `cfg_id`, `flops`, `params` and `acc1` (a copy of
/// the workspace's `fixtures/reference/deit_ti_s_b.jsonl`, so that the example builds from the
/// published crate too).
const DEIT_RESULTS: &str = include_str!("deit_ti_s_b.jsonl");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let space = StitchSpace::builtin(
        &[
            "deit_tiny_patch16_224",
            "deit_small_patch16_224",
            "deit_base_patch16_224",
        ],
        SpaceConfig::default(),
    )?;
    let layers: usize = space.layer_groups().iter().map(|g| g.num_layers()).sum();
    println!(
        "DeiT-Ti/S/B stitch space: {} stitches, {} stitching layers",
        space.len(),
        layers
    );
    for id in [0, 1, 2, 3, 24, 56, 70] {
        println!("  {id:>3}  {}", space.display(StitchId(id))?);
    }

    let table: StitchTable = DEIT_RESULTS.parse()?;
    let frontier = Frontier::new(&table, CostKind::Flops)?;
    println!(
        "\nPublished evaluation: {} stitches, {} on the accuracy/FLOPs Pareto frontier",
        table.len(),
        frontier.len()
    );

    println!(
        "\n{:>12}  {:>4}  {:>7}  {:>9}  path",
        "budget", "id", "top-1", "GFLOPs"
    );
    for gflops in [1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0] {
        let point = frontier.select(gflops * 1e9)?;
        let stitch = space.get(point.id)?;
        println!(
            "{:>9.1} G  {:>4}  {:>6.2}%  {:>9.3}  {}",
            gflops,
            point.id,
            point.acc1,
            point.cost / 1e9,
            space.describe(stitch)
        );
    }
    Ok(())
}
