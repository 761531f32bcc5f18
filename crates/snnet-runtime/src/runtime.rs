//! The runtime: one SN-Net, its table and frontiers, and the stitch each request runs.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use snnet_core::burn::tensor::{Device, Tensor};
use snnet_core::select::{Budget, CostKind, Frontier, StitchRecord, StitchTable};
use snnet_core::{SnNet, StitchId};

use crate::adaptive::{AdaptiveConfig, Clock, Controller, Decision, WallClock};
use crate::error::{Error, Result};
use crate::profile::{ProfileMeta, Setup, input_size};

/// What the runtime aims at when a request does not say: a budget, or a latency objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The most accurate stitch within a budget (FLOPs, params, profiled latency or memory).
    Budget(Budget),
    /// Adaptive mode: keep the p95 of measured latencies at most this many milliseconds.
    SloP95Ms(f64),
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Objective::Budget(b) => write!(f, "{b}"),
            Objective::SloP95Ms(ms) => write!(f, "p95 latency <= {ms} ms"),
        }
    }
}

/// The objective as JSON: exactly one of `{"max_latency_ms": x}`, `{"max_flops": n}`,
/// `{"max_params": n}`, `{"max_memory_bytes": n}` or `{"slo_p95_ms": x}` (the HTTP API's
/// `/v1/budget` body).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveJson {
    /// A latency budget in milliseconds (needs a profile of this setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    /// A FLOPs budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_flops: Option<u64>,
    /// A parameter budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_params: Option<u64>,
    /// A memory budget in bytes (needs a profile of this setup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<u64>,
    /// A p95 latency objective in milliseconds (adaptive mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_p95_ms: Option<f64>,
}

impl TryFrom<ObjectiveJson> for Objective {
    type Error = Error;

    fn try_from(json: ObjectiveJson) -> Result<Self> {
        let mut found = Vec::new();
        if let Some(ms) = json.max_latency_ms {
            found.push(Objective::Budget(Budget::latency_ms(ms)));
        }
        if let Some(n) = json.max_flops {
            found.push(Objective::Budget(Budget::flops(n)));
        }
        if let Some(n) = json.max_params {
            found.push(Objective::Budget(Budget::params(n)));
        }
        if let Some(n) = json.max_memory_bytes {
            found.push(Objective::Budget(Budget::memory_bytes(n)));
        }
        if let Some(ms) = json.slo_p95_ms {
            found.push(Objective::SloP95Ms(ms));
        }
        match found.as_slice() {
            [one] => Ok(*one),
            _ => Err(Error::Input(
                "give exactly one of max_latency_ms, max_flops, max_params, max_memory_bytes, slo_p95_ms"
                    .to_owned(),
            )),
        }
    }
}

impl From<Objective> for ObjectiveJson {
    fn from(objective: Objective) -> Self {
        let mut json = ObjectiveJson::default();
        match objective {
            Objective::SloP95Ms(ms) => json.slo_p95_ms = Some(ms),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Objective::Budget(b) => match b.cost {
                CostKind::LatencyMs => json.max_latency_ms = Some(b.max),
                CostKind::Flops => json.max_flops = Some(b.max as u64),
                CostKind::Params => json.max_params = Some(b.max as u64),
                CostKind::MemoryBytes => json.max_memory_bytes = Some(b.max as u64),
            },
        }
        json
    }
}

/// Which stitch a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Choice {
    /// Whatever the runtime's [`Objective`] picks now.
    #[default]
    Default,
    /// The most accurate stitch within this budget.
    Budget(Budget),
    /// This stitch.
    Stitch(StitchId),
}

impl From<Budget> for Choice {
    fn from(budget: Budget) -> Self {
        Choice::Budget(budget)
    }
}

impl From<StitchId> for Choice {
    fn from(id: StitchId) -> Self {
        Choice::Stitch(id)
    }
}

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
#[derive(Debug)]
pub struct RuntimeBuilder {
    net: Arc<SnNet>,
    table: StitchTable,
    device: Device,
    batch: usize,
    allow_foreign_profile: bool,
    objective: Option<Objective>,
    adaptive: AdaptiveConfig,
    clock: Arc<dyn Clock>,
}

impl RuntimeBuilder {
    /// The batch size the runtime's latency figures are for (default 1): a latency budget
    /// needs a profile at this batch size.
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Accepts latency and memory budgets against a profile measured on another device, CPU
    /// or batch size (default: a typed error, [`Error::ForeignProfile`]).
    #[must_use]
    pub fn allow_foreign_profile(mut self, allow: bool) -> Self {
        self.allow_foreign_profile = allow;
        self
    }

    /// The starting objective (default: the most accurate stitch, an unbounded FLOPs budget).
    #[must_use]
    pub fn objective(mut self, objective: Objective) -> Self {
        self.objective = Some(objective);
        self
    }

    /// The adaptive controller's tuning.
    #[must_use]
    pub fn adaptive(mut self, config: AdaptiveConfig) -> Self {
        self.adaptive = config;
        self
    }

    /// How latencies are measured (default [`WallClock`]; [`SimulatedLoad`](crate::SimulatedLoad)
    /// injects a load).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the runtime: frontiers for every cost the table has, the profile check, the
    /// starting objective.
    ///
    /// # Errors
    /// [`Error::UnknownStitch`] for a table row the network does not have, [`Error::Select`]
    /// for an empty table, [`Error::MixedProfiles`], and the errors of
    /// [`Runtime::set_objective`] for the starting objective.
    pub fn build(self) -> Result<Runtime> {
        if self.table.is_empty() {
            return Err(snnet_core::select::Error::EmptyTable.into());
        }
        if self.batch == 0 {
            return Err(Error::Config("the runtime's batch must be >= 1".to_owned()));
        }
        self.adaptive.validate()?;
        let stitches = self.net.num_stitches();
        if let Some(r) = self.table.iter().find(|r| r.id >= stitches) {
            return Err(Error::UnknownStitch {
                id: r.id.index(),
                reason: format!("the table has it but the network has {stitches} stitches"),
            });
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
        let input_size = input_size(&self.net)?;
        let runtime = Runtime {
            setup: Setup::here(&self.device, self.batch),
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
        };
        let objective = match self.objective {
            Some(objective) => objective,
            None => Objective::Budget(Budget::new(runtime.default_cost(), f64::INFINITY)),
        };
        runtime.set_objective(objective)?;
        Ok(runtime)
    }
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

/// One SN-Net served: the network (shared, never copied), its stitch table, the Pareto
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
    net: Arc<SnNet>,
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
}

impl Runtime {
    /// A builder for the runtime of `net` with its `table` on `device`.
    pub fn builder(net: Arc<SnNet>, table: StitchTable, device: Device) -> RuntimeBuilder {
        RuntimeBuilder {
            net,
            table,
            device,
            batch: 1,
            allow_foreign_profile: false,
            objective: None,
            adaptive: AdaptiveConfig::default(),
            clock: Arc::new(WallClock),
        }
    }

    /// The runtime with default settings: batch 1, the most accurate stitch.
    ///
    /// # Errors
    /// As [`RuntimeBuilder::build`].
    pub fn new(net: Arc<SnNet>, table: StitchTable, device: Device) -> Result<Self> {
        Runtime::builder(net, table, device).build()
    }

    /// The network.
    pub fn net(&self) -> &Arc<SnNet> {
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

    /// What the runtime serves on (device, CPU, batch).
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
            .space()
            .display(id)
            .map_or_else(|_| format!("stitch {id}"), |d| d.to_string())
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
        let Some(profile) = &self.profile else {
            return Err(Error::NoProfile {
                what: format!("the budget {budget}"),
            });
        };
        if self.allow_foreign_profile || profile.setup() == self.setup {
            Ok(())
        } else {
            Err(Error::ForeignProfile {
                budget: *budget,
                measured: profile.setup().to_string(),
                serving: self.setup.to_string(),
            })
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
    /// [`Error::UnknownStitch`] for a stitch the network lacks, and the errors of
    /// [`select`](Runtime::select) for a budget.
    pub fn resolve(&self, choice: Choice) -> Result<StitchId> {
        match choice {
            Choice::Default => Ok(self.current_stitch()),
            Choice::Budget(budget) => self.select(budget),
            Choice::Stitch(id) => {
                if id.index() < self.net.num_stitches() {
                    Ok(id)
                } else {
                    Err(Error::UnknownStitch {
                        id: id.index(),
                        reason: format!("the network has {} stitches", self.net.num_stitches()),
                    })
                }
            }
        }
    }

    /// Runs stitch `stitch` on `images` and measures it (synchronising the device); no
    /// observation is recorded.
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
        let logits = self.net.forward(images, stitch)?;
        self.device
            .sync()
            .map_err(|e| Error::Device(format!("{e:?}")))?;
        let latency = self.clock.latency(stitch, dims[0], start.elapsed());
        Ok((logits, latency))
    }

    /// Records a measured latency of `stitch` for the adaptive controller (under an SLO
    /// objective; otherwise nothing happens).
    pub fn observe(&self, stitch: StitchId, latency: Duration) -> Option<Decision> {
        self.controller().map(|c| c.observe(stitch, latency))
    }

    /// Classifies `images` with the stitch `choice` resolves to; under an SLO objective, a
    /// [`Choice::Default`] request's latency feeds the controller.
    ///
    /// # Shapes
    /// `[B, C, H, W]` (normalised as the anchors' pretrained config says) → logits
    /// `[B, num_classes]`.
    ///
    /// # Errors
    /// As [`resolve`](Runtime::resolve) and [`run`](Runtime::run).
    pub fn infer(&self, images: Tensor<4>, choice: Choice) -> Result<Inference> {
        let stitch = self.resolve(choice)?;
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
        assert_send_sync::<SnNet>();
        assert_send_sync::<Runtime>();
        assert_send_sync::<Arc<Runtime>>();
    };

    #[test]
    #[allow(clippy::unwrap_used)]
    fn objective_json_needs_exactly_one_field() {
        let parse = |s: &str| {
            serde_json::from_str::<ObjectiveJson>(s)
                .map_err(|e| Error::Input(e.to_string()))
                .and_then(Objective::try_from)
        };
        assert_eq!(
            parse(r#"{"max_latency_ms": 5}"#).unwrap(),
            Objective::Budget(Budget::latency_ms(5.0))
        );
        assert_eq!(
            parse(r#"{"max_flops": 1000}"#).unwrap(),
            Objective::Budget(Budget::flops(1000))
        );
        assert_eq!(
            parse(r#"{"slo_p95_ms": 2.5}"#).unwrap(),
            Objective::SloP95Ms(2.5)
        );
        assert!(parse("{}").is_err());
        assert!(parse(r#"{"max_flops": 1, "slo_p95_ms": 2}"#).is_err());
        assert!(parse(r#"{"max_gpus": 1}"#).is_err());
        for o in [
            Objective::SloP95Ms(3.0),
            Objective::Budget(Budget::flops(7)),
            Objective::Budget(Budget::latency_ms(1.5)),
        ] {
            let json = serde_json::to_string(&ObjectiveJson::from(o)).unwrap();
            assert_eq!(parse(&json).unwrap(), o);
        }
    }
}
