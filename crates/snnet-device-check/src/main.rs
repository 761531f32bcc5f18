//! `snnet-device-check`: the GPU check. Runs the parity checks of `snnet_device_check::parity`
//! and the DeiT-Ti/S/B stitch timings on each `--device`, prints a markdown report and writes it
//! to `--out`. Exits 1 when a parity check fails, 2 on an error.
//!
//! ```text
//! snnet-device-check --device wgpu --device tch:cuda:0 --batches 1,8,64 --out gpu_check.md
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use snnet_core::{DeviceSpec, StitchId};
use snnet_device_check::{Fixtures, markdown, parity, timings};

/// Checks SN-Net on each device against the CPU and the committed references, and times every
/// DeiT-Ti/S/B stitch.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Devices to check (repeatable): wgpu, wgpu:N, tch:cpu, tch:cuda:N, cuda:N, ndarray, cpu.
    #[arg(long = "device", required = true)]
    devices: Vec<DeviceSpec>,
    /// Batch sizes of the timings (comma-separated); none skips the timings.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    batches: Vec<usize>,
    /// Stitch ids to time (comma-separated); all 71 when absent.
    #[arg(long, value_delimiter = ',')]
    ids: Option<Vec<usize>>,
    /// Untimed forwards per stitch and batch size.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed forwards per stitch and batch size.
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Skip the timings (parity only).
    #[arg(long)]
    no_timings: bool,
    /// The repository root holding the fixtures (default: the workspace this was built in, else
    /// the current folder).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn fixtures(root: Option<PathBuf>) -> snnet_device_check::Result<Fixtures> {
    match root {
        Some(root) => Fixtures::new(root),
        None => Fixtures::workspace().or_else(|_| Fixtures::new(".")),
    }
}

fn run(args: Args) -> snnet_device_check::Result<bool> {
    let fixtures = fixtures(args.root)?;
    let mut report = String::from("## SN-Net device check\n\n");
    report.push_str(&format!(
        "snnet-device-check {}; CPU reference: Burn Flex on {}; {} thread(s)\n\n",
        env!("CARGO_PKG_VERSION"),
        snnet_runtime::profile::cpu_model(),
        std::thread::available_parallelism().map_or(1, usize::from)
    ));
    let mut all_passed = true;
    for spec in args.devices {
        eprintln!("{spec}: parity checks");
        let started = Instant::now();
        let checks = parity(&fixtures, spec)?;
        eprintln!("{spec}: parity in {:.1} s", started.elapsed().as_secs_f64());
        all_passed &= checks.iter().all(snnet_device_check::Check::passed);
        let times = if args.no_timings || args.batches.is_empty() {
            Vec::new()
        } else {
            let ids = args
                .ids
                .clone()
                .map(|v| v.into_iter().map(StitchId).collect());
            timings(
                spec,
                &args.batches,
                ids,
                args.warmup,
                args.iters,
                &mut |batch, done, total| eprintln!("{spec}: batch {batch}: stitch {done}/{total}"),
            )?
        };
        let section = markdown(&spec.to_string(), &checks, &times);
        println!("{section}");
        report.push_str(&section);
        report.push('\n');
    }
    if let Some(out) = args.out {
        snnet_fs::write_atomic(&out, report.as_bytes()).map_err(|e| {
            snnet_device_check::Error::Fixture {
                path: out.clone(),
                reason: e.to_string(),
            }
        })?;
        eprintln!("report written to {}", out.display());
    }
    Ok(all_passed)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("snnet-device-check: a parity check failed (see the report)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("snnet-device-check: {e}");
            ExitCode::from(2)
        }
    }
}
