//! The training verbs: `pretrain` (one anchor from scratch) and `train` (every stitch of an
//! SN-Net jointly).

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use snnet_train::pipeline::{pretrain_anchor, train_joint};
use snnet_train::train::{Distill, Sampling, TeacherTargets, TrainConfig};

use crate::common::CliError;
use crate::common::args::{DataArgs, DeviceArgs, LoadArgs, ZooArgs};
use crate::common::format::Progress;

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
            grad_clip: (self.grad_clip > 0.0).then_some(self.grad_clip),
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
    /// Where the teacher's outputs come from: `online` runs the teacher on every augmented
    /// batch (the reference); `precomputed` runs it once, before the first epoch, on every
    /// training image without augmentation (one teacher forward per image instead of one per
    /// image and epoch; the student still sees augmented images).
    #[arg(long, value_enum, default_value_t = TeacherTargetsKind::Online)]
    teacher_targets: TeacherTargetsKind,
    /// Temperature of soft distillation.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Weight of the distillation term.
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
    /// Stitch sampling.
    #[arg(long, value_enum, default_value_t = SamplingKind::Uniform)]
    sampling: SamplingKind,
    /// Group width of FLOPs-grouped sampling, in FLOPs.
    #[arg(long, default_value_t = 1e9)]
    flops_gap: f64,
    /// FLOPs-grouped sampling: draw group `i` of `G` (cheapest first) with probability
    /// proportional to `i / k + 1 / G` (SN-Netv2's `--flops_sampling_k`); unset: uniformly.
    #[arg(long)]
    flops_sampling_k: Option<f64>,
    /// Learning-rate scale of the anchors.
    #[arg(long, default_value_t = 1.0)]
    anchor_lr_scale: f64,
    /// Learning-rate scale of the stitching layers.
    #[arg(long, default_value_t = 1.0)]
    stitch_lr_scale: f64,
    /// Train the stitching layers only (anchors frozen).
    #[arg(long)]
    stitch_only: bool,
}

impl JointArgs {
    fn apply(&self, mut config: TrainConfig) -> TrainConfig {
        config.distill = match self.distill {
            DistillKind::None => Distill::None,
            DistillKind::Hard => Distill::Hard,
            DistillKind::Soft => Distill::Soft {
                temperature: self.temperature,
            },
        };
        config.distill_alpha = self.alpha;
        config.teacher_targets = match self.teacher_targets {
            TeacherTargetsKind::Online => TeacherTargets::Online,
            TeacherTargetsKind::Precomputed => TeacherTargets::Precomputed,
        };
        config.sampling = match self.sampling {
            SamplingKind::Uniform => Sampling::Uniform,
            SamplingKind::FlopsGrouped => Sampling::FlopsGrouped {
                gap_flops: self.flops_gap.max(0.0) as u64,
                flops_sampling_k: self.flops_sampling_k,
            },
        };
        config.anchor_lr_scale = self.anchor_lr_scale;
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
    let registry = args.zoo.registry()?;
    let entry = registry.get(&args.model)?.clone();
    let logs = pretrain_anchor(
        &entry,
        &args.data.config(),
        &args.recipe.config(),
        &args.output,
        &args.device.device()?,
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
    let device = args.device.device()?;
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
    if args.joint.flops_sampling_k.is_some() && args.joint.sampling != SamplingKind::FlopsGrouped {
        return Err(CliError::Usage(
            "--flops-sampling-k weighs FLOPs groups: it needs --sampling flops-grouped".into(),
        ));
    }
    let net = args.load.snnet(&args.snnet, &device)?;
    let config = args.joint.apply(args.recipe.config());
    let logs = train_joint(
        net,
        teacher,
        &args.data.config(),
        config,
        &args.out,
        &device,
        &mut Progress::default(),
    )?;
    writeln!(
        out,
        "trained {} epochs; wrote {}",
        logs.len(),
        args.out.join("snnet.safetensors").display()
    )?;
    Ok(())
}
