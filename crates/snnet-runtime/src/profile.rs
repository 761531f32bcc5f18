//! Latency and memory profiles of an SN-Net's stitches, measured on the device that will serve
//! them.
//!
//! A [`Profiler`] runs every stitch (or chosen ones) on random images of the anchors' input
//! size: `warmup` untimed forwards of each stitch, then `iters` rounds of timed forwards, every
//! stitch once a round (so that the machine's moods fall on all of them alike), each forward
//! synchronised with the device.
//! The result, a [`Profile`], becomes a [`StitchTable`] in the reference's format
//! ([`Profile::to_table`]), merged into an evaluation table when one is given:
//!
//! ```json
//! {"cfg_id":24,"flops":2758967808,"params":13038760,"acc1":75.626,"latency_ms":9.81,
//!  "latency_p90_ms":10.2,"latency_min_ms":9.6,"latency_max_ms":11.0,"memory_bytes":41943040,
//!  "profile":{"device":"Device<Flex(FlexDevice)>","cpu":"…","batch":1,"threads":2,…}}
//! ```
//!
//! # Where the measurement setup is recorded
//!
//! Every profiled row carries its setup under the key `profile` (a [`ProfileMeta`]). The
//! selector keeps unknown keys on read and write, so the setup survives every tool that
//! rewrites the table (`snnet select`, `snnet pareto`, the reference's readers skip it), rows
//! merged from several runs stay distinguishable, and no sidecar file can get lost or stale.
//! [`ProfileMeta::of_table`] reads it back and rejects tables whose rows were measured on
//! different setups.
//!
//! # What `memory_bytes` is
//!
//! On Linux, the growth of the process's *peak resident set* while the stitch runs: the peak
//! (`VmHWM` of `/proc/self/status`) is reset through `/proc/self/clear_refs` before the
//! stitch's first forward, and `memory_bytes` is the peak after its untimed forwards (at least
//! one, even with `warmup` 0) minus the resident set before the first. It counts what running
//! the stitch added to the process's memory on top of the weights — activations and workspace
//! — as the operating system saw it.
//! Memory the allocator kept from earlier stitches and reuses does not count again, so with an
//! allocator that holds on to freed memory (mimalloc, the CLI's) later stitches can report
//! less than they use; profile one stitch per process (`--ids`) for an isolated figure. Where
//! the peak cannot be reset or read (non-Linux, restricted `/proc`), `memory_bytes` is left out
//! and [`ProfileMeta::memory`] says `none`. On GPU backends it is host memory only.

use std::time::Instant;

use derive_setters::Setters;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use snnet_core::StitchId;
use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::select::{LATENCY_MIN_KEY, StitchRecord, StitchTable};

use crate::error::{Error, Result};
use crate::network::Network;

/// The key under which a profiled row stores its [`ProfileMeta`].
pub const PROFILE_KEY: &str = "profile";

/// The method `memory_bytes` was measured with, as recorded in [`ProfileMeta::memory`].
pub const MEMORY_PEAK_RSS: &str = "peak-rss-growth";

/// What a latency profile was measured on: every profiled row of a table carries one (under
/// [`PROFILE_KEY`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileMeta {
    /// The device as Burn prints it, which names the backend: `Device<Flex(FlexDevice)>`,
    /// `Device<Cube(Cuda(…))>`, ….
    pub device: String,
    /// The host CPU's model (`model name` of `/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Images per forward.
    pub batch: usize,
    /// Threads of the pool the CPU kernels ran on (rayon's).
    pub threads: usize,
    /// Untimed forwards before the timed ones.
    pub warmup: usize,
    /// Timed forwards.
    pub iters: usize,
    /// `[channels, height, width]` of the (random) input images.
    pub input_size: [usize; 3],
    /// How `memory_bytes` was measured: [`MEMORY_PEAK_RSS`], or `none`.
    pub memory: String,
    /// The snnet-runtime version that measured it.
    pub snnet_version: String,
}

/// The part of a measurement setup a latency must match to be trusted: device, CPU, batch and
/// the threads a forward splits its work over (on the 2-core VMs a forward of the main job's
/// large anchor at batch 8 took 2.4 ms on two threads and 3.2 ms on one; docs/RUNTIME.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// The device as Burn prints it.
    pub device: String,
    /// The host CPU's model.
    pub cpu: String,
    /// Images per forward.
    pub batch: usize,
    /// Threads of the pool the forwards run on.
    pub threads: usize,
}

impl Setup {
    /// The setup of this machine's `device` at `batch`, forwards on `threads` threads.
    pub fn here(device: &Device, batch: usize, threads: usize) -> Self {
        Setup {
            device: format!("{device:?}"),
            cpu: cpu_model(),
            batch,
            threads,
        }
    }

    /// Whether `other` was measured on the same device and CPU (at any batch and threads).
    pub fn same_machine(&self, other: &Setup) -> bool {
        self.device == other.device && self.cpu == other.cpu
    }
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.threads == 1 { "" } else { "s" };
        write!(
            f,
            "{} on {}, batch {}, {} thread{s}",
            self.device, self.cpu, self.batch, self.threads
        )
    }
}

impl ProfileMeta {
    /// The setup the latencies are valid for.
    pub fn setup(&self) -> Setup {
        Setup {
            device: self.device.clone(),
            cpu: self.cpu.clone(),
            batch: self.batch,
            threads: self.threads,
        }
    }

    /// The measurement setup of a record, if it was profiled.
    ///
    /// # Errors
    /// [`Error::Config`] when the record's `profile` value is not a valid [`ProfileMeta`].
    pub fn of_record(record: &StitchRecord) -> Result<Option<Self>> {
        match record.extra.get(PROFILE_KEY) {
            None => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| {
                    Error::Config(format!(
                        "stitch {}: invalid `{PROFILE_KEY}`: {e}",
                        record.id
                    ))
                }),
        }
    }

    /// The measurement setup shared by every profiled row of `table`; `None` when no row was
    /// profiled. Rows may differ in fields other than the [`Setup`] (iterations, threads are
    /// kept from the first row).
    ///
    /// # Errors
    /// [`Error::MixedProfiles`] when two rows were measured on different setups, and the errors
    /// of [`of_record`](ProfileMeta::of_record).
    pub fn of_table(table: &StitchTable) -> Result<Option<Self>> {
        let mut found: Option<ProfileMeta> = None;
        for record in table {
            let Some(meta) = ProfileMeta::of_record(record)? else {
                continue;
            };
            match &found {
                None => found = Some(meta),
                Some(first) if first.setup() != meta.setup() => {
                    return Err(Error::MixedProfiles {
                        first: first.setup().to_string(),
                        second: meta.setup().to_string(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(found)
    }
}

/// Summary statistics of timed runs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// The median.
    pub median_ms: f64,
    /// The 90th percentile (nearest rank).
    pub p90_ms: f64,
    /// The fastest run.
    pub min_ms: f64,
    /// The slowest run.
    pub max_ms: f64,
    /// The arithmetic mean.
    pub mean_ms: f64,
    /// Number of runs.
    pub samples: usize,
}

/// The nearest-rank `q`-quantile (`0 < q <= 1`) of sorted samples; `None` when empty.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted.get(rank - 1).copied()
}

impl LatencyStats {
    /// Statistics of the given run times (milliseconds); `None` when there are none or one is
    /// not finite.
    pub fn from_samples(samples_ms: &[f64]) -> Option<Self> {
        if samples_ms.is_empty() || samples_ms.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            *sorted.get(n / 2)?
        } else {
            (*sorted.get(n / 2 - 1)? + *sorted.get(n / 2)?) / 2.0
        };
        Some(LatencyStats {
            median_ms: median,
            p90_ms: quantile_sorted(&sorted, 0.9)?,
            min_ms: *sorted.first()?,
            max_ms: *sorted.last()?,
            mean_ms: sorted.iter().sum::<f64>() / n as f64,
            samples: n,
        })
    }
}

/// One stitch's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StitchProfile {
    /// The stitch.
    pub id: StitchId,
    /// Its path, as the space describes it.
    pub description: String,
    /// FLOPs of one image (fvcore convention).
    pub flops: u64,
    /// Parameters.
    pub params: u64,
    /// Timed runs of one batch.
    pub latency: LatencyStats,
    /// Peak resident-set growth (see the [module docs](self)), when it could be measured.
    pub memory_bytes: Option<u64>,
}

/// Every profiled stitch and the setup they were measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The measurement setup.
    pub meta: ProfileMeta,
    /// The stitches, in the order they were profiled.
    pub stitches: Vec<StitchProfile>,
}

impl Profile {
    /// The profile as a stitch table, merged into an evaluation table when given.
    ///
    /// Every row of `eval` is kept, with all its keys, in its order; profiled stitches get
    /// `latency_ms` (the median), `latency_p90_ms`, `latency_min_ms`, `latency_max_ms`,
    /// `memory_bytes` and `profile`, replacing those of an earlier profile, and `flops`/`params`
    /// when the row lacks them. Profiled stitches `eval` does not have (or all of them, without
    /// `eval`) are appended with `acc1: 0` and `"evaluated": false`, since their accuracy is
    /// unknown.
    ///
    /// # Errors
    /// [`Error::Select`] when a row fails the table's validation.
    pub fn to_table(&self, eval: Option<&StitchTable>) -> Result<StitchTable> {
        let meta = serde_json::to_value(&self.meta)
            .map_err(|e| Error::Config(format!("cannot encode the profile setup: {e}")))?;
        let mut records: Vec<StitchRecord> = eval.map_or_else(Vec::new, |t| t.records().to_vec());
        for stitch in &self.stitches {
            let id = stitch.id.index();
            let index = match records.iter().position(|r| r.id == id) {
                Some(i) => i,
                None => {
                    let mut record = StitchRecord::new(id, 0.0);
                    record.extra.insert("evaluated".into(), Value::Bool(false));
                    records.push(record);
                    records.len() - 1
                }
            };
            let Some(record) = records.get_mut(index) else {
                continue;
            };
            record.flops.get_or_insert(stitch.flops);
            record.params.get_or_insert(stitch.params);
            record.latency_ms = Some(stitch.latency.median_ms);
            record.memory_bytes = stitch.memory_bytes;
            let extra = &mut record.extra;
            extra.insert("latency_p90_ms".into(), Value::from(stitch.latency.p90_ms));
            // The noise-aware frontier reads it.
            extra.insert(LATENCY_MIN_KEY.into(), Value::from(stitch.latency.min_ms));
            extra.insert("latency_max_ms".into(), Value::from(stitch.latency.max_ms));
            extra.insert(PROFILE_KEY.into(), meta.clone());
        }
        Ok(StitchTable::from_records(records)?)
    }
}

/// One step of a profiling run, passed to the progress callback for each stitch once its timed
/// rounds are done (all of them at the end: the stitches are timed in rounds).
#[derive(Debug, Clone, Copy)]
pub struct ProfileProgress<'a> {
    /// Stitches profiled so far, this one included.
    pub done: usize,
    /// Stitches to profile in all.
    pub total: usize,
    /// The stitch just profiled.
    pub stitch: &'a StitchProfile,
}

/// The CPU's cores (1 where the system cannot tell): how many threads the runtime's forwards
/// and the profiler's run on by default.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// How to profile: batch, warm-up and timed runs, threads, which stitches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Setters)]
#[setters(prefix = "with_")]
pub struct ProfilerConfig {
    /// Images per forward.
    pub batch: usize,
    /// Untimed forwards per stitch before the timed ones.
    pub warmup: usize,
    /// Timed forwards per stitch, in as many rounds over the stitches.
    pub iters: usize,
    /// Threads of the CPU kernels: the forwards run on a rayon pool of that size, as the
    /// [`Runtime`](crate::Runtime)'s run on its own ([`RuntimeBuilder::threads`]); `None`
    /// for the CPU's cores, the runtime's default.
    ///
    /// [`RuntimeBuilder::threads`]: crate::RuntimeBuilder
    pub threads: Option<usize>,
    /// The stitches to profile; `None` for every stitch of the network.
    pub ids: Option<Vec<StitchId>>,
    /// Whether to measure memory (see the [module docs](self)).
    pub memory: bool,
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        ProfilerConfig {
            batch: 1,
            warmup: 3,
            iters: 20,
            threads: None,
            ids: None,
            memory: true,
        }
    }
}

impl ProfilerConfig {
    /// The default: batch 1, 3 warm-up and 20 timed runs per stitch, every stitch, memory on.
    pub fn new() -> Self {
        ProfilerConfig::default()
    }

    /// A profiler on `device`.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero batch, zero timed runs or zero threads.
    pub fn init(&self, device: &Device) -> Result<Profiler> {
        if self.batch == 0 || self.iters == 0 || self.threads == Some(0) {
            return Err(Error::Config(format!(
                "the profiler needs batch, iters and threads >= 1 (batch {}, iters {}, threads {:?})",
                self.batch, self.iters, self.threads
            )));
        }
        Ok(Profiler {
            config: self.clone(),
            device: device.clone(),
        })
    }
}

/// Measures every stitch's latency (and memory) on one device. Built by
/// [`ProfilerConfig::init`].
///
/// ```no_run
/// use snnet_core::SnNet;
/// use snnet_core::burn::tensor::Device;
/// use snnet_runtime::ProfilerConfig;
///
/// let device = Device::default();
/// let (net, _) = SnNet::load("snnet.safetensors".as_ref(), &device)?;
/// let profiler = ProfilerConfig::new().with_iters(10).init(&device)?;
/// let profile = profiler.run(&net, |p| eprintln!("{}/{}", p.done, p.total))?;
/// profile.to_table(None)?.write_jsonl("profile.jsonl")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Profiler {
    config: ProfilerConfig,
    device: Device,
}

impl Profiler {
    /// The configuration.
    pub fn config(&self) -> &ProfilerConfig {
        &self.config
    }

    /// Profiles `net` (an SN-Net: every stitch, or an exported stitch: its one), calling
    /// `progress` after each stitch.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] for an id the network lacks ([`Error::StitchNotServed`] for
    /// another stitch than an exported stitch's own), [`Error::Core`] when a forward
    /// fails, [`Error::Device`] when the device fails to synchronise, [`Error::ThreadPool`]
    /// when the thread pool cannot be built.
    pub fn run<F>(&self, net: &dyn Network, progress: F) -> Result<Profile>
    where
        F: FnMut(ProfileProgress<'_>) + Send,
    {
        // On a pool, as the runtime runs them: from a thread outside any pool, every split
        // of a CPU kernel is a round trip to sleeping threads (see `Runtime::run`).
        let threads = self.config.threads.unwrap_or_else(cores);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(Error::ThreadPool)?;
        pool.install(|| self.run_here(net, progress))
    }

    fn run_here<F>(&self, net: &dyn Network, mut progress: F) -> Result<Profile>
    where
        F: FnMut(ProfileProgress<'_>),
    {
        let config = &self.config;
        let ids: Vec<StitchId> = match &config.ids {
            Some(ids) => ids.clone(),
            None => net.stitch_ids(),
        };
        for id in &ids {
            net.check_stitch(*id)?;
        }
        let input_size = input_size(net);
        let [c, h, w] = input_size;
        let images: Tensor<4> = Tensor::random(
            [config.batch, c, h, w],
            Distribution::Normal(0.0, 1.0),
            &self.device,
        );
        // Warm-up (and memory), stitch by stitch: the peak resident set is the process's, so
        // each stitch's growth is measured over its own untimed forwards (at least one).
        let mut memory_measured = config.memory;
        let untimed = if config.memory {
            config.warmup.max(1)
        } else {
            config.warmup
        };
        let mut memory = Vec::with_capacity(ids.len());
        for id in &ids {
            let probe = if config.memory {
                memory::Probe::start()
            } else {
                None
            };
            memory_measured &= probe.is_some();
            for _ in 0..untimed {
                self.forward(net, &images, *id)?;
            }
            memory.push(probe.and_then(|p| p.peak_growth()));
        }
        // Timed in rounds, every stitch once a round: whatever the machine does meanwhile (a
        // clock change, another process, the first moments after loading) falls on all the
        // stitches alike, not on those measured then. One stitch after another, the first
        // stitch's median on a 2-core VM came out 1.7 times its fastest run and above
        // stitches that cost more (docs/RUNTIME.md).
        let mut samples = vec![Vec::with_capacity(config.iters); ids.len()];
        for _ in 0..config.iters {
            for (id, times) in ids.iter().zip(&mut samples) {
                let start = Instant::now();
                self.forward(net, &images, *id)?;
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let mut stitches = Vec::with_capacity(ids.len());
        for (done, ((id, samples), memory_bytes)) in
            ids.iter().zip(&samples).zip(memory).enumerate()
        {
            let latency = LatencyStats::from_samples(samples)
                .ok_or_else(|| Error::Config("no timed runs".to_owned()))?;
            let cost = net.cost(*id)?;
            let stitch = StitchProfile {
                id: *id,
                description: net.describe(*id)?,
                flops: cost.flops,
                params: cost.params,
                latency,
                memory_bytes,
            };
            progress(ProfileProgress {
                done: done + 1,
                total: ids.len(),
                stitch: &stitch,
            });
            stitches.push(stitch);
        }
        if !memory_measured {
            for stitch in &mut stitches {
                stitch.memory_bytes = None;
            }
        }
        Ok(Profile {
            meta: ProfileMeta {
                device: format!("{:?}", self.device),
                cpu: cpu_model(),
                batch: config.batch,
                threads: rayon::current_num_threads(),
                warmup: config.warmup,
                iters: config.iters,
                input_size,
                memory: if memory_measured {
                    MEMORY_PEAK_RSS.to_owned()
                } else {
                    "none".to_owned()
                },
                snnet_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            stitches,
        })
    }

    /// One forward, waited for.
    fn forward(&self, net: &dyn Network, images: &Tensor<4>, id: StitchId) -> Result<()> {
        let logits = net.forward(images.clone(), id)?;
        drop(logits);
        self.device
            .sync()
            .map_err(|e| Error::Device(format!("{e:?}")))
    }
}

/// `[channels, height, width]` of the network's input (its plan's one input config).
pub(crate) fn input_size(net: &dyn Network) -> [usize; 3] {
    net.pretrained().input_size
}

/// The host CPU's model name from `/proc/cpuinfo`, or `unknown`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Peak resident-set growth from `/proc` (Linux).
mod memory {
    /// A reset peak and the resident set at the reset.
    pub(super) struct Probe {
        base: u64,
    }

    impl Probe {
        /// Resets the process's peak resident set; `None` where that is not possible.
        pub(super) fn start() -> Option<Self> {
            std::fs::write("/proc/self/clear_refs", "5").ok()?;
            Some(Probe {
                base: status_bytes("VmRSS")?,
            })
        }

        /// The peak resident set since the reset, less the resident set at the reset.
        pub(super) fn peak_growth(&self) -> Option<u64> {
            status_bytes("VmHWM").map(|peak| peak.saturating_sub(self.base))
        }
    }

    /// A `kB` line of `/proc/self/status`, in bytes.
    fn status_bytes(key: &str) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = text.lines().find(|l| l.split(':').next() == Some(key))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_samples() {
        let s = LatencyStats::from_samples(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.median_ms, 3.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 5.0);
        assert_eq!(s.p90_ms, 5.0);
        assert_eq!(s.mean_ms, 3.0);
        assert_eq!(s.samples, 5);
        let even = LatencyStats::from_samples(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(even.median_ms, 2.5);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(LatencyStats::from_samples(&ten).unwrap().p90_ms, 9.0);
        assert!(LatencyStats::from_samples(&[]).is_none());
        assert!(LatencyStats::from_samples(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_sorted(&v, 0.95), Some(95.0));
        assert_eq!(quantile_sorted(&v, 1.0), Some(100.0));
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    fn meta(device: &str, batch: usize) -> ProfileMeta {
        ProfileMeta {
            device: device.to_owned(),
            cpu: "cpu".to_owned(),
            batch,
            threads: 2,
            warmup: 1,
            iters: 3,
            input_size: [3, 32, 32],
            memory: "none".to_owned(),
            snnet_version: "0.1.0".to_owned(),
        }
    }

    fn profile() -> Profile {
        let stats = LatencyStats::from_samples(&[1.0, 2.0, 3.0]).unwrap();
        Profile {
            meta: meta("Device<Flex(FlexDevice)>", 1),
            stitches: vec![
                StitchProfile {
                    id: StitchId(0),
                    description: "a".into(),
                    flops: 10,
                    params: 1,
                    latency: stats,
                    memory_bytes: Some(4096),
                },
                StitchProfile {
                    id: StitchId(2),
                    description: "c".into(),
                    flops: 30,
                    params: 3,
                    latency: stats,
                    memory_bytes: None,
                },
            ],
        }
    }

    #[test]
    fn merges_into_an_eval_table_keeping_its_keys() {
        let eval: StitchTable = concat!(
            "{\"cfg_id\": 1, \"flops\": 20, \"params\": 2, \"acc1\": 71.0}\n",
            "{\"cfg_id\": 0, \"flops\": 10, \"params\": 1, \"acc1\": 70.0, \"loss\": 0.5}\n",
        )
        .parse()
        .unwrap();
        let table = profile().to_table(Some(&eval)).unwrap();
        let ids: Vec<usize> = table.iter().map(|r| r.id.index()).collect();
        assert_eq!(ids, [1, 0, 2]);
        let r0 = table.get(0).unwrap();
        assert_eq!(r0.acc1, 70.0);
        assert_eq!(r0.latency_ms, Some(2.0));
        assert_eq!(r0.memory_bytes, Some(4096));
        assert_eq!(r0.extra["loss"], Value::from(0.5));
        assert_eq!(r0.extra["latency_p90_ms"], Value::from(3.0));
        assert!(table.get(1).unwrap().latency_ms.is_none());
        let r2 = table.get(2).unwrap();
        assert_eq!(r2.extra["evaluated"], Value::Bool(false));
        assert_eq!(r2.flops, Some(30));

        // The setup round-trips through JSON Lines.
        let back = StitchTable::from_jsonl_str(&table.to_jsonl_string().unwrap()).unwrap();
        assert_eq!(back, table);
        let meta = ProfileMeta::of_table(&back).unwrap().unwrap();
        assert_eq!(meta, profile().meta);
        assert_eq!(ProfileMeta::of_table(&eval).unwrap(), None);
    }

    #[test]
    fn mixed_setups_are_an_error() {
        let a = profile().to_table(None).unwrap();
        let mut other = profile();
        other.meta = meta("Device<Flex(FlexDevice)>", 8);
        other.stitches.truncate(1);
        other.stitches[0].id = StitchId(5);
        let mixed = other.to_table(Some(&a)).unwrap();
        assert!(matches!(
            ProfileMeta::of_table(&mixed),
            Err(Error::MixedProfiles { .. })
        ));
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let device = Device::default();
        assert!(ProfilerConfig::new().with_batch(0).init(&device).is_err());
        assert!(ProfilerConfig::new().with_iters(0).init(&device).is_err());
        assert!(
            ProfilerConfig::new()
                .with_threads(Some(0))
                .init(&device)
                .is_err()
        );
        assert!(ProfilerConfig::new().init(&device).is_ok());
    }
}
