//! A load generator against `snnet serve` that measures what a service owner cares about:
//! of the requests sent, how many got a correct answer in time (*effective accuracy*).
//!
//! ```sh
//! snnet serve --snnet snnet.safetensors --table profile.jsonl --deadline-ms 8 &
//! cargo run --release -p load-generator -- \
//!     --url http://127.0.0.1:8080 --phase-seconds 4 --output load.svg
//! ```
//!
//! 1. **Images**: labelled Fashion-MNIST test images (`--images`, default Debian's
//!    `/usr/share/datasets/fashion-mnist`), sent as 28×28 grayscale PNGs.
//! 2. **Capacity, measured on the spot**: each anchor (a stitch whose path has no `→`) pinned
//!    with `?stitch=`, closed loop with `--probe-clients` clients for `--probe-seconds`; the
//!    large anchor is the slowest, the small one the fastest. Its unloaded latency too.
//! 3. **Trace**: phases (`--phases calm,burst,calm,burst,calm`, `--phase-seconds` each) of
//!    open-loop Poisson arrivals: calm at `--calm-x` × the large anchor's capacity, bursts
//!    midway between the large and the small anchor's capacity, or fixed with `--rates CALM,BURST`
//!    (requests per second: the same trace against two servers or two configurations, to
//!    compare them). The deadline is
//!    `--deadline-ms`, or `--deadline-x` × the large anchor's unloaded latency.
//! 4. **Runs**: the same trace (same arrival times, same images) against the deadline-aware
//!    server (`?deadline_ms=` the deadline minus `--margin-ms` for the network stack) and
//!    pinned to each anchor (`?stitch=`), one after the other; with `--rounds N`, N rounds of
//!    all of them, each round starting one run later in the order (the deadline-aware server
//!    first, then second, …), so that a machine that slows down or speeds up during the
//!    measurement weighs on every run alike.
//! 5. **Report**: per run and phase: requests, on-time %, refused %, effective accuracy
//!    (correct *and* on time / sent), stitches used; the mean over the phases; an SVG timeline
//!    (`--output`, the first round); with several rounds, each round's report and then the
//!    mean of the rounds per run and phase, and the deadline-aware server's gaps to the best
//!    pinned anchor in every round; with `--trace FILE`, every request as a JSON line (run,
//!    round, phase, intended
//!    send time, latency, status, stitch, and the server's batch, queue and forward times,
//!    deadline left, or its reason for a refusal), to see which requests were late and why.
//!
//! Lateness counts from the moment the client meant to send, as a client sees it: a request
//! the generator could not send on time is late too.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plotters::prelude::*;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;
use serde_json::Value;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One phase of a run: requests, on time %, refused %, effective accuracy %, stitches used.
type PhaseRow = (usize, f64, f64, f64, String);

/// The command line.
#[derive(Debug, Clone)]
struct Args {
    url: String,
    images: PathBuf,
    phases: Vec<String>,
    phase_seconds: f64,
    calm_x: f64,
    /// Fixed calm and burst rates (requests per second) instead of the measured capacities.
    rates: Option<(f64, f64)>,
    deadline_ms: Option<f64>,
    deadline_x: f64,
    margin_ms: f64,
    probe_seconds: f64,
    probe_clients: usize,
    senders: usize,
    seed: u64,
    output: String,
    /// Where to write every request's outcome as JSON lines (none: not written).
    trace: Option<PathBuf>,
    skip_pinned: bool,
    /// Rounds of all runs, each starting one run later in the order.
    rounds: usize,
}

impl Args {
    fn parse(args: impl IntoIterator<Item = String>) -> Res<Self> {
        let mut a = Args {
            url: "http://127.0.0.1:8080".to_owned(),
            images: PathBuf::from("/usr/share/datasets/fashion-mnist"),
            phases: ["calm", "burst", "calm", "burst", "calm"]
                .map(str::to_owned)
                .to_vec(),
            phase_seconds: 4.0,
            calm_x: 0.3,
            rates: None,
            deadline_ms: None,
            deadline_x: 3.0,
            margin_ms: 0.5,
            probe_seconds: 2.0,
            probe_clients: 8,
            senders: 192,
            seed: 7,
            output: "load.svg".to_owned(),
            trace: None,
            skip_pinned: false,
            rounds: 1,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--skip-pinned" {
                a.skip_pinned = true;
                continue;
            }
            let value = args.next().ok_or(format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--url" => a.url = value,
                "--images" => a.images = value.into(),
                "--phases" => a.phases = value.split(',').map(str::to_owned).collect(),
                "--phase-seconds" => a.phase_seconds = value.parse()?,
                "--calm-x" => a.calm_x = value.parse()?,
                "--rates" => a.rates = Some(parse_rates(&value)?),
                "--deadline-ms" => a.deadline_ms = Some(value.parse()?),
                "--deadline-x" => a.deadline_x = value.parse()?,
                "--margin-ms" => a.margin_ms = value.parse()?,
                "--probe-seconds" => a.probe_seconds = value.parse()?,
                "--probe-clients" => a.probe_clients = value.parse()?,
                "--senders" => a.senders = value.parse()?,
                "--seed" => a.seed = value.parse()?,
                "--output" => a.output = value,
                "--trace" => a.trace = Some(value.into()),
                "--rounds" => {
                    a.rounds = value
                        .parse()
                        .ok()
                        .filter(|&n: &usize| n >= 1)
                        .ok_or(format!("--rounds takes a positive count; got {value}"))?;
                }
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if a.phases.iter().any(|p| p != "calm" && p != "burst") {
            return Err("--phases takes calm and burst, comma separated".into());
        }
        Ok(a)
    }
}

/// `CALM,BURST`: two positive, finite rates in requests per second.
fn parse_rates(value: &str) -> Res<(f64, f64)> {
    let rates: Vec<f64> = value
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--rates {value}: {e}"))?;
    match rates[..] {
        [calm, burst] if [calm, burst].iter().all(|r| r.is_finite() && *r > 0.0) => {
            Ok((calm, burst))
        }
        _ => Err(
            format!("--rates takes two positive rates per second, CALM,BURST; got {value}").into(),
        ),
    }
}

/// Uniform in (0, 1], from a seeded splitmix64 stream (arrival times).
fn unit(rng: &mut SplitMix64) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// Reads a gzipped IDX file.
fn read_idx(path: &Path) -> Res<Vec<u8>> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The test images as PNGs, with their labels.
fn fashion_mnist(dir: &Path) -> Res<Vec<(Arc<Vec<u8>>, usize)>> {
    let images = read_idx(&dir.join("t10k-images-idx3-ubyte.gz"))?;
    let labels = read_idx(&dir.join("t10k-labels-idx1-ubyte.gz"))?;
    let n = labels.len().saturating_sub(8);
    let pixels = images.get(16..).ok_or("short image file")?;
    (0..n)
        .map(|i| {
            let raw = pixels
                .get(i * 784..(i + 1) * 784)
                .ok_or("short image file")?
                .to_vec();
            let img = image::GrayImage::from_raw(28, 28, raw).ok_or("bad image")?;
            let mut png = Vec::new();
            image::DynamicImage::ImageLuma8(img)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            let label = *labels.get(8 + i).ok_or("short label file")? as usize;
            Ok((Arc::new(png), label))
        })
        .collect()
}

/// One request's outcome.
#[derive(Debug, Clone)]
struct Outcome {
    /// When the client meant to send it, seconds from the run's start.
    intended_s: f64,
    /// From the intended send time to the answer, ms.
    latency_ms: f64,
    status: u16,
    stitch: Option<u64>,
    correct: bool,
    /// The server said its answer was late (`"on_time": false`): late by its own clock, not
    /// only on the way to the client.
    server_late: bool,
    phase: usize,
    /// The server's own account: batch size, queue and forward ms, deadline left (ms).
    batch: Option<u64>,
    queue_ms: Option<f64>,
    forward_ms: Option<f64>,
    left_ms: Option<f64>,
    /// The server's reason when it did not answer (`"error"`).
    error: Option<String>,
}

impl Outcome {
    /// One JSON line of `--trace`.
    fn json(&self, run: &str, round: usize) -> Value {
        serde_json::json!({
            "run": run,
            "round": round,
            "phase": self.phase,
            "intended_s": self.intended_s,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "stitch": self.stitch,
            "correct": self.correct,
            "server_late": self.server_late,
            "batch": self.batch,
            "queue_ms": self.queue_ms,
            "forward_ms": self.forward_ms,
            "deadline_left_ms": self.left_ms,
            "error": self.error,
        })
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .max_idle_connections_per_host(1024)
        .build()
        .into()
}

/// Status (0: no answer) and the JSON answer of one classify request.
fn send(agent: &ureq::Agent, url: &str, body: &[u8]) -> (u16, Value) {
    let Ok(mut response) = agent
        .post(url)
        .header("content-type", "image/png")
        .send(body)
    else {
        return (0, Value::Null);
    };
    let status = response.status().as_u16();
    let json: Value = response
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

/// Answers per second of `url` with `clients` closed-loop clients for `seconds`, and the
/// median latency of one client alone.
fn probe(url: &str, images: &[(Arc<Vec<u8>>, usize)], clients: usize, seconds: f64) -> (f64, f64) {
    let client = agent();
    let mut alone: Vec<f64> = (0..40)
        .map(|i| {
            let t = Instant::now();
            let _ = send(&client, url, &images[i % images.len()].0);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    alone.sort_by(f64::total_cmp);
    let median = alone[alone.len() / 2];
    let stop = Instant::now() + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (url, images) = (url.to_owned(), images.to_vec());
            std::thread::spawn(move || {
                let agent = agent();
                let mut n = 0usize;
                while Instant::now() < stop {
                    if send(&agent, &url, &images[(c * 31 + n) % images.len()].0).0 == 200 {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    (answered as f64 / seconds, median)
}

/// The trace: (intended send time s, image index, phase).
fn trace(args: &Args, calm: f64, burst: f64, n_images: usize) -> Vec<(f64, usize, usize)> {
    let mut rng = SplitMix64::seed_from_u64(args.seed);
    let mut out = Vec::new();
    let mut t = 0.0;
    for (phase, kind) in args.phases.iter().enumerate() {
        let rate = if kind == "burst" { burst } else { calm };
        let end = (phase + 1) as f64 * args.phase_seconds;
        loop {
            t += -unit(&mut rng).ln() / rate;
            if t >= end {
                t = end;
                break;
            }
            out.push((t, (rng.next_u64() % n_images as u64) as usize, phase));
        }
    }
    out
}

/// Runs the trace against `url`, open loop: each sender thread that is free takes the next
/// request of the trace, sleeps until its time and sends it, so that a request waits only
/// when every sender is waiting for an answer (and then counts late from its intended time).
/// No dispatcher thread hands requests over: the generator shares the server's cores, and
/// every wake-up it saves is CPU the server keeps.
fn run_trace(
    args: &Args,
    url: &str,
    trace: &[(f64, usize, usize)],
    images: &[(Arc<Vec<u8>>, usize)],
) -> Vec<Outcome> {
    let trace: Arc<Vec<(f64, usize, usize)>> = Arc::new(trace.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(trace.len())));
    let start = Instant::now() + Duration::from_millis(200);
    let senders: Vec<_> = (0..args.senders)
        .map(|_| {
            let (trace, next, outcomes, url, images) = (
                trace.clone(),
                next.clone(),
                outcomes.clone(),
                url.to_owned(),
                images.to_vec(),
            );
            std::thread::spawn(move || {
                let agent = agent();
                while let Some(&(intended_s, image, phase)) =
                    trace.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let due = start + Duration::from_secs_f64(intended_s);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let (body, label) = &images[image];
                    let (status, json) = send(&agent, &url, body);
                    let done = start.elapsed().as_secs_f64();
                    let top1 = json["predictions"][0][0]["index"].as_u64();
                    if let Ok(mut o) = outcomes.lock() {
                        o.push(Outcome {
                            intended_s,
                            latency_ms: (done - intended_s) * 1e3,
                            status,
                            stitch: json["stitch"].as_u64(),
                            correct: status == 200 && top1 == Some(*label as u64),
                            server_late: json["on_time"].as_bool() == Some(false),
                            phase,
                            batch: json["batch"].as_u64(),
                            queue_ms: json["queue_ms"].as_f64(),
                            forward_ms: json["latency_ms"].as_f64(),
                            left_ms: json["deadline_left_ms"].as_f64(),
                            error: json["error"].as_str().map(str::to_owned),
                        });
                    }
                }
            })
        })
        .collect();
    for s in senders {
        let _ = s.join();
    }
    let mut out = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    out.sort_by(|a, b| a.intended_s.total_cmp(&b.intended_s));
    out
}

/// The order of `runs` runs in round `round` (from 0): the same cycle, starting one run later
/// each round.
fn round_order(round: usize, runs: usize) -> Vec<usize> {
    (0..runs).map(|k| (round + k) % runs).collect()
}

/// Prints one run's table: per phase requests, on time %, refused %, effective accuracy %,
/// stitches used.
fn print_rows(name: &str, args: &Args, rows: &[PhaseRow]) {
    println!("\n{name}");
    println!(
        "{:>6} {:>6} {:>9} {:>9} {:>9} {:>10}  stitches (answers)",
        "phase", "kind", "requests", "on time", "refused", "eff. acc."
    );
    for ((phase, kind), row) in args.phases.iter().enumerate().zip(rows) {
        println!(
            "{phase:>6} {kind:>6} {:>9} {:>8.1}% {:>8.1}% {:>9.2}%  {}",
            row.0, row.1, row.2, row.3, row.4
        );
    }
}

/// The share of the answers that came late, in %: (late, answered, %).
fn late_share(outcomes: &[Outcome], deadline_ms: f64) -> (usize, usize, f64) {
    let answered = outcomes.iter().filter(|o| o.status == 200).count();
    let late = outcomes
        .iter()
        .filter(|o| o.status == 200 && o.latency_ms > deadline_ms)
        .count();
    (late, answered, 100.0 * late as f64 / answered.max(1) as f64)
}

/// The mean over the phases of the effective accuracy of `rows`, in %.
fn mean_effective(rows: &[PhaseRow]) -> f64 {
    rows.iter().map(|r| r.3).sum::<f64>() / rows.len().max(1) as f64
}

/// Per phase: (requests, on time %, refused %, effective accuracy %, stitches used), printed.
fn report(name: &str, args: &Args, outcomes: &[Outcome], deadline_ms: f64) -> Vec<PhaseRow> {
    let mut rows = Vec::new();
    for phase in 0..args.phases.len() {
        let sent: Vec<&Outcome> = outcomes.iter().filter(|o| o.phase == phase).collect();
        let n = sent.len().max(1) as f64;
        let on_time = sent
            .iter()
            .filter(|o| o.status == 200 && o.latency_ms <= deadline_ms)
            .count();
        let refused = sent.iter().filter(|o| o.status != 200).count();
        let effective = sent
            .iter()
            .filter(|o| o.correct && o.latency_ms <= deadline_ms)
            .count();
        let mut stitches: BTreeMap<u64, usize> = BTreeMap::new();
        for s in sent.iter().filter_map(|o| o.stitch) {
            *stitches.entry(s).or_default() += 1;
        }
        let used = stitches
            .iter()
            .map(|(s, c)| format!("{s}:{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        let row = (
            sent.len(),
            100.0 * on_time as f64 / n,
            100.0 * refused as f64 / n,
            100.0 * effective as f64 / n,
            used,
        );
        rows.push(row);
    }
    print_rows(name, args, &rows);
    let (late, answered, share) = late_share(outcomes, deadline_ms);
    let server_late = outcomes.iter().filter(|o| o.server_late).count();
    println!(
        "mean effective accuracy over the phases {:.2} %; {late} of {answered} answers late ({share:.2} %; {server_late} late by the server's own clock)",
        mean_effective(&rows)
    );
    rows
}

/// Runs the generator with its command line (without the program name): see the crate docs.
///
/// # Errors
/// A bad argument, unreadable images, or a server that cannot be reached.
pub fn run(args: impl IntoIterator<Item = String>) -> Res<()> {
    let args = Args::parse(args)?;
    let images = fashion_mnist(&args.images)?;
    println!("{} labelled test images", images.len());
    let classify = format!("{}/v1/classify", args.url);
    let table: Value = serde_json::from_str(
        &agent()
            .get(format!("{}/v1/stitches", args.url))
            .call()?
            .body_mut()
            .read_to_string()?,
    )?;
    let anchors: Vec<u64> = table["stitches"]
        .as_array()
        .ok_or("no stitches in /v1/stitches")?
        .iter()
        .filter(|s| s["description"].as_str().is_some_and(|d| !d.contains('→')))
        .filter_map(|s| s["cfg_id"].as_u64())
        .collect();
    // Capacity of each anchor, measured now.
    let mut capacity = Vec::new();
    for &id in &anchors {
        let url = format!("{classify}?stitch={id}");
        let (rate, alone) = probe(&url, &images, args.probe_clients, args.probe_seconds);
        println!(
            "anchor {id}: {rate:.0} answers/s with {} clients, {alone:.2} ms alone",
            args.probe_clients
        );
        capacity.push((id, rate, alone));
    }
    let large = capacity
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or("no anchors")?;
    let small = capacity
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .ok_or("no anchors")?;
    let (calm, burst) = args
        .rates
        .unwrap_or((args.calm_x * large.1, (large.1 + small.1) / 2.0));
    let deadline_ms = args.deadline_ms.unwrap_or(args.deadline_x * large.2);
    println!(
        "large anchor {} ({:.0}/s), small anchor {} ({:.0}/s): calm {calm:.0}/s, bursts {burst:.0}/s{}, deadline {deadline_ms:.2} ms",
        large.0,
        large.1,
        small.0,
        small.1,
        if args.rates.is_some() {
            " (fixed by --rates)"
        } else {
            ""
        }
    );
    let trace = trace(&args, calm, burst, images.len());
    println!("{} requests over {} phases", trace.len(), args.phases.len());
    let server_deadline = (deadline_ms - args.margin_ms).max(0.01);
    // The runs, in order: the deadline-aware server, then pinned to each anchor.
    let mut specs = vec![(
        "deadline-aware".to_owned(),
        format!("{classify}?deadline_ms={server_deadline}"),
    )];
    if !args.skip_pinned {
        specs.extend(capacity.iter().map(|&(id, ..)| {
            (
                format!("pinned to anchor {id}"),
                format!("{classify}?stitch={id}"),
            )
        }));
    }
    let mut rounds: Vec<Vec<(String, Vec<Outcome>)>> = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); specs.len()];
        for (k, i) in round_order(round, specs.len()).into_iter().enumerate() {
            if round > 0 || k > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            if let (Some(slot), Some((_, url))) = (outcomes.get_mut(i), specs.get(i)) {
                *slot = run_trace(&args, url, &trace, &images);
            }
        }
        rounds.push(
            specs
                .iter()
                .map(|(name, _)| name.clone())
                .zip(outcomes)
                .collect(),
        );
    }
    let names: Vec<&str> = specs.iter().map(|(name, _)| name.as_str()).collect();
    let mut tables = Vec::with_capacity(rounds.len());
    for (round, runs) in rounds.iter().enumerate() {
        if args.rounds > 1 {
            println!("\n=== round {} of {} ===", round + 1, args.rounds);
        }
        let all: Vec<Vec<PhaseRow>> = runs
            .iter()
            .map(|(name, outcomes)| report(name, &args, outcomes, deadline_ms))
            .collect();
        summary(&names, &all);
        tables.push(all);
    }
    if args.rounds > 1 {
        mean_of_rounds(&args, &names, &rounds, &tables, deadline_ms);
    }
    if let Some(path) = &args.trace {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (round, runs) in rounds.iter().enumerate() {
            for (name, outcomes) in runs {
                for o in outcomes {
                    writeln!(out, "{}", o.json(name, round + 1))?;
                }
            }
        }
        out.flush()?;
        println!("wrote {}", path.display());
    }
    let first = rounds.first().map_or(&[][..], Vec::as_slice);
    plot(&args, first, deadline_ms)?;
    println!("\nwrote {}", args.output);
    Ok(())
}

/// The deadline-aware run (first in `all`) against the pinned ones: the mean effective
/// accuracy of each, printed, and the deadline-aware run's gaps to the best pinned anchor
/// `(mean over the phases, worst phase)`; `None` without pinned runs.
fn summary(names: &[&str], all: &[Vec<PhaseRow>]) -> Option<(f64, f64)> {
    let (aware, pinned) = all.split_first()?;
    println!("\nmean effective accuracy over the phases:");
    for (name, rows) in names.iter().zip(all) {
        println!("  {name:<24} {:>7.2} %", mean_effective(rows));
    }
    if pinned.is_empty() {
        return None;
    }
    let (mean_gap, worst_gap) = gaps(aware, pinned);
    println!(
        "deadline-aware minus the best pinned anchor: {mean_gap:+.2} points (mean over the phases)"
    );
    println!("worst phase, deadline-aware minus the best pinned anchor: {worst_gap:+.2} points");
    Some((mean_gap, worst_gap))
}

/// `aware`'s gaps to the best of `pinned`: (mean over the phases, worst phase), in points.
fn gaps(aware: &[PhaseRow], pinned: &[Vec<PhaseRow>]) -> (f64, f64) {
    let best_pinned_mean = pinned
        .iter()
        .map(|r| mean_effective(r))
        .fold(f64::NEG_INFINITY, f64::max);
    let worst_gap = aware
        .iter()
        .enumerate()
        .map(|(phase, row)| {
            let best = pinned
                .iter()
                .filter_map(|r| r.get(phase).map(|p| p.3))
                .fold(f64::NEG_INFINITY, f64::max);
            row.3 - best
        })
        .fold(f64::INFINITY, f64::min);
    (mean_effective(aware) - best_pinned_mean, worst_gap)
}

/// Per run and phase, the mean of the rounds' on-time, refused and effective accuracy; then
/// the deadline-aware run's gaps and late share in every round.
fn mean_of_rounds(
    args: &Args,
    names: &[&str],
    rounds: &[Vec<(String, Vec<Outcome>)>],
    tables: &[Vec<Vec<PhaseRow>>],
    deadline_ms: f64,
) {
    println!("\n=== mean of {} rounds ===", tables.len());
    let n = tables.len().max(1) as f64;
    let means: Vec<Vec<PhaseRow>> = (0..names.len())
        .map(|run| {
            (0..args.phases.len())
                .map(|phase| {
                    let rows: Vec<&PhaseRow> = tables
                        .iter()
                        .filter_map(|t| t.get(run).and_then(|r| r.get(phase)))
                        .collect();
                    let sum = |f: fn(&PhaseRow) -> f64| rows.iter().map(|r| f(r)).sum::<f64>() / n;
                    (
                        rows.first().map_or(0, |r| r.0),
                        sum(|r| r.1),
                        sum(|r| r.2),
                        sum(|r| r.3),
                        String::new(),
                    )
                })
                .collect()
        })
        .collect();
    for (name, rows) in names.iter().zip(&means) {
        print_rows(name, args, rows);
    }
    summary(names, &means);
    println!("\nper round, deadline-aware: mean gap / worst-phase gap / answers late");
    for (round, (table, runs)) in tables.iter().zip(rounds).enumerate() {
        let late = runs
            .first()
            .map_or(0.0, |(_, outcomes)| late_share(outcomes, deadline_ms).2);
        match table.split_first() {
            Some((aware, pinned)) if !pinned.is_empty() => {
                let (mean_gap, worst_gap) = gaps(aware, pinned);
                println!(
                    "  round {}: {mean_gap:+.2} / {worst_gap:+.2} points / {late:.2} %",
                    round + 1
                );
            }
            _ => println!("  round {}: {late:.2} % late", round + 1),
        }
    }
}

/// One panel per run: each request's latency from its intended send time (green on time and
/// correct, orange on time and wrong, red late, grey refused), the deadline, the phases.
fn plot(args: &Args, runs: &[(String, Vec<Outcome>)], deadline_ms: f64) -> Res<()> {
    let end = args.phase_seconds * args.phases.len() as f64;
    let height = 260 * runs.len().max(1) as u32;
    let root = SVGBackend::new(&args.output, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((runs.len().max(1), 1));
    let y_max = deadline_ms * 3.0;
    for ((name, outcomes), panel) in runs.iter().zip(panels.iter()) {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{name}: latency from intended send (deadline {deadline_ms:.1} ms)"),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..end, 0.0..y_max)?;
        chart.configure_mesh().x_desc("s").y_desc("ms").draw()?;
        for (phase, kind) in args.phases.iter().enumerate() {
            if kind == "burst" {
                let x0 = phase as f64 * args.phase_seconds;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x0 + args.phase_seconds, y_max)],
                    RGBColor(230, 230, 250).filled(),
                )))?;
            }
        }
        chart.draw_series(LineSeries::new(
            [(0.0, deadline_ms), (end, deadline_ms)],
            BLACK.stroke_width(1),
        ))?;
        chart.draw_series(outcomes.iter().map(|o| {
            let color = match (o.status, o.latency_ms <= deadline_ms, o.correct) {
                (200, true, true) => GREEN.mix(0.5),
                (200, true, false) => RGBColor(255, 140, 0).mix(0.6),
                (200, false, _) => RED.mix(0.6),
                _ => RGBColor(120, 120, 120).mix(0.4),
            };
            let y = if o.status == 200 {
                o.latency_ms.min(y_max)
            } else {
                0.0
            };
            Circle::new((o.intended_s, y), 1, color.filled())
        }))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Res<Args> {
        Args::parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn refuses_unknown_incomplete_and_bad_arguments() {
        let err = |list: &[&str]| parse(list).err().map(|e| e.to_string());
        assert_eq!(err(&["--peak"]).as_deref(), Some("--peak needs a value"));
        assert_eq!(
            err(&["--peak", "1"]).as_deref(),
            Some("unknown argument --peak")
        );
        assert!(err(&["--deadline-ms", "soon"]).is_some());
        for bad in ["500", "500,0", "500,-1", "500,inf", "500,2700,9", "a,b"] {
            assert!(
                err(&["--rates", bad]).is_some_and(|e| e.contains("--rates")),
                "{bad}"
            );
        }
        for bad in ["0", "-1", "two"] {
            assert!(
                err(&["--rounds", bad]).is_some_and(|e| e.contains("--rounds")),
                "{bad}"
            );
        }
        assert_eq!(
            err(&["--phases", "calm,storm"]).as_deref(),
            Some("--phases takes calm and burst, comma separated")
        );
    }

    #[test]
    fn reads_the_phases_and_the_deadline() -> Res<()> {
        let args = parse(&[
            "--phases",
            "burst,calm",
            "--deadline-ms",
            "8",
            "--skip-pinned",
        ])?;
        assert_eq!(args.phases, ["burst", "calm"]);
        assert_eq!(args.deadline_ms, Some(8.0));
        assert_eq!(args.rates, None);
        assert_eq!(
            parse(&["--rates", "490,2700"])?.rates,
            Some((490.0, 2700.0))
        );
        assert!(args.skip_pinned);
        assert_eq!(args.rounds, 1);
        assert_eq!(parse(&["--rounds", "3"])?.rounds, 3);
        Ok(())
    }

    #[test]
    fn each_round_starts_one_run_later() {
        assert_eq!(round_order(0, 4), [0, 1, 2, 3]);
        assert_eq!(round_order(1, 4), [1, 2, 3, 0]);
        assert_eq!(round_order(5, 4), [1, 2, 3, 0]);
        assert_eq!(round_order(2, 1), [0]);
        assert!(round_order(0, 0).is_empty());
    }

    #[test]
    fn gaps_are_to_the_best_pinned_run_overall_and_per_phase() {
        let row = |eff: f64| (100, 100.0, 0.0, eff, String::new());
        let aware = [row(80.0), row(60.0), row(82.0)];
        // Anchor A is best in the burst, B on the mean (75 against 70).
        let a = vec![row(70.0), row(70.0), row(70.0)];
        let b = vec![row(79.0), row(66.0), row(80.0)];
        let (mean_gap, worst_gap) = gaps(&aware, &[a, b]);
        assert!((mean_gap - (74.0 - 75.0)).abs() < 1e-9, "{mean_gap}");
        assert!((worst_gap - (60.0 - 70.0)).abs() < 1e-9, "{worst_gap}");
    }

    #[test]
    fn uniform_draws_lie_in_the_half_open_unit_interval() {
        let mut rng = SplitMix64::seed_from_u64(7);
        for _ in 0..10_000 {
            let u = unit(&mut rng);
            assert!(u > 0.0 && u <= 1.0, "{u}");
        }
    }
}
