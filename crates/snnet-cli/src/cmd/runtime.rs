//! The runtime verbs: `profile` (every stitch's latency on this machine) and `serve` (the
//! SN-Net over HTTP). The logic lives in snnet-runtime; this is argument glue.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use snnet_core::burn::tensor::Device;
use snnet_core::select::StitchTable;
use snnet_core::{ModelFile, StitchId, load_model_file, sniff_model_file};
use snnet_runtime::{
    Deadline, DeadlineConfig, MAX_DEADLINE_MS, Network, Objective, ObjectiveJson, ProfilerConfig,
    Runtime, Server, ServerConfig, into_network,
};
use snnet_train::data::CLASSES;
use snnet_train::fashion_mnist::ANCHOR_NAMES;

use crate::common::CliError;
use crate::common::args::{DeviceArgs, LoadArgs};
use crate::common::format::{human, parse_count, progress_bar};
use crate::common::io::read_labels;

#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    /// The SN-Net checkpoint (from `snnet init` or `snnet train`), or one exported stitch
    /// (`snnet export`; profiles that stitch alone); safetensors or burnpack (`snnet quantize`),
    /// told apart by content.
    #[arg(long, value_name = "FILE")]
    snnet: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    int8: Int8Args,
    /// Images per forward.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Threads every forward runs on (default: all cores). `snnet serve` runs its forwards on
    /// as many by default: latency budgets and deadlines need a profile on the server's
    /// threads. For a server on few cores, fewer than all leaves the others to the HTTP and
    /// decoding threads (on a 2-core VM `--threads 1` served more, and answered fewer late;
    /// docs/RUNTIME.md).
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

impl ObjectiveArgs {
    /// The objective the flags name (the flags are named as the objective's JSON keys).
    fn objective(&self) -> Result<Option<Objective>, CliError> {
        if self.max_latency_ms.is_none() && self.max_flops.is_none() && self.slo_p95_ms.is_none() {
            return Ok(None);
        }
        let json = ObjectiveJson {
            max_latency_ms: self.max_latency_ms,
            max_flops: self.max_flops,
            slo_p95_ms: self.slo_p95_ms,
            ..ObjectiveJson::default()
        };
        Ok(Some(Objective::try_from(json)?))
    }
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The SN-Net checkpoint (from `snnet init` or `snnet train`), or one exported stitch
    /// (`snnet export`; serves that stitch alone, `?stitch=` with another id is a 400);
    /// safetensors or burnpack (`snnet quantize`), told apart by content.
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
    /// The batch size of the latency profile in --table (`snnet profile --batch N` on this
    /// machine) that latency budgets, --slo-p95-ms and deadlines rest on. For deadlines with
    /// dynamic batching, a profile at --max-batch ranks the stitches by what the server's
    /// batches cost; at batch 1 a per-forward overhead hides their differences
    /// (docs/RUNTIME.md).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Larger request bodies get 413.
    #[arg(long, default_value_t = 16 << 20)]
    max_body_bytes: usize,
    /// Forwards that may run at the same time.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Threads every forward runs on, one pool the workers share (default: the threads the
    /// --table's profile was measured on when it was measured on this machine, else all cores).
    /// Latency budgets and deadlines need a profile on as many threads.
    #[arg(long)]
    threads: Option<usize>,
    /// The nice value of the forward threads, -20 to 19 (default: the process's). Lower than
    /// the rest keeps the HTTP and decoding threads (and other processes) from stalling a
    /// forward on a machine whose cores they share; below the process's needs CAP_SYS_NICE.
    /// Linux only.
    #[arg(long, value_name = "NICE", allow_hyphen_values = true)]
    forward_nice: Option<i32>,
    /// The deadline of requests that name no choice, in milliseconds: each runs the most
    /// accurate stitch predicted to answer in time, or is refused at once (503). Needs a
    /// profile of this machine in --table. At most 60000.
    #[arg(long, value_name = "MS")]
    deadline_ms: Option<f64>,
    /// Refuse new requests (503, Retry-After) while the queue is predicted to take longer
    /// than this to drain, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    max_queue_ms: f64,
    /// The deadline model's tuning: a JSON object with any of the fields of
    /// `snnet_runtime::DeadlineConfig` (the others keep their defaults), e.g.
    /// `{"idle_half_life_ms": 50, "late_share": 0.005}`; docs/RUNTIME.md lists them.
    #[arg(long, value_name = "FILE.json")]
    deadline_config: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    int8: Int8Args,
    /// Accept latency budgets against a profile measured on another machine, batch size or
    /// number of threads.
    #[arg(long)]
    allow_foreign_profile: bool,
}

/// How the runtime verbs hold an int8 file's weights.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct Int8Args {
    /// For a burnpack file with int8 weights (`snnet quantize`): turn them into f32 once, at
    /// load, so that the fused CPU kernels run them (f32 speed and memory, the int8 file's
    /// values); without it they stay int8 in memory and run through Burn's generic ops. No
    /// effect on an f32 file.
    #[arg(long)]
    dequantize_at_load: bool,
}

/// Loads any model file as the network served, its int8 weights dequantized if asked.
fn load_served(path: &Path, int8: Int8Args, device: &Device) -> Result<Arc<dyn Network>, CliError> {
    let model = load_model_file(path, device)?;
    Ok(into_network(if int8.dequantize_at_load {
        model.dequantized()
    } else {
        model
    }))
}

/// Loads the network `snnet profile` measures: an SN-Net checkpoint (`--allow-nonfinite`
/// applies to it) or an exported stitch, safetensors or burnpack, told apart by content.
fn load_profiled(
    path: &Path,
    load: LoadArgs,
    int8: Int8Args,
    device: &Device,
) -> Result<Arc<dyn Network>, CliError> {
    if !matches!(
        sniff_model_file(path),
        Ok(ModelFile::Stitch | ModelFile::Burnpack)
    ) {
        // An f32 safetensors SN-Net: --dequantize-at-load has nothing to do.
        return Ok(Arc::new(load.snnet(path, device)?));
    }
    if load.allow_nonfinite {
        return Err(CliError::Usage(
            "--allow-nonfinite applies to SN-Net checkpoints in safetensors, not to an exported stitch or a burnpack file".to_owned(),
        ));
    }
    load_served(path, int8, device)
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
    let net = load_profiled(&args.snnet, args.load, args.int8, &device)?;
    let eval = args.table.as_deref().map(read_table).transpose()?;
    let ids = args
        .ids
        .as_ref()
        .map(|ids| ids.iter().copied().map(StitchId).collect::<Vec<_>>());
    let total = ids
        .as_ref()
        .map_or_else(|| net.stitch_ids().len(), Vec::len);
    let profiler = ProfilerConfig::new()
        .with_batch(args.batch)
        .with_iters(args.iters)
        .with_warmup(args.warmup)
        .with_threads(args.threads)
        .with_ids(ids)
        .with_memory(!args.no_memory)
        .init(&device)?;
    let bar = progress_bar(total as u64, "profiling");
    let profile = profiler.run(net.as_ref(), |p| {
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

/// Reads the deadline model's tuning (`--deadline-config`); the runtime validates the values.
fn read_deadline_config(path: &Path) -> Result<DeadlineConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CliError::JsonFile {
        path: path.to_owned(),
        source,
    })
}

/// `snnet serve`.
pub(crate) fn serve(args: &ServeArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = args.device.device()?;
    // NaN or infinite weights are always refused (`snnet serve` has no --allow-nonfinite).
    let net = load_served(&args.snnet, args.int8, &device)?;
    let table = read_table(&args.table)?;
    let objective = args.objective.objective()?;
    let default_deadline = args.deadline_ms.map(Deadline::from_ms).transpose()?;
    let mut builder = Runtime::builder(net, table, device)
        .batch(args.batch)
        .allow_foreign_profile(args.allow_foreign_profile);
    if let Some(threads) = args.threads {
        builder = builder.threads(threads);
    }
    if let Some(nice) = args.forward_nice {
        builder = builder.forward_nice(nice);
    }
    if let Some(path) = &args.deadline_config {
        builder = builder.deadline(read_deadline_config(path)?);
    }
    if let Some(objective) = objective {
        builder = builder.objective(objective);
    }
    let runtime = Arc::new(builder.build()?);
    let mut labels = read_labels(
        args.labels.as_deref(),
        runtime.net().pretrained().num_classes,
    )?;
    // The shipped Fashion-MNIST family answers with its class names.
    let anchors = &runtime.net().config().anchors;
    if args.labels.is_none()
        && anchors
            .iter()
            .all(|a| ANCHOR_NAMES.contains(&a.name.as_str()))
    {
        labels = CLASSES.iter().map(|&c| c.to_owned()).collect();
    }
    let config = ServerConfig {
        addr: args.addr,
        max_batch: args.max_batch,
        max_body_bytes: args.max_body_bytes,
        labels,
        workers: args.workers,
        default_deadline,
        max_queue_ms: args.max_queue_ms,
        ..ServerConfig::default()
    };
    let stitch = runtime.current_stitch();
    let handle = Server::new(runtime.clone(), config)?.spawn(true)?;
    writeln!(
        out,
        "serving {} stitches on http://{} ({}; now stitch {stitch}: {}{}); ctrl-c to stop",
        runtime.net().stitch_ids().len(),
        handle.addr(),
        runtime.objective(),
        runtime.describe(stitch),
        default_deadline.map_or_else(String::new, |d| format!(
            "; requests without a choice: deadline {} ms (max {MAX_DEADLINE_MS})",
            d.ms()
        ))
    )?;
    out.flush()?;
    handle.wait()?;
    writeln!(out, "stopped")?;
    Ok(())
}
