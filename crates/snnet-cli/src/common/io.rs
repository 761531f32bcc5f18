//! Reading and writing what the verbs exchange with files and the terminal: input tensors,
//! class labels, top-5 lists and the stitch space as JSON.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::io::Write;
use std::path::Path;

use snnet_core::burn::tensor::activation::softmax;
use snnet_core::burn::tensor::{Device, Tensor, TensorData};
use snnet_core::select::StitchTable;
use snnet_core::space::{Stitch, StitchKind, StitchSpace};
use snnet_core::zoo::tensor_io::read_tensors;

use super::CliError;

/// Class names, one per line; without a file, the built-in ImageNet-1k names for a model of
/// 1,000 classes (none otherwise).
pub(crate) fn read_labels(
    path: Option<&Path>,
    num_classes: usize,
) -> Result<Vec<String>, CliError> {
    Ok(match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| CliError::Read {
                path: path.to_owned(),
                source,
            })?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => snnet_core::zoo::default_labels(num_classes),
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
pub(crate) fn read_input(path: &Path, device: &Device) -> Result<Tensor<4>, CliError> {
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
    if data.shape().contains(&0) {
        return Err(CliError::Usage(format!(
            "`input` in {} is empty (shape {:?}): it needs at least one image",
            path.display(),
            data.shape().to_vec()
        )));
    }
    Ok(Tensor::from_data(data.clone(), device))
}

/// Reads an evaluation table (JSON Lines), naming the file in a parse error.
pub(crate) fn read_table(path: &Path) -> Result<StitchTable, CliError> {
    StitchTable::read_jsonl(path).map_err(|source| match source {
        // The I/O error already names the file.
        e @ snnet_core::select::Error::Io { .. } => CliError::Select(e),
        source => CliError::Table {
            path: path.to_owned(),
            source,
        },
    })
}

/// The JSON shape of one stitch in `snnet space --format json` (and `cost --anchors`, with
/// its cost).
#[derive(serde::Serialize)]
struct StitchJson<'a> {
    #[serde(flatten)]
    stitch: &'a Stitch,
    kind: StitchKind,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flops: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<u64>,
}

/// The space as `snnet space --format json` prints it, with every stitch's cost when given.
pub(crate) fn space_json(
    space: &StitchSpace,
    costs: Option<&[snnet_core::zoo::Cost]>,
) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let stitches: Vec<StitchJson<'_>> = space
        .stitches()
        .iter()
        .map(|stitch| {
            let cost = costs.and_then(|c| c.get(stitch.id.index()));
            StitchJson {
                stitch,
                kind: stitch.kind(),
                description: space.describe(stitch),
                flops: cost.map(|c| c.flops),
                params: cost.map(|c| c.params),
            }
        })
        .collect();
    let names: Vec<&str> = space.anchors().iter().map(|a| a.name.as_str()).collect();
    let mut json = serde_json::Map::new();
    json.insert("anchors".into(), serde_json::to_value(names)?);
    json.insert("config".into(), serde_json::to_value(space.config())?);
    if space.is_hierarchical() {
        json.insert("stages".into(), serde_json::to_value(space.stages())?);
    }
    json.insert("count".into(), space.len().into());
    json.insert("evaluated_count".into(), space.evaluated().count().into());
    json.insert(
        "layer_groups".into(),
        serde_json::to_value(space.layer_groups())?,
    );
    json.insert("stitches".into(), serde_json::to_value(stitches)?);
    Ok(json)
}
