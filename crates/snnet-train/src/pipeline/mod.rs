//! The main job as a library function: pretrain the anchors → build the SN-Net → least-squares
//! init of its stitching layers → joint training → evaluate every stitch → Pareto plot →
//! select a stitch for a FLOPs budget ([`run`]), and the steps it is made of, which the `snnet`
//! CLI's `pretrain`, `train` and `eval` verbs also call ([`pretrain_anchor`], [`train_joint`],
//! [`evaluate`]).
//!
//! By file: [`run`] here, its steps in `steps.rs`, its settings in `preset.rs`
//! ([`RunConfig`], [`Preset`]), its acceptance checks in `checks.rs` ([`ResultChecks`]), what it
//! returns in `summary.rs` ([`RunSummary`], [`RunOutcome`]), and what it reports in `observer.rs`.
//!
//! Nothing here prints: progress goes to an [`Observer`] as [`Event`]s (the CLI draws progress
//! bars from them; [`Quiet`] ignores them). Everything a run makes goes into its folder, and a
//! folder that holds a finished step skips it, so an interrupted run resumes (a step that runs
//! hands its network to the next in memory; its file is read only by a later run that skips it):
//!
//! | file | step |
//! |---|---|
//! | `run.json` | the [`RunConfig`] (rewritten at every start) |
//! | `anchors/<name>.safetensors` | each anchor's pretrained weights (timm layout) |
//! | `snnet_init.safetensors` | the SN-Net after least-squares init |
//! | `checkpoints/`, `train_log.jsonl`, `snnet.safetensors` | joint training (resumes from its last epoch) |
//! | `eval.jsonl` | every stitch's top-1/top-5 (resumes: evaluated ids are skipped) |
//! | `pareto.svg` | accuracy vs FLOPs with the frontier |
//! | `summary.json` | the [`RunSummary`] |
//!
//! ```no_run
//! use snnet_train::burn::tensor::Device;
//! use snnet_train::pipeline::{Preset, Quiet, RunConfig, run};
//!
//! let config = RunConfig::preset(Preset::Quick);
//! let outcome = run(&config, "runs/quick".as_ref(), &Device::default(), &mut Quiet)?;
//! println!("stitch {} selected", outcome.summary.selected.id);
//! # Ok::<(), snnet_train::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use serde::Serialize;
use snnet_core::select::{Budget, CostKind};
use snnet_core::{LsOptions, SnNet, SnNetConfig, SpaceConfig, StitchId};

use crate::error::{Error, Result};
use crate::fashion_mnist;
use crate::plot::plot_accuracy_vs_flops;

mod checks;
mod observer;
mod preset;
mod steps;
mod summary;

pub use checks::{PairTrend, ResultChecks};
pub use observer::{Event, Observer, Quiet};
pub use preset::{Preset, RunConfig};
pub use steps::{evaluate, pretrain_anchor, train_joint};
pub use summary::{RunOutcome, RunSummary};

fn file_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| file_error(path, e))?;
    snnet_fs::write_atomic(path, text.as_bytes()).map_err(|e| file_error(path, e))
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))
}

/// The main job in the folder `dir`: pretrain the anchors → SN-Net → least-squares init →
/// joint training → evaluate every stitch → Pareto plot → select a stitch for the budget.
/// Steps whose output is in `dir` already are skipped (see the [module docs](self)).
///
/// # Errors
/// [`Error::InvalidConfig`] for settings [`RunConfig::validate`] refuses (before anything is
/// written); data, training, evaluation and file errors; [`Error::Select`] when no stitch fits
/// the budget.
pub fn run(
    config: &RunConfig,
    dir: &Path,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<RunOutcome> {
    let started = Instant::now();
    config.validate()?;
    create_dir(&dir.join("anchors"))?;
    write_json(&dir.join("run.json"), config)?;
    let registry = fashion_mnist::anchor_registry()?;

    // 1. Anchors.
    let mut entries = Vec::new();
    for name in &config.anchors {
        let entry = registry.get(name)?.clone();
        let path = dir.join("anchors").join(format!("{name}.safetensors"));
        if config.pretrained {
            fashion_mnist::install_pretrained(name, &path)?;
            observer.event(Event::AnchorShipped { name, path: &path });
        } else if path.exists() {
            observer.event(Event::AnchorExists { name, path: &path });
        } else {
            let t = Instant::now();
            pretrain_anchor(
                &entry,
                &config.pretrain_data,
                &config.pretrain,
                &path,
                device,
                observer,
            )?;
            observer.event(Event::AnchorTrained {
                name,
                seconds: t.elapsed().as_secs_f64(),
            });
        }
        entries.push((entry, path));
    }
    let Some((first, _)) = entries.first() else {
        return Err(Error::InvalidConfig {
            what: "run",
            reason: "no anchors".into(),
        });
    };

    // 2–3. SN-Net with least-squares stitching layers. A step that runs hands its network on
    // in memory; its file is the resume point of a later run, read only when the step is skipped.
    let init_path = dir.join("snnet_init.safetensors");
    let mut init = None;
    if !init_path.exists() {
        let snnet = SnNetConfig::new(
            entries.iter().map(|(e, _)| e.clone()).collect(),
            SpaceConfig::default(),
        );
        let paths: Vec<&Path> = entries.iter().map(|(_, p)| p.as_path()).collect();
        let (net, _) = SnNet::from_pretrained(snnet, &paths, device)?;
        let images = fashion_mnist::train_images(
            config.pretrain_data.dir.as_deref(),
            config.init_samples,
            first,
            device,
        )?;
        let (net, report) = net.init_least_squares(images, &LsOptions::default(), &mut |_| {})?;
        observer.event(Event::LeastSquares(&report));
        net.save(&init_path)?;
        init = Some(net);
    }

    // 4. Joint training (resumes from its checkpoints).
    let trained = dir.join("snnet.safetensors");
    let net = if trained.exists() {
        SnNet::load(&trained, device)?.0
    } else {
        let net = match init {
            Some(net) => net,
            None => SnNet::load(&init_path, device)?.0,
        };
        let (net, _) = train_joint(
            net,
            None,
            &config.joint_data,
            config.joint.clone(),
            dir,
            device,
            observer,
        )?;
        net
    };

    // 5–6. Evaluation and plot.
    let table = evaluate(
        &net,
        &config.eval_data,
        &dir.join("eval.jsonl"),
        device,
        observer,
    )?;
    let anchors: Vec<usize> = (0..net.config().anchors.len()).collect();
    plot_accuracy_vs_flops(
        &table,
        &anchors,
        "SN-Net on Fashion-MNIST: accuracy vs FLOPs",
        &dir.join("pareto.svg"),
    )?;

    // 7. Pareto frontier and a selection.
    let frontier = table
        .pareto(CostKind::Flops)?
        .iter()
        .map(|r| r.id.index())
        .collect();
    let budget_flops = match config.budget_flops {
        Some(b) => b,
        None => {
            let flops = |id: usize| net.cost(StitchId(id)).map(|c| c.flops);
            (flops(0)? + flops(anchors.len() - 1)?) / 2
        }
    };
    let selected = table.select(Budget::flops(budget_flops))?.clone();
    let checks = ResultChecks::measure(&table, net.space(), &selected)?;
    let summary = RunSummary {
        preset: config.preset,
        stitches: table.len(),
        anchors: anchors
            .iter()
            .filter_map(|&id| table.get(id).cloned())
            .collect(),
        checks,
        frontier,
        budget_flops,
        selected,
        seconds: started.elapsed().as_secs_f64(),
    };
    write_json(&dir.join("summary.json"), &summary)?;
    Ok(RunOutcome {
        summary,
        table,
        net,
    })
}
