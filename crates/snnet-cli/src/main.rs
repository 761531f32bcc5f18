//! `snnet`: the command-line tool of snnet-rs.
//!
//! One module per group of verbs under [`cmd`], dispatched here:
//!
//! - [`cmd::space`]: `space` (enumerate a stitch space), `anchors` (list known anchor specs),
//!   `select` (the most accurate stitch within a budget), `pareto` (the accuracy/cost frontier);
//! - [`cmd::zoo`]: `models` (the zoo), `cost --model` (per-block FLOPs and params), `forward
//!   --model` (run a model with timm weights);
//! - [`cmd::snnet`]: `init` (build an SN-Net and initialise its stitching layers), `cost
//!   --anchors` (every stitch's cost), `forward --snnet` (run one stitch);
//! - [`cmd::train`]: `pretrain` (one anchor from scratch), `train` (every stitch jointly);
//! - [`cmd::eval`]: `eval` (every stitch's accuracy), `plot` (accuracy vs FLOPs);
//! - [`cmd::run`]: `run` (the main job, [`snnet_train::pipeline::run`]);
//! - [`cmd::runtime`]: `profile` (every stitch's latency and memory on this machine), `serve`
//!   (the HTTP service that switches stitch at run time);
//! - [`cmd::export`]: `export` (one stitch as a file of its own) and `forward` on such a file.
//!
//! What the verbs share (errors, flag groups, the registry, progress bars, file formats) is in
//! [`common`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Burn allocates a fresh buffer for most tensor ops; glibc's malloc hands large ones back to the
/// OS on free and page-faults them in again, which made training steps 1.3x slower than with
/// mimalloc (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
mod common;

use common::CliError;
use common::args::{CostArgs, ForwardArgs};

/// Stitchable Neural Networks: stitch spaces, costs and budget selection.
#[derive(Debug, Parser)]
#[command(name = "snnet", version, about, long_about = None, after_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enumerate the stitch space of a family of anchors (ids identical to the reference).
    Space(cmd::space::SpaceArgs),
    /// List the known anchor specs (built in, plus any --anchor-spec files).
    Anchors(cmd::space::AnchorsArgs),
    /// Pick the most accurate stitch of an evaluation table within a budget.
    Select(cmd::space::SelectArgs),
    /// Print the accuracy/cost Pareto frontier of an evaluation table.
    Pareto(cmd::space::ParetoArgs),
    /// List the zoo's models (timm names), optionally filtered by a glob such as `deit*`.
    Models(cmd::zoo::ModelsArgs),
    /// FLOPs (fvcore) and parameters of a model per block, or of every stitch of an SN-Net
    /// (--anchors).
    Cost(CostArgs),
    /// Run a model with timm weights, or one stitch of an SN-Net, on an input tensor file or an
    /// image.
    Forward(ForwardArgs),
    /// Build an SN-Net from pretrained anchors and initialise its stitching layers (least
    /// squares on a few images, or Kaiming); writes a self-describing checkpoint.
    Init(cmd::snnet::InitArgs),
    /// Train one anchor from scratch on Fashion-MNIST (e.g. the fmnist_vit_* family).
    Pretrain(cmd::train::PretrainArgs),
    /// Train every stitch of an SN-Net jointly (one sampled stitch per step, distillation).
    Train(cmd::train::TrainArgs),
    /// Top-1/top-5 of every stitch on the test split, as JSON Lines (resumable).
    Eval(cmd::eval::EvalArgs),
    /// An SVG of accuracy vs FLOPs with anchors, stitches and the Pareto frontier.
    Plot(cmd::eval::PlotArgs),
    /// The main job: pretrain three anchors, build and initialise the SN-Net, train it, evaluate
    /// every stitch, plot the frontier and select a stitch for a budget.
    Run(cmd::run::RunArgs),
    /// Measure every stitch's latency (and memory) on this machine, as a stitch table.
    Profile(cmd::runtime::ProfileArgs),
    /// Write one stitch of an SN-Net as a model of its own: only the tensors it runs, with its
    /// configuration (`forward --snnet FILE` runs it).
    Export(cmd::export::ExportArgs),
    /// Quantize an SN-Net or an exported stitch to int8 weights (Burn's Quantizer, per-block
    /// Q8S), written as burnpack.
    Quantize(cmd::export::QuantizeArgs),
    /// Serve the SN-Net over HTTP, switching stitch to meet a budget or a latency objective.
    Serve(cmd::runtime::ServeArgs),
}

/// Runs `command`, writing its result to `out`.
fn dispatch(command: Command, out: &mut impl Write) -> Result<(), CliError> {
    match command {
        Command::Space(args) => cmd::space::space(&args, out),
        Command::Anchors(args) => cmd::space::anchors(&args, out),
        Command::Select(args) => cmd::space::select(&args, out),
        Command::Pareto(args) => cmd::space::pareto(&args, out),
        Command::Models(args) => cmd::zoo::models(&args, out),
        Command::Cost(args) => match &args.model {
            Some(model) => cmd::zoo::cost(model, &args, out),
            None => cmd::snnet::cost(&args, out),
        },
        Command::Forward(args) => match (&args.model, &args.weights, &args.snnet, args.stitch) {
            (Some(model), Some(weights), ..) => cmd::zoo::forward(model, weights, &args, out),
            (.., Some(snnet), stitch) => cmd::snnet::forward(snnet, stitch, &args, out),
            _ => Err(CliError::Usage(
                "give --model and --weights, or --snnet (and --stitch for an SN-Net)".to_owned(),
            )),
        },
        Command::Init(args) => cmd::snnet::init(&args, out),
        Command::Pretrain(args) => cmd::train::pretrain(&args, out),
        Command::Train(args) => cmd::train::train(&args, out),
        Command::Eval(args) => cmd::eval::eval(&args, out),
        Command::Plot(args) => cmd::eval::plot(&args, out),
        Command::Run(args) => cmd::run::run(&args, out),
        Command::Profile(args) => cmd::runtime::profile(&args, out),
        Command::Serve(args) => cmd::runtime::serve(&args, out),
        Command::Export(args) => cmd::export::export(&args, out),
        Command::Quantize(args) => cmd::export::quantize(&args, out),
    }
}

/// The environment variables the binary reads, for `--help`.
const ENVIRONMENT: &str = "Environment:
  SNNET_PLAIN_OPS  when set (to anything), run Burn's generic ops instead of the fused CPU
                   kernels (snnet_ops::Kernels::Generic): the A/B switch of docs/PERFORMANCE.md";

/// [`snnet_ops::Kernels::Generic`] when `SNNET_PLAIN_OPS` is set (to anything), else the default.
fn kernels_from_env() -> snnet_ops::Kernels {
    if std::env::var_os("SNNET_PLAIN_OPS").is_some() {
        snnet_ops::Kernels::Generic
    } else {
        snnet_ops::Kernels::Fused
    }
}

fn main() -> ExitCode {
    snnet_ops::set_kernels(kernels_from_env());
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = dispatch(cli.command, &mut out);
    match result.and_then(|()| out.flush().map_err(CliError::from)) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`snnet space ... | head`) is not an error.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
