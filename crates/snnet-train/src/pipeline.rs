//! The main job as a library function: pretrain the anchors → build the SN-Net → least-squares
//! init of its stitching layers → joint training → evaluate every stitch → Pareto plot →
//! select a stitch for a FLOPs budget ([`run`]), and the steps it is made of, which the `snnet`
//! CLI's `pretrain`, `train` and `eval` verbs also call ([`pretrain_anchor`], [`train_joint`],
//! [`evaluate`]).
//!
//! Nothing here prints: progress goes to an [`Observer`] as [`Event`]s (the CLI draws progress
//! bars from them; [`Quiet`] ignores them). Everything a run makes goes into its folder, and a
//! folder that holds a finished step skips it, so an interrupted run resumes:
//!
//! | file | step |
//! |---|---|
//! | `run.json` | the [`RunConfig`] (rewritten at every start) |
//! | `anchors/<name>.safetensors` | each anchor's pretrained weights (timm layout) |
//! | `snnet_init.safetensors` | the SN-Net after least-squares init |
//! | `checkpoints/`, `train_log.jsonl`, `snnet.safetensors` | joint training (resumes from its last epoch) |
//! | `eval.jsonl` | every stitch's top-1/top-5 (resumes: evaluated ids are skipped) |
//! | `pareto.svg` | accuracy vs FLOPs with the frontier |
//! | `summary.json` | the [`RunSummary`] |
//!
//! ```no_run
//! use snnet_train::burn::tensor::Device;
//! use snnet_train::pipeline::{Preset, Quiet, RunConfig, run};
//!
//! let config = RunConfig::preset(Preset::Quick);
//! let outcome = run(&config, "runs/quick".as_ref(), &Device::default(), &mut Quiet)?;
//! println!("stitch {} selected", outcome.summary.selected.id);
//! # Ok::<(), snnet_train::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use snnet_core::select::{Budget, CostKind, StitchRecord, StitchTable};
use snnet_core::{
    LsOptions, LsReport, Model, ModelEntry, SnNet, SnNetConfig, SpaceConfig, StitchId,
};

use crate::error::{Error, Result};
use crate::eval::evaluate_all;
use crate::fashion_mnist::{self, ANCHOR_NAMES, DataConfig};
use crate::plot::plot_accuracy_vs_flops;
use crate::train::{Distill, EpochLog, Sampling, TrainConfig, TrainEvent, Trainer};

/// What the pipeline reports while it runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An anchor's weights are already in the run folder: its pretraining is skipped.
    AnchorExists {
        /// The anchor.
        name: &'a str,
        /// Its weights.
        path: &'a Path,
    },
    /// An anchor's shipped pretrained weights are in the run folder (checked against their
    /// recorded SHA-256).
    AnchorShipped {
        /// The anchor.
        name: &'a str,
        /// Its weights.
        path: &'a Path,
    },
    /// An anchor was pretrained.
    AnchorTrained {
        /// The anchor.
        name: &'a str,
        /// Wall time.
        seconds: f64,
    },
    /// A training reports: an anchor's pretraining (`what` is its name) or the joint
    /// training (`what` is `"joint"`).
    Train {
        /// What is trained.
        what: &'a str,
        /// Its epochs in all.
        epochs: usize,
        /// The trainer's event.
        event: TrainEvent,
    },
    /// The training of `what` stopped (finished or failed).
    TrainEnded {
        /// What was trained.
        what: &'a str,
    },
    /// The stitching layers were initialised by least squares.
    LeastSquares(&'a LsReport),
    /// The evaluation of `total` stitches starts (some may be in the output file already).
    EvalStarted {
        /// Stitches to evaluate in all.
        total: usize,
    },
    /// A stitch was evaluated.
    Evaluated {
        /// Its record.
        record: &'a StitchRecord,
        /// Stitches evaluated so far, earlier runs' included.
        done: usize,
        /// Stitches in all.
        total: usize,
    },
    /// The evaluation stopped (finished or failed).
    EvalEnded,
}

/// Receives the pipeline's [`Event`]s: a closure `FnMut(Event<'_>)`, [`Quiet`], or your type.
pub trait Observer {
    /// Called for every event, in order.
    fn event(&mut self, event: Event<'_>);
}

impl<F: FnMut(Event<'_>)> Observer for F {
    fn event(&mut self, event: Event<'_>) {
        self(event);
    }
}

/// An [`Observer`] that ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _event: Event<'_>) {}
}

/// The presets of the main job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// A few minutes on a 2-core CPU: subsets of the data, few epochs.
    Quick,
    /// The long run: all the data, more epochs.
    Full,
}

/// The settings of a run, recorded in its folder as `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The preset the settings come from.
    pub preset: Preset,
    /// The anchors, small to large, by name in [`fashion_mnist::anchor_registry`].
    pub anchors: Vec<String>,
    /// Start from the anchors' shipped pretrained weights ([`fashion_mnist::install_pretrained`],
    /// checked against their recorded SHA-256) instead of pretraining them.
    #[serde(default)]
    pub pretrained: bool,
    /// The anchors' pretraining data.
    pub pretrain_data: DataConfig,
    /// The anchors' pretraining recipe (distillation is ignored: there is no teacher).
    pub pretrain: TrainConfig,
    /// Training images of the least-squares init (the reference uses 100).
    pub init_samples: usize,
    /// The joint training's data.
    pub joint_data: DataConfig,
    /// The joint training's recipe (the teacher is the largest anchor, frozen at its start).
    pub joint: TrainConfig,
    /// The evaluation's data (its `test_samples`).
    pub eval_data: DataConfig,
    /// The FLOPs budget of the final selection (`None`: halfway between the smallest and the
    /// largest anchor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_flops: Option<u64>,
}

impl RunConfig {
    /// The settings of `preset`, on Debian's Fashion-MNIST with the default data parallelism.
    ///
    /// - [`Preset::Quick`]: the SN-Net part on the shipped pretrained anchors
    ///   ([`RunConfig::pretrained`]): least-squares init on 100 images, 5 epochs of joint training
    ///   (peak learning rate 3e-3; SN-Netv2's rising FLOPs sampling, every stitch its own group,
    ///   `flops_sampling_k` 35: a stitch is drawn with probability proportional to its FLOPs
    ///   rank + 1) on all 60,000 training images, evaluation on all 10,000 test images (with
    ///   [`RunConfig::with_pretraining`], the anchors are pretrained for 6 epochs first).
    /// - [`Preset::Full`]: every image, the anchors pretrained for 15 epochs, 10 of joint training
    ///   (peak learning rate 1e-3).
    pub fn preset(preset: Preset) -> Self {
        let data = |train_samples, test_samples| DataConfig {
            dir: None,
            train_samples,
            test_samples,
            batch_size: 64,
            seed: 0,
            shards: 0,
        };
        // The quick preset's five joint epochs take a higher peak rate than the full preset's
        // ten, and draw the costlier stitches more often: measured in docs/REPRODUCTION.md
        // (joint recipes), 3e-3 is what lets a few epochs adapt the anchors to the stitched
        // paths, and under uniform sampling the M→L stitches' accuracy hardly rises with FLOPs
        // in that time.
        let (pre_samples, pre_epochs, joint_samples, joint_epochs, joint_lr, test) = match preset {
            Preset::Quick => (0, 6, 0, 5, 3e-3, 0),
            Preset::Full => (0, 15, 0, 10, 1e-3, 0),
        };
        let joint_sampling = match preset {
            Preset::Quick => Sampling::FlopsGrouped {
                gap_flops: 0,
                flops_sampling_k: Some(35.0),
            },
            Preset::Full => Sampling::Uniform,
        };
        Self {
            preset,
            anchors: ANCHOR_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            pretrained: preset == Preset::Quick,
            pretrain_data: data(pre_samples, test),
            pretrain: TrainConfig {
                epochs: pre_epochs,
                lr: 3e-3,
                warmup_epochs: 0.2,
                distill: Distill::None,
                ..TrainConfig::default()
            },
            init_samples: 100,
            joint_data: data(joint_samples, test),
            joint: TrainConfig {
                epochs: joint_epochs,
                lr: joint_lr,
                warmup_epochs: 0.2,
                sampling: joint_sampling,
                ..TrainConfig::default()
            },
            eval_data: data(joint_samples, test),
            budget_flops: None,
        }
    }

    /// Reads Fashion-MNIST from `dir` (`None`: Debian's package) in every step.
    #[must_use]
    pub fn with_data_dir(mut self, dir: Option<PathBuf>) -> Self {
        for data in [
            &mut self.pretrain_data,
            &mut self.joint_data,
            &mut self.eval_data,
        ] {
            data.dir.clone_from(&dir);
        }
        self
    }

    /// Splits every training batch into `shards` data-parallel shards (0: the default, see
    /// [`fashion_mnist::default_shards`]).
    #[must_use]
    pub fn with_shards(mut self, shards: usize) -> Self {
        for data in [
            &mut self.pretrain_data,
            &mut self.joint_data,
            &mut self.eval_data,
        ] {
            data.shards = shards;
        }
        self
    }

    /// Pretrains the anchors from scratch (`true`) instead of starting from the shipped weights.
    #[must_use]
    pub fn with_pretraining(mut self, pretrain: bool) -> Self {
        self.pretrained = !pretrain;
        self
    }

    /// Selects within `budget` FLOPs at the end (`None`: halfway between the smallest and the
    /// largest anchor).
    #[must_use]
    pub fn with_budget_flops(mut self, budget: Option<u64>) -> Self {
        self.budget_flops = budget;
        self
    }
}

/// What a run ends with, as its folder's `summary.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The preset of the run's settings.
    pub preset: Preset,
    /// Stitches evaluated.
    pub stitches: usize,
    /// The anchors' rows of the evaluation, small to large.
    pub anchors: Vec<StitchRecord>,
    /// The ids on the accuracy/FLOPs Pareto frontier, by rising FLOPs.
    pub frontier: Vec<usize>,
    /// The budget of the selection.
    pub budget_flops: u64,
    /// The most accurate stitch within the budget.
    pub selected: StitchRecord,
    /// Whether the result shows SN-Net interpolating between its anchors.
    pub checks: ResultChecks,
    /// The run's wall time (this invocation's, when it resumed).
    pub seconds: f64,
}

/// Spearman's rank correlation between FLOPs and top-1 across the stitches of one anchor pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairTrend {
    /// The front (smaller) anchor's index.
    pub front: usize,
    /// The end (larger) anchor's index.
    pub end: usize,
    /// Stitches of the pair.
    pub stitches: usize,
    /// Spearman's ρ of (FLOPs, top-1) over them (average ranks for ties); `None` for fewer
    /// than two stitches or a constant column.
    pub rho: Option<f64>,
}

/// Whether a run shows SN-Net's result: the stitches interpolate between the anchors. The
/// criteria (issue 11, docs/REPRODUCTION.md): the frontier runs from the smallest to the largest
/// anchor through ≥ 6 points; ≥ 80 % of the stitches lie in [acc(S) − 0.5, acc(L) + 0.5]; none
/// below acc(S) − 1.0; per anchor pair, top-1 rises with FLOPs (Spearman ρ ≥ 0.6); the budget
/// halfway between S and L selects a stitch more accurate than M.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultChecks {
    /// Points on the accuracy/FLOPs frontier.
    pub frontier_points: usize,
    /// Whether the frontier starts at the smallest anchor and ends at the largest.
    pub frontier_spans_anchors: bool,
    /// Stitches that are not anchors.
    pub stitches: usize,
    /// Of them, those with top-1 in [acc(S) − 0.5, acc(L) + 0.5].
    pub in_band: usize,
    /// Of them, those below acc(S) − 1.0.
    pub below_floor: usize,
    /// FLOPs–accuracy trend per anchor pair.
    pub pairs: Vec<PairTrend>,
    /// Whether the selection beats the middle anchor (`None` with fewer than three anchors).
    pub selected_beats_middle: Option<bool>,
}

impl ResultChecks {
    /// The checks of `table` (every stitch evaluated) for the SN-Net of `space`, whose anchors
    /// are its first stitches, with `selected` the budget's choice.
    ///
    /// # Errors
    /// [`Error::Select`] for a table without FLOPs; [`Error::InvalidConfig`] for a table
    /// without the anchors' rows.
    pub fn measure(
        table: &StitchTable,
        space: &snnet_core::StitchSpace,
        selected: &StitchRecord,
    ) -> Result<Self> {
        let anchors = space.anchors().len();
        let acc = |id: usize| {
            table
                .get(id)
                .map(|r| r.acc1)
                .ok_or_else(|| Error::InvalidConfig {
                    what: "evaluation table",
                    reason: format!("no row for anchor stitch {id}"),
                })
        };
        let (low, high) = (acc(0)?, acc(anchors - 1)?);
        let frontier: Vec<usize> = table
            .pareto(CostKind::Flops)?
            .iter()
            .map(|r| r.id.index())
            .collect();
        let others: Vec<&StitchRecord> = table.iter().filter(|r| r.id >= anchors).collect();
        let mut pairs: Vec<PairTrend> = Vec::new();
        let mut groups: std::collections::BTreeMap<(usize, usize), Vec<(f64, f64)>> =
            std::collections::BTreeMap::new();
        for r in &others {
            let stitch = space.get(r.id).map_err(snnet_core::Error::from)?;
            let (Some(&front), Some(&end)) = (stitch.anchors.first(), stitch.anchors.last()) else {
                continue;
            };
            let flops = r.flops.ok_or_else(|| Error::InvalidConfig {
                what: "evaluation table",
                reason: format!("stitch {} has no FLOPs", r.id),
            })?;
            groups
                .entry((front, end))
                .or_default()
                .push((flops as f64, r.acc1));
        }
        for ((front, end), points) in groups {
            pairs.push(PairTrend {
                front,
                end,
                stitches: points.len(),
                rho: spearman(&points),
            });
        }
        Ok(Self {
            frontier_points: frontier.len(),
            frontier_spans_anchors: frontier.first() == Some(&0)
                && frontier.last() == Some(&(anchors - 1)),
            stitches: others.len(),
            in_band: others
                .iter()
                .filter(|r| r.acc1 >= low - 0.5 && r.acc1 <= high + 0.5)
                .count(),
            below_floor: others.iter().filter(|r| r.acc1 < low - 1.0).count(),
            pairs,
            selected_beats_middle: (anchors >= 3)
                .then(|| acc(anchors / 2).map(|m| selected.acc1 > m))
                .transpose()?,
        })
    }

    /// The criteria that fail, as sentences (empty: the result holds).
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        if !self.frontier_spans_anchors || self.frontier_points < 6 {
            failed.push(format!(
                "the frontier has {} points{} (wanted ≥ 6, from S to L)",
                self.frontier_points,
                if self.frontier_spans_anchors {
                    ""
                } else {
                    " and does not run from S to L"
                }
            ));
        }
        if self.in_band * 5 < self.stitches * 4 {
            failed.push(format!(
                "{} of {} stitches in [acc(S) − 0.5, acc(L) + 0.5] (wanted ≥ 80 %)",
                self.in_band, self.stitches
            ));
        }
        if self.below_floor > 0 {
            failed.push(format!(
                "{} stitches below acc(S) − 1.0 (wanted none)",
                self.below_floor
            ));
        }
        for p in &self.pairs {
            if p.rho.is_none_or(|rho| rho < 0.6) {
                failed.push(format!(
                    "anchors {}→{}: Spearman ρ(FLOPs, top-1) {} over {} stitches (wanted ≥ 0.6)",
                    p.front,
                    p.end,
                    p.rho.map_or("undefined".to_owned(), |r| format!("{r:.2}")),
                    p.stitches
                ));
            }
        }
        if self.selected_beats_middle == Some(false) {
            failed.push("the halfway budget's stitch is not more accurate than M".to_owned());
        }
        failed
    }
}

/// Average ranks (ties share the mean of their positions), 1-based.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's ρ of the pairs `(x, y)`: Pearson's correlation of their average ranks.
fn spearman(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let x = ranks(&points.iter().map(|p| p.0).collect::<Vec<_>>());
    let y = ranks(&points.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// What [`run`] returns: the summary, and the table and network it was taken from.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary (also written as `summary.json`).
    pub summary: RunSummary,
    /// Every stitch's evaluation (also in `eval.jsonl`).
    pub table: StitchTable,
    /// The trained SN-Net (also in `snnet.safetensors`).
    pub net: SnNet,
}

impl RunOutcome {
    /// The frontier's records, by rising FLOPs.
    pub fn frontier(&self) -> Vec<&StitchRecord> {
        self.summary
            .frontier
            .iter()
            .filter_map(|id| self.table.get(*id))
            .collect()
    }
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| file_error(path, e))?;
    snnet_fs::write_atomic(path, text.as_bytes()).map_err(|e| file_error(path, e))
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))
}

fn first_anchor(net: &SnNet) -> Result<ModelEntry> {
    net.config()
        .anchors
        .first()
        .cloned()
        .ok_or_else(|| Error::InvalidConfig {
            what: "SN-Net",
            reason: "it has no anchors".into(),
        })
}

/// Runs `trainer` on `net`, reporting to `observer` as `what`.
fn fit<D: crate::data::Dataset>(
    trainer: Trainer<D>,
    net: SnNet,
    what: &str,
    observer: &mut dyn Observer,
) -> Result<(SnNet, Vec<EpochLog>)> {
    let epochs = trainer.config().epochs;
    let result = trainer.fit(net, &mut |event| {
        observer.event(Event::Train {
            what,
            epochs,
            event,
        });
    });
    observer.event(Event::TrainEnded { what });
    result
}

/// Trains `anchor` from scratch on Fashion-MNIST (`data`'s training images, `recipe` without
/// distillation) and writes its weights (timm layout, safetensors) to `output`. Returns the
/// epoch logs.
///
/// # Errors
/// Data, training and checkpoint errors.
pub fn pretrain_anchor(
    anchor: &ModelEntry,
    data: &DataConfig,
    recipe: &TrainConfig,
    output: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochLog>> {
    let config = SnNetConfig::new(vec![anchor.clone()], SpaceConfig::default());
    // The initial weights are a function of the recipe's seed (Burn's device RNG).
    device.seed(recipe.seed);
    let net = config.init(device)?;
    let batcher = data.train_batcher(anchor, &device.clone().autodiff())?;
    let recipe = TrainConfig {
        distill: Distill::None,
        ..recipe.clone()
    };
    let trainer = Trainer::new(recipe, batcher)?.with_data_parallel(data.parallel(device)?);
    let (net, logs) = fit(trainer, net, &anchor.name, observer)?;
    let model = net
        .anchors
        .into_iter()
        .next()
        .ok_or_else(|| Error::InvalidConfig {
            what: "SN-Net",
            reason: "it has no anchors".into(),
        })?;
    model.save_weights(output)?;
    Ok(logs)
}

/// Joint training of `net` on Fashion-MNIST into the folder `dir`: checkpoints every epoch in
/// `dir/checkpoints` (a folder with one resumes from it), the epoch logs as
/// `dir/train_log.jsonl` and the trained SN-Net as `dir/snnet.safetensors`. The teacher is
/// `teacher`, or without one the SN-Net's largest anchor (unless `config` distils nothing).
///
/// # Errors
/// Data, training and checkpoint errors.
pub fn train_joint(
    net: SnNet,
    teacher: Option<Model>,
    data: &DataConfig,
    config: TrainConfig,
    dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochLog>> {
    create_dir(dir)?;
    let first = first_anchor(&net)?;
    let teacher = match (config.distill, teacher) {
        (Distill::None, _) => None,
        (_, Some(teacher)) => Some(teacher),
        (_, None) => net.anchors.last().cloned(),
    };
    let autodiff = device.clone().autodiff();
    let batcher = data.train_batcher(&first, &autodiff)?;
    let trainer = Trainer::new(config, batcher)?
        .with_teacher(teacher.map(|t| t.fork(&autodiff)))
        .with_data_parallel(data.parallel(device)?)
        .with_checkpoints(dir.join("checkpoints"));
    let (net, logs) = fit(trainer, net, "joint", observer)?;
    let log_path = dir.join("train_log.jsonl");
    let mut log = String::new();
    for l in &logs {
        log.push_str(&serde_json::to_string(l).map_err(|e| file_error(&log_path, e))?);
        log.push('\n');
    }
    snnet_fs::write_atomic(&log_path, log.as_bytes()).map_err(|e| file_error(&log_path, e))?;
    net.save(&dir.join("snnet.safetensors"))?;
    Ok(logs)
}

/// Evaluates every stitch of `net` on `data`'s test images and appends one JSON line per
/// stitch to `output` (ids already there are skipped: an interrupted evaluation resumes).
/// Returns the whole table.
///
/// # Errors
/// Data, forward and file errors.
pub fn evaluate(
    net: &SnNet,
    data: &DataConfig,
    output: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<StitchTable> {
    let first = first_anchor(net)?;
    let batcher = data.test_batcher(&first, device)?;
    let total = net.space().evaluated().count();
    observer.event(Event::EvalStarted { total });
    let table = evaluate_all(net, &batcher, output, &mut |record, done, total| {
        observer.event(Event::Evaluated {
            record,
            done,
            total,
        });
    });
    observer.event(Event::EvalEnded);
    table
}

/// The main job in the folder `dir`: pretrain the anchors → SN-Net → least-squares init →
/// joint training → evaluate every stitch → Pareto plot → select a stitch for the budget.
/// Steps whose output is in `dir` already are skipped (see the [module docs](self)).
///
/// # Errors
/// Data, training, evaluation and file errors; [`Error::Select`] when no stitch fits the
/// budget.
pub fn run(
    config: &RunConfig,
    dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunOutcome> {
    let started = Instant::now();
    create_dir(&dir.join("anchors"))?;
    write_json(&dir.join("run.json"), config)?;
    let registry = fashion_mnist::anchor_registry()?;

    // 1. Anchors.
    let mut entries = Vec::new();
    for name in &config.anchors {
        let entry = registry.get(name)?.clone();
        let path = dir.join("anchors").join(format!("{name}.safetensors"));
        if config.pretrained {
            fashion_mnist::install_pretrained(name, &path)?;
            observer.event(Event::AnchorShipped { name, path: &path });
        } else if path.exists() {
            observer.event(Event::AnchorExists { name, path: &path });
        } else {
            let t = Instant::now();
            pretrain_anchor(
                &entry,
                &config.pretrain_data,
                &config.pretrain,
                &path,
                device,
                observer,
            )?;
            observer.event(Event::AnchorTrained {
                name,
                seconds: t.elapsed().as_secs_f64(),
            });
        }
        entries.push((entry, path));
    }
    let Some((first, _)) = entries.first() else {
        return Err(Error::InvalidConfig {
            what: "run",
            reason: "no anchors".into(),
        });
    };

    // 2–3. SN-Net with least-squares stitching layers.
    let init_path = dir.join("snnet_init.safetensors");
    if !init_path.exists() {
        let snnet = SnNetConfig::new(
            entries.iter().map(|(e, _)| e.clone()).collect(),
            SpaceConfig::default(),
        );
        let paths: Vec<&Path> = entries.iter().map(|(_, p)| p.as_path()).collect();
        let (net, _) = SnNet::from_pretrained(snnet, &paths, device)?;
        let images = fashion_mnist::train_images(
            config.pretrain_data.dir.as_deref(),
            config.init_samples,
            first,
            device,
        )?;
        let (net, report) = net.init_least_squares(images, &LsOptions::default(), &mut |_| {})?;
        observer.event(Event::LeastSquares(&report));
        net.save(&init_path)?;
    }

    // 4. Joint training (resumes from its checkpoints).
    let trained = dir.join("snnet.safetensors");
    if !trained.exists() {
        let (net, _) = SnNet::load(&init_path, device)?;
        train_joint(
            net,
            None,
            &config.joint_data,
            config.joint.clone(),
            dir,
            device,
            observer,
        )?;
    }

    // 5–6. Evaluation and plot.
    let (net, _) = SnNet::load(&trained, device)?;
    let table = evaluate(
        &net,
        &config.eval_data,
        &dir.join("eval.jsonl"),
        device,
        observer,
    )?;
    let anchors: Vec<usize> = (0..net.config().anchors.len()).collect();
    plot_accuracy_vs_flops(
        &table,
        &anchors,
        "SN-Net on Fashion-MNIST: accuracy vs FLOPs",
        &dir.join("pareto.svg"),
    )?;

    // 7. Pareto frontier and a selection.
    let frontier = table
        .pareto(CostKind::Flops)?
        .iter()
        .map(|r| r.id.index())
        .collect();
    let budget_flops = match config.budget_flops {
        Some(b) => b,
        None => {
            let flops = |id: usize| net.cost(StitchId(id)).map(|c| c.flops);
            (flops(0)? + flops(anchors.len() - 1)?) / 2
        }
    };
    let selected = table.select(Budget::flops(budget_flops))?.clone();
    let checks = ResultChecks::measure(&table, net.space(), &selected)?;
    let summary = RunSummary {
        preset: config.preset,
        stitches: table.len(),
        anchors: anchors
            .iter()
            .filter_map(|&id| table.get(id).cloned())
            .collect(),
        checks,
        frontier,
        budget_flops,
        selected,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join("summary.json"), &summary)?;
    Ok(RunOutcome {
        summary,
        table,
        net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_of_ranks() {
        let rising = [(1.0, 10.0), (2.0, 20.0), (3.0, 25.0), (4.0, 40.0)];
        assert_eq!(spearman(&rising), Some(1.0));
        let falling: Vec<_> = rising.iter().map(|&(x, y)| (x, -y)).collect();
        assert_eq!(spearman(&falling), Some(-1.0));
        assert_eq!(spearman(&[(1.0, 1.0), (2.0, 1.0)]), None); // constant accuracy
        assert_eq!(spearman(&[(1.0, 1.0)]), None);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        // Ties: x ranks 1, 2.5, 2.5, 4 against y ranks 1, 2, 3, 4.
        let tied = spearman(&[(1.0, 1.0), (2.0, 2.0), (2.0, 3.0), (3.0, 4.0)]).unwrap_or(0.0);
        assert!((tied - 0.9486832980505138).abs() < 1e-12, "{tied}");
    }

    #[test]
    fn presets_serialise_as_run_json_did() -> Result<()> {
        let quick = RunConfig::preset(Preset::Quick)
            .with_data_dir(Some("/data".into()))
            .with_shards(3);
        let json = serde_json::to_value(&quick).map_err(|e| file_error(Path::new("-"), e))?;
        assert_eq!(json["preset"], "Quick");
        assert_eq!(json["anchors"][2], "fmnist_vit_l");
        assert_eq!(json["pretrain_data"]["data"], "/data");
        assert_eq!(json["joint_data"]["shards"], 3);
        assert_eq!(json["eval_data"]["test_samples"], 0);
        assert_eq!(json["pretrain"]["epochs"], 6);
        assert_eq!(json["joint"]["epochs"], 5);
        assert_eq!(json["joint"]["sampling"]["kind"], "flops-grouped");
        assert_eq!(json["joint"]["sampling"]["flops_sampling_k"], 35.0);
        assert_eq!(json["pretrained"], true);
        assert!(json.get("budget_flops").is_none());
        let back: RunConfig =
            serde_json::from_value(json).map_err(|e| file_error(Path::new("-"), e))?;
        assert_eq!(back, quick);
        let full = RunConfig::preset(Preset::Full);
        assert_eq!(full.joint_data.train_samples, 0);
        assert_eq!(full.joint.epochs, 10);
        assert_eq!(full.joint.sampling, Sampling::Uniform);
        Ok(())
    }
}
