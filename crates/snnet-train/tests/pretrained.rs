//! The shipped anchors (configs/fmnist_vit_{s,m,l}.safetensors) load and reach the top-1 their
//! model card records on the first 1,000 test images (±1 point).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use snnet_core::burn::tensor::Device;
use snnet_core::{SnNet, SnNetConfig, SpaceConfig, StitchId};
use snnet_train::data::DEFAULT_DIR;
use snnet_train::eval::evaluate_stitch;
use snnet_train::fashion_mnist::{ANCHOR_NAMES, DataConfig, anchor_registry, pretrained_weights};

/// Top-1 (%) of each anchor on the first 1,000 test images, as configs/MODEL_CARD.md records it.
const RECORDED_TOP1_FIRST_1000: [f64; 3] = [83.7, 87.1, 89.2];

#[test]
fn shipped_anchors_reach_their_recorded_accuracy() {
    if !Path::new(DEFAULT_DIR).is_dir() {
        eprintln!("skipped: {DEFAULT_DIR} missing (apt-get install dataset-fashion-mnist)");
        return;
    }
    let device = Device::default();
    let registry = anchor_registry().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, recorded) in ANCHOR_NAMES.iter().zip(RECORDED_TOP1_FIRST_1000) {
        let entry = registry.get(name).unwrap().clone();
        let path = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&path, pretrained_weights(name).unwrap()).unwrap();
        let config = SnNetConfig::new(vec![entry.clone()], SpaceConfig::default());
        let (net, reports) = SnNet::from_pretrained(config, &[&path], &device).unwrap();
        assert!(
            reports[0].unexpected.is_empty(),
            "{name}: {:?}",
            reports[0].unexpected
        );
        let data = DataConfig {
            test_samples: 1_000,
            ..DataConfig::default()
        };
        let batcher = data.test_batcher(&entry, &device).unwrap();
        let acc = evaluate_stitch(&net, StitchId(0), &batcher).unwrap();
        assert!(
            (acc.acc1 - recorded).abs() <= 1.0,
            "{name}: top-1 {:.2} % on the first 1,000 test images, recorded {recorded:.2} %",
            acc.acc1
        );
    }
}
