//! `training [--out DIR] [--epochs N] [--train-samples N] [--test-samples N] [--data DIR]`: the
//! main job in small (see the library docs), printing its progress, the frontier and the
//! selected stitch.

use snnet_train::burn::tensor::Device;
use snnet_train::pipeline::{Event, run};

// Burn allocates and frees a buffer per tensor op; glibc's malloc returns large ones to the
// kernel and faults them back in (the `snnet` CLI links mimalloc for the same reason).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = training::Options::parse(std::env::args().skip(1))?;
    let mut observer = |event: Event<'_>| {
        if let Some(line) = training::progress(&event) {
            println!("{line}");
        }
    };
    let outcome = run(
        &options.config(),
        &options.out,
        &Device::default(),
        &mut observer,
    )?;
    println!("\nPareto frontier (top-1 vs FLOPs):");
    for record in outcome.frontier() {
        println!(
            "  stitch {:>2}  {:6.2} %  {:>10} FLOPs  {}",
            record.id,
            record.acc1,
            record.flops.unwrap_or(0),
            outcome.net.space().display(record.id)?
        );
    }
    let selected = &outcome.summary.selected;
    println!(
        "within {} FLOPs: stitch {} ({:.2} %); files in {}",
        outcome.summary.budget_flops,
        selected.id,
        selected.acc1,
        options.out.display()
    );
    Ok(())
}
