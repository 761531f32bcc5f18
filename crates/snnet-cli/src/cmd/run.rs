//! `snnet run`: the main job ([`snnet_train::pipeline::run`]) with progress bars and a summary.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use snnet_train::pipeline::{self, Preset, RunConfig};

use crate::common::args::{DeviceArgs, ParallelArgs, training_device};
use crate::common::format::{Progress, human, parse_count};
use crate::common::{CliError, Format};

/// Presets of the main job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PresetArg {
    /// A few minutes on a 2-core CPU: subsets of the data, few epochs.
    Quick,
    /// The long run: all the data, more epochs.
    Full,
}

impl From<PresetArg> for Preset {
    fn from(preset: PresetArg) -> Self {
        match preset {
            PresetArg::Quick => Self::Quick,
            PresetArg::Full => Self::Full,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// How long a run.
    #[arg(long, value_enum, default_value_t = PresetArg::Quick)]
    preset: PresetArg,
    /// The run folder: anchors' weights, SN-Net checkpoints, eval.jsonl, pareto.svg, logs and the
    /// run's config. An existing folder resumes (finished steps are skipped).
    #[arg(long, value_name = "DIR", default_value = "runs/quick")]
    out: PathBuf,
    /// Folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The FLOPs budget of the final selection (default: halfway between the smallest and the
    /// largest anchor).
    #[arg(long, value_parser = parse_count)]
    budget_flops: Option<u64>,
    #[command(flatten)]
    parallel: ParallelArgs,
    /// Joint-training epochs instead of the preset's (quick: 5, full: 10). The quick preset's five
    /// took about 8 minutes on this project's 2-core VM while its CPU reported AVX-512
    /// (docs/REPRODUCTION.md); fewer shorten the run at the price of the stitches' accuracy.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    joint_epochs: Option<u16>,
    /// Pretrain the anchors from scratch instead of starting from the shipped pretrained weights
    /// (the full preset always pretrains).
    #[arg(long)]
    pretrain: bool,
    #[command(flatten)]
    device: DeviceArgs,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// `snnet run`: pretrain the anchors → SN-Net → least-squares init → joint training → evaluate
/// every stitch → Pareto plot and table → select a stitch for a budget.
pub(crate) fn run(args: &RunArgs, out: &mut impl Write) -> Result<(), CliError> {
    let config = RunConfig::preset(args.preset.into())
        .with_data_dir(args.data.clone())
        .with_shards(args.parallel.shards)
        .with_devices(args.parallel.devices.clone())
        .with_budget_flops(args.budget_flops);
    let mut config = if args.pretrain {
        config.with_pretraining(true)
    } else {
        config
    };
    if let Some(epochs) = args.joint_epochs {
        config.joint.epochs = usize::from(epochs);
    }
    let dir = &args.out;
    let device = training_device(&args.parallel.devices, &args.device)?;
    let outcome =
        pipeline::run(&config, dir, &device, &mut Progress::default()).map_err(|e| match e {
            e @ snnet_train::Error::Checksum { .. } if !args.pretrain => CliError::Hinted {
                source: Box::new(e),
                hint: "`snnet run --pretrain` trains the anchors instead of using shipped weights",
            },
            e => e.into(),
        })?;
    let summary = &outcome.summary;
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(summary)?)?,
        Format::Table => {
            let space = outcome.net.space();
            let frontier = outcome.frontier();
            writeln!(
                out,
                "Pareto frontier ({} of {} stitches):",
                frontier.len(),
                outcome.table.len()
            )?;
            writeln!(
                out,
                "{:>4} {:>8} {:>9} {:>7}  stitch",
                "id", "MFLOPs", "params", "top-1"
            )?;
            for r in &frontier {
                writeln!(
                    out,
                    "{:>4} {:>8} {:>9} {:>6.2}%  {}",
                    r.id,
                    r.flops
                        .map_or(String::from("?"), |f| format!("{:.3}", f as f64 / 1e6)),
                    r.params.map_or(String::from("?"), |p| p.to_string()),
                    r.acc1,
                    space.display(r.id)?
                )?;
            }
            let names = &outcome.net.config().anchors;
            let anchors: Vec<String> = summary
                .anchors
                .iter()
                .zip(names)
                .map(|(r, e)| format!("{} {:.2} %", e.name, r.acc1))
                .collect();
            writeln!(out, "\nanchors: {}", anchors.join(", "))?;
            let checks = &summary.checks;
            let rhos: Vec<String> = checks
                .pairs
                .iter()
                .map(|p| {
                    format!(
                        "{}→{} {}",
                        names.get(p.front).map_or("?", |e| e.name.as_str()),
                        names.get(p.end).map_or("?", |e| e.name.as_str()),
                        p.rho.map_or("-".to_owned(), |r| format!("{r:.2}"))
                    )
                })
                .collect();
            writeln!(
                out,
                "stitches in [acc(S) - 0.5, acc(L) + 0.5]: {} of {}; below acc(S) - 1: {}; Spearman rho(FLOPs, top-1): {}",
                checks.in_band,
                checks.stitches,
                checks.below_floor,
                rhos.join(", ")
            )?;
            let failures = checks.failures();
            if failures.is_empty() {
                writeln!(
                    out,
                    "result: SN-Net interpolates between its anchors (all checks hold)"
                )?;
            } else {
                writeln!(out, "result: {} check(s) fail:", failures.len())?;
                for f in &failures {
                    writeln!(out, "  - {f}")?;
                }
            }
            let chosen = &summary.selected;
            writeln!(
                out,
                "\nbudget {}: stitch {} ({:.2} %, {})",
                human(summary.budget_flops as f64, "FLOPs"),
                chosen.id,
                chosen.acc1,
                space.display(chosen.id)?
            )?;
            writeln!(
                out,
                "run folder {} (eval.jsonl, pareto.svg, train_log.jsonl, run.json); {:.0} s",
                dir.display(),
                summary.seconds
            )?;
        }
    }
    Ok(())
}
