//! The training verbs: `pretrain` (one anchor from scratch) and `train` (every stitch of an
//! SN-Net jointly).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use snnet_train::pipeline::{pretrain_anchor, train_joint};
use snnet_train::train::{Distill, Sampling, TeacherTargets, TrainConfig};

use crate::common::CliError;
use crate::common::args::{DataArgs, DeviceArgs, LoadArgs, ZooArgs};
use crate::common::format::{Progress, parse_count};

/// The training recipe's options.
#[derive(Debug, Args, Clone)]
pub(crate) struct RecipeArgs {
    /// Epochs.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Final learning rate of the cosine decay.
    #[arg(long, default_value_t = 1e-5)]
    min_lr: f64,
    /// Warm-up epochs (fractions allowed).
    #[arg(long, default_value_t = 0.5)]
    warmup_epochs: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.05)]
    weight_decay: f32,
    /// Per-parameter gradient-norm clipping (0: off).
    #[arg(long, default_value_t = 5.0)]
    grad_clip: f32,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.1)]
    smoothing: f32,
}

impl RecipeArgs {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            min_lr: self.min_lr,
            warmup_epochs: self.warmup_epochs,
            weight_decay: self.weight_decay,
            // 0 turns clipping off; a negative or NaN norm is the library's to refuse.
            grad_clip: (self.grad_clip != 0.0).then_some(self.grad_clip),
            label_smoothing: self.smoothing,
            ..TrainConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PretrainArgs {
    /// The model to train from scratch (e.g. fmnist_vit_s; any zoo or --model-config model).
    #[arg(long)]
    model: String,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    zoo: ZooArgs,
    /// Where to write the weights (timm layout, safetensors).
    #[arg(long, value_name = "FILE.safetensors")]
    output: PathBuf,
}

/// Distillation choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DistillKind {
    /// No teacher.
    None,
    /// Cross-entropy against the teacher's top-1 (the reference).
    Hard,
    /// KL divergence to the teacher's softened outputs.
    Soft,
}

/// Where the teacher's outputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TeacherTargetsKind {
    /// The teacher runs on every augmented batch (the reference).
    Online,
    /// The teacher runs once before training on every un-augmented training image.
    Precomputed,
}

/// Stitch sampling choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SamplingKind {
    /// Uniform over all stitches (SN-Net).
    Uniform,
    /// SN-Netv2's FLOPs-grouped sampling.
    FlopsGrouped,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct JointArgs {
    /// Distillation from the teacher (the SN-Net's largest anchor, frozen at its start).
    #[arg(long, value_enum, default_value_t = DistillKind::Hard)]
    distill: DistillKind,
    /// Where the teacher's outputs come from: `online` (the default) runs the teacher on every
    /// augmented batch (the reference); `precomputed` runs it once, before the first epoch, on
    /// every training image without augmentation (one teacher forward per image instead of one
    /// per image and epoch; the student still sees augmented images). Not with `--distill none`.
    #[arg(long, value_enum)]
    teacher_targets: Option<TeacherTargetsKind>,
    /// Temperature of soft distillation (default 1; `--distill soft` only).
    #[arg(long)]
    temperature: Option<f32>,
    /// Weight of the distillation term (default 0.5; not with `--distill none`).
    #[arg(long)]
    alpha: Option<f32>,
    /// Stitch sampling.
    #[arg(long, value_enum, default_value_t = SamplingKind::Uniform)]
    sampling: SamplingKind,
    /// Group width of FLOPs-grouped sampling, in FLOPs (default 1G; `--sampling flops-grouped`
    /// only); accepts 1000000000, 1e9 or 1G.
    #[arg(long, value_parser = parse_count)]
    flops_gap: Option<u64>,
    /// FLOPs-grouped sampling: draw group `i` of `G` (cheapest first) with probability
    /// proportional to `i / k + 1 / G` (SN-Netv2's `--flops_sampling_k`); unset: uniformly.
    #[arg(long)]
    flops_sampling_k: Option<f64>,
    /// Learning-rate scale of the anchors (default 1; not with `--stitch-only`).
    #[arg(long, conflicts_with = "stitch_only")]
    anchor_lr_scale: Option<f64>,
    /// Learning-rate scale of the stitching layers.
    #[arg(long, default_value_t = 1.0)]
    stitch_lr_scale: f64,
    /// Train the stitching layers only (anchors frozen).
    #[arg(long)]
    stitch_only: bool,
}

/// The default group width of FLOPs-grouped sampling (SN-Netv2's 1 GFLOP).
const FLOPS_GAP: u64 = 1_000_000_000;

impl JointArgs {
    /// Refuses the flags that the chosen distillation or sampling would ignore.
    fn check(&self) -> Result<(), CliError> {
        let refuse = |message: &str| Err(CliError::Usage(message.to_owned()));
        if self.distill == DistillKind::None {
            if self.alpha.is_some() {
                return refuse("--alpha weighs the distillation term: not with --distill none");
            }
            if self.teacher_targets.is_some() {
                return refuse("--teacher-targets feeds the distillation: not with --distill none");
            }
        }
        if self.temperature.is_some() && self.distill != DistillKind::Soft {
            return refuse("--temperature softens the teacher's outputs: it needs --distill soft");
        }
        if self.sampling != SamplingKind::FlopsGrouped {
            if self.flops_sampling_k.is_some() {
                return refuse(
                    "--flops-sampling-k weighs FLOPs groups: it needs --sampling flops-grouped",
                );
            }
            if self.flops_gap.is_some() {
                return refuse("--flops-gap sizes FLOPs groups: it needs --sampling flops-grouped");
            }
        }
        Ok(())
    }

    fn apply(&self, mut config: TrainConfig) -> TrainConfig {
        config.distill = match self.distill {
            DistillKind::None => Distill::None,
            DistillKind::Hard => Distill::Hard,
            DistillKind::Soft => Distill::Soft {
                temperature: self.temperature.unwrap_or(1.0),
            },
        };
        config.distill_alpha = self.alpha.unwrap_or(0.5);
        config.teacher_targets = match self.teacher_targets {
            None | Some(TeacherTargetsKind::Online) => TeacherTargets::Online,
            Some(TeacherTargetsKind::Precomputed) => TeacherTargets::Precomputed,
        };
        config.sampling = match self.sampling {
            SamplingKind::Uniform => Sampling::Uniform,
            SamplingKind::FlopsGrouped => Sampling::FlopsGrouped {
                gap_flops: self.flops_gap.unwrap_or(FLOPS_GAP),
                flops_sampling_k: self.flops_sampling_k,
            },
        };
        config.anchor_lr_scale = self.anchor_lr_scale.unwrap_or(1.0);
        config.stitch_lr_scale = self.stitch_lr_scale;
        config.stitch_only = self.stitch_only;
        config
    }
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The SN-Net to train (from `snnet init`).
    #[arg(long, value_name = "FILE.safetensors")]
    snnet: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    joint: JointArgs,
    /// Distil from this zoo model instead of the SN-Net's largest anchor (needs
    /// --teacher-weights; it sees the same images as the SN-Net, so it must take their size).
    #[arg(long, value_name = "MODEL")]
    teacher: Option<String>,
    /// The teacher's weights (timm layout, safetensors or .pth).
    #[arg(long, value_name = "FILE")]
    teacher_weights: Option<PathBuf>,
    #[command(flatten)]
    zoo: ZooArgs,
    /// Run folder: checkpoints (every epoch), `train_log.jsonl`, `snnet.safetensors`. A folder
    /// with a checkpoint resumes from it.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `snnet pretrain`: one anchor from scratch.
pub(crate) fn pretrain(args: &PretrainArgs, out: &mut impl Write) -> Result<(), CliError> {
    let recipe = args.recipe.config();
    recipe.validate()?;
    let data = args.data.config();
    data.validate()?;
    let registry = args.zoo.registry()?;
    let entry = registry.get(&args.model)?.clone();
    let logs = pretrain_anchor(
        &entry,
        &data,
        &recipe,
        &args.output,
        &args.data.device(&args.device)?,
        &mut Progress::default(),
    )?;
    if let Some(last) = logs.last() {
        writeln!(
            out,
            "{}: {} epochs, final loss {:.4}; wrote {}",
            entry.name,
            logs.len(),
            last.loss,
            args.output.display()
        )?;
    }
    Ok(())
}

/// `snnet train`: joint training of every stitch.
pub(crate) fn train(args: &TrainArgs, out: &mut impl Write) -> Result<(), CliError> {
    args.joint.check()?;
    if args.teacher.is_some() && args.joint.distill == DistillKind::None {
        return Err(CliError::Usage(
            "--teacher distils into the SN-Net: not with --distill none".into(),
        ));
    }
    if args.teacher.is_none() && args.zoo.is_given() {
        return Err(CliError::Usage(
            "--model-config defines a teacher's model: it needs --teacher".into(),
        ));
    }
    let config = args.joint.apply(args.recipe.config());
    config.validate()?;
    let data = args.data.config();
    data.validate()?;
    let device = args.data.device(&args.device)?;
    let teacher = match (&args.teacher, &args.teacher_weights) {
        (Some(name), Some(weights)) => {
            let entry = args.zoo.registry()?.get(name)?.clone();
            Some(args.load.model(&entry, weights, &device)?.0)
        }
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "--teacher and --teacher-weights go together".into(),
            ));
        }
    };
    let net = crate::cmd::export::refuse_quantized(
        args.load.snnet(&args.snnet, &device)?,
        &args.snnet,
        "training",
    )?;
    let (_, logs) = train_joint(
        net,
        teacher,
        &data,
        config,
        &args.out,
        &device,
        &mut Progress::default(),
    )
    .map_err(|e| match e {
        e @ snnet_train::Error::NothingToTrain { stitch_only: true } => CliError::Hinted {
            source: Box::new(e),
            hint: "--stitch-only trains stitched paths only: it needs an SN-Net of two or more \
                   anchors",
        },
        e => e.into(),
    })?;
    writeln!(
        out,
        "trained {} epochs; wrote {}",
        logs.len(),
        args.out.join("snnet.safetensors").display()
    )?;
    Ok(())
}
