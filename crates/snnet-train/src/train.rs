//! Joint training of every stitch (SN-Net §3.3): one sampled stitch per step, cross-entropy with
//! label smoothing plus distillation, AdamW with warm-up and cosine decay, checkpoints every
//! epoch and exact resumption.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use snnet_core::{Anchor, Model, SnNet, StitchId};

use crate::data::{BatchConfig, Batcher, Dataset, sample_rng};
use crate::error::{Error, Result};
use crate::parallel::DataParallel;

/// How the teacher's outputs enter the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Distill {
    /// No teacher: the loss is the (label-smoothed) cross-entropy alone.
    None,
    /// Hard distillation, the reference's default: cross-entropy against the teacher's top-1.
    #[default]
    Hard,
    /// Soft distillation: `T² · KL(softmax(t/T) ‖ softmax(s/T))`.
    Soft {
        /// The temperature `T`.
        temperature: f32,
    },
}

/// Where the teacher's outputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TeacherTargets {
    /// The teacher runs on every training batch as the student sees it, augmented (the
    /// reference: DeiT's hard distillation). One teacher forward per image and epoch.
    #[default]
    Online,
    /// The teacher runs once, before the first epoch, on every training image without
    /// augmentation, and each step reads the outputs of its items: one teacher forward per
    /// image for the whole run. The same targets as [`Online`](TeacherTargets::Online) when the
    /// training data is not augmented; with augmentation the student sees a shifted or flipped
    /// copy of the image whose teacher output it is trained towards.
    Precomputed,
}

/// How each step picks the stitch it trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Sampling {
    /// Uniformly over all evaluated stitches, anchors included (SN-Net).
    #[default]
    Uniform,
    /// SN-Netv2's FLOPs-grouped sampling: stitches sorted by FLOPs are grouped (a new group
    /// starts when a stitch is more than `gap_flops` above its group's first), a group is drawn
    /// (uniformly, or with SN-Netv2's linearly rising probability, see `flops_sampling_k`), then
    /// a stitch within it uniformly.
    FlopsGrouped {
        /// The group width in FLOPs (SN-Netv2: 1 GFLOP).
        gap_flops: u64,
        /// SN-Netv2's `--flops_sampling_k`: group `i` of `G` (cheapest first) is drawn with
        /// probability proportional to `i / k + 1 / G`, so that costlier groups train more
        /// often (smaller `k`: steeper). `None`: every group alike.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flops_sampling_k: Option<f64>,
    },
}

/// The training recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Warm-up length in epochs (fractions allowed), linear from `warmup_lr` to `lr`.
    pub warmup_epochs: f64,
    /// Learning rate at the start of the warm-up.
    pub warmup_lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Learning-rate scale of the anchors' parameters (Swin recipe: 0.1).
    pub anchor_lr_scale: f64,
    /// Learning-rate scale of the stitching layers (Swin recipe: 1.0).
    pub stitch_lr_scale: f64,
    /// Clip each parameter's gradient to this L2 norm (Burn's per-parameter norm clipping).
    pub grad_clip: Option<f32>,
    /// Label smoothing of the cross-entropy on the labels.
    pub label_smoothing: f32,
    /// Distillation.
    pub distill: Distill,
    /// Weight of the distillation term: `(1 − α)·CE + α·KD` (reference: 0.5).
    pub distill_alpha: f32,
    /// Stitch sampling.
    pub sampling: Sampling,
    /// Where the teacher's outputs come from (ignored without distillation).
    #[serde(default)]
    pub teacher_targets: TeacherTargets,
    /// Train the stitching layers only (the reference's `fulltune = false`); anchors frozen and
    /// only stitched paths sampled.
    pub stitch_only: bool,
    /// Seed of the stitch sampling (the data order has its own, in the batcher's config).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_epochs: 0.5,
            warmup_lr: 1e-6,
            weight_decay: 0.05,
            anchor_lr_scale: 1.0,
            stitch_lr_scale: 1.0,
            grad_clip: Some(5.0),
            label_smoothing: 0.1,
            distill: Distill::Hard,
            distill_alpha: 0.5,
            sampling: Sampling::Uniform,
            teacher_targets: TeacherTargets::Online,
            stitch_only: false,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks the recipe.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidConfig {
                what: "training",
                reason,
            })
        };
        if self.epochs == 0 {
            return bad("epochs must be positive".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) || self.min_lr < 0.0 || self.warmup_lr < 0.0 {
            return bad(format!(
                "learning rates must be positive and finite (lr {}, min {}, warm-up {})",
                self.lr, self.min_lr, self.warmup_lr
            ));
        }
        if !(0.0..=1.0).contains(&self.label_smoothing)
            || !(0.0..=1.0).contains(&self.distill_alpha)
        {
            return bad("label smoothing and the distillation weight must be in [0, 1]".into());
        }
        if let Distill::Soft { temperature } = self.distill
            && (temperature.is_nan() || temperature <= 0.0)
        {
            return bad(format!("temperature must be positive, got {temperature}"));
        }
        if let Sampling::FlopsGrouped {
            flops_sampling_k: Some(k),
            ..
        } = self.sampling
            && !(k > 0.0 && k.is_finite())
        {
            return bad(format!(
                "flops_sampling_k must be positive and finite, got {k}"
            ));
        }
        if self.warmup_epochs < 0.0 || self.warmup_epochs > self.epochs as f64 {
            return bad(format!(
                "warm-up of {} epochs in a run of {}",
                self.warmup_epochs, self.epochs
            ));
        }
        Ok(())
    }

    /// The learning rate at fractional epoch `t`: linear warm-up, then cosine decay.
    pub fn lr_at(&self, t: f64) -> f64 {
        if t < self.warmup_epochs {
            return self.warmup_lr + (self.lr - self.warmup_lr) * t / self.warmup_epochs;
        }
        let span = (self.epochs as f64 - self.warmup_epochs).max(f64::EPSILON);
        let progress = ((t - self.warmup_epochs) / span).clamp(0.0, 1.0);
        self.min_lr
            + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// The stitches a run samples from, and how.
#[derive(Debug, Clone)]
pub struct StitchSampler {
    groups: Vec<Vec<StitchId>>,
    /// Cumulative group probabilities (the last is 1), or `None` for uniform groups.
    cumulative: Option<Vec<f64>>,
}

impl StitchSampler {
    /// The sampler of `sampling` over the evaluated stitches of `net`.
    pub fn new(net: &SnNet, sampling: Sampling) -> Self {
        Self::of(net, sampling, false)
    }

    /// As [`StitchSampler::new`], leaving the anchors out when `stitched_only` (for training the
    /// stitching layers alone, where an anchor's path has nothing to train).
    pub fn of(net: &SnNet, sampling: Sampling, stitched_only: bool) -> Self {
        let mut ids: Vec<(u64, StitchId)> = net
            .space()
            .evaluated()
            .filter(|s| !(stitched_only && s.is_anchor()))
            .map(|s| (net.cost(s.id).map_or(0, |c| c.flops), s.id))
            .collect();
        let groups: Vec<Vec<StitchId>> = match sampling {
            Sampling::Uniform => vec![ids.into_iter().map(|(_, id)| id).collect()],
            Sampling::FlopsGrouped { gap_flops, .. } => {
                ids.sort();
                let mut groups: Vec<Vec<StitchId>> = Vec::new();
                let mut first = 0u64;
                for (flops, id) in ids {
                    match groups.last_mut() {
                        Some(group) if flops.saturating_sub(first) <= gap_flops => group.push(id),
                        _ => {
                            first = flops;
                            groups.push(vec![id]);
                        }
                    }
                }
                groups
            }
        };
        let cumulative = match sampling {
            Sampling::FlopsGrouped {
                flops_sampling_k: Some(k),
                ..
            } if !groups.is_empty() => {
                let n = groups.len() as f64;
                let weights: Vec<f64> = (0..groups.len()).map(|i| i as f64 / k + 1.0 / n).collect();
                let total: f64 = weights.iter().sum();
                let mut sum = 0.0;
                Some(
                    weights
                        .iter()
                        .map(|w| {
                            sum += w / total;
                            sum
                        })
                        .collect(),
                )
            }
            _ => None,
        };
        Self { groups, cumulative }
    }

    /// Each group's probability of being drawn (cheapest group first).
    pub fn group_probabilities(&self) -> Vec<f64> {
        match &self.cumulative {
            Some(c) => c
                .iter()
                .scan(0.0, |previous, &p| {
                    let q = p - *previous;
                    *previous = p;
                    Some(q)
                })
                .collect(),
            None => vec![1.0 / self.groups.len() as f64; self.groups.len()],
        }
    }

    /// The groups (one for uniform sampling).
    pub fn groups(&self) -> &[Vec<StitchId>] {
        &self.groups
    }

    /// The stitch of step `step` of `epoch` under `seed`: a function of these alone.
    pub fn sample(&self, seed: u64, epoch: usize, step: usize) -> StitchId {
        let mut rng = sample_rng(seed ^ 0x5717_c4e5_a3b1_0f27, epoch, step);
        let draw = rng.next_u64();
        let index = match &self.cumulative {
            // 53 random bits as a uniform number in [0, 1).
            Some(c) => {
                let u = (draw >> 11) as f64 / (1u64 << 53) as f64;
                c.iter().position(|&p| u < p).unwrap_or(c.len() - 1)
            }
            None => (draw % self.groups.len() as u64) as usize,
        };
        let group = &self.groups[index];
        group[(rng.next_u64() % group.len() as u64) as usize]
    }
}

/// One epoch's record, as written to the JSONL training log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// The epoch (from 0).
    pub epoch: usize,
    /// Optimisation steps.
    pub steps: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Wall time.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
    /// How often each stitch was trained (`[id, count]`, ids with a count only).
    pub stitch_counts: Vec<[usize; 2]>,
}

/// What the trainer reports while it runs.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// A step finished.
    Step {
        /// The epoch.
        epoch: usize,
        /// The step within the epoch.
        step: usize,
        /// Steps per epoch.
        steps: usize,
        /// The step's loss.
        loss: f64,
        /// Its learning rate.
        lr: f64,
        /// The stitch it trained.
        stitch: StitchId,
        /// Images per second so far this epoch.
        images_per_second: f64,
    },
    /// An epoch finished (and was checkpointed, when the trainer has a checkpoint folder).
    Epoch(EpochLog),
    /// Training resumed from a checkpoint: `epoch` is the first epoch still to run.
    Resumed {
        /// The next epoch.
        epoch: usize,
    },
    /// The teacher's outputs on every training image were computed
    /// ([`TeacherTargets::Precomputed`]).
    TeacherTargets {
        /// Images.
        images: usize,
        /// Wall time.
        seconds: f64,
    },
}

/// The teacher's logits on every item of the training data, in dataset order, `classes` per
/// item ([`TeacherTargets::Precomputed`]).
struct Precomputed {
    values: Vec<f32>,
    classes: usize,
}

impl Precomputed {
    /// The logits of dataset items `items`, `[items.len(), classes]` on `device`.
    fn lookup(&self, items: &[usize], device: &burn::tensor::Device) -> Result<Tensor<2>> {
        let classes = self.classes;
        let mut picked = Vec::with_capacity(items.len().saturating_mul(classes));
        for &i in items {
            let row = i
                .checked_mul(classes)
                .and_then(|start| self.values.get(start..start.checked_add(classes)?))
                .ok_or(Error::IndexOutOfRange {
                    index: i,
                    len: self.values.len() / classes.max(1),
                })?;
            picked.extend_from_slice(row);
        }
        Ok(Tensor::from_data(
            TensorData::new(picked, [items.len(), classes]),
            device,
        ))
    }
}

/// The state saved with a checkpoint besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    next_epoch: usize,
    config: TrainConfig,
    logs: Vec<EpochLog>,
    /// [`SnNet::fingerprint`] of the network the run started from.
    #[serde(default)]
    network: String,
}

impl CheckpointState {
    /// Why this state cannot resume a run of `config` from the network fingerprinted `network`.
    fn mismatch(&self, config: &TrainConfig, network: &str) -> Option<String> {
        if self.network != network {
            return Some(
                "the checkpoint was trained from another network (a different --snnet or \
                 initialisation)"
                    .to_owned(),
            );
        }
        if &self.config != config {
            return Some("the checkpoint was trained with another recipe".to_owned());
        }
        if self.next_epoch == 0
            || self.next_epoch > config.epochs
            || self.logs.len() != self.next_epoch
        {
            return Some(format!(
                "its state says epoch {} with {} epoch logs, for a run of {} epochs",
                self.next_epoch,
                self.logs.len(),
                config.epochs
            ));
        }
        None
    }
}

/// Joint training of an SN-Net (or of a single anchor: an SN-Net of one anchor trains it
/// alone).
///
/// Everything random is a function of the seeds, the epoch and the step — the data order and
/// augmentation (the batcher's) and the sampled stitch — so a run resumed from its last
/// checkpoint ends with the same weights as an uninterrupted one.
pub struct Trainer<D> {
    config: TrainConfig,
    data: Batcher<D>,
    teacher: Option<Model>,
    checkpoint_dir: Option<PathBuf>,
    parallel: Option<DataParallel>,
}

impl<D: Dataset> Trainer<D> {
    /// A trainer of `config` on `data`; the batcher's device should have autodiff
    /// (`Device::default().autodiff()`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn new(config: TrainConfig, data: Batcher<D>) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            data,
            teacher: None,
            checkpoint_dir: None,
            parallel: None,
        })
    }

    /// Distils from `teacher` (frozen; e.g. the largest pretrained anchor). Without one,
    /// [`Distill`] other than `None` is ignored.
    #[must_use]
    pub fn with_teacher(mut self, teacher: Option<Model>) -> Self {
        self.teacher = teacher.map(|t| t.no_grad());
        self
    }

    /// Checkpoints every epoch into `dir` (atomically) and resumes from it when it holds one.
    #[must_use]
    pub fn with_checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoint_dir = Some(dir.into());
        self
    }

    /// Splits every batch into shards that run in parallel (see [`DataParallel`]): on a CPU,
    /// `DataParallel::threads(device, cores)` keeps every core busy; with several GPUs, one
    /// shard per GPU. Without it the whole batch runs on the batcher's device, on the calling
    /// thread. The result equals the unsplit run's up to float rounding, and is the same on
    /// every run for a given number of shards.
    #[must_use]
    pub fn with_data_parallel(mut self, parallel: DataParallel) -> Self {
        self.parallel = Some(parallel);
        self
    }

    /// The recipe.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Runs the teacher once on every training image, un-augmented and in dataset order
    /// ([`TeacherTargets::Precomputed`]), without autodiff (on the CPU backend: the inference
    /// fast path), and keeps its logits (hard distillation takes their top-1 per step, as online).
    fn precompute_targets(
        &self,
        teacher: &Model,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<Precomputed> {
        let started = Instant::now();
        let device = self.data.device().clone().inner();
        let teacher = teacher.clone().fork(&device);
        let dataset = self.data.dataset();
        let data = Batcher::new(dataset, BatchConfig::eval(256), device)?;
        let (n, classes) = (dataset.len(), dataset.num_classes());
        let mut values = Vec::with_capacity(n.saturating_mul(classes));
        for batch in data.epoch(0) {
            let t = teacher.forward(batch?.images)?;
            let [_, cols] = t.dims();
            if cols != classes {
                return Err(Error::InvalidConfig {
                    what: "teacher",
                    reason: format!("the teacher has {cols} outputs, the data {classes} classes"),
                });
            }
            values.extend(t.into_data().iter::<f32>());
        }
        progress(TrainEvent::TeacherTargets {
            images: n,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(Precomputed { values, classes })
    }

    /// Trains `net`; returns it (on the batcher's device without autodiff) with the epoch logs
    /// of the whole run (resumed epochs included).
    ///
    /// # Errors
    /// [`Error::Core`] for a forward that fails, [`Error::Checkpoint`] when a checkpoint cannot
    /// be written or read, [`Error::Diverged`] when the loss becomes NaN or infinite, and data
    /// errors from the batcher.
    pub fn fit(
        &self,
        net: SnNet,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<(SnNet, Vec<EpochLog>)> {
        let device = self.data.device().clone();
        let network = net.fingerprint()?;
        let mut net = net.fork(&device).train();
        if self.config.stitch_only {
            net.anchors = net.anchors.no_grad();
        }
        let sampler = StitchSampler::of(&net, self.config.sampling, self.config.stitch_only);
        if sampler.groups().iter().all(Vec::is_empty) {
            return Err(Error::InvalidConfig {
                what: "training",
                reason: if self.config.stitch_only {
                    "--stitch-only on an SN-Net without stitched paths: nothing to train".into()
                } else {
                    "the SN-Net has no path to train".into()
                },
            });
        }
        let optim = || {
            AdamWConfig::new()
                .with_weight_decay(self.config.weight_decay)
                .with_epsilon(1e-8)
                .with_grad_clipping(self.config.grad_clip.map(GradientClippingConfig::Norm))
                .init()
        };
        let mut optim_anchors = optim();
        let mut optim_stitch = optim();
        let mut logs = Vec::new();
        let mut start = 0;
        if let Some(dir) = &self.checkpoint_dir
            && let Some(state) = read_state(dir)?
        {
            if let Some(reason) = state.mismatch(&self.config, &network) {
                return Err(Error::ResumeMismatch {
                    path: dir.clone(),
                    reason,
                });
            }
            let (n, a, s) = load_checkpoint(dir, net, optim_anchors, optim_stitch)?;
            (net, optim_anchors, optim_stitch) = (n, a, s);
            if self.config.stitch_only {
                net.anchors = net.anchors.no_grad();
            }
            start = state.next_epoch;
            logs = state.logs;
            progress(TrainEvent::Resumed { epoch: start });
        }

        let parallel = self
            .parallel
            .clone()
            .unwrap_or_else(|| DataParallel::single(device.clone()));
        // Per shard: the losses and the teacher, on the shard's device.
        let smoothing = (self.config.label_smoothing > 0.0).then_some(self.config.label_smoothing);
        let losses: Vec<_> = parallel
            .devices()
            .iter()
            .map(|d| {
                let smooth = CrossEntropyLossConfig::new()
                    .with_smoothing(smoothing)
                    .init(d);
                (smooth, CrossEntropyLossConfig::new().init(d))
            })
            .collect();
        // The teacher runs without autodiff (it is frozen): no graph bookkeeping, and on the CPU
        // backend its forward takes the inference fast path (one GEMM per linear layer).
        let distill = self.config.distill != Distill::None;
        let precomputed = match (&self.teacher, self.config.teacher_targets) {
            (Some(teacher), TeacherTargets::Precomputed) if distill => {
                Some(self.precompute_targets(teacher, progress)?)
            }
            _ => None,
        };
        let teachers: Vec<Option<Model>> = parallel
            .devices()
            .iter()
            .map(|d| {
                (distill && precomputed.is_none())
                    .then(|| self.teacher.clone().map(|t| t.fork(&d.clone().inner())))
                    .flatten()
            })
            .collect();
        let steps = self.data.batches_per_epoch();
        if steps == 0 {
            return Err(Error::InvalidConfig {
                what: "training",
                reason: "the dataset holds less than one batch".into(),
            });
        }
        for epoch in start..self.config.epochs {
            let started = Instant::now();
            let mut images_seen = 0usize;
            let mut loss_sum = 0.0;
            let mut counts = vec![0usize; net.num_stitches()];
            let mut lr = 0.0;
            for (step, batch) in self.data.epoch(epoch).enumerate() {
                let batch = batch?;
                let [b, ..] = batch.images.dims();
                let id = sampler.sample(self.config.seed, epoch, step);
                counts[id.index()] += 1;
                let ranges = parallel.split(b);
                let indices = &batch.indices;
                let loss = |net: &SnNet, x: Tensor<4>, y: Tensor<1, Int>, shard: usize| {
                    let (smooth, plain) = &losses[shard];
                    let logits = net.forward(x.clone(), id)?;
                    let loss = smooth.forward(logits.clone(), y);
                    let t = match (&precomputed, &teachers[shard]) {
                        (Some(table), _) => {
                            let items = ranges
                                .get(shard)
                                .and_then(|r| indices.get(r.clone()))
                                .ok_or(Error::IndexOutOfRange {
                                    index: shard,
                                    len: ranges.len(),
                                })?;
                            table.lookup(items, &x.device())?
                        }
                        (None, Some(teacher)) => teacher.forward(x.inner())?.autodiff(),
                        (None, None) => return Ok(loss),
                    };
                    let alpha = self.config.distill_alpha;
                    let kd = match self.config.distill {
                        Distill::None => return Ok(loss),
                        Distill::Hard => {
                            let [n, _] = t.dims();
                            let top1: Tensor<1, Int> = t.argmax(1).reshape([n]);
                            plain.forward(logits, top1)
                        }
                        Distill::Soft { temperature } => {
                            let p = softmax(t.div_scalar(temperature), 1);
                            let log_q = log_softmax(logits.div_scalar(temperature), 1);
                            let log_p = p.clone().clamp_min(1e-12).log();
                            let [n, _] = p.dims();
                            let kl = (p * (log_p - log_q)).sum().div_scalar(n as f32);
                            kl.mul_scalar(temperature * temperature)
                        }
                    };
                    Ok(loss.mul_scalar(1.0 - alpha) + kd.mul_scalar(alpha))
                };
                let grads = parallel.gradients(&net, batch.images, batch.labels, loss)?;
                let value = grads.loss;
                if !value.is_finite() {
                    return Err(Error::Diverged {
                        epoch,
                        step,
                        loss: value,
                    });
                }
                lr = self.config.lr_at(epoch as f64 + step as f64 / steps as f64);
                net.stitch_layers = optim_stitch.step_multi(
                    lr * self.config.stitch_lr_scale,
                    net.stitch_layers,
                    grads.stitch_layers,
                );
                if !self.config.stitch_only {
                    net.anchors = optim_anchors.step_multi(
                        lr * self.config.anchor_lr_scale,
                        net.anchors,
                        grads.anchors,
                    );
                }
                images_seen += b;
                loss_sum += value;
                progress(TrainEvent::Step {
                    epoch,
                    step,
                    steps,
                    loss: value,
                    lr,
                    stitch: id,
                    images_per_second: images_seen as f64 / started.elapsed().as_secs_f64(),
                });
            }
            let seconds = started.elapsed().as_secs_f64();
            let log = EpochLog {
                epoch,
                steps,
                loss: loss_sum / steps as f64,
                lr,
                seconds,
                images_per_second: images_seen as f64 / seconds,
                stitch_counts: counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, c)| [i, *c])
                    .collect(),
            };
            logs.push(log.clone());
            if let Some(dir) = &self.checkpoint_dir {
                let state = CheckpointState {
                    next_epoch: epoch + 1,
                    config: self.config.clone(),
                    logs: logs.clone(),
                    network: network.clone(),
                };
                save_checkpoint(dir, &net, &optim_anchors, &optim_stitch, &state)?;
            }
            progress(TrainEvent::Epoch(log));
        }
        Ok((net.valid(), logs))
    }
}

/// The folder of the latest complete checkpoint inside a checkpoint directory.
fn latest(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

fn checkpoint_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn read_state(dir: &Path) -> Result<Option<CheckpointState>> {
    let path = latest(dir).join("state.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| checkpoint_error(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(checkpoint_error(&path, e)),
    }
}

/// Writes the checkpoint into a fresh folder, then swaps it in: an interrupted save leaves the
/// previous checkpoint intact.
fn save_checkpoint(
    dir: &Path,
    net: &SnNet,
    optim_anchors: &ModuleOptimizer,
    optim_stitch: &ModuleOptimizer,
    state: &CheckpointState,
) -> Result<()> {
    let tmp = dir.join("checkpoint.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| checkpoint_error(&tmp, e))?;
    let mut store = BurnpackStore::from_file(tmp.join("model.bpk"))
        .auto_extension(false)
        .overwrite(true);
    net.save_into(&mut store)
        .map_err(|e| checkpoint_error(&tmp, e))?;
    optim_anchors
        .save(tmp.join("optim_anchors.bpk"))
        .map_err(|e| checkpoint_error(&tmp, e))?;
    optim_stitch
        .save(tmp.join("optim_stitch.bpk"))
        .map_err(|e| checkpoint_error(&tmp, e))?;
    let json = serde_json::to_string_pretty(state).map_err(|e| checkpoint_error(&tmp, e))?;
    snnet_fs::write_atomic(&tmp.join("state.json"), json.as_bytes())
        .map_err(|e| checkpoint_error(&tmp, e))?;
    let current = latest(dir);
    let old = dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old).map_err(|e| checkpoint_error(&current, e))?;
    }
    std::fs::rename(&tmp, &current).map_err(|e| checkpoint_error(&current, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn load_checkpoint(
    dir: &Path,
    net: SnNet,
    optim_anchors: ModuleOptimizer,
    optim_stitch: ModuleOptimizer,
) -> Result<(SnNet, ModuleOptimizer, ModuleOptimizer)> {
    let current = latest(dir);
    let mut net = net;
    let mut store = BurnpackStore::from_file(current.join("model.bpk")).auto_extension(false);
    let result = net
        .load_from(&mut store)
        .map_err(|e| checkpoint_error(&current, e))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(checkpoint_error(
            &current,
            format!(
                "the checkpoint does not fit the network ({} errors, {} missing tensors)",
                result.errors.len(),
                result.missing.len()
            ),
        ));
    }
    let optim_anchors = optim_anchors
        .load(current.join("optim_anchors.bpk"))
        .map_err(|e| checkpoint_error(&current, e))?;
    let optim_stitch = optim_stitch
        .load(current.join("optim_stitch.bpk"))
        .map_err(|e| checkpoint_error(&current, e))?;
    Ok((net, optim_anchors, optim_stitch))
}
