//! The verbs on a trained SN-Net's accuracy: `eval` (every stitch on the test split) and
//! `plot` (accuracy vs FLOPs).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use snnet_core::SnNet;
use snnet_core::burn::tensor::Device;
use snnet_core::select::StitchTable;
use snnet_train::pipeline::evaluate;
use snnet_train::plot::plot_accuracy_vs_flops;

use crate::common::CliError;
use crate::common::args::DataArgs;
use crate::common::format::Progress;

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The SN-Net to evaluate.
    #[arg(long, value_name = "FILE.safetensors")]
    snnet: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// JSON Lines output (resumes: ids already in the file are skipped).
    #[arg(long, value_name = "FILE.jsonl")]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PlotArgs {
    /// An evaluation table (`snnet eval` output or the reference's format).
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    /// Ids to mark as anchors.
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
    let device = Device::default();
    let (net, _) = SnNet::load(&args.snnet, &device)?;
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
    let table = StitchTable::read_jsonl(&args.table)?;
    plot_accuracy_vs_flops(&table, &args.anchors, &args.title, &args.output)?;
    writeln!(out, "wrote {}", args.output.display())?;
    Ok(())
}
