//! The verbs on single models of the zoo: `models`, `cost --model` and `forward --model`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use clap::Args;
use snnet_core::zoo::tensor_io::write_tensors;
use snnet_core::zoo::{Activation, Anchor, ModelEntry, load_image};

use crate::common::args::{CostArgs, ForwardArgs, ZooArgs};
use crate::common::format::human;
use crate::common::io::{print_top5, read_input, read_labels};
use crate::common::{CliError, Format};

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

/// `snnet models`.
pub(crate) fn models(args: &ModelsArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = args.zoo.registry()?;
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

/// `snnet cost --model NAME`: the model's cost per block.
pub(crate) fn cost(model: &str, args: &CostArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = args.zoo.registry()?;
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

/// `snnet forward --model NAME --weights FILE`.
pub(crate) fn forward(
    model: &str,
    weights: &Path,
    args: &ForwardArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = args.zoo.registry()?;
    let entry = registry.get(model)?;
    let device = args.device.device()?;
    let (model, report) = args.load.model(entry, weights, &device)?;
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
            model.check_images(images.dims())?;
            let x = model.embed(images);
            // The one block loop; state s (s ≥ 1) is block s − 1's output.
            let x = model.blocks_with_states(0..model.num_blocks(), x, &mut |state, x| {
                if args.features && state > 0 {
                    let data = match x {
                        Activation::Tokens(t) => t.clone().into_data(),
                        Activation::Map(m) => m.clone().into_data(),
                    };
                    outputs.insert(format!("features.{}", state - 1), data);
                }
            });
            let logits = model.head(x, true);
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
            let labels = read_labels(args.labels.as_deref(), entry.config.num_classes())?;
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
