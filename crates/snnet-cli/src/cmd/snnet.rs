//! The verbs on an SN-Net: `cost --anchors`, `init` and `forward --snnet`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use snnet_core::burn::tensor::{Device, Tensor};
use snnet_core::stitch::lstsq::LstsqOptions;
use snnet_core::zoo::tensor_io::write_tensors;
use snnet_core::zoo::{Registry, load_image};
use snnet_core::{
    Features, Init, LoraConfig, LsOptions, LsProgress, PathFeature, Plan, SnNet, SnNetConfig,
    StitchId,
};
use snnet_train::fashion_mnist;

use crate::common::args::{CostArgs, DeviceArgs, ForwardArgs, LoadArgs, SpaceFlags, ZooArgs};
use crate::common::format::{human, progress_bar};
use crate::common::io::{print_top5, read_input, read_labels, space_json};
use crate::common::{CliError, Format};

/// `snnet cost --anchors a,b,c`: the space with every stitch's cost.
pub(crate) fn cost(args: &CostArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = args.zoo.registry()?;
    let plan = SnNetConfig::from_registry(&registry, &args.anchors, args.space.config())?
        .with_reference_compat(args.reference_compat)
        .plan()?;
    let space = plan.space();
    args.space.check(space)?;
    match args.format {
        Format::Json => {
            let mut json = space_json(space, Some(plan.costs()))?;
            json.insert("reference_compat".into(), args.reference_compat.into());
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{} stitches of {}{}\n",
                space.len(),
                plan.config().anchor_names().join(", "),
                if args.reference_compat {
                    " (reference-compatible counts)"
                } else {
                    ""
                }
            )?;
            writeln!(out, "{:>5} {:>16} {:>14}  path", "id", "FLOPs", "params")?;
            for (stitch, cost) in space.stitches().iter().zip(plan.costs()) {
                writeln!(
                    out,
                    "{:>5} {:>16} {:>14}  {}",
                    stitch.id,
                    cost.flops,
                    cost.params,
                    space.describe(stitch)
                )?;
            }
        }
    }
    Ok(())
}

/// How `snnet init` sets the stitching layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InitKind {
    /// Least squares on the anchors' features (the reference's default).
    Ls,
    /// PyTorch's default Kaiming-uniform (the paper's ablation).
    Kaiming,
}

/// Which built-in dataset `snnet init --dataset` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DatasetName {
    /// Fashion-MNIST (Debian's dataset-fashion-mnist), training split.
    FashionMnist,
}

#[derive(Debug, Args)]
#[group(id = "source", required = false, multiple = false)]
pub(crate) struct SourceArgs {
    /// A folder of images (JPEG/PNG, searched recursively, sorted by path), preprocessed with
    /// the first anchor's pretrained config.
    #[arg(long, value_name = "DIR", group = "source")]
    images: Option<PathBuf>,
    /// A built-in dataset.
    #[arg(long, value_enum, group = "source")]
    dataset: Option<DatasetName>,
    /// Preprocessed images: a safetensors file with an NCHW f32 tensor `input`.
    #[arg(long, value_name = "FILE.safetensors", group = "source")]
    input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Anchors from small to large (timm names or --model-config names), comma separated.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    anchors: Vec<String>,
    /// Each anchor's timm weights (.safetensors or .pth), in the same order.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "random_weights",
        num_args = 1..
    )]
    weights: Vec<PathBuf>,
    /// Build the anchors with random weights (seeded by `--seed`) instead of loading them: an
    /// SN-Net with the right shapes and costs for latency profiling (`snnet profile`) before any
    /// weights are at hand. Its accuracy is meaningless; requires `--init kaiming`.
    #[arg(long, conflicts_with = "weights")]
    random_weights: bool,
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    load: LoadArgs,
    /// The dataset's folder (default: where the Debian package installs it).
    // `requires` alone lets `--data` pass silently beside `--input` or `--images`: clap excuses
    // a missing requirement that conflicts with a present flag (`dataset` does, in the group).
    #[arg(
        long,
        value_name = "DIR",
        requires = "dataset",
        conflicts_with_all = ["input", "images"]
    )]
    data: Option<PathBuf>,
    /// Images for the least-squares fit (default 100, as the reference; --init ls only).
    #[arg(long)]
    samples: Option<usize>,
    /// How to initialise the stitching layers.
    #[arg(long, value_enum, default_value_t = InitKind::Ls)]
    init: InitKind,
    /// Seed of the Kaiming initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Give every stitching layer a LoRA update of this rank (SN-Netv2; α = 1).
    #[arg(long)]
    lora_rank: Option<usize>,
    /// Run and count stitches as the reference's released checkpoints (stitched DeiT paths
    /// without the final norm).
    #[arg(long)]
    reference_compat: bool,
    #[command(flatten)]
    space: SpaceFlags,
    #[command(flatten)]
    zoo: ZooArgs,
    /// Where to write the SN-Net (safetensors, self-describing).
    #[arg(long, value_name = "FILE.safetensors")]
    output: PathBuf,
}

/// Images of the least-squares fit without --samples (the reference's).
const LS_SAMPLES: usize = 100;

/// Most directory entries [`image_files`] walks before giving up (a guard against a huge tree).
const MAX_WALKED_ENTRIES: usize = 1_000_000;

/// Image files under `dir`, recursively, sorted. Symlinked folders are not entered (a link to
/// an ancestor would loop); symlinked files are kept.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    let mut walked = 0usize;
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", d.display())))?;
        for entry in entries {
            walked += 1;
            if walked > MAX_WALKED_ENTRIES {
                return Err(CliError::Usage(format!(
                    "{}: more than {MAX_WALKED_ENTRIES} entries under the image folder; \
                     point --input at a smaller folder",
                    dir.display()
                )));
            }
            let entry =
                entry.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", d.display())))?;
            let path = entry.path();
            let is_real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_real_dir {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `snnet init`: build the SN-Net from pretrained anchors and initialise its stitching layers.
pub(crate) fn init(args: &InitArgs, out: &mut impl Write) -> Result<(), CliError> {
    let has_source = args.source.images.is_some()
        || args.source.dataset.is_some()
        || args.source.input.is_some();
    if args.init == InitKind::Ls && !has_source {
        return Err(CliError::Usage(
            "the least-squares init needs images: give --images DIR, --dataset NAME or --input \
             FILE (or --init kaiming)"
                .to_owned(),
        ));
    }
    if args.init == InitKind::Kaiming && has_source {
        return Err(CliError::Usage(
            "--images, --dataset and --input feed the least-squares init only; drop them with \
             --init kaiming"
                .to_owned(),
        ));
    }
    if args.random_weights && args.init != InitKind::Kaiming {
        return Err(CliError::Usage(
            "--random-weights needs --init kaiming (least squares on random anchors fits noise)"
                .to_owned(),
        ));
    }
    if !args.random_weights && args.weights.len() != args.anchors.len() {
        return Err(CliError::Usage(format!(
            "{} anchors but {} weight files",
            args.anchors.len(),
            args.weights.len()
        )));
    }
    if args.init == InitKind::Kaiming && args.samples.is_some() {
        return Err(CliError::Usage(
            "--samples sizes the least-squares fit: drop it with --init kaiming".to_owned(),
        ));
    }
    if args.samples == Some(0) {
        return Err(CliError::Usage("--samples must be positive".to_owned()));
    }
    if args.random_weights && args.load.allow_nonfinite {
        return Err(CliError::Usage(
            "--allow-nonfinite is about loaded weights: not with --random-weights".to_owned(),
        ));
    }
    let registry = args.zoo.registry()?;
    let config = SnNetConfig::from_registry(&registry, &args.anchors, args.space.config())?
        .with_reference_compat(args.reference_compat)
        .with_lora(args.lora_rank.map(LoraConfig::new));
    args.space.check(config.plan()?.space())?;
    let device = args.device.device()?;
    let started = Instant::now();
    let (mut net, reports) = if args.random_weights {
        device.seed(args.seed);
        (
            config.init_with(Init::Kaiming { seed: args.seed }, &device)?,
            Vec::new(),
        )
    } else {
        SnNet::from_pretrained_with(
            config.clone(),
            &args.weights,
            Init::Kaiming { seed: args.seed },
            args.load.options(),
            &device,
        )?
    };
    for (weights, report) in args.weights.iter().zip(&reports) {
        crate::common::args::warn_non_finite(weights, &report.non_finite);
    }
    for ((entry, weights), report) in config.anchors.iter().zip(&args.weights).zip(&reports) {
        if !report.unexpected.is_empty() {
            eprintln!(
                "note: {} key(s) in {} not used by {}",
                report.unexpected.len(),
                weights.display(),
                entry.name
            );
        }
    }
    writeln!(
        out,
        "{}: {} stitches, {} stitching layers",
        config.anchor_names().join(" + "),
        net.num_stitches(),
        net.stitch_layers.len()
    )?;
    write_input_config(net.plan(), &registry, out)?;

    if args.init == InitKind::Ls {
        let images = init_images(args, net.plan(), &device)?;
        let [n, ..] = images.dims();
        let features = progress_bar(
            (config.anchors.len() * n.div_ceil(25)) as u64,
            "running anchors",
        );
        let mut solve: Option<ProgressBar> = None;
        let options = LsOptions {
            chunk: 25,
            lstsq: LstsqOptions::default(),
        };
        let (initialised, report) =
            net.init_least_squares(images, &options, &mut |event| match event {
                LsProgress::Features { .. } => features.inc(1),
                LsProgress::Solve { done, total } => {
                    features.finish_and_clear();
                    let b =
                        solve.get_or_insert_with(|| progress_bar(total as u64, "least squares"));
                    b.set_position(done as u64);
                }
            })?;
        if let Some(b) = solve {
            b.finish_and_clear();
        }
        net = initialised;
        writeln!(
            out,
            "least squares on {} images: {} layers fitted (features {:.1} s, solve {:.1} s)",
            report.images,
            report.layers.len(),
            report.features_seconds,
            report.solve_seconds
        )?;
    }
    net.save(&args.output)?;
    let bytes = std::fs::metadata(&args.output).map_or(0, |m| m.len());
    writeln!(
        out,
        "wrote {} ({}) in {:.1} s",
        args.output.display(),
        human(bytes as f64, "B"),
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

/// The network's one input config, naming the anchors that run at it instead of their native
/// size (CNNs such as EfficientNet-Lite; see `SnNetConfig::at_first_input_size`).
fn write_input_config(
    plan: &Plan,
    registry: &Registry,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let input = plan.pretrained();
    let resized: Vec<String> = plan
        .config()
        .anchors
        .iter()
        .filter_map(|a| {
            let native = registry.get(&a.name).ok()?.pretrained().input_size;
            (native != input.input_size).then(|| format!("{} (native {:?})", a.name, native))
        })
        .collect();
    writeln!(
        out,
        "input: {:?}, mean {:?}, std {:?}, crop {}, {:?} (the first anchor's){}",
        input.input_size,
        input.mean,
        input.std,
        input.crop_pct,
        input.interpolation,
        if resized.is_empty() {
            String::new()
        } else {
            format!("; run at it: {}", resized.join(", "))
        }
    )?;
    Ok(())
}

/// The least-squares images of `snnet init`.
fn init_images(args: &InitArgs, plan: &Plan, device: &Device) -> Result<Tensor<4>, CliError> {
    let first = plan
        .config()
        .anchors
        .first()
        .ok_or_else(|| CliError::Usage("no anchors".to_owned()))?;
    let pretrained = plan.pretrained();
    let samples = args.samples.unwrap_or(LS_SAMPLES);
    if let Some(path) = &args.source.input {
        let images = read_input(path, device)?;
        let [n, ..] = images.dims();
        // A file of no images goes on to the init, which refuses it with a typed error.
        return Ok(if n > samples {
            images.narrow(0, 0, samples)
        } else {
            images
        });
    }
    if let Some(dir) = &args.source.images {
        let files = image_files(dir)?;
        if files.is_empty() {
            return Err(CliError::Usage(format!(
                "no JPEG or PNG images under {}",
                dir.display()
            )));
        }
        let images = files
            .iter()
            .take(samples)
            .map(|f| load_image(f, pretrained, device))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Tensor::cat(images, 0));
    }
    match args.source.dataset {
        Some(DatasetName::FashionMnist) => Ok(fashion_mnist::train_images(
            args.data.as_deref(),
            samples,
            first,
            device,
        )?),
        None => Err(CliError::Usage(
            "give --images DIR, --dataset NAME or --input FILE".to_owned(),
        )),
    }
}

/// `snnet forward --snnet FILE [--stitch ID]`: an SN-Net checkpoint runs stitch `--stitch`, an
/// exported stitch (told apart by the file's content) its one stitch.
pub(crate) fn forward(
    path: &Path,
    stitch: Option<usize>,
    args: &ForwardArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if args.zoo.is_given() {
        return Err(CliError::Usage(
            "--model-config defines zoo models for --model; an SN-Net checkpoint describes its \
             own anchors"
                .to_owned(),
        ));
    }
    let one_stitch = match snnet_core::sniff_model_file(path)? {
        snnet_core::ModelFile::Stitch => true,
        snnet_core::ModelFile::Burnpack => matches!(
            snnet_core::quantize::read_packed_config(path)?,
            snnet_core::quantize::PackedConfig::Stitch(_)
        ),
        snnet_core::ModelFile::SnNet => false,
    };
    if one_stitch {
        return crate::cmd::export::forward_stitch(path, stitch, args, out);
    }
    let stitch = stitch.ok_or_else(|| {
        CliError::Usage(format!(
            "{} is an SN-Net: name the stitch to run with --stitch ID",
            path.display()
        ))
    })?;
    let device = args.device.device()?;
    let net = args.load.snnet(path, &device)?;
    let id = StitchId(stitch);
    let run = Forward {
        label: format!("stitch {id} ({})", net.space().display(id)?),
        pretrained: net.plan().pretrained(),
        cost: net.cost(id)?,
        device: &device,
    };
    run.run(
        args,
        |images| Ok(net.forward(images, id)?),
        |images| Ok(net.forward_features(images, id, &Features::Stages)?),
        out,
    )
}

/// One forward of the CLI: what it runs and how images are prepared.
pub(crate) struct Forward<'a> {
    /// `stitch 24 (deit_tiny[..=7] →L6→ deit_small[7..])`.
    pub(crate) label: String,
    pub(crate) pretrained: &'a snnet_core::zoo::PretrainedConfig,
    pub(crate) cost: snnet_core::zoo::Cost,
    pub(crate) device: &'a Device,
}

impl Forward<'_> {
    /// Runs `model` on `--input` (logits to `--output`, with `--features` the stage outputs
    /// `features` returns as `features.<stage>`) or `--image` (top-5 printed).
    pub(crate) fn run(
        &self,
        args: &ForwardArgs,
        model: impl Fn(Tensor<4>) -> Result<Tensor<2>, CliError>,
        features: impl Fn(Tensor<4>) -> Result<Vec<(PathFeature, Tensor<4>)>, CliError>,
        out: &mut impl Write,
    ) -> Result<(), CliError> {
        let label = &self.label;
        match (&args.input, &args.image) {
            (Some(input), _) => {
                let images = read_input(input, self.device)?;
                let mut outputs = BTreeMap::new();
                if args.features {
                    for (f, map) in features(images.clone())? {
                        outputs.insert(format!("features.{}", f.block.stage), map.into_data());
                    }
                }
                let logits = model(images)?;
                let dims = logits.dims();
                let output = args.output.as_ref().ok_or_else(|| {
                    CliError::Usage("--input needs --output FILE.safetensors".to_owned())
                })?;
                let stages = outputs.len();
                outputs.insert("logits".to_owned(), logits.into_data());
                write_tensors(output, &outputs)?;
                writeln!(
                    out,
                    "{label}: wrote logits {dims:?}{} to {}",
                    if args.features {
                        format!(" and {stages} stage feature maps")
                    } else {
                        String::new()
                    },
                    output.display()
                )?;
            }
            (None, Some(image)) => {
                let labels = read_labels(args.labels.as_deref(), self.pretrained.num_classes)?;
                let input = load_image(image, self.pretrained, self.device)?;
                writeln!(
                    out,
                    "{label} ({}, {}) on {}:",
                    human(self.cost.flops as f64, "FLOPs"),
                    human(self.cost.params as f64, "params"),
                    image.display()
                )?;
                print_top5(model(input)?, &labels, out)?;
            }
            (None, None) => return Err(CliError::Usage("give --input or --image".to_owned())),
        }
        Ok(())
    }
}
