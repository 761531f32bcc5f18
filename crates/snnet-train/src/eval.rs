//! Evaluation of every stitch: top-1/top-5 with FLOPs and params, as JSON Lines in the
//! reference's format (`cfg_id`, `acc1`, `acc5`, `flops`, `params`) plus our fields.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::collections::BTreeMap;
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
    evaluate_stitches(net, &[id], data)?
        .pop()
        .ok_or_else(|| Error::InvalidConfig {
            what: "evaluation",
            reason: "no stitch evaluated".into(),
        })
}

/// Evaluates stitches `ids` on every batch of `data` in one pass over the data: each batch is
/// prepared once and runs through [`SnNet::forward_many`], which computes the front parts the
/// stitches share once (the same logits as one [`SnNet::forward`] per stitch). Records in the
/// order of `ids`.
///
/// # Errors
/// [`Error::Core`] for a failing forward and data errors.
pub fn evaluate_stitches<D: Dataset>(
    net: &SnNet,
    ids: &[StitchId],
    data: &Batcher<D>,
) -> Result<Vec<StitchRecord>> {
    let mut counts = vec![(0usize, 0usize); ids.len()];
    let mut n = 0usize;
    for batch in data.epoch(0) {
        let batch = batch?;
        let [b, ..] = batch.images.dims();
        for (count, logits) in counts.iter_mut().zip(net.forward_many(batch.images, ids)?) {
            let (h1, h5) = hits(logits, batch.labels.clone())?;
            count.0 = count.0.saturating_add(h1);
            count.1 = count.1.saturating_add(h5);
        }
        n = n.saturating_add(b);
    }
    if n == 0 {
        return Err(Error::InvalidConfig {
            what: "evaluation",
            reason: "no images to evaluate".into(),
        });
    }
    ids.iter()
        .zip(counts)
        .map(|(&id, (top1, top5))| record(net, id, top1, top5, n))
        .collect()
}

/// The table row of stitch `id`: accuracies from its hit counts on `n` images, cost,
/// description.
fn record(net: &SnNet, id: StitchId, top1: usize, top5: usize, n: usize) -> Result<StitchRecord> {
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

/// The provenance every row of an evaluation table carries, checked on resume: the network's
/// [`SnNet::fingerprint`], a fingerprint of the evaluation data (every prepared image and label,
/// in order) and the number of images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// [`SnNet::fingerprint`] of the evaluated network.
    pub network: String,
    /// [`dataset_fingerprint`] of the evaluation data.
    pub data: String,
    /// Images evaluated per stitch.
    pub images: usize,
}

impl Provenance {
    /// The provenance of evaluating `net` on `data`.
    ///
    /// # Errors
    /// Data errors reading an item.
    pub fn of<D: Dataset>(net: &SnNet, data: &Batcher<D>) -> Result<Self> {
        Ok(Self {
            network: net.fingerprint()?,
            data: dataset_fingerprint(data.dataset())?,
            images: data.dataset().len(),
        })
    }

    /// Stamps `record` with this provenance (keys `network`, `data`, `images`).
    pub fn stamp(&self, record: &mut StitchRecord) {
        record
            .extra
            .insert("network".into(), self.network.clone().into());
        record.extra.insert("data".into(), self.data.clone().into());
        record.extra.insert("images".into(), self.images.into());
    }

    /// Why `record` cannot be resumed against this provenance, if it cannot.
    fn mismatch(&self, record: &StitchRecord) -> Option<String> {
        let field = |key: &str| record.extra.get(key);
        let same_str = |key: &str, want: &str| field(key).and_then(|v| v.as_str()) == Some(want);
        if !same_str("network", &self.network) {
            return Some(format!(
                "stitch {} was evaluated on another network (or the row has no `network` \
                 fingerprint)",
                record.id
            ));
        }
        if !same_str("data", &self.data)
            || field("images").and_then(serde_json::Value::as_u64) != Some(self.images as u64)
        {
            return Some(format!(
                "stitch {} was evaluated on other data (another split, subset or image count)",
                record.id
            ));
        }
        None
    }
}

/// A SHA-256 fingerprint of a dataset's prepared items (image values and labels, in order).
///
/// # Errors
/// Data errors reading an item.
pub fn dataset_fingerprint<D: Dataset>(data: &D) -> Result<String> {
    use sha2::{Digest, Sha256};
    let [c, h, w] = data.shape();
    let mut hash = Sha256::new();
    hash.update((data.len() as u64).to_le_bytes());
    let mut buf = vec![0f32; c.saturating_mul(h).saturating_mul(w)];
    for i in 0..data.len() {
        let label = data.load(i, &mut buf)?;
        hash.update((label as u64).to_le_bytes());
        for v in &buf {
            hash.update(v.to_le_bytes());
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Evaluates every evaluated stitch of `net` and writes one JSON line per stitch to `path`;
/// stitches already in the file are skipped, so an interrupted evaluation resumes. Returns the
/// whole table (old and new lines).
///
/// Every row records its [`Provenance`]; resuming checks that each existing row was measured
/// on this network and this data, for a stitch the network has, and refuses otherwise
/// ([`Error::ResumeMismatch`]: delete the file, or choose another, to start over).
///
/// The stitches run in groups, one per anchor they start from, each group in one pass over the
/// data ([`evaluate_stitches`]: the group's shared front part runs once per batch). The file is
/// rewritten atomically as each group's rows come in ([`snnet_fs::write_atomic`]), so an
/// interruption leaves a complete table of the groups finished.
///
/// # Errors
/// [`Error::Checkpoint`] when the file cannot be read or written, [`Error::ResumeMismatch`],
/// and as [`evaluate_stitches`].
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
    let provenance = Provenance::of(net, data)?;
    let mut table = if path.exists() {
        StitchTable::read_jsonl(path).map_err(|e| file_error(e.to_string()))?
    } else {
        StitchTable::new()
    };
    let total = net.space().evaluated().count();
    for record in table.records() {
        let known =
            record.id < net.num_stitches() && net.space().evaluated().any(|s| s.id == record.id);
        let reason = if known {
            provenance.mismatch(record)
        } else {
            Some(format!(
                "stitch {} is not an evaluated stitch of this network ({} stitches)",
                record.id,
                net.num_stitches()
            ))
        };
        if let Some(reason) = reason {
            return Err(Error::ResumeMismatch {
                path: path.to_owned(),
                reason,
            });
        }
    }
    let todo: Vec<StitchId> = net
        .space()
        .evaluated()
        .map(|s| s.id)
        .filter(|id| table.get(id.index()).is_none())
        .collect();
    // One pass over the data per anchor that the stitches start from: they share its front
    // part (and the pass), and the file is rewritten after each group.
    let mut groups: BTreeMap<usize, Vec<StitchId>> = BTreeMap::new();
    for id in todo {
        let front = net
            .plan()
            .path(id)?
            .segments
            .first()
            .map_or(0, |s| s.anchor);
        groups.entry(front).or_default().push(id);
    }
    for ids in groups.values() {
        let mut records = evaluate_stitches(net, ids, data)?;
        for record in &mut records {
            provenance.stamp(record);
        }
        // Rows stay in id order, whatever the grouping and resumption did.
        let mut rows = table.into_records();
        rows.extend(records.iter().cloned());
        rows.sort_by_key(|r| r.id);
        table = StitchTable::from_records(rows).map_err(|e| file_error(e.to_string()))?;
        table
            .write_jsonl(path)
            .map_err(|e| file_error(e.to_string()))?;
        let mut done = table.len().saturating_sub(records.len());
        for record in &records {
            done = done.saturating_add(1);
            progress(record, done, total);
        }
    }
    Ok(table)
}
