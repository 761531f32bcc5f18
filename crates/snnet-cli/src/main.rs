//! `snnet`: the command-line tool of snnet-rs.
//!
//! Verbs: `space` (enumerate a stitch space), `anchors` (list known anchor specs), `select`
//! (the most accurate stitch within a budget), `pareto` (the accuracy/cost frontier), `models`
//! (the zoo), `cost` (per-block FLOPs and params) and `forward` (run a model).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use snnet_core::select::{Budget, Cost, StitchRecord, StitchTable};
use snnet_core::space::{AnchorRegistry, Direction, Pairing, SpaceConfig, StitchKind, StitchSpace};

/// Burn allocates a fresh buffer for most tensor ops; glibc's malloc hands large ones back to the
/// OS on free and page-faults them in again, which made training steps 1.3x slower than with
/// mimalloc (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod format;
mod runtime_cmd;
mod snnet_cmd;
mod train_cmd;
mod zoo_cmd;

use format::{human, parse_count};

/// Stitchable Neural Networks: stitch spaces, costs and budget selection.
#[derive(Debug, Parser)]
#[command(name = "snnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enumerate the stitch space of a family of anchors (ids identical to the reference).
    Space(SpaceArgs),
    /// List the known anchor specs (built in, plus any --anchor-spec files).
    Anchors(AnchorsArgs),
    /// Pick the most accurate stitch of an evaluation table within a budget.
    Select(SelectArgs),
    /// Print the accuracy/cost Pareto frontier of an evaluation table.
    Pareto(ParetoArgs),
    /// List the zoo's models (timm names), optionally filtered by a glob such as `deit*`.
    Models(zoo_cmd::ModelsArgs),
    /// FLOPs (fvcore) and parameters of a model per block, or of every stitch of an SN-Net
    /// (--anchors).
    Cost(zoo_cmd::ModelCostArgs),
    /// Run a model with timm weights, or one stitch of an SN-Net, on an input tensor file or an
    /// image.
    Forward(zoo_cmd::ForwardArgs),
    /// Build an SN-Net from pretrained anchors and initialise its stitching layers (least
    /// squares on a few images, or Kaiming); writes a self-describing checkpoint.
    Init(snnet_cmd::InitArgs),
    /// Train one anchor from scratch on Fashion-MNIST (e.g. the fmnist_vit_* family).
    Pretrain(train_cmd::PretrainArgs),
    /// Train every stitch of an SN-Net jointly (one sampled stitch per step, distillation).
    Train(train_cmd::TrainArgs),
    /// Top-1/top-5 of every stitch on the test split, as JSON Lines (resumable).
    Eval(train_cmd::EvalArgs),
    /// An SVG of accuracy vs FLOPs with anchors, stitches and the Pareto frontier.
    Plot(train_cmd::PlotArgs),
    /// The main job: pretrain three anchors, build and initialise the SN-Net, train it, evaluate
    /// every stitch, plot the frontier and select a stitch for a budget.
    Run(train_cmd::RunArgs),
    /// Measure every stitch's latency (and memory) on this machine, as a stitch table.
    Profile(runtime_cmd::ProfileArgs),
    /// Serve the SN-Net over HTTP, switching stitch to meet a budget or a latency objective.
    Serve(runtime_cmd::ServeArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A human-readable table.
    Table,
    /// JSON on one line.
    Json,
}

#[derive(Debug, Args)]
struct SpecArgs {
    /// JSON file of extra anchor specs (one spec, a list, or {"anchors": [...]}); repeatable.
    #[arg(long = "anchor-spec", value_name = "FILE.json")]
    anchor_specs: Vec<PathBuf>,
}

impl SpecArgs {
    fn registry(&self) -> Result<AnchorRegistry, CliError> {
        let mut registry = AnchorRegistry::builtin();
        for path in &self.anchor_specs {
            registry.add_json_file(path)?;
        }
        Ok(registry)
    }
}

/// The stitch-space rules shared by `space`, `cost --anchors` and `init`.
#[derive(Debug, Args)]
pub(crate) struct SpaceFlags {
    /// Blocks per sliding window (equal-depth pairs).
    #[arg(long, default_value_t = 2)]
    kernel_size: usize,
    /// Blocks the sliding window moves per step.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// Stitch every pair of anchors (and, for plain anchors, paths through three or more), not
    /// only neighbours.
    #[arg(long)]
    all_pairs: bool,
    /// Which way stitches run: fast-to-slow, slow-to-fast or two-way (SN-Netv2).
    #[arg(long, default_value = "fast-to-slow", value_parser = parse_direction)]
    direction: Direction,
    /// Stages to stitch, for hierarchical anchors (default: the family's, e.g. 0,1,2 for Swin).
    #[arg(long, value_delimiter = ',')]
    stages: Option<Vec<usize>>,
}

impl SpaceFlags {
    pub(crate) fn config(&self) -> SpaceConfig {
        SpaceConfig {
            kernel_size: self.kernel_size,
            stride: self.stride,
            pairing: if self.all_pairs {
                Pairing::All
            } else {
                Pairing::Nearest
            },
            direction: self.direction,
            stages: self.stages.clone(),
        }
    }
}

#[derive(Debug, Args)]
struct SpaceArgs {
    /// Anchors from small to large, by timm name or label, comma separated.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    anchors: Vec<String>,
    #[command(flatten)]
    space: SpaceFlags,
    #[command(flatten)]
    specs: SpecArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct AnchorsArgs {
    #[command(flatten)]
    specs: SpecArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
#[group(id = "budget", required = true, multiple = false)]
struct BudgetArgs {
    /// Maximum FLOPs (multiply-adds, fvcore convention); accepts 5000000000, 5e9 or 5G.
    #[arg(long, value_parser = parse_count, group = "budget")]
    max_flops: Option<u64>,
    /// Maximum parameters; accepts 25000000, 2.5e7 or 25M.
    #[arg(long, value_parser = parse_count, group = "budget")]
    max_params: Option<u64>,
    /// Maximum measured latency in milliseconds.
    #[arg(long, group = "budget")]
    max_latency_ms: Option<f64>,
}

impl BudgetArgs {
    fn budget(&self) -> Option<Budget> {
        match (self.max_flops, self.max_params, self.max_latency_ms) {
            (Some(flops), _, _) => Some(Budget::flops(flops)),
            (_, Some(params), _) => Some(Budget::params(params)),
            (_, _, Some(ms)) => Some(Budget::latency_ms(ms)),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
struct SelectArgs {
    /// Evaluation table: JSON Lines of {"cfg_id", "flops", "params", "acc1", ...}.
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    #[command(flatten)]
    budget: BudgetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
struct ParetoArgs {
    /// Evaluation table: JSON Lines of {"cfg_id", "flops", "params", "acc1", ...}.
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    /// The cost axis: flops, params, latency-ms or memory-bytes.
    #[arg(long, default_value = "flops", value_parser = parse_cost)]
    cost: Cost,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    s.parse()
        .map_err(|e: snnet_core::space::Error| e.to_string())
}

fn parse_cost(s: &str) -> Result<Cost, String> {
    s.parse()
        .map_err(|e: snnet_core::select::Error| e.to_string())
}

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error(transparent)]
    Space(#[from] snnet_core::space::Error),
    #[error("{path}: {source}")]
    Table {
        path: PathBuf,
        source: snnet_core::select::Error,
    },
    #[error(transparent)]
    Select(#[from] snnet_core::select::Error),
    #[error(transparent)]
    Zoo(#[from] snnet_core::zoo::Error),
    #[error(transparent)]
    Core(#[from] snnet_core::Error),
    #[error(transparent)]
    Train(#[from] snnet_train::Error),
    #[error(transparent)]
    Runtime(#[from] snnet_runtime::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Space(args) => space(&args, &mut out),
        Command::Anchors(args) => anchors(&args, &mut out),
        Command::Select(args) => select(&args, &mut out),
        Command::Pareto(args) => pareto(&args, &mut out),
        Command::Models(args) => zoo_cmd::models(&args, &mut out),
        Command::Cost(args) => zoo_cmd::model_cost(&args, &mut out),
        Command::Forward(args) => zoo_cmd::forward(&args, &mut out),
        Command::Init(args) => snnet_cmd::init(&args, &mut out),
        Command::Pretrain(args) => train_cmd::pretrain(&args, &mut out),
        Command::Train(args) => train_cmd::train(&args, &mut out),
        Command::Eval(args) => train_cmd::eval(&args, &mut out),
        Command::Plot(args) => train_cmd::plot(&args, &mut out),
        Command::Run(args) => train_cmd::run(&args, &mut out),
        Command::Profile(args) => runtime_cmd::profile(&args, &mut out),
        Command::Serve(args) => runtime_cmd::serve(&args, &mut out),
    };
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

/// The JSON shape of one stitch in `snnet space --format json` (and `cost --anchors`, with
/// its cost).
#[derive(serde::Serialize)]
struct StitchJson<'a> {
    #[serde(flatten)]
    stitch: &'a snnet_core::space::Stitch,
    kind: StitchKind,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flops: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<u64>,
}

/// The space as `snnet space --format json` prints it, with every stitch's cost when given.
pub(crate) fn space_json(
    space: &StitchSpace,
    costs: Option<&[snnet_core::zoo::Cost]>,
) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let stitches: Vec<StitchJson<'_>> = space
        .stitches()
        .iter()
        .map(|stitch| {
            let cost = costs.and_then(|c| c.get(stitch.id.index()));
            StitchJson {
                stitch,
                kind: stitch.kind(),
                description: space.describe(stitch),
                flops: cost.map(|c| c.flops),
                params: cost.map(|c| c.params),
            }
        })
        .collect();
    let names: Vec<&str> = space.anchors().iter().map(|a| a.name.as_str()).collect();
    let mut json = serde_json::Map::new();
    json.insert("anchors".into(), serde_json::to_value(names)?);
    json.insert("config".into(), serde_json::to_value(space.config())?);
    if space.is_hierarchical() {
        json.insert("stages".into(), serde_json::to_value(space.stages())?);
    }
    json.insert("count".into(), space.len().into());
    json.insert("evaluated_count".into(), space.evaluated().count().into());
    json.insert(
        "layer_groups".into(),
        serde_json::to_value(space.layer_groups())?,
    );
    json.insert("stitches".into(), serde_json::to_value(stitches)?);
    Ok(json)
}

fn space(args: &SpaceArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = args.specs.registry()?;
    let anchors = registry.resolve(&args.anchors)?;
    let space = StitchSpace::new(anchors, args.space.config())?;
    let evaluated = space.evaluated().count();
    match args.format {
        Format::Json => {
            let json = space_json(&space, None)?;
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
        }
        Format::Table => {
            let names: Vec<&str> = space.anchors().iter().map(|a| a.name.as_str()).collect();
            let config = space.config();
            writeln!(
                out,
                "{} stitches ({evaluated} evaluated) of {}",
                space.len(),
                names.join(", ")
            )?;
            let layers: usize = space.layer_groups().iter().map(|g| g.num_layers()).sum();
            write!(
                out,
                "kernel {}, stride {}, {} pairing, {}",
                config.kernel_size, config.stride, config.pairing, config.direction
            )?;
            if space.is_hierarchical() {
                let stages: Vec<String> = space.stages().iter().map(ToString::to_string).collect();
                write!(out, ", stages {}", stages.join(","))?;
            }
            writeln!(
                out,
                "; {layers} stitching layers in {} groups\n",
                space.layer_groups().len()
            )?;
            writeln!(out, "{:>5}  path", "id")?;
            for stitch in space.stitches() {
                let note = if stitch.evaluated {
                    ""
                } else {
                    "  (not evaluated)"
                };
                writeln!(out, "{:>5}  {}{note}", stitch.id, space.describe(stitch))?;
            }
        }
    }
    Ok(())
}

fn anchors(args: &AnchorsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = args.specs.registry()?;
    match args.format {
        Format::Json => {
            let specs: Vec<_> = registry.specs().collect();
            writeln!(out, "{}", serde_json::to_string(&specs)?)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<34} {:<22} {:<7} {:<14} widths",
                "name", "label", "layout", "depths"
            )?;
            for spec in registry.specs() {
                let join = |v: Vec<usize>| {
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                };
                writeln!(
                    out,
                    "{:<34} {:<22} {:<7} {:<14} {}",
                    spec.name,
                    spec.label(),
                    spec.layout,
                    join(spec.depths()),
                    join(spec.widths())
                )?;
            }
        }
    }
    Ok(())
}

fn read_table(path: &PathBuf) -> Result<StitchTable, CliError> {
    StitchTable::read_jsonl(path).map_err(|source| match source {
        // The I/O error already names the file.
        e @ snnet_core::select::Error::Io { .. } => CliError::Select(e),
        source => CliError::Table {
            path: path.clone(),
            source,
        },
    })
}

fn record_line(record: &StitchRecord) -> String {
    let mut parts = vec![format!("acc1 {:.3} %", record.acc1)];
    if let Some(acc5) = record.acc5 {
        parts.push(format!("acc5 {acc5:.3} %"));
    }
    if let Some(flops) = record.flops {
        parts.push(human(flops as f64, "FLOPs"));
    }
    if let Some(params) = record.params {
        parts.push(human(params as f64, "params"));
    }
    if let Some(ms) = record.latency_ms {
        parts.push(format!("{ms:.3} ms"));
    }
    if let Some(bytes) = record.memory_bytes {
        parts.push(human(bytes as f64, "B"));
    }
    parts.join(", ")
}

fn select(args: &SelectArgs, out: &mut impl Write) -> Result<(), CliError> {
    let table = read_table(&args.table)?;
    let budget = args.budget.budget().ok_or_else(|| {
        CliError::Usage("one of --max-flops, --max-params, --max-latency-ms is required".into())
    })?;
    let record = table.select(budget)?;
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(record)?)?,
        Format::Table => writeln!(
            out,
            "stitch {} (best of {} within {budget}): {}",
            record.id,
            table.len(),
            record_line(record)
        )?,
    }
    Ok(())
}

fn pareto(args: &ParetoArgs, out: &mut impl Write) -> Result<(), CliError> {
    let table = read_table(&args.table)?;
    let frontier = table.pareto(args.cost)?;
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&frontier)?)?,
        Format::Table => {
            writeln!(
                out,
                "Pareto frontier by {}: {} of {} stitches\n",
                args.cost,
                frontier.len(),
                table.len()
            )?;
            writeln!(out, "{:>5}  accuracy and cost", "id")?;
            for record in frontier {
                writeln!(out, "{:>5}  {}", record.id, record_line(record))?;
            }
        }
    }
    Ok(())
}
