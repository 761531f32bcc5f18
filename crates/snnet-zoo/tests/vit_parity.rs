//! ViT / DeiT / distilled DeiT / DeiT-3 against timm: logits and every block's features from
//! fixtures exported by `tests/fixtures/export_timm.py`, max abs error ≤ 1e-4.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use burn::tensor::Device;
use common::{io, max_abs_diff, meta, tensor, weights_file};
use snnet_zoo::{Activation, Anchor, VitAnchor, VitConfig, load_weights};

const TOLERANCE: f32 = 1e-4;

fn check(name: &str) {
    let device = Device::default();
    let meta = meta(name);
    let config: VitConfig = serde_json::from_value(meta.config.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = weights_file(&meta, dir.path());
    let (model, report) = load_weights(config.init(&device).unwrap(), &path, &[]).unwrap();
    assert!(
        report.unexpected.is_empty(),
        "{name}: unexpected {:?}",
        report.unexpected
    );
    let anchor = VitAnchor {
        config,
        model,
        name: meta.timm_name.clone(),
    };
    let io = io(name);

    let input = tensor::<4>(&io["input"], &device);
    let mut x = anchor.embed(input.clone()).unwrap();
    let Activation::Tokens(tokens) = &x else {
        panic!("ViT embeds to tokens")
    };
    let err = max_abs_diff(tokens.clone(), &io["features.embed"], "embed");
    assert!(err <= TOLERANCE, "{name}: embed max abs error {err}");
    for i in 0..anchor.num_blocks() {
        x = anchor.block(i, x).unwrap();
        let Activation::Tokens(tokens) = &x else {
            panic!("ViT blocks output tokens")
        };
        let err = max_abs_diff(tokens.clone(), &io[&format!("features.{i}")], "block");
        assert!(err <= TOLERANCE, "{name}: block {i} max abs error {err}");
    }
    let logits = anchor.head(x, true).unwrap();
    let err = max_abs_diff(logits, &io["logits"], "logits");
    assert!(err <= TOLERANCE, "{name}: logits max abs error {err}");
    // The one-call forward agrees with the block-by-block path.
    let err = max_abs_diff(anchor.forward(input).unwrap(), &io["logits"], "forward");
    assert!(err <= TOLERANCE, "{name}: forward max abs error {err}");
}

#[test]
fn vit_matches_timm() {
    check("vit_reduced");
}

#[test]
fn deit_matches_timm() {
    check("deit_reduced");
}

#[test]
fn distilled_deit_matches_timm() {
    check("deit_distilled_reduced");
}

#[test]
fn deit3_matches_timm() {
    check("deit3_reduced");
}

#[test]
fn full_size_deit_tiny_matches_timm() {
    check("deit_tiny_patch16_224");
}
