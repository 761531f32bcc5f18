//! The runtime verbs: `profile` (every stitch's latency on this machine) and `serve` (the
//! SN-Net over HTTP). The logic lives in snnet-runtime; this is argument glue.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use snnet_core::burn::tensor::Device;
use snnet_core::select::{Budget, StitchTable};
use snnet_core::{SnNet, StitchId};
use snnet_runtime::{Objective, ProfilerConfig, Runtime, Server, ServerConfig};

use crate::common::CliError;
use crate::common::args::{DeviceArgs, LoadArgs};
use crate::common::format::{human, parse_count, progress_bar};
use crate::common::io::read_labels;

#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    /// The SN-Net checkpoint (from `snnet init` or `snnet train`).
    #[arg(long, value_name = "FILE")]
    snnet: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// Images per forward.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Timed forwards per stitch.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Untimed forwards per stitch before the timed ones.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Only these stitches (comma separated); default: every stitch.
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<usize>>,
    /// An evaluation table (`snnet eval`) to merge the latencies into; its rows and keys are kept.
    #[arg(long, value_name = "FILE.jsonl")]
    table: Option<PathBuf>,
    /// Do not measure memory.
    #[arg(long)]
    no_memory: bool,
    /// Where to write the table (JSON Lines).
    #[arg(long, value_name = "FILE.jsonl")]
    output: PathBuf,
}

#[derive(Debug, Args)]
#[group(id = "objective", multiple = false)]
pub(crate) struct ObjectiveArgs {
    /// Serve the most accurate stitch whose profiled latency is at most this (needs a profile
    /// of this machine in --table).
    #[arg(long, group = "objective")]
    max_latency_ms: Option<f64>,
    /// Serve the most accurate stitch within this many FLOPs (5e9, 5G, ...).
    #[arg(long, value_parser = parse_count, group = "objective")]
    max_flops: Option<u64>,
    /// Adaptive mode: keep the p95 latency at most this, moving along the frontier as load
    /// changes.
    #[arg(long, group = "objective")]
    slo_p95_ms: Option<f64>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The SN-Net checkpoint (from `snnet init` or `snnet train`).
    #[arg(long, value_name = "FILE")]
    snnet: PathBuf,
    /// The stitch table: `snnet eval` output, ideally merged with `snnet profile` of this machine.
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    objective: ObjectiveArgs,
    /// Class labels, one per line.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// The most images one forward runs when requests queue up (dynamic batching).
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    /// Larger request bodies get 413.
    #[arg(long, default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// Forwards that may run at the same time.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[command(flatten)]
    device: DeviceArgs,
    /// Accept latency budgets against a profile measured on another machine or batch size.
    #[arg(long)]
    allow_foreign_profile: bool,
}

/// Loads the checkpoint `snnet serve` serves: NaN or infinite weights are always refused.
fn load(path: &Path, device: &Device) -> Result<SnNet, CliError> {
    Ok(SnNet::load(path, device)?.0)
}

fn read_table(path: &Path) -> Result<StitchTable, CliError> {
    StitchTable::read_jsonl(path).map_err(|source| CliError::Table {
        path: path.to_owned(),
        source,
    })
}

/// `snnet profile`.
pub(crate) fn profile(args: &ProfileArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = args.device.device()?;
    let net = args.load.snnet(&args.snnet, &device)?;
    let eval = args.table.as_deref().map(read_table).transpose()?;
    let ids = args
        .ids
        .as_ref()
        .map(|ids| ids.iter().copied().map(StitchId).collect::<Vec<_>>());
    let total = ids.as_ref().map_or(net.num_stitches(), Vec::len);
    let profiler = ProfilerConfig::new()
        .with_batch(args.batch)
        .with_iters(args.iters)
        .with_warmup(args.warmup)
        .with_threads(args.threads)
        .with_ids(ids)
        .with_memory(!args.no_memory)
        .init(&device)?;
    let bar = progress_bar(total as u64, "profiling");
    let profile = profiler.run(&net, |p| {
        bar.set_message(format!(
            "stitch {} {:.2} ms",
            p.stitch.id, p.stitch.latency.median_ms
        ));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let table = profile.to_table(eval.as_ref())?;
    table.write_jsonl(&args.output)?;
    let meta = &profile.meta;
    writeln!(
        out,
        "{} stitches on {} ({}), batch {}, {} threads, median of {} after {} warm-up:",
        profile.stitches.len(),
        meta.device,
        meta.cpu,
        meta.batch,
        meta.threads,
        meta.iters,
        meta.warmup
    )?;
    writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>10} {:>10} {:>12}  path",
        "id", "median ms", "p90 ms", "min ms", "max ms", "memory"
    )?;
    for s in &profile.stitches {
        let l = &s.latency;
        writeln!(
            out,
            "{:>5} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>12}  {}",
            s.id,
            l.median_ms,
            l.p90_ms,
            l.min_ms,
            l.max_ms,
            s.memory_bytes
                .map_or_else(|| "-".to_owned(), |b| human(b as f64, "B")),
            s.description
        )?;
    }
    writeln!(out, "wrote {}", args.output.display())?;
    Ok(())
}

/// `snnet serve`.
pub(crate) fn serve(args: &ServeArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = args.device.device()?;
    let net = load(&args.snnet, &device)?;
    let table = read_table(&args.table)?;
    let o = &args.objective;
    let objective = match (o.max_latency_ms, o.max_flops, o.slo_p95_ms) {
        (Some(ms), _, _) => Some(Objective::Budget(Budget::latency_ms(ms))),
        (_, Some(n), _) => Some(Objective::Budget(Budget::flops(n))),
        (_, _, Some(ms)) => Some(Objective::SloP95Ms(ms)),
        _ => None,
    };
    let mut builder = Runtime::builder(Arc::new(net), table, device)
        .allow_foreign_profile(args.allow_foreign_profile);
    if let Some(objective) = objective {
        builder = builder.objective(objective);
    }
    let runtime = Arc::new(builder.build()?);
    let labels = read_labels(args.labels.as_deref())?;
    let config = ServerConfig {
        addr: args.addr,
        max_batch: args.max_batch,
        max_body_bytes: args.max_body_bytes,
        labels,
        workers: args.workers,
        ..ServerConfig::default()
    };
    let stitch = runtime.current_stitch();
    let handle = Server::new(runtime.clone(), config)?.spawn(true)?;
    writeln!(
        out,
        "serving {} stitches on http://{} ({}; now stitch {stitch}: {}); ctrl-c to stop",
        runtime.net().num_stitches(),
        handle.addr(),
        runtime.objective(),
        runtime.describe(stitch)
    )?;
    out.flush()?;
    handle.wait()?;
    writeln!(out, "stopped")?;
    Ok(())
}
