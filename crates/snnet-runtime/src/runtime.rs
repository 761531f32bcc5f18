//! The runtime: one network (an SN-Net or one exported stitch), its table and frontiers, and the stitch each request runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use derive_setters::Setters;
use snnet_core::StitchId;
use snnet_core::burn::tensor::{Device, Tensor};
use snnet_core::select::{Budget, CostKind, Frontier, StitchRecord, StitchTable};

use crate::adaptive::{AdaptiveConfig, Clock, Controller, Decision, WallClock};
use crate::deadline::{DeadlineConfig, LatencyModel};
use crate::error::{Error, Result};
use crate::network::Network;
use crate::objective::{Choice, Objective};
use crate::profile::{ProfileMeta, Setup, cores, input_size};

/// The answer to [`Runtime::infer`].
#[derive(Debug, Clone)]
pub struct Inference {
    /// `[B, num_classes]`.
    pub logits: Tensor<2>,
    /// The stitch that ran.
    pub stitch: StitchId,
    /// The latency of the forward, as the runtime's [`Clock`] reports it (wall time by
    /// default).
    pub latency: Duration,
}

/// Builds a [`Runtime`]; from [`Runtime::builder`].
///
/// The setters (`batch`, `objective`, …) are named after the fields they set.
#[derive(Debug, Setters)]
pub struct RuntimeBuilder {
    #[setters(skip)]
    net: Arc<dyn Network>,
    #[setters(skip)]
    table: StitchTable,
    #[setters(skip)]
    device: Device,
    /// The batch size the runtime's latency figures are for (default 1): a latency budget and
    /// the deadline model need a profile at this batch size (an SLO uses the latency frontier
    /// when there is one, the FLOPs frontier otherwise). The deadline model
    /// scales it to the batches it runs and learns how they scale online; a server that
    /// batches requests ranks its stitches best from a profile at its largest batch
    /// (docs/RUNTIME.md).
    batch: usize,
    /// Accepts latency and memory budgets, SLOs and deadlines against a profile measured on
    /// another device, CPU, batch size or number of forward threads (default: a typed error,
    /// [`Error::ForeignProfile`]).
    allow_foreign_profile: bool,
    /// The starting objective (default: the most accurate stitch, an unbounded FLOPs budget).
    #[setters(strip_option)]
    objective: Option<Objective>,
    /// The adaptive controller's tuning.
    adaptive: AdaptiveConfig,
    /// The deadline model's tuning ([`crate::deadline`]).
    deadline: DeadlineConfig,
    /// How latencies are measured (default [`WallClock`]; [`SimulatedLoad`](crate::SimulatedLoad)
    /// injects a load).
    clock: Arc<dyn Clock>,
    /// The threads of the runtime's own pool, which every forward runs on (see
    /// [`Runtime::run`]). Default: the threads the table's latency profile was measured on,
    /// when it was measured on this device and CPU, so that its latencies hold; else the CPU's
    /// cores. Latency budgets and deadlines need a profile measured on as many threads
    /// ([`Error::ForeignProfile`]). A server whose HTTP and decoding threads share the cores
    /// may do better with fewer forward threads than cores: on the 2-core VM one forward
    /// thread served the small anchor at 3,552–4,502 requests/s against 3,218–4,046/s on two,
    /// and the deadline-aware server answered fewer late (docs/RUNTIME.md).
    #[setters(strip_option)]
    threads: Option<usize>,
    /// The nice value of the forward threads, −20 to 19 (default: the process's). On a machine
    /// whose cores the server shares — its own HTTP and decoding threads, a load generator,
    /// other services — a lower value than theirs keeps them from stalling a forward halfway:
    /// each forward splits its work over all the pool's threads, and one of them losing its
    /// core holds up the whole batch (docs/RUNTIME.md measures it). Linux only; a value below
    /// the process's needs `CAP_SYS_NICE`.
    #[setters(strip_option)]
    forward_nice: Option<i32>,
}

impl RuntimeBuilder {
    /// Builds the runtime: frontiers for every cost the table has, the profile check, the
    /// starting objective.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] for a table row the network does not have, [`Error::Select`]
    /// for an empty table, [`Error::Config`] for one without a row for the network's stitches
    /// or for zero threads or a nice value outside −20..=19, [`Error::ThreadPool`] when the
    /// forwards' pool cannot be built, [`Error::ThreadPriority`] when its nice value cannot be
    /// set,
    /// [`Error::MixedProfiles`], and the errors of [`Runtime::set_objective`] for the starting
    /// objective.
    ///
    /// The rows of the SN-Net's other stitches are dropped when the network is one exported
    /// stitch ([`Error::StitchNotServed`] for them), so that the SN-Net's table serves any
    /// stitch exported from it.
    pub fn build(mut self) -> Result<Runtime> {
        if self.table.is_empty() {
            return Err(snnet_core::select::Error::EmptyTable.into());
        }
        if self.batch == 0 {
            return Err(Error::Config("the runtime's batch must be >= 1".to_owned()));
        }
        if self.threads == Some(0) {
            return Err(Error::Config(
                "the runtime's threads must be >= 1".to_owned(),
            ));
        }
        if let Some(nice) = self.forward_nice
            && !(-20..=19).contains(&nice)
        {
            return Err(Error::Config(format!(
                "the forward threads' nice value must be within -20..=19, not {nice}"
            )));
        }
        self.adaptive.validate()?;
        let mut served = Vec::with_capacity(self.table.len());
        for r in self.table.iter() {
            match self.net.check_stitch(r.id) {
                Ok(()) => served.push(r.clone()),
                Err(Error::StitchNotServed { .. }) => {}
                Err(Error::UnknownStitch { id, reason }) => {
                    return Err(Error::UnknownStitch {
                        id,
                        reason: format!("the table has it but {reason}"),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        if served.is_empty() {
            return Err(Error::Config(format!(
                "the stitch table has no row for the stitches the network runs ({:?})",
                self.net
                    .stitch_ids()
                    .iter()
                    .map(|id| id.index())
                    .collect::<Vec<_>>()
            )));
        }
        if served.len() < self.table.len() {
            self.table = StitchTable::from_records(served)?;
        }
        let profile = ProfileMeta::of_table(&self.table)?;
        let frontiers = CostKind::ALL
            .iter()
            .filter_map(|&cost| {
                let rows: Vec<StitchRecord> = self
                    .table
                    .iter()
                    .filter(|r| r.cost(cost).is_some())
                    .cloned()
                    .collect();
                if rows.is_empty() {
                    return None;
                }
                Some(StitchTable::from_records(rows).and_then(|t| t.frontier(cost)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let input_size = input_size(self.net.as_ref());
        let here = Setup::here(&self.device, self.batch, cores());
        let threads = self.threads.unwrap_or_else(|| {
            profile
                .as_ref()
                .map(ProfileMeta::setup)
                .filter(|p| p.same_machine(&here) && p.threads > 0)
                .map_or(here.threads, |p| p.threads)
        });
        let setup = Setup { threads, ..here };
        let trusted = profile
            .as_ref()
            .is_some_and(|p| self.allow_foreign_profile || p.setup() == setup);
        let latency_model = match frontiers.iter().find(|f| f.cost() == CostKind::LatencyMs) {
            Some(frontier) if trusted => Some(LatencyModel::new(
                frontier,
                self.table
                    .iter()
                    .filter_map(|r| r.latency_ms.map(|ms| (r.id, ms))),
                profile.as_ref().map_or(1, |p| p.batch),
                self.deadline,
            )?),
            _ => None,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("snnet-forward-{i}"))
            .build()
            .map_err(Error::ThreadPool)?;
        if let Some(nice) = self.forward_nice {
            for set in pool.broadcast(|_| set_thread_nice(nice)) {
                set.map_err(|source| Error::ThreadPriority { nice, source })?;
            }
        }
        let runtime = Runtime {
            pool,
            setup,
            net: self.net,
            table: self.table,
            device: self.device,
            input_size,
            profile,
            allow_foreign_profile: self.allow_foreign_profile,
            frontiers,
            adaptive_config: self.adaptive,
            state: ArcSwap::from_pointee(State {
                objective: Objective::Budget(Budget::flops(u64::MAX)),
                fixed: None,
                controller: None,
            }),
            clock: self.clock,
            latency_model,
            warm: AtomicBool::new(false),
        };
        let objective = match self.objective {
            Some(objective) => objective,
            None => Objective::Budget(Budget::new(runtime.default_cost(), f64::INFINITY)),
        };
        runtime.set_objective(objective)?;
        Ok(runtime)
    }
}

/// Sets the calling thread's nice value.
#[cfg(target_os = "linux")]
fn set_thread_nice(nice: i32) -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice)
        .map_err(std::io::Error::from)
}

/// Other systems than Linux have no per-thread nice value.
#[cfg(not(target_os = "linux"))]
fn set_thread_nice(_nice: i32) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "a per-thread nice value needs Linux",
    ))
}

/// The objective in force and what it resolved to; swapped as a whole.
#[derive(Debug)]
struct State {
    objective: Objective,
    /// The stitch of a budget objective.
    fixed: Option<StitchId>,
    /// The controller of an SLO objective.
    controller: Option<Arc<Controller>>,
}

/// One network served — an SN-Net or one exported stitch ([`Network`]): the network (shared,
/// never copied), its stitch table, the Pareto
/// frontier per cost, and the objective that picks the stitch of requests that do not name
/// one.
///
/// The objective can be changed at any time from any thread ([`set_objective`]); requests read
/// it without taking a lock (an [`ArcSwap`]), and concurrent requests may run different
/// stitches. Under an SLO objective ([`Objective::SloP95Ms`]) the runtime adapts: see
/// [`crate::adaptive`].
///
/// [`set_objective`]: Runtime::set_objective
///
/// ```no_run
/// use std::sync::Arc;
/// use snnet_core::burn::tensor::{Device, Tensor};
/// use snnet_core::select::{Budget, StitchTable};
/// use snnet_core::SnNet;
/// use snnet_runtime::{Choice, Objective, Runtime};
///
/// let device = Device::default();
/// let (net, _) = SnNet::load(std::path::Path::new("snnet.safetensors"), &device)?;
/// let table = StitchTable::read_jsonl("profile.jsonl")?;
/// let runtime = Runtime::new(Arc::new(net), table, device.clone())?;
/// runtime.set_objective(Objective::Budget(Budget::latency_ms(20.0)))?;
/// let images = Tensor::<4>::zeros([1, 3, 224, 224], &device);
/// let answer = runtime.infer(images, Choice::Default)?;
/// println!("stitch {} in {:?}", answer.stitch, answer.latency);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Runtime {
    /// The threads every forward runs on ([`Runtime::run`]).
    pool: rayon::ThreadPool,
    net: Arc<dyn Network>,
    table: StitchTable,
    device: Device,
    input_size: [usize; 3],
    setup: Setup,
    profile: Option<ProfileMeta>,
    allow_foreign_profile: bool,
    frontiers: Vec<Frontier>,
    adaptive_config: AdaptiveConfig,
    state: ArcSwap<State>,
    clock: Arc<dyn Clock>,
    latency_model: Option<LatencyModel>,
    warm: AtomicBool,
}

impl Runtime {
    /// A builder for the runtime of `net` (an `Arc<SnNet>`, an `Arc<StitchModel>`, or any
    /// [`Network`]) with its `table` on `device`.
    pub fn builder(net: Arc<dyn Network>, table: StitchTable, device: Device) -> RuntimeBuilder {
        RuntimeBuilder {
            net,
            table,
            device,
            batch: 1,
            allow_foreign_profile: false,
            objective: None,
            adaptive: AdaptiveConfig::default(),
            deadline: DeadlineConfig::default(),
            clock: Arc::new(WallClock),
            threads: None,
            forward_nice: None,
        }
    }

    /// The runtime with default settings: batch 1, the most accurate stitch.
    ///
    /// # Errors
    /// As [`RuntimeBuilder::build`].
    pub fn new(net: Arc<dyn Network>, table: StitchTable, device: Device) -> Result<Self> {
        Runtime::builder(net, table, device).build()
    }

    /// The network.
    pub fn net(&self) -> &Arc<dyn Network> {
        &self.net
    }

    /// The stitch table.
    pub fn table(&self) -> &StitchTable {
        &self.table
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `[channels, height, width]` of the network's input.
    pub fn input_size(&self) -> [usize; 3] {
        self.input_size
    }

    /// What the runtime serves on (device, CPU, batch, forward threads).
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The table's latency profile setup, if it has one.
    pub fn profile(&self) -> Option<&ProfileMeta> {
        self.profile.as_ref()
    }

    /// Whether the table's profile was measured on this runtime's setup.
    pub fn profile_matches(&self) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|p| p.setup() == self.setup)
    }

    /// The Pareto frontier over `cost`, when the table has that cost.
    pub fn frontier(&self, cost: CostKind) -> Option<&Frontier> {
        self.frontiers.iter().find(|f| f.cost() == cost)
    }

    /// Every frontier the table allows (FLOPs, params, latency, memory: those it has).
    pub fn frontiers(&self) -> &[Frontier] {
        &self.frontiers
    }

    /// The path of stitch `id`, such as `deit_tiny[..=7] →L6→ deit_small[7..]`.
    pub fn describe(&self, id: StitchId) -> String {
        self.net
            .describe(id)
            .unwrap_or_else(|_| format!("stitch {id}"))
    }

    /// The cost a default budget ranks by: latency when the table has a profile of this setup,
    /// FLOPs otherwise.
    fn default_cost(&self) -> CostKind {
        if self.profile_matches() && self.frontier(CostKind::LatencyMs).is_some() {
            CostKind::LatencyMs
        } else {
            CostKind::Flops
        }
    }

    /// The most accurate stitch within `budget`, from the frontier over its cost.
    ///
    /// # Errors
    /// [`Error::NoProfile`] for a latency or memory budget without a profile,
    /// [`Error::ForeignProfile`] against a profile of another setup (unless allowed),
    /// [`Error::Config`] when the table lacks the cost, [`Error::Select`] when the budget is
    /// invalid or nothing fits.
    pub fn select(&self, budget: Budget) -> Result<StitchId> {
        if matches!(budget.cost, CostKind::LatencyMs | CostKind::MemoryBytes) {
            self.check_profile(&budget)?;
        }
        let frontier = self.frontier(budget.cost).ok_or_else(|| {
            Error::Config(format!(
                "the stitch table has no `{}` values",
                budget.cost.json_key()
            ))
        })?;
        Ok(frontier.select_budget(budget)?.id)
    }

    fn check_profile(&self, budget: &Budget) -> Result<()> {
        self.trust_profile(&format!("the budget {budget}"))
    }

    /// `Ok` when the table's latency profile may be used for `what` (a budget, a deadline):
    /// it was measured on this setup, or a foreign one is allowed.
    fn trust_profile(&self, what: &str) -> Result<()> {
        let Some(profile) = &self.profile else {
            return Err(Error::NoProfile {
                what: what.to_owned(),
            });
        };
        if self.allow_foreign_profile || profile.setup() == self.setup {
            Ok(())
        } else {
            Err(Error::ForeignProfile {
                what: what.to_owned(),
                measured: profile.setup().to_string(),
                serving: self.setup.to_string(),
            })
        }
    }

    /// Why this runtime cannot answer `what` (a deadline) by its latency model: the table has
    /// no profile ([`Error::NoProfile`]), or one of another setup ([`Error::ForeignProfile`]).
    pub(crate) fn no_latency_model(&self, what: &str) -> Error {
        match self.trust_profile(what) {
            Err(e) => e,
            // A trusted profile without a latency frontier: no stitch has `latency_ms`.
            Ok(()) => Error::NoProfile {
                what: what.to_owned(),
            },
        }
    }

    /// The objective in force.
    pub fn objective(&self) -> Objective {
        self.state.load().objective
    }

    /// Changes the objective, live: the next requests that do not name a stitch follow it.
    /// Nothing is copied but a small state; requests in flight finish on their stitch.
    ///
    /// # Errors
    /// The errors of [`select`](Runtime::select) for a budget (an infeasible budget is
    /// rejected and the objective in force stays); [`Error::Config`] for a non-positive SLO.
    pub fn set_objective(&self, objective: Objective) -> Result<()> {
        let state = match objective {
            Objective::Budget(budget) => State {
                objective,
                fixed: Some(self.select(budget)?),
                controller: None,
            },
            Objective::SloP95Ms(ms) => {
                // The ladder: the latency frontier when the profile is of this setup (or
                // allowed), else FLOPs (the controller measures the real latencies anyway).
                let latency = self
                    .frontier(CostKind::LatencyMs)
                    .filter(|_| self.profile_matches() || self.allow_foreign_profile);
                let (frontier, ms_per_cost) = match latency {
                    Some(f) => (f, 1.0),
                    None => (
                        self.frontier(CostKind::Flops)
                            .ok_or_else(|| Error::NoProfile {
                                what: "an SLO".to_owned(),
                            })?,
                        0.0,
                    ),
                };
                let controller = Controller::new(frontier, ms, ms_per_cost, self.adaptive_config)?;
                State {
                    objective,
                    fixed: None,
                    controller: Some(Arc::new(controller)),
                }
            }
        };
        self.state.store(Arc::new(state));
        Ok(())
    }

    /// The adaptive controller, under an SLO objective.
    pub fn controller(&self) -> Option<Arc<Controller>> {
        self.state.load().controller.clone()
    }

    /// The stitch a request that does not name one runs now.
    pub fn current_stitch(&self) -> StitchId {
        let state = self.state.load();
        match (&state.controller, state.fixed) {
            (Some(c), _) => c.current(),
            (None, Some(id)) => id,
            (None, None) => StitchId(0),
        }
    }

    /// The stitch of a request.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] for a stitch the network lacks ([`Error::StitchNotServed`]
    /// for another stitch than an exported stitch's own), and the errors of
    /// [`select`](Runtime::select) for a budget.
    pub fn resolve(&self, choice: Choice) -> Result<StitchId> {
        match choice {
            Choice::Default => Ok(self.current_stitch()),
            Choice::Budget(budget) => self.select(budget),
            Choice::Deadline(deadline) => self.plan(deadline.ms(), 1),
            Choice::Stitch(id) => {
                self.net.check_stitch(id)?;
                Ok(id)
            }
        }
    }

    /// The deadline model: the latency frontier and what the runtime learned about this
    /// machine's batching and overhead; `None` without a latency profile of this setup.
    pub fn latency_model(&self) -> Option<&LatencyModel> {
        self.latency_model.as_ref()
    }

    /// The most accurate stitch predicted to answer a batch of `batch` images within
    /// `left_ms` milliseconds from now (see [`crate::deadline`]).
    ///
    /// # Errors
    /// [`Error::NoProfile`] without a latency profile, [`Error::ForeignProfile`] with one of
    /// another setup (device, CPU or batch size; unless allowed),
    /// [`Error::DeadlineUnreachable`] when not even the cheapest stitch is predicted in time.
    pub fn plan(&self, left_ms: f64, batch: usize) -> Result<StitchId> {
        let model = self
            .latency_model
            .as_ref()
            .ok_or_else(|| self.no_latency_model("a deadline"))?;
        match model.best_within(left_ms, batch) {
            Some(rung) => Ok(rung.id),
            None => Err(Error::DeadlineUnreachable {
                left_ms,
                fastest_ms: model
                    .cheapest()
                    .and_then(|r| model.completion_ms(r.id, batch))
                    .unwrap_or(f64::INFINITY),
            }),
        }
    }

    /// Runs every stitch on a frontier once on a zero image, untimed, so that the first
    /// requests do not pay for first-run allocations; then [`is_warm`](Runtime::is_warm).
    ///
    /// # Errors
    /// [`Error::Core`] when a forward fails, [`Error::Device`] when the device does.
    pub fn warm_up(&self) -> Result<()> {
        let mut ids: Vec<StitchId> = self
            .frontiers
            .iter()
            .flat_map(|f| f.points().iter().map(|p| p.id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let [c, h, w] = self.input_size;
        for id in ids {
            let images = Tensor::<4>::zeros([1, c, h, w], &self.device);
            let _ = self.forward(images, id)?;
        }
        self.warm.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether [`warm_up`](Runtime::warm_up) has run.
    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::Acquire)
    }

    /// Runs stitch `stitch` on `images` and measures it (synchronising the device); the
    /// latency feeds the deadline model ([`latency_model`](Runtime::latency_model)), not the
    /// adaptive controller.
    ///
    /// The forward runs on the runtime's own thread pool ([`RuntimeBuilder::threads`]),
    /// whichever thread calls: the CPU kernels split their work over the pool they run on,
    /// and from a thread outside any pool every split is a round trip to sleeping threads
    /// (a batch-1 forward of the main job's small anchor took 0.72 ms that way, 0.32 ms on the
    /// pool, on a 2-core AMD EPYC: `benches/benches/runtime_forward.rs`).
    ///
    /// # Shapes
    /// `[B, C, H, W]` → `[B, num_classes]`.
    ///
    /// # Errors
    /// [`Error::Input`] for images of the wrong shape, [`Error::Core`] when the forward fails,
    /// [`Error::Device`] when the device fails.
    pub fn run(&self, images: Tensor<4>, stitch: StitchId) -> Result<(Tensor<2>, Duration)> {
        let dims = images.dims();
        let [c, h, w] = self.input_size;
        if dims[1..] != [c, h, w] || dims[0] == 0 {
            return Err(Error::Input(format!(
                "expected images [B >= 1, {c}, {h}, {w}], got {dims:?}"
            )));
        }
        let start = Instant::now();
        let logits = self.forward(images, stitch)?;
        let latency = self.clock.latency(stitch, dims[0], start.elapsed());
        if let Some(model) = &self.latency_model {
            model.observe_forward(stitch, dims[0], latency);
        }
        Ok((logits, latency))
    }

    /// The forward of `stitch` on the runtime's pool, the device synchronised.
    fn forward(&self, images: Tensor<4>, stitch: StitchId) -> Result<Tensor<2>> {
        self.pool.install(|| {
            let logits = self.net.forward(images, stitch)?;
            self.device
                .sync()
                .map_err(|e| Error::Device(format!("{e:?}")))?;
            Ok(logits)
        })
    }

    /// Records a measured latency of `stitch` for the adaptive controller (under an SLO
    /// objective; otherwise nothing happens).
    pub fn observe(&self, stitch: StitchId, latency: Duration) -> Option<Decision> {
        self.controller().map(|c| c.observe(stitch, latency))
    }

    /// Records a request's latency for the adaptive controller in two parts: the forward
    /// alone and the whole (queue, overhead and forward), so that the controller predicts
    /// other stitches with an additive overhead (see [`crate::adaptive`]).
    pub fn observe_parts(
        &self,
        stitch: StitchId,
        forward: Duration,
        total: Duration,
    ) -> Option<Decision> {
        self.controller()
            .map(|c| c.observe_parts(stitch, forward, total))
    }

    /// Classifies `images` with the stitch `choice` resolves to; under an SLO objective, a
    /// [`Choice::Default`] request's latency feeds the controller.
    ///
    /// # Shapes
    /// `[B, C, H, W]` (normalised as the anchors' pretrained config says) → logits
    /// `[B, num_classes]`.
    ///
    /// A [`Choice::Deadline`] runs the most accurate stitch predicted to answer all of
    /// `images` in time ([`plan`](Runtime::plan) at their batch size).
    ///
    /// # Errors
    /// As [`resolve`](Runtime::resolve), [`plan`](Runtime::plan) and [`run`](Runtime::run).
    pub fn infer(&self, images: Tensor<4>, choice: Choice) -> Result<Inference> {
        let stitch = match choice {
            Choice::Deadline(deadline) => self.plan(deadline.ms(), images.dims()[0])?,
            other => self.resolve(other)?,
        };
        let (logits, latency) = self.run(images, stitch)?;
        if choice == Choice::Default {
            self.observe(stitch, latency);
        }
        Ok(Inference {
            logits,
            stitch,
            latency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn assert_send_sync<T: Send + Sync>() {}

    /// The network and the runtime can be shared across threads.
    const _: () = {
        assert_send_sync::<snnet_core::SnNet>();
        assert_send_sync::<Arc<dyn Network>>();
        assert_send_sync::<Runtime>();
        assert_send_sync::<Arc<Runtime>>();
    };
}
