//! The [`Trainer`]: one sampled stitch per step, cross-entropy with label smoothing plus
//! distillation, AdamW with warm-up and cosine decay, data parallelism, a checkpoint every
//! epoch and exact resumption.

use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};
use snnet_core::{Anchor, Model};

use super::resume::{CheckpointState, load_checkpoint, read_state, save_checkpoint};
use super::{Distill, EpochLog, StitchSampler, TeacherTargets, TrainConfig, TrainEvent, Trainable};
use crate::data::{BatchConfig, Batcher, Dataset};
use crate::error::{Error, Result};
use crate::parallel::DataParallel;

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

/// Training of a [`Trainable`]: joint training of an SN-Net's stitches, or pretraining of one
/// anchor alone.
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

    /// Trains `net` (an [`SnNet`](snnet_core::SnNet), or an anchor alone: a [`Model`]);
    /// returns it (on the batcher's device without autodiff) with the epoch logs of the whole
    /// run (resumed epochs included).
    ///
    /// # Errors
    /// [`Error::NothingToTrain`] for a network without a path to train (with
    /// [`TrainConfig::stitch_only`], without a stitched path), [`Error::Core`] for a forward
    /// that fails, [`Error::Checkpoint`] when a checkpoint cannot
    /// be written or read, [`Error::Diverged`] when the loss becomes NaN or infinite, and data
    /// errors from the batcher.
    pub fn fit<N: Trainable>(
        &self,
        net: N,
        progress: &mut dyn FnMut(TrainEvent),
    ) -> Result<(N, Vec<EpochLog>)> {
        let device = self.data.device().clone();
        let network = net.fingerprint()?;
        let mut net = net.fork(&device).train();
        if self.config.stitch_only {
            net = net.map_anchors(Module::no_grad);
        }
        let sampler = StitchSampler::of(&net, self.config.sampling, self.config.stitch_only);
        if sampler.groups().iter().all(Vec::is_empty) {
            return Err(Error::NothingToTrain {
                stitch_only: self.config.stitch_only,
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
                net = net.map_anchors(Module::no_grad);
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
            let mut counts = vec![0usize; net.num_paths()];
            let mut lr = 0.0;
            for (step, batch) in self.data.epoch(epoch).enumerate() {
                let batch = batch?;
                let [b, ..] = batch.images.dims();
                let id = sampler.sample(self.config.seed, epoch, step);
                counts[id.index()] += 1;
                let ranges = parallel.split(b);
                let indices = &batch.indices;
                let loss = |net: &N, x: Tensor<4>, y: Tensor<1, Int>, shard: usize| {
                    let (smooth, plain) = &losses[shard];
                    let logits = net.logits(x.clone(), id)?;
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
                net = net.map_stitch_layers(|layers| {
                    optim_stitch.step_multi(
                        lr * self.config.stitch_lr_scale,
                        layers,
                        grads.stitch_layers,
                    )
                });
                if !self.config.stitch_only {
                    net = net.map_anchors(|anchors| {
                        optim_anchors.step_multi(
                            lr * self.config.anchor_lr_scale,
                            anchors,
                            grads.anchors,
                        )
                    });
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
