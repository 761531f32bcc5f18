//! The steps of the main job that the `snnet` CLI's verbs also call: pretrain an anchor
//! ([`pretrain_anchor`]), train an SN-Net jointly ([`train_joint`]), evaluate every stitch
//! ([`evaluate`]).

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use snnet_core::select::StitchTable;
use snnet_core::{Model, ModelEntry, SnNet};

use super::{Event, Observer, create_dir, file_error};
use crate::error::{Error, Result};
use crate::eval::evaluate_all;
use crate::fashion_mnist::DataConfig;
use crate::train::{Distill, EpochLog, TrainConfig, Trainable, Trainer};

fn first_anchor(net: &SnNet) -> Result<ModelEntry> {
    net.config()
        .anchors
        .first()
        .cloned()
        .ok_or_else(|| Error::InvalidConfig {
            what: "SN-Net",
            reason: "it has no anchors".into(),
        })
}

/// Runs `trainer` on `net`, reporting to `observer` as `what`.
fn fit<D: crate::data::Dataset, N: Trainable>(
    trainer: Trainer<D>,
    net: N,
    what: &str,
    observer: &mut dyn Observer,
) -> Result<(N, Vec<EpochLog>)> {
    let epochs = trainer.config().epochs;
    let result = trainer.fit(net, &mut |event| {
        observer.event(Event::Train {
            what,
            epochs,
            event,
        });
    });
    observer.event(Event::TrainEnded { what });
    result
}

/// Trains `anchor` from scratch on Fashion-MNIST (`data`'s training images, `recipe` without
/// distillation) and writes its weights (timm layout, safetensors) to `output`. Returns the
/// epoch logs.
///
/// # Errors
/// Data, training and checkpoint errors.
pub fn pretrain_anchor(
    anchor: &ModelEntry,
    data: &DataConfig,
    recipe: &TrainConfig,
    output: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Vec<EpochLog>> {
    // The initial weights are a function of the recipe's seed (Burn's device RNG).
    device.seed(recipe.seed);
    let model = anchor.config.init(&anchor.name, device)?;
    let batcher = data.train_batcher(anchor, &device.clone().autodiff())?;
    let recipe = TrainConfig {
        distill: Distill::None,
        ..recipe.clone()
    };
    let trainer = Trainer::new(recipe, batcher)?.with_data_parallel(data.parallel(device)?);
    let (model, logs) = fit(trainer, model, &anchor.name, observer)?;
    model.save_weights(output)?;
    Ok(logs)
}

/// Joint training of `net` on Fashion-MNIST into the folder `dir`: checkpoints every epoch in
/// `dir/checkpoints` (a folder with one resumes from it), the epoch logs as
/// `dir/train_log.jsonl` and the trained SN-Net as `dir/snnet.safetensors`. The teacher is
/// `teacher`, or without one the SN-Net's largest anchor (unless `config` distils nothing).
/// Returns the trained SN-Net (on `device`, the values written to `dir/snnet.safetensors`) and
/// the epoch logs.
///
/// # Errors
/// Data, training and checkpoint errors.
pub fn train_joint(
    net: SnNet,
    teacher: Option<Model>,
    data: &DataConfig,
    config: TrainConfig,
    dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<(SnNet, Vec<EpochLog>)> {
    create_dir(dir)?;
    let first = first_anchor(&net)?;
    let teacher = match (config.distill, teacher) {
        (Distill::None, _) => None,
        (_, Some(teacher)) => Some(teacher),
        (_, None) => net.anchors.last().cloned(),
    };
    let autodiff = device.clone().autodiff();
    let batcher = data.train_batcher(&first, &autodiff)?;
    let trainer = Trainer::new(config, batcher)?
        .with_teacher(teacher.map(|t| t.fork(&autodiff)))
        .with_data_parallel(data.parallel(device)?)
        .with_checkpoints(dir.join("checkpoints"));
    let (net, logs) = fit(trainer, net, "joint", observer)?;
    let log_path = dir.join("train_log.jsonl");
    let mut log = String::new();
    for l in &logs {
        log.push_str(&serde_json::to_string(l).map_err(|e| file_error(&log_path, e))?);
        log.push('\n');
    }
    snnet_fs::write_atomic(&log_path, log.as_bytes()).map_err(|e| file_error(&log_path, e))?;
    net.save(&dir.join("snnet.safetensors"))?;
    Ok((net, logs))
}

/// Evaluates every stitch of `net` on `data`'s test images and appends one JSON line per
/// stitch to `output` (ids already there are skipped: an interrupted evaluation resumes).
/// Returns the whole table.
///
/// # Errors
/// Data, forward and file errors.
pub fn evaluate(
    net: &SnNet,
    data: &DataConfig,
    output: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<StitchTable> {
    let first = first_anchor(net)?;
    let batcher = data.test_batcher(&first, device)?;
    let total = net.space().evaluated().count();
    observer.event(Event::EvalStarted { total });
    let table = evaluate_all(net, &batcher, output, &mut |record, done, total| {
        observer.event(Event::Evaluated {
            record,
            done,
            total,
        });
    });
    observer.event(Event::EvalEnded);
    table
}
