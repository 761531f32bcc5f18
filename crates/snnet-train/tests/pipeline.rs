//! The main job end to end on a few hundred Fashion-MNIST images: every step's file, the
//! summary, and a second run in the same folder that resumes (skips every finished step).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use snnet_core::burn::tensor::Device;
use snnet_train::data::DEFAULT_DIR;
use snnet_train::pipeline::{Event, Preset, RunConfig, RunSummary, run};
use snnet_train::train::TrainEvent;

/// The quick preset cut down to seconds, pretraining its anchors.
fn tiny() -> RunConfig {
    let mut config = RunConfig::preset(Preset::Quick)
        .with_shards(2)
        .with_pretraining(true);
    for data in [
        &mut config.pretrain_data,
        &mut config.joint_data,
        &mut config.eval_data,
    ] {
        data.train_samples = 256;
        data.test_samples = 256;
    }
    config.pretrain.epochs = 1;
    config.joint.epochs = 1;
    config.init_samples = 32;
    config
}

/// What a run reported, one word per event (train steps not listed).
fn run_logged(config: &RunConfig, dir: &Path) -> (RunSummary, Vec<String>) {
    let mut log = Vec::new();
    let outcome = run(config, dir, &Device::default(), &mut |event: Event<'_>| {
        let word = match event {
            Event::AnchorExists { name, .. } => format!("exists {name}"),
            Event::AnchorShipped { name, .. } => format!("shipped {name}"),
            Event::AnchorTrained { name, .. } => format!("trained {name}"),
            Event::Train {
                what,
                event: TrainEvent::Epoch(_),
                ..
            } => format!("epoch {what}"),
            Event::Train { .. } => return,
            Event::TrainEnded { what } => format!("ended {what}"),
            Event::LeastSquares(report) => format!("least squares {}", report.layers.len()),
            Event::EvalStarted { total } => format!("eval {total}"),
            Event::Evaluated { .. } => return,
            Event::EvalEnded => "eval ended".to_owned(),
            _ => "other".to_owned(),
        };
        log.push(word);
    })
    .unwrap();
    assert_eq!(outcome.table.len(), outcome.summary.stitches);
    assert_eq!(
        outcome.frontier().len(),
        outcome.summary.frontier.len(),
        "every frontier id is in the table"
    );
    (outcome.summary, log)
}

/// Whether Debian's `dataset-fashion-mnist` is installed (CI installs it); the tests that need
/// it are skipped, saying so, where it is not.
fn fashion_mnist_installed() -> bool {
    let installed = Path::new(DEFAULT_DIR).is_dir();
    if !installed {
        eprintln!("skipped: {DEFAULT_DIR} missing (apt-get install dataset-fashion-mnist)");
    }
    installed
}

/// Debian's `dataset-fashion-mnist` (CI installs it); skipped where it is not installed.
#[test]
fn runs_every_step_then_resumes() {
    if !fashion_mnist_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = tiny();
    let (summary, log) = run_logged(&config, dir.path());
    let expected = [
        "epoch fmnist_vit_s",
        "ended fmnist_vit_s",
        "trained fmnist_vit_s",
        "epoch fmnist_vit_m",
        "ended fmnist_vit_m",
        "trained fmnist_vit_m",
        "epoch fmnist_vit_l",
        "ended fmnist_vit_l",
        "trained fmnist_vit_l",
        "least squares 10",
        "epoch joint",
        "ended joint",
        "eval 35",
        "eval ended",
    ];
    assert_eq!(log, expected);
    for file in [
        "run.json",
        "anchors/fmnist_vit_s.safetensors",
        "anchors/fmnist_vit_l.safetensors",
        "snnet_init.safetensors",
        "snnet.safetensors",
        "train_log.jsonl",
        "eval.jsonl",
        "pareto.svg",
        "summary.json",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    assert_eq!(summary.preset, Preset::Quick);
    assert_eq!(summary.stitches, 35);
    assert!(!summary.frontier.is_empty());
    assert!(summary.selected.flops.unwrap() <= summary.budget_flops);
    let written: RunSummary =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(written, summary);
    let recorded: RunConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(recorded, config);

    // The same folder again: nothing is trained or evaluated twice, the result is the same.
    let (again, log) = run_logged(&config, dir.path());
    assert_eq!(
        log,
        [
            "exists fmnist_vit_s",
            "exists fmnist_vit_m",
            "exists fmnist_vit_l",
            "eval 35",
            "eval ended",
        ]
    );
    assert_eq!(again.frontier, summary.frontier);
    assert_eq!(again.selected, summary.selected);
    assert_eq!(again.budget_flops, summary.budget_flops);

    // A budget of the smallest anchor's FLOPs selects within it.
    let small = summary.frontier[0];
    let eval = std::fs::read_to_string(dir.path().join("eval.jsonl")).unwrap();
    let flops_of = |id: usize| -> u64 {
        eval.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["cfg_id"] == id)
            .and_then(|r| r["flops"].as_u64())
            .unwrap()
    };
    let budget = flops_of(small);
    let (tight, _) = run_logged(&config.clone().with_budget_flops(Some(budget)), dir.path());
    assert_eq!(tight.budget_flops, budget);
    assert!(tight.selected.flops.unwrap() <= budget);
}

/// The quick preset as shipped starts from the pretrained anchors: nothing is pretrained, the
/// run folder's copies are checked, and a damaged copy stops the run with a clear error.
#[test]
fn starts_from_the_shipped_anchors_and_refuses_a_damaged_one() {
    if !fashion_mnist_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny().with_pretraining(false);
    assert!(config.pretrained);
    config.eval_data.test_samples = 64;
    let (summary, log) = run_logged(&config, dir.path());
    assert_eq!(
        log[..4],
        [
            "shipped fmnist_vit_s",
            "shipped fmnist_vit_m",
            "shipped fmnist_vit_l",
            "least squares 10",
        ]
    );
    assert_eq!(summary.anchors.len(), 3);
    let path = dir.path().join("anchors/fmnist_vit_l.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let err = run(&config, dir.path(), &Device::default(), &mut |_: Event<
        '_,
    >| {})
    .unwrap_err();
    assert!(matches!(err, snnet_train::Error::Checksum { .. }), "{err}");
    assert!(
        err.to_string().contains("fmnist_vit_l.safetensors"),
        "{err}"
    );
}
