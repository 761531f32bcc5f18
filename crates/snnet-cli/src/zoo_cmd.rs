//! The zoo verbs: `models`, `cost --model`, `forward --model`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use snnet_core::burn::tensor::activation::softmax;
use snnet_core::burn::tensor::{Device, Tensor, TensorData};
use snnet_core::zoo::tensor_io::{read_tensors, write_tensors};
use snnet_core::zoo::{Activation, Anchor, ModelEntry, Registry, load_image};

use crate::format::human;
use crate::{CliError, Format};

/// Registry options shared by the zoo verbs.
#[derive(Debug, Args, Default)]
pub(crate) struct ZooArgs {
    /// JSON file of custom models (`{"name", "config": {"family": "vit", ...}, "pretrained"}`,
    /// a list, or {"models": [...]}); repeatable.
    #[arg(long = "model-config", value_name = "FILE.json")]
    model_configs: Vec<PathBuf>,
}

impl ZooArgs {
    pub(crate) fn registry(&self) -> Result<Registry, CliError> {
        let mut registry = Registry::builtin();
        for path in &self.model_configs {
            registry.add_json_file(path)?;
        }
        Ok(registry)
    }
}

#[derive(Debug, Args)]
pub(crate) struct ModelsArgs {
    /// A glob over model names (`*` any run, `?` one character), e.g. `deit*`.
    #[arg(default_value = "*")]
    pattern: String,
    #[command(flatten)]
    zoo: ZooArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ModelCostArgs {
    /// The model (timm name or a --model-config name).
    #[arg(long, required_unless_present = "anchors", conflicts_with = "anchors")]
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
    pub(crate) space: crate::SpaceFlags,
    #[command(flatten)]
    pub(crate) zoo: ZooArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    /// The model (timm name or a --model-config name).
    #[arg(
        long,
        required_unless_present = "snnet",
        conflicts_with = "snnet",
        requires = "weights"
    )]
    model: Option<String>,
    /// timm weights: .safetensors or PyTorch .pth (plain, {"model": ...} or {"state_dict": ...}).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// An SN-Net checkpoint written by `snnet init` or `snnet train`.
    #[arg(long, value_name = "FILE.safetensors", requires = "stitch")]
    pub(crate) snnet: Option<PathBuf>,
    /// The stitch to run, by id (see `snnet cost --anchors ...`).
    #[arg(long, requires = "snnet")]
    pub(crate) stitch: Option<usize>,
    /// Preprocessed input: a safetensors file with an NCHW f32 tensor `input`.
    #[arg(
        long,
        value_name = "FILE.safetensors",
        conflicts_with = "image",
        requires = "output"
    )]
    pub(crate) input: Option<PathBuf>,
    /// Where to write `logits` (and `features.<i>` with --features) as safetensors.
    #[arg(long, value_name = "FILE.safetensors", requires = "input")]
    pub(crate) output: Option<PathBuf>,
    /// Also write every block's output as `features.<block index>`.
    #[arg(long, requires = "output")]
    features: bool,
    /// Classify a picture (JPEG/PNG) with the model's pretrained preprocessing; prints the top-5.
    #[arg(long, value_name = "PATH", required_unless_present = "input")]
    pub(crate) image: Option<PathBuf>,
    /// Class names, one per line, for --image.
    #[arg(long, value_name = "FILE.txt", requires = "image")]
    pub(crate) labels: Option<PathBuf>,
    #[command(flatten)]
    zoo: ZooArgs,
}

pub(crate) fn models(args: &ModelsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = crate::train_cmd::registry(&args.zoo)?;
    let names = registry.list(&args.pattern);
    let entries: Vec<&ModelEntry> = names.iter().filter_map(|n| registry.get(n).ok()).collect();
    match args.format {
        Format::Json => {
            let rows: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let total = e.config.cost().total();
                    serde_json::json!({
                        "name": e.name,
                        "family": e.config.family(),
                        "flops": total.flops,
                        "params": total.params,
                        "pretrained": e.pretrained(),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string(&rows)?)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{:<36} {:<6} {:>16} {:>16}  input",
                "model", "family", "FLOPs", "params"
            )?;
            for e in entries {
                let total = e.config.cost().total();
                let [c, h, w] = e.pretrained().input_size;
                writeln!(
                    out,
                    "{:<36} {:<6} {:>16} {:>16}  {c}×{h}×{w}",
                    e.name,
                    e.config.family(),
                    human(total.flops as f64, "FLOPs"),
                    human(total.params as f64, "params"),
                )?;
            }
        }
    }
    Ok(())
}

pub(crate) fn model_cost(args: &ModelCostArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = crate::train_cmd::registry(&args.zoo)?;
    let Some(model) = &args.model else {
        return crate::snnet_cmd::cost(args, &registry, out);
    };
    let entry = registry.get(model)?;
    let cost = entry.config.cost();
    let total = cost.total();
    match args.format {
        Format::Json => {
            let blocks: Vec<serde_json::Value> = cost
                .blocks
                .iter()
                .enumerate()
                .map(|(i, c)| serde_json::json!({"index": i, "flops": c.flops, "params": c.params}))
                .collect();
            let json = serde_json::json!({
                "model": entry.name,
                "total": total,
                "blocks": blocks,
                "stem": cost.stem,
                "tokens": cost.tokens,
                "norm": cost.norm,
                "head": cost.head,
            });
            writeln!(out, "{}", serde_json::to_string(&json)?)?;
        }
        Format::Table => {
            writeln!(
                out,
                "{}: {} FLOPs (fvcore multiply-adds, one image), {} params\n",
                entry.name, total.flops, total.params
            )?;
            writeln!(out, "{:<10} {:>16} {:>12}", "part", "FLOPs", "params")?;
            let mut row = |name: String, c: snnet_core::zoo::Cost| {
                writeln!(out, "{name:<10} {:>16} {:>12}", c.flops, c.params)
            };
            row("stem".into(), cost.stem)?;
            row("tokens".into(), cost.tokens)?;
            for (i, c) in cost.blocks.iter().enumerate() {
                row(format!("block {i}"), *c)?;
            }
            row("norm".into(), cost.norm)?;
            row("head".into(), cost.head)?;
        }
    }
    Ok(())
}

pub(crate) fn forward(args: &ForwardArgs, out: &mut impl Write) -> Result<(), CliError> {
    let (Some(model), Some(weights)) = (&args.model, &args.weights) else {
        return crate::snnet_cmd::forward(args, out);
    };
    let registry = crate::train_cmd::registry(&args.zoo)?;
    let entry = registry.get(model)?;
    let device = Device::default();
    let (model, report) = entry.load(weights, &device)?;
    if !report.unexpected.is_empty() {
        eprintln!(
            "note: {} key(s) in {} not used by {}: {}",
            report.unexpected.len(),
            weights.display(),
            entry.name,
            report.unexpected.join(", ")
        );
    }
    match (&args.input, &args.image) {
        (Some(input), _) => {
            let images = read_input(input, &device)?;
            let mut outputs = BTreeMap::new();
            let mut x = model.embed(images)?;
            for i in 0..model.num_blocks() {
                x = model.block(i, x)?;
                if args.features {
                    let data = match &x {
                        Activation::Tokens(t) => t.clone().into_data(),
                        Activation::Map(m) => m.clone().into_data(),
                    };
                    outputs.insert(format!("features.{i}"), data);
                }
            }
            let logits = model.head(x, true)?;
            let dims = logits.dims();
            outputs.insert("logits".to_owned(), logits.into_data());
            let output = args.output.as_ref().ok_or_else(|| {
                CliError::Usage("--input needs --output FILE.safetensors".to_owned())
            })?;
            write_tensors(output, &outputs)?;
            writeln!(
                out,
                "wrote logits {:?}{} to {}",
                dims,
                if args.features {
                    format!(" and {} feature maps", model.num_blocks())
                } else {
                    String::new()
                },
                output.display()
            )?;
        }
        (None, Some(image)) => {
            let labels = read_labels(args.labels.as_deref())?;
            let input = load_image(image, &entry.pretrained(), &device)?;
            writeln!(out, "{} on {}:", entry.name, image.display())?;
            print_top5(model.forward(input)?, &labels, out)?;
        }
        (None, None) => {
            return Err(CliError::Usage("give --input or --image".to_owned()));
        }
    }
    Ok(())
}

/// Class names, one per line (none without a file).
pub(crate) fn read_labels(path: Option<&std::path::Path>) -> Result<Vec<String>, CliError> {
    Ok(match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    })
}

/// Prints the five most probable classes of `logits` (`[1, classes]`).
pub(crate) fn print_top5(
    logits: Tensor<2>,
    labels: &[String],
    out: &mut impl Write,
) -> Result<(), CliError> {
    let data: TensorData = softmax(logits, 1).into_data();
    let probs = data
        .as_slice::<f32>()
        .map_err(|e| CliError::Usage(format!("unexpected output dtype: {e:?}")))?;
    let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (class, p) in ranked.into_iter().take(5) {
        let label = labels
            .get(class)
            .map_or(String::new(), |l| format!("  {l}"));
        writeln!(out, "  {:>6.2} %  class {class}{label}", 100.0 * p)?;
    }
    Ok(())
}

/// Reads the NCHW f32 tensor `input` of a safetensors file.
pub(crate) fn read_input(path: &std::path::Path, device: &Device) -> Result<Tensor<4>, CliError> {
    let tensors = read_tensors(path)?;
    let data = tensors.get("input").ok_or_else(|| {
        CliError::Usage(format!("{} has no tensor named `input`", path.display()))
    })?;
    if data.shape().len() != 4 {
        return Err(CliError::Usage(format!(
            "`input` in {} must be NCHW (rank 4), got shape {:?}",
            path.display(),
            data.shape().to_vec()
        )));
    }
    Ok(Tensor::from_data(data.clone(), device))
}
