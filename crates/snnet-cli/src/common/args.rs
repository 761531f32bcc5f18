//! Flag groups shared by several verbs, and the model registry they resolve names in.

use std::path::{Path, PathBuf};

use clap::Args;
use snnet_core::SnNet;
use snnet_core::burn::tensor::Device;
use snnet_core::space::{Direction, Pairing, SpaceConfig, StitchLayers, StitchSpace};
use snnet_core::zoo::{LoadOptions, LoadReport, Model, ModelEntry, Registry};
use snnet_train::fashion_mnist::{self, DataConfig};

use super::{CliError, Format};

/// The device flag of every verb that runs a network.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct DeviceArgs {
    /// Where to run: cpu (Flex, the default), ndarray, wgpu, wgpu:N, cuda, cuda:N, tch, tch:cpu or
    /// tch:cuda:N. Backends other than cpu need their cargo feature at build time (see the
    /// README's Backends section); a device whose backend is missing is a clear error.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub(crate) device: snnet_core::DeviceSpec,
}

impl DeviceArgs {
    /// The device, or an error naming the cargo feature this build lacks.
    pub(crate) fn device(&self) -> Result<snnet_core::burn::tensor::Device, CliError> {
        Ok(self.device.device()?)
    }
}

/// The weight-loading flag of the verbs that read weight files or SN-Net checkpoints.
#[derive(Debug, Args, Default, Clone, Copy)]
pub(crate) struct LoadArgs {
    /// Load weights holding NaN or infinite values instead of refusing the file; every such
    /// tensor is named on stderr. A network with them answers with NaN or wrong logits: for
    /// inspecting a damaged file, never for serving (`snnet serve` has no such flag).
    #[arg(long)]
    pub(crate) allow_nonfinite: bool,
}

impl LoadArgs {
    /// The library's load options.
    pub(crate) fn options(self) -> LoadOptions {
        LoadOptions::default().with_allow_nonfinite(self.allow_nonfinite)
    }

    /// Loads an SN-Net checkpoint, warning about every non-finite tensor it was allowed to hold;
    /// a burnpack file (`snnet quantize`: int8 weights) loads too, told apart by content.
    pub(crate) fn snnet(self, path: &Path, device: &Device) -> Result<SnNet, CliError> {
        if let Some(net) = crate::cmd::export::load_packed_snnet(path, self, device)? {
            return Ok(net);
        }
        let (net, report) = SnNet::load_with(path, self.options(), device)?;
        warn_non_finite(path, &report.non_finite());
        Ok(net)
    }

    /// Loads a zoo model's weights, warning about every non-finite tensor it was allowed to hold.
    pub(crate) fn model(
        self,
        entry: &ModelEntry,
        path: &Path,
        device: &Device,
    ) -> Result<(Model, LoadReport), CliError> {
        let (model, report) = entry.load_with(path, self.options(), device)?;
        warn_non_finite(path, &report.non_finite);
        Ok((model, report))
    }
}

/// One stderr line per tensor loaded with NaN or infinite values (`--allow-nonfinite`).
pub(crate) fn warn_non_finite(path: &Path, tensors: &[(String, usize)]) {
    for (key, count) in tensors {
        eprintln!(
            "warning: {}: tensor `{}` holds {count} NaN or infinite value(s), loaded because of --allow-nonfinite",
            snnet_core::space::display_safe(&path.display().to_string()),
            snnet_core::space::display_safe(key),
        );
    }
}

/// Registry options shared by the verbs that name models.
#[derive(Debug, Args, Default)]
pub(crate) struct ZooArgs {
    /// JSON file of custom models (`{"name", "config": {"family": "vit", ...}, "pretrained"}`,
    /// a list, or {"models": [...]}); repeatable.
    #[arg(long = "model-config", value_name = "FILE.json")]
    model_configs: Vec<PathBuf>,
}

impl ZooArgs {
    /// Whether any --model-config file was given (for the verbs that refuse one they would not
    /// read).
    pub(crate) fn is_given(&self) -> bool {
        !self.model_configs.is_empty()
    }

    /// The zoo's built-in models, the --model-config files' and the Fashion-MNIST anchors
    /// (unless a file defines models of their names).
    pub(crate) fn registry(&self) -> Result<Registry, CliError> {
        let mut registry = Registry::builtin();
        for path in &self.model_configs {
            registry.add_json_file(path)?;
        }
        fashion_mnist::add_anchors(&mut registry)?;
        Ok(registry)
    }
}

/// The ids of the flags of `cost` that act with --anchors only: [`SpaceFlags`]' and
/// --reference-compat.
const ANCHORS_ONLY: [&str; 7] = [
    "kernel_size",
    "stride",
    "all_pairs",
    "direction",
    "stages",
    "layers",
    "reference_compat",
];

/// The stitch-space rules shared by `space`, `cost --anchors` and `init`.
#[derive(Debug, Args)]
pub(crate) struct SpaceFlags {
    /// Blocks per sliding window (equal-depth pairs).
    #[arg(long, default_value_t = 2)]
    kernel_size: usize,
    /// Blocks the sliding window moves per step.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// Stitch every pair of anchors (and, for plain anchors, paths through three or more), not
    /// only neighbours.
    #[arg(long)]
    all_pairs: bool,
    /// Which way stitches run: fast-to-slow, slow-to-fast or two-way (SN-Netv2).
    #[arg(long, default_value = "fast-to-slow", value_parser = parse_direction)]
    direction: Direction,
    /// Stages to stitch, for hierarchical anchors (default: the family's, e.g. 0,1,2 for Swin).
    #[arg(long, value_delimiter = ',')]
    stages: Option<Vec<usize>>,
    /// Stitching layers: `shared` (the reference: the cuts of a sliding window share one layer,
    /// initialised with the average of their least-squares solutions) or `per-cut` (one layer
    /// per cut, its own least-squares solution).
    #[arg(long, default_value = "shared", value_parser = parse_layers)]
    layers: StitchLayers,
}

impl SpaceFlags {
    /// Refuses `--stages` for plain anchors: their space has no stages, and the flag would be
    /// ignored.
    pub(crate) fn check(&self, space: &StitchSpace) -> Result<(), CliError> {
        if self.stages.is_some() && !space.is_hierarchical() {
            return Err(CliError::Usage(
                "--stages chooses the stages of hierarchical anchors (Swin, ResNet); these \
                 anchors are plain"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    pub(crate) fn config(&self) -> SpaceConfig {
        SpaceConfig {
            kernel_size: self.kernel_size,
            stride: self.stride,
            pairing: if self.all_pairs {
                Pairing::All
            } else {
                Pairing::Nearest
            },
            direction: self.direction,
            stages: self.stages.clone(),
            layers: self.layers,
        }
    }
}

fn parse_layers(s: &str) -> Result<StitchLayers, String> {
    s.parse()
        .map_err(|e: snnet_core::space::Error| e.to_string())
}

fn parse_direction(s: &str) -> Result<Direction, String> {
    s.parse()
        .map_err(|e: snnet_core::space::Error| e.to_string())
}

/// The Fashion-MNIST training data options of `pretrain` and `train`.
#[derive(Debug, Args, Clone)]
pub(crate) struct DataArgs {
    /// Folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Training images to use (the first N; 0: all 60,000).
    #[arg(long, default_value_t = 0)]
    train_samples: usize,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Seed of the data order, augmentation and (pretraining) initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    parallel: ParallelArgs,
}

/// The help of `--devices` (`train`, `pretrain` and `run`).
/// How a training batch is split: data-parallel shards on threads of one device, or one shard
/// per device.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ParallelArgs {
    /// Split every batch into this many data-parallel shards, each on its own thread (0: one
    /// per CPU core, at least 32 images each; 1: none). Same result up to float rounding,
    /// faster on several cores.
    #[arg(long, default_value_t = 0)]
    pub(crate) shards: usize,
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        num_args = 1..,
        conflicts_with_all = ["shards", "device"],
        help = DEVICES_HELP
    )]
    pub(crate) devices: Vec<snnet_core::DeviceSpec>,
}

pub(crate) const DEVICES_HELP: &str = "One data-parallel shard per device, comma separated: \
    cuda:0,cuda:1 or wgpu:0,wgpu:1 (several GPUs), each entry as --device takes it. Every batch \
    is split into one shard per entry and the gradients are summed in shard order on the first \
    device, which also holds the network and the optimizer; a device may repeat (cpu,cpu: two \
    shards on threads of the CPU, the same computation as --device cpu --shards 2). Instead of \
    --device and --shards";

/// The training device of `--devices` (its first entry) or, without it, of `--device`.
pub(crate) fn training_device(
    devices: &[snnet_core::DeviceSpec],
    device: &DeviceArgs,
) -> Result<Device, CliError> {
    match devices.first() {
        Some(first) => Ok(first.device()?),
        None => device.device(),
    }
}

impl DataArgs {
    /// The training device: the first of --devices, else --device.
    pub(crate) fn device(&self, device: &DeviceArgs) -> Result<Device, CliError> {
        training_device(&self.parallel.devices, device)
    }

    /// The library's data settings (the test split's, unused in training, at their defaults).
    pub(crate) fn config(&self) -> DataConfig {
        DataConfig {
            dir: self.data.clone(),
            train_samples: self.train_samples,
            batch_size: self.batch_size,
            seed: self.seed,
            shards: self.parallel.shards,
            devices: self.parallel.devices.clone(),
            ..DataConfig::default()
        }
    }
}

/// The Fashion-MNIST test data options of `eval` (batches of
/// [`EVAL_BATCH_SIZE`](snnet_train::fashion_mnist::EVAL_BATCH_SIZE), in order, not augmented).
#[derive(Debug, Args, Clone)]
pub(crate) struct TestDataArgs {
    /// Folder of the Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Test images to evaluate on (the first N; 0: all 10,000).
    #[arg(long, default_value_t = 0)]
    test_samples: usize,
}

impl TestDataArgs {
    /// The library's data settings (the training split's, unused in evaluation, at their
    /// defaults).
    pub(crate) fn config(&self) -> DataConfig {
        DataConfig {
            dir: self.data.clone(),
            test_samples: self.test_samples,
            ..DataConfig::default()
        }
    }
}

/// `snnet cost`: one model's cost per block (--model, the zoo), or every stitch's of an SN-Net
/// (--anchors).
#[derive(Debug, Args)]
pub(crate) struct CostArgs {
    /// The model (timm name or a --model-config name). The stitch-space flags (--kernel-size,
    /// --stride, --all-pairs, --direction, --stages, --layers) and --reference-compat go with
    /// --anchors only.
    #[arg(
        long,
        required_unless_present = "anchors",
        conflicts_with_all = ANCHORS_ONLY,
        conflicts_with = "anchors"
    )]
    pub(crate) model: Option<String>,
    /// An SN-Net's anchors, small to large, comma separated: prints the stitch space (as
    /// `snnet space --format json`) with every stitch's FLOPs and params.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub(crate) anchors: Vec<String>,
    /// Count as the reference's released checkpoints were measured (stitched DeiT paths without
    /// the final norm, tokens not counted; Swin front patch merging not counted).
    #[arg(long, requires = "anchors")]
    pub(crate) reference_compat: bool,
    #[command(flatten)]
    pub(crate) space: SpaceFlags,
    #[command(flatten)]
    pub(crate) zoo: ZooArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// `snnet forward`: a zoo model (--model, --weights) or one stitch of an SN-Net (--snnet,
/// --stitch) on a tensor file or an image.
///
/// Every `requires` here comes with the `conflicts_with` of the other mode: clap excuses a
/// missing requirement that conflicts with a present flag, so `--output` beside `--image` (whose
/// `--input` it requires) would otherwise pass and be ignored.
#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    /// The model (timm name or a --model-config name).
    #[arg(
        long,
        required_unless_present = "snnet",
        conflicts_with = "snnet",
        requires = "weights"
    )]
    pub(crate) model: Option<String>,
    /// timm weights: .safetensors or PyTorch .pth (plain, {"model": ...} or {"state_dict": ...}).
    #[arg(long, value_name = "FILE", conflicts_with = "snnet")]
    pub(crate) weights: Option<PathBuf>,
    /// An SN-Net checkpoint written by `snnet init` or `snnet train` (runs stitch --stitch), or
    /// one stitch written by `snnet export` (runs that stitch; no --stitch). Told apart by the
    /// file's content.
    #[arg(long, value_name = "FILE.safetensors")]
    pub(crate) snnet: Option<PathBuf>,
    /// The stitch of an SN-Net checkpoint to run, by id (see `snnet cost --anchors ...`).
    #[arg(long, requires = "snnet", conflicts_with = "model")]
    pub(crate) stitch: Option<usize>,
    /// Preprocessed input: a safetensors file with an NCHW f32 tensor `input`.
    #[arg(long, value_name = "FILE.safetensors", requires = "output")]
    pub(crate) input: Option<PathBuf>,
    /// Where to write `logits` (and `features.<i>` with --features) as safetensors.
    #[arg(long, value_name = "FILE.safetensors", requires = "input")]
    pub(crate) output: Option<PathBuf>,
    /// Also write features to --output: with --model every block's output as
    /// `features.<block index>`; with --snnet the stitch's stage outputs along its path, as
    /// `[B, C, H, W]` maps, `features.<stage>` (ViT tokens without the class token, reshaped to
    /// the patch grid).
    #[arg(long, requires = "output")]
    pub(crate) features: bool,
    /// Classify a picture (JPEG/PNG) with the model's pretrained preprocessing; prints the top-5.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "input",
        conflicts_with_all = ["input", "output", "features"]
    )]
    pub(crate) image: Option<PathBuf>,
    /// Class names, one per line, for --image.
    #[arg(
        long,
        value_name = "FILE.txt",
        requires = "image",
        conflicts_with = "input"
    )]
    pub(crate) labels: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) zoo: ZooArgs,
}
