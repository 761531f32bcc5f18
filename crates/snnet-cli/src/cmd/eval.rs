//! The verbs on a trained SN-Net's accuracy: `eval` (every stitch on the test split) and
//! `plot` (accuracy vs FLOPs).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use snnet_train::pipeline::evaluate;
use snnet_train::plot::plot_accuracy_vs_flops;

use crate::common::CliError;
use crate::common::args::{DeviceArgs, LoadArgs, TestDataArgs};
use crate::common::format::Progress;
use crate::common::io::read_table;

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The SN-Net to evaluate.
    #[arg(long, value_name = "FILE.safetensors")]
    snnet: PathBuf,
    #[command(flatten)]
    data: TestDataArgs,
    /// JSON Lines output. An existing file resumes (its stitches are skipped) when its rows were
    /// measured on this network and these test images; otherwise it is an error.
    #[arg(long, value_name = "FILE.jsonl")]
    output: PathBuf,
    /// Start over: replace an existing --output instead of resuming it.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PlotArgs {
    /// An evaluation table (`snnet eval` output or the reference's format).
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    /// Ids to mark as anchors (each must have a row in the table).
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    anchors: Vec<usize>,
    /// The title.
    #[arg(long, default_value = "SN-Net: accuracy vs FLOPs")]
    title: String,
    /// The SVG to write.
    #[arg(long, value_name = "FILE.svg")]
    output: PathBuf,
}

/// `snnet eval`: every stitch on the test split.
pub(crate) fn eval(args: &EvalArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = args.device.device()?;
    let net = args.load.snnet(&args.snnet, &device)?;
    if args.force {
        match std::fs::remove_file(&args.output) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::Usage(format!(
                    "--force: cannot remove {}: {e}",
                    args.output.display()
                )));
            }
            _ => {}
        }
    }
    let table = evaluate(
        &net,
        &args.data.config(),
        &args.output,
        &device,
        &mut Progress::default(),
    )?;
    writeln!(
        out,
        "{} stitches evaluated; wrote {}",
        table.len(),
        args.output.display()
    )?;
    Ok(())
}

/// `snnet plot`.
pub(crate) fn plot(args: &PlotArgs, out: &mut impl Write) -> Result<(), CliError> {
    let table = read_table(&args.table)?;
    plot_accuracy_vs_flops(&table, &args.anchors, &args.title, &args.output)?;
    writeln!(out, "wrote {}", args.output.display())?;
    Ok(())
}
