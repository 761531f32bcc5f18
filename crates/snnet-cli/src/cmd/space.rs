//! The verbs on stitch spaces and evaluation tables, without a network: `space`, `anchors`,
//! `select` and `pareto`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use snnet_core::select::{Budget, CostKind, StitchRecord};
use snnet_core::space::{AnchorRegistry, StitchSpace};

use crate::common::args::SpaceFlags;
use crate::common::format::{human, parse_count};
use crate::common::io::{read_table, space_json};
use crate::common::{CliError, Format};

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

#[derive(Debug, Args)]
pub(crate) struct SpaceArgs {
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
pub(crate) struct AnchorsArgs {
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
pub(crate) struct SelectArgs {
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
pub(crate) struct ParetoArgs {
    /// Evaluation table: JSON Lines of {"cfg_id", "flops", "params", "acc1", ...}.
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    /// The cost axis: flops, params, latency-ms or memory-bytes.
    #[arg(long, default_value = "flops", value_parser = parse_cost)]
    cost: CostKind,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_cost(s: &str) -> Result<CostKind, String> {
    s.parse()
        .map_err(|e: snnet_core::select::Error| e.to_string())
}

/// `snnet space`.
pub(crate) fn space(args: &SpaceArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = args.specs.registry()?;
    let anchors = registry.resolve(&args.anchors)?;
    let space = StitchSpace::new(anchors, args.space.config())?;
    args.space.check(&space)?;
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
                "; {layers} stitching layers ({}) in {} groups\n",
                config.layers,
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

/// `snnet anchors`.
pub(crate) fn anchors(args: &AnchorsArgs, out: &mut impl Write) -> Result<(), CliError> {
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

/// `snnet select`.
pub(crate) fn select(args: &SelectArgs, out: &mut impl Write) -> Result<(), CliError> {
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

/// `snnet pareto`.
pub(crate) fn pareto(args: &ParetoArgs, out: &mut impl Write) -> Result<(), CliError> {
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
