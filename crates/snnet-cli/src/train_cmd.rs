//! The training verbs: `pretrain`, `train`, `eval`, `plot`, and `run` (the whole pipeline).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use serde::Serialize;
use snnet_core::burn::module::Module;
use snnet_core::burn::tensor::{Device, Tensor};
use snnet_core::select::{Budget, Cost, StitchTable};
use snnet_core::{LsOptions, Model, ModelEntry, Registry, SnNet, SnNetConfig, SpaceConfig};
use snnet_train::data::{BatchConfig, Batcher, DEFAULT_DIR, FashionMnist, Split, Transform};
use snnet_train::eval::evaluate_all;
use snnet_train::parallel::DataParallel;
use snnet_train::plot::plot_accuracy_vs_flops;
use snnet_train::train::{Distill, EpochLog, Sampling, TrainConfig, TrainEvent, Trainer};

use crate::format::{human, progress_bar};
use crate::zoo_cmd::ZooArgs;
use crate::{CliError, Format};

/// The Fashion-MNIST anchor family (ViT, patch 7 on 28×28, widths ×1/×2/×4, equal depth).
pub(crate) const FASHION_ANCHORS: &str = include_str!("../../../configs/fashion_mnist_vit.json");

/// Names of the Fashion-MNIST anchors, small → large.
pub(crate) const FASHION_NAMES: [&str; 3] = ["fmnist_vit_s", "fmnist_vit_m", "fmnist_vit_l"];

/// The registry with the built-in models and the Fashion-MNIST anchors.
pub(crate) fn registry(zoo: &ZooArgs) -> Result<Registry, CliError> {
    let mut registry = zoo.registry()?;
    if registry.get(FASHION_NAMES[0]).is_err() {
        registry.add_json_str(FASHION_ANCHORS)?;
    }
    Ok(registry)
}

/// The first `samples` Fashion-MNIST training images, prepared for `anchor` (its input size,
/// Fashion-MNIST's normalisation), without augmentation.
pub(crate) fn fashion_mnist_images(
    dir: Option<&Path>,
    samples: usize,
    anchor: &ModelEntry,
    device: &Device,
) -> Result<Tensor<4>, CliError> {
    let data = split(dir, Split::Train, samples, anchor)?;
    let n = data.len();
    let batcher = Batcher::new(data, BatchConfig::eval(n.max(1)), device.clone())?;
    Ok(batcher.batch(0, 0)?.images)
}

/// A Fashion-MNIST split (its first `samples` images; 0: all) prepared for `anchor`.
fn split(
    dir: Option<&Path>,
    split: Split,
    samples: usize,
    anchor: &ModelEntry,
) -> Result<FashionMnist, CliError> {
    let dir = dir.unwrap_or(Path::new(DEFAULT_DIR));
    let transform = Transform::fashion_mnist().with_input_size(anchor.pretrained().input_size);
    let data = FashionMnist::load(dir, split)?;
    let data = if samples > 0 {
        data.subset(samples)
    } else {
        data
    };
    Ok(data.with_transform(transform)?)
}

/// The Fashion-MNIST data options.
#[derive(Debug, Args, Clone, Serialize)]
pub(crate) struct DataArgs {
    /// Folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Training images to use (the first N; 0: all 60,000).
    #[arg(long, default_value_t = 0)]
    train_samples: usize,
    /// Test images to evaluate on (the first N; 0: all 10,000).
    #[arg(long, default_value_t = 0)]
    test_samples: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Seed of the data order and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training: split every batch into this many data-parallel shards, each on its own thread
    /// (0: two per CPU core, at least 16 images each; 1: none). Same result up to float
    /// rounding, faster on several cores.
    #[arg(long, default_value_t = 0)]
    shards: usize,
}

impl DataArgs {
    /// The data parallelism of `--shards` on `device` (with autodiff).
    fn parallel(&self, device: &Device) -> Result<DataParallel, CliError> {
        Ok(DataParallel::threads(
            device.clone().autodiff(),
            default_shards(self.shards, self.batch_size),
        )?)
    }
}

/// `shards`, or for 0 two per CPU core (shards in flight overlap one's serial element-wise work
/// with another's parallel matrix products: measured faster than one per core on 2 cores) with
/// at least 16 images per shard.
pub(crate) fn default_shards(shards: usize, batch_size: usize) -> usize {
    if shards > 0 {
        return shards;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (2 * cores).min(batch_size / 16).max(1)
}

/// The training recipe's options.
#[derive(Debug, Args, Clone, Serialize)]
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
    recipe: RecipeArgs,
    #[command(flatten)]
    zoo: ZooArgs,
    /// Where to write the weights (timm layout, safetensors).
    #[arg(long, value_name = "FILE.safetensors")]
    output: PathBuf,
}

/// Distillation choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub(crate) enum DistillKind {
    /// No teacher.
    None,
    /// Cross-entropy against the teacher's top-1 (the reference).
    Hard,
    /// KL divergence to the teacher's softened outputs.
    Soft,
}

/// Stitch sampling choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub(crate) enum SamplingKind {
    /// Uniform over all stitches (SN-Net).
    Uniform,
    /// SN-Netv2's FLOPs-grouped sampling.
    FlopsGrouped,
}

#[derive(Debug, Args, Clone, Serialize)]
pub(crate) struct JointArgs {
    /// Distillation from the teacher (the SN-Net's largest anchor, frozen at its start).
    #[arg(long, value_enum, default_value_t = DistillKind::Hard)]
    distill: DistillKind,
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
        config.sampling = match self.sampling {
            SamplingKind::Uniform => Sampling::Uniform,
            SamplingKind::FlopsGrouped => Sampling::FlopsGrouped {
                gap_flops: self.flops_gap.max(0.0) as u64,
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

#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    /// The SN-Net to evaluate.
    #[arg(long, value_name = "FILE.safetensors")]
    snnet: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// JSON Lines output (resumes: ids already in the file are skipped).
    #[arg(long, value_name = "FILE.jsonl")]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PlotArgs {
    /// An evaluation table (`snnet eval` output or the reference's format).
    #[arg(long, value_name = "FILE.jsonl")]
    table: PathBuf,
    /// Ids to mark as anchors.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    anchors: Vec<usize>,
    /// The title.
    #[arg(long, default_value = "SN-Net: accuracy vs FLOPs")]
    title: String,
    /// The SVG to write.
    #[arg(long, value_name = "FILE.svg")]
    output: PathBuf,
}

/// `snnet pretrain`: one anchor from scratch.
pub(crate) fn pretrain(args: &PretrainArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = registry(&args.zoo)?;
    let entry = registry.get(&args.model)?.clone();
    let logs = pretrain_one(&entry, &args.data, &args.recipe.config(), &args.output)?;
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

fn pretrain_one(
    entry: &ModelEntry,
    data: &DataArgs,
    recipe: &TrainConfig,
    output: &Path,
) -> Result<Vec<EpochLog>, CliError> {
    let device = Device::default();
    let config = SnNetConfig::new(vec![entry.clone()], SpaceConfig::default());
    let net = config.init(&device)?;
    let batcher = train_batcher(data, entry, &device)?;
    let recipe = TrainConfig {
        distill: Distill::None,
        ..recipe.clone()
    };
    let trainer = Trainer::new(recipe, batcher)?.with_data_parallel(data.parallel(&device)?);
    let (net, logs) = fit(trainer, net, &entry.name)?;
    let model = net
        .anchors
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Usage("no anchor".into()))?;
    model.save_weights(output)?;
    Ok(logs)
}

/// The shuffled, augmented training batches for `anchor`, on `device` with autodiff.
fn train_batcher(
    data: &DataArgs,
    anchor: &ModelEntry,
    device: &Device,
) -> Result<Batcher<FashionMnist>, CliError> {
    let train = split(
        data.data.as_deref(),
        Split::Train,
        data.train_samples,
        anchor,
    )?;
    Ok(Batcher::new(
        train,
        BatchConfig::train(data.batch_size, data.seed),
        device.clone().autodiff(),
    )?)
}

/// Runs a trainer with progress bars.
fn fit<D: snnet_train::data::Dataset>(
    trainer: Trainer<D>,
    net: SnNet,
    what: &str,
) -> Result<(SnNet, Vec<EpochLog>), CliError> {
    let epochs = trainer.config().epochs;
    let mut current: Option<ProgressBar> = None;
    let result = trainer.fit(net, &mut |event| match event {
        TrainEvent::Step {
            epoch,
            step,
            steps,
            loss,
            lr,
            stitch,
            images_per_second,
        } => {
            let b = current.get_or_insert_with(|| {
                progress_bar(steps as u64, &format!("{what} {}/{epochs}", epoch + 1))
            });
            b.set_position(step as u64 + 1);
            b.set_prefix(format!(
                "loss {loss:.3} lr {lr:.1e} stitch {stitch} {images_per_second:.0} img/s"
            ));
        }
        TrainEvent::Epoch(log) => {
            if let Some(b) = current.take() {
                b.finish_and_clear();
            }
            eprintln!(
                "{what} epoch {}/{epochs}: loss {:.4}, {:.0} s, {:.0} img/s",
                log.epoch + 1,
                log.loss,
                log.seconds,
                log.images_per_second
            );
        }
        TrainEvent::Resumed { epoch } => {
            eprintln!("{what}: resuming at epoch {}/{epochs}", epoch + 1);
        }
    });
    if let Some(b) = current {
        b.finish_and_clear();
    }
    Ok(result?)
}

/// `snnet train`: joint training of every stitch.
pub(crate) fn train(args: &TrainArgs, out: &mut impl Write) -> Result<(), CliError> {
    let device = Device::default();
    let teacher = match (&args.teacher, &args.teacher_weights) {
        (Some(name), Some(weights)) => {
            let entry = registry(&args.zoo)?.get(name)?.clone();
            Some(entry.load(weights, &device)?.0)
        }
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "--teacher and --teacher-weights go together".into(),
            ));
        }
    };
    let (net, _) = SnNet::load(&args.snnet, &device)?;
    let config = args.joint.apply(args.recipe.config());
    let logs = train_joint(net, teacher, &args.data, config, &args.out)?;
    writeln!(
        out,
        "trained {} epochs; wrote {}",
        logs.len(),
        args.out.join("snnet.safetensors").display()
    )?;
    Ok(())
}

/// Joint training into `dir`; the teacher is `teacher`, or the SN-Net's largest anchor.
fn train_joint(
    net: SnNet,
    teacher: Option<Model>,
    data: &DataArgs,
    config: TrainConfig,
    dir: &Path,
) -> Result<Vec<EpochLog>, CliError> {
    std::fs::create_dir_all(dir)?;
    let device = Device::default();
    let first = net
        .config()
        .anchors
        .first()
        .cloned()
        .ok_or_else(|| CliError::Usage("the SN-Net has no anchors".into()))?;
    let teacher = match (config.distill, teacher) {
        (Distill::None, _) => None,
        (_, Some(teacher)) => Some(teacher),
        (_, None) => net.anchors.last().cloned(),
    };
    let batcher = train_batcher(data, &first, &device)?;
    let trainer = Trainer::new(config, batcher)?
        .with_teacher(teacher.map(|t| t.fork(&device.clone().autodiff())))
        .with_data_parallel(data.parallel(&device)?)
        .with_checkpoints(dir.join("checkpoints"));
    let (net, logs) = fit(trainer, net, "joint")?;
    let mut log = String::new();
    for l in &logs {
        log.push_str(&serde_json::to_string(l)?);
        log.push('\n');
    }
    std::fs::write(dir.join("train_log.jsonl"), log)?;
    net.save(&dir.join("snnet.safetensors"))?;
    Ok(logs)
}

/// `snnet eval`: every stitch on the test split.
pub(crate) fn eval(args: &EvalArgs, out: &mut impl Write) -> Result<(), CliError> {
    let (net, _) = SnNet::load(&args.snnet, &Device::default())?;
    let table = eval_all(&net, &args.data, &args.output)?;
    writeln!(
        out,
        "{} stitches evaluated; wrote {}",
        table.len(),
        args.output.display()
    )?;
    Ok(())
}

fn eval_all(net: &SnNet, data: &DataArgs, output: &Path) -> Result<StitchTable, CliError> {
    let first = net
        .config()
        .anchors
        .first()
        .cloned()
        .ok_or_else(|| CliError::Usage("the SN-Net has no anchors".into()))?;
    let test = split(data.data.as_deref(), Split::Test, data.test_samples, &first)?;
    let batcher = Batcher::new(test, BatchConfig::eval(256), Device::default())?;
    let total = net.space().evaluated().count() as u64;
    let progress = progress_bar(total, "evaluating");
    let table = evaluate_all(net, &batcher, output, &mut |record, done, _| {
        progress.set_position(done as u64);
        progress.set_prefix(format!("stitch {} acc1 {:.2} %", record.id, record.acc1));
    });
    progress.finish_and_clear();
    Ok(table?)
}

/// `snnet plot`.
pub(crate) fn plot(args: &PlotArgs, out: &mut impl Write) -> Result<(), CliError> {
    let table = StitchTable::read_jsonl(&args.table)?;
    plot_accuracy_vs_flops(&table, &args.anchors, &args.title, &args.output)?;
    writeln!(out, "wrote {}", args.output.display())?;
    Ok(())
}

/// Presets of the main job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub(crate) enum Preset {
    /// A few minutes on a 2-core CPU: subsets of the data, few epochs.
    Quick,
    /// The long run: all the data, more epochs.
    Full,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// How long a run.
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    preset: Preset,
    /// The run folder: anchors' weights, SN-Net checkpoints, eval.jsonl, pareto.svg, logs and the
    /// run's config. An existing folder resumes (finished steps are skipped).
    #[arg(long, value_name = "DIR", default_value = "runs/quick")]
    out: PathBuf,
    /// Folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The FLOPs budget of the final selection (default: halfway between the smallest and the
    /// largest anchor).
    #[arg(long, value_parser = crate::format::parse_count)]
    budget_flops: Option<u64>,
    /// Data-parallel shards per training batch, each on its own thread (0: two per CPU core, at
    /// least 16 images each).
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The settings of a preset, recorded in the run folder.
#[derive(Debug, Clone, Serialize)]
struct RunPlan {
    preset: Preset,
    anchors: Vec<String>,
    pretrain_data: DataArgs,
    pretrain: TrainConfig,
    init_samples: usize,
    joint_data: DataArgs,
    joint: TrainConfig,
    eval_data: DataArgs,
}

fn run_plan(args: &RunArgs) -> RunPlan {
    let data = |train_samples, test_samples| DataArgs {
        data: args.data.clone(),
        train_samples,
        test_samples,
        batch_size: 64,
        seed: 0,
        shards: args.shards,
    };
    let (pre_samples, pre_epochs, joint_samples, joint_epochs, test) = match args.preset {
        Preset::Quick => (30_000, 2, 30_000, 2, 5_000),
        Preset::Full => (0, 15, 0, 10, 0),
    };
    RunPlan {
        preset: args.preset,
        anchors: FASHION_NAMES.iter().map(|s| (*s).to_owned()).collect(),
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
            lr: 1e-3,
            warmup_epochs: 0.2,
            ..TrainConfig::default()
        },
        eval_data: data(joint_samples, test),
    }
}

/// `snnet run`: pretrain the anchors → SN-Net → least-squares init → joint training → evaluate
/// every stitch → Pareto plot and table → select a stitch for a budget.
pub(crate) fn run(args: &RunArgs, out: &mut impl Write) -> Result<(), CliError> {
    let started = Instant::now();
    let plan = run_plan(args);
    let dir = &args.out;
    std::fs::create_dir_all(dir.join("anchors"))?;
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&plan)?)?;
    let registry = registry(&ZooArgs::default())?;
    let device = Device::default();

    // 1. Anchors.
    let mut entries = Vec::new();
    for name in &plan.anchors {
        let entry = registry.get(name)?.clone();
        let path = dir.join("anchors").join(format!("{name}.safetensors"));
        if path.exists() {
            eprintln!("anchor {name}: {} exists, skipping", path.display());
        } else {
            let t = Instant::now();
            pretrain_one(&entry, &plan.pretrain_data, &plan.pretrain, &path)?;
            eprintln!(
                "anchor {name}: trained in {:.0} s",
                t.elapsed().as_secs_f64()
            );
        }
        entries.push((entry, path));
    }

    // 2–3. SN-Net with least-squares stitching layers.
    let init_path = dir.join("snnet_init.safetensors");
    if !init_path.exists() {
        let config = SnNetConfig::new(
            entries.iter().map(|(e, _)| e.clone()).collect(),
            SpaceConfig::default(),
        );
        let mut net = config.init(&device)?;
        for (a, (entry, path)) in entries.iter().enumerate() {
            net.anchors[a] = entry.load(path, &device)?.0;
        }
        let images = fashion_mnist_images(
            plan.pretrain_data.data.as_deref(),
            plan.init_samples,
            &entries[0].0,
            &device,
        )?;
        let (net, report) = net.init_least_squares(images, &LsOptions::default(), &mut |_| {})?;
        eprintln!(
            "least squares: {} layers from {} images in {:.2} s",
            report.layers.len(),
            report.images,
            report.features_seconds + report.solve_seconds
        );
        net.save(&init_path)?;
    }

    // 4. Joint training (resumes from its checkpoints).
    let trained = dir.join("snnet.safetensors");
    if !trained.exists() {
        let (net, _) = SnNet::load(&init_path, &device)?;
        train_joint(net, None, &plan.joint_data, plan.joint.clone(), dir)?;
    }

    // 5–6. Evaluation and plot.
    let (net, _) = SnNet::load(&trained, &device)?;
    let table = eval_all(&net, &plan.eval_data, &dir.join("eval.jsonl"))?;
    let anchors: Vec<usize> = (0..net.config().anchors.len()).collect();
    plot_accuracy_vs_flops(
        &table,
        &anchors,
        "SN-Net on Fashion-MNIST: accuracy vs FLOPs",
        &dir.join("pareto.svg"),
    )?;

    // 7. Pareto frontier and a selection.
    let frontier = table.pareto(Cost::Flops)?;
    let flops = |id: usize| net.cost(snnet_core::StitchId(id)).map(|c| c.flops);
    let budget = match args.budget_flops {
        Some(b) => b,
        None => (flops(0)? + flops(anchors.len() - 1)?) / 2,
    };
    let chosen = table.select(Budget::flops(budget))?;
    let summary = serde_json::json!({
        "preset": plan.preset,
        "stitches": table.len(),
        "frontier": frontier.iter().map(|r| r.id).collect::<Vec<_>>(),
        "budget_flops": budget,
        "selected": chosen,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&summary)?)?,
        Format::Table => {
            writeln!(
                out,
                "Pareto frontier ({} of {} stitches):",
                frontier.len(),
                table.len()
            )?;
            writeln!(out, "{:>5} {:>12} {:>8}  path", "id", "FLOPs", "acc1")?;
            for r in &frontier {
                writeln!(
                    out,
                    "{:>5} {:>12} {:>7.2}%  {}",
                    r.id,
                    r.flops.map_or(String::from("?"), |f| human(f as f64, "")),
                    r.acc1,
                    net.space().display(snnet_core::StitchId(r.id))?
                )?;
            }
            writeln!(
                out,
                "\nbudget {}: stitch {} ({:.2} %, {})",
                human(budget as f64, "FLOPs"),
                chosen.id,
                chosen.acc1,
                net.space().display(snnet_core::StitchId(chosen.id))?
            )?;
            writeln!(
                out,
                "run folder {} (eval.jsonl, pareto.svg, train_log.jsonl, run.json); {:.0} s",
                dir.display(),
                started.elapsed().as_secs_f64()
            )?;
        }
    }
    Ok(())
}
