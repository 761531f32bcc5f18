//! Evaluation of every stitch: top-1/top-5 with FLOPs and params, as JSON Lines in the
//! reference's format (`cfg_id`, `acc1`, `acc5`, `flops`, `params`) plus our fields.

use std::io::Write;
use std::path::Path;

use burn::tensor::{Int, Tensor};
use snnet_core::select::{StitchRecord, StitchTable};
use snnet_core::{SnNet, StitchId};

use crate::data::{Batcher, Dataset};
use crate::error::{Error, Result};

/// Top-1 and top-5 hits of a batch of logits against labels.
fn hits(logits: Tensor<2>, labels: Tensor<1, Int>) -> Result<(usize, usize)> {
    let [n, classes] = logits.dims();
    let k = classes.min(5);
    let (_, top) = logits.topk_with_indices(k, 1);
    let labels = labels.reshape([n, 1]);
    let eq = top.equal(labels.expand([n, k])).int();
    let top1: i64 = eq.clone().narrow(1, 0, 1).sum().into_scalar();
    let topk: i64 = eq.sum().into_scalar();
    Ok((top1.max(0) as usize, topk.max(0) as usize))
}

/// Evaluates stitch `id` on every batch of `data`.
///
/// # Errors
/// [`Error::Core`] for a failing forward and data errors.
pub fn evaluate_stitch<D: Dataset>(
    net: &SnNet,
    id: StitchId,
    data: &Batcher<D>,
) -> Result<StitchRecord> {
    let (mut top1, mut top5, mut n) = (0usize, 0usize, 0usize);
    for batch in data.epoch(0) {
        let batch = batch?;
        let [b, ..] = batch.images.dims();
        let (h1, h5) = hits(net.forward(batch.images, id)?, batch.labels)?;
        top1 += h1;
        top5 += h5;
        n += b;
    }
    if n == 0 {
        return Err(Error::InvalidConfig {
            what: "evaluation",
            reason: "no images to evaluate".into(),
        });
    }
    let cost = net.cost(id)?;
    let mut record = StitchRecord::new(id.index(), 100.0 * top1 as f64 / n as f64);
    record.acc5 = Some(100.0 * top5 as f64 / n as f64);
    record.flops = Some(cost.flops);
    record.params = Some(cost.params);
    record.extra.insert(
        "description".into(),
        net.space()
            .display(id)
            .map_err(snnet_core::Error::from)?
            .to_string()
            .into(),
    );
    record.extra.insert("images".into(), n.into());
    Ok(record)
}

/// Evaluates every evaluated stitch of `net` and appends one JSON line per stitch to `path`;
/// ids already in the file are skipped, so an interrupted evaluation resumes. Returns the whole
/// table (old and new lines).
///
/// # Errors
/// [`Error::Checkpoint`] when the file cannot be read or appended to, and as
/// [`evaluate_stitch`].
pub fn evaluate_all<D: Dataset>(
    net: &SnNet,
    data: &Batcher<D>,
    path: &Path,
    progress: &mut dyn FnMut(&StitchRecord, usize, usize),
) -> Result<StitchTable> {
    let file_error = |reason: String| Error::Checkpoint {
        path: path.to_owned(),
        reason,
    };
    let mut table = if path.exists() {
        StitchTable::read_jsonl(path).map_err(|e| file_error(e.to_string()))?
    } else {
        StitchTable::new()
    };
    let todo: Vec<StitchId> = net
        .space()
        .evaluated()
        .map(|s| s.id)
        .filter(|id| table.get(id.index()).is_none())
        .collect();
    let total = net.space().evaluated().count();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| file_error(e.to_string()))?;
    for id in todo {
        let record = evaluate_stitch(net, id, data)?;
        let line = serde_json::to_string(&record).map_err(|e| file_error(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| file_error(e.to_string()))?;
        file.flush().map_err(|e| file_error(e.to_string()))?;
        table
            .insert(record.clone())
            .map_err(|e| file_error(e.to_string()))?;
        progress(&record, table.len(), total);
    }
    Ok(table)
}
