//! Loading timm weights: both formats, wrapped state dicts, the load report, and a typed error
//! (never a panic) for every kind of bad file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use common::{fixtures, io, max_abs_diff, meta, tensor};
use snnet_zoo::tensor_io::{read_tensors, write_tensors};
use snnet_zoo::{
    Error, LoadOptions, LoadReport, ModelConfig, Vit, VitConfig, WeightFormat, load_weights,
    load_weights_with,
};

fn config(name: &str) -> VitConfig {
    match serde_json::from_value(meta(name).config).unwrap() {
        ModelConfig::Vit(config) => config,
        other => panic!("{name} is not a ViT: {other:?}"),
    }
}

fn load(name: &str, path: &Path) -> snnet_zoo::Result<(Vit, LoadReport)> {
    load_weights(config(name).init(&Device::default()).unwrap(), path, &[])
}

/// The model's logits on the fixture input agree with timm's.
fn assert_parity(name: &str, model: &Vit) {
    let device = Device::default();
    let io = io(name);
    let x = model.embed_tokens(tensor::<4>(&io["input"], &device));
    let x = model.blocks.iter().fold(x, |x, b| b.forward(x));
    let err = max_abs_diff(model.head_tokens(x, true), &io["logits"], "logits");
    assert!(err <= 1e-4, "{name}: {err}");
}

#[test]
fn pytorch_files_plain_and_wrapped() {
    for (file, top) in [
        ("deit_reduced.weights.pth", None),
        ("deit_reduced.model.pth", Some("model")),
        ("deit_reduced.state_dict.pth", Some("state_dict")),
    ] {
        let (model, report) = load("deit_reduced", &fixtures().join(file)).unwrap();
        assert_eq!(report.format, WeightFormat::Pytorch, "{file}");
        assert_eq!(report.top_level_key.as_deref(), top, "{file}");
        assert!(
            report.unexpected.is_empty(),
            "{file}: {:?}",
            report.unexpected
        );
        assert_eq!(
            report.applied.len(),
            meta("deit_reduced").manifest.len(),
            "{file}"
        );
        assert_parity("deit_reduced", &model);
    }
}

fn weights(name: &str) -> BTreeMap<String, burn::tensor::TensorData> {
    read_tensors(&fixtures().join(format!("{name}.weights.safetensors"))).unwrap()
}

#[test]
fn unexpected_keys_are_reported_not_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = weights("deit_reduced");
    tensors.insert(
        "fc_norm.weight".into(),
        common::fixture_weight("fc_norm.weight", &[48]),
    );
    tensors.insert(
        "aux.head.bias".into(),
        common::fixture_weight("aux.head.bias", &[3]),
    );
    let path = dir.path().join("extra.safetensors");
    write_tensors(&path, &tensors).unwrap();
    let (model, report) = load("deit_reduced", &path).unwrap();
    let mut unexpected = report.unexpected.clone();
    unexpected.sort();
    assert_eq!(unexpected, ["aux.head.bias", "fc_norm.weight"]);
    assert_parity("deit_reduced", &model);
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, key) in [
        (f32::NAN, "blocks.1.mlp.fc2.weight"),
        (f32::INFINITY, "norm.bias"),
    ] {
        let mut tensors = weights("deit_reduced");
        let data = tensors.remove(key).unwrap();
        let shape = data.shape().to_vec();
        let mut values = data.try_to_vec::<f32>().unwrap();
        values[1] = bad;
        values[2] = -bad;
        tensors.insert(key.into(), burn::tensor::TensorData::new(values, shape));
        let path = dir.path().join("nonfinite.safetensors");
        write_tensors(&path, &tensors).unwrap();
        match load("deit_reduced", &path) {
            Err(e @ Error::NonFinite { .. }) => {
                let Error::NonFinite {
                    key: found, count, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!((found.as_str(), *count), (key, 2), "{e}");
                assert!(e.to_string().contains(key), "{e}");
            }
            other => panic!("expected NonFinite for {key}, got {other:?}"),
        }
        // Opted in: loaded, and reported by key and count.
        let model = config("deit_reduced").init(&Device::default()).unwrap();
        let options = LoadOptions::default().with_allow_nonfinite(true);
        let (model, report) = load_weights_with(model, &path, &[], options).unwrap();
        assert_eq!(report.non_finite, vec![(key.to_owned(), 2)]);
        let device = Device::default();
        let x = model.embed_tokens(tensor::<4>(&io("deit_reduced")["input"], &device));
        let x = model.blocks.iter().fold(x, |x, b| b.forward(x));
        let logits = model.head_tokens(x, true).into_data();
        let logits = logits.try_to_vec::<f32>().unwrap();
        assert!(logits.iter().any(|v| !v.is_finite()), "{key}");
    }
}

#[test]
fn missing_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = weights("deit_reduced");
    tensors.remove("blocks.1.mlp.fc2.weight");
    tensors.remove("norm.weight");
    let path = dir.path().join("missing.safetensors");
    write_tensors(&path, &tensors).unwrap();
    match load("deit_reduced", &path) {
        Err(Error::MissingTensors { keys, .. }) => {
            let mut keys = keys;
            keys.sort();
            assert_eq!(keys, ["blocks.1.mlp.fc2.weight", "norm.weight"]);
        }
        other => panic!("expected MissingTensors, got {other:?}"),
    }
}

#[test]
fn shape_mismatch_names_key_and_both_shapes() {
    // deit_reduced has 10 classes; a 12-class model cannot take its head.
    let device = Device::default();
    let model = config("deit_reduced")
        .with_num_classes(12)
        .init(&device)
        .unwrap();
    let path = fixtures().join("deit_reduced.weights.safetensors");
    match load_weights(model, &path, &[]) {
        Err(Error::ShapeMismatch {
            key,
            expected,
            found,
            ..
        }) => {
            assert!(key == "head.weight" || key == "head.bias", "{key}");
            if key == "head.weight" {
                assert_eq!((expected, found), (vec![12, 48], vec![10, 48]));
            } else {
                assert_eq!((expected, found), (vec![12], vec![10]));
            }
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
}

#[test]
fn bad_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixtures().join("deit_reduced.weights.safetensors")).unwrap();
    let pth = std::fs::read(fixtures().join("deit_reduced.weights.pth")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.safetensors", good[..good.len() / 2].to_vec()),
        ("truncated_header.safetensors", good[..20].to_vec()),
        ("truncated.pth", pth[..pth.len() / 2].to_vec()),
        (
            "garbled.pth",
            [b"PK\x03\x04".to_vec(), vec![7u8; 400]].concat(),
        ),
        (
            "pickle_junk.pth",
            [vec![0x80u8, 2], vec![0x42u8; 300]].concat(),
        ),
        (
            "json_junk.safetensors",
            [8u64.to_le_bytes().to_vec(), b"{oops}}}".to_vec()].concat(),
        ),
        ("text.bin", b"hello, this is not a checkpoint".to_vec()),
        ("empty.safetensors", Vec::new()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        match load("deit_reduced", &path) {
            Err(
                Error::WeightFile { .. } | Error::WeightStore { .. } | Error::MissingTensors { .. },
            ) => {}
            other => panic!("{name}: expected a weight-file error, got {other:?}"),
        }
    }
    assert!(matches!(
        load("deit_reduced", &dir.path().join("absent.safetensors")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn f64_checkpoints_are_cast_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = weights("deit_reduced");
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, d)| {
            let bytes = d
                .as_slice::<f32>()
                .unwrap()
                .iter()
                .flat_map(|v| f64::from(*v).to_le_bytes())
                .collect();
            (k.clone(), d.shape().to_vec(), bytes)
        })
        .collect();
    let views = buffers.iter().map(|(k, s, b)| {
        (
            k.as_str(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F64, s.clone(), b).unwrap(),
        )
    });
    let path = dir.path().join("f64.safetensors");
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    let (model, _) = load("deit_reduced", &path).unwrap();
    assert_parity("deit_reduced", &model);
}

#[test]
fn remap_renames_keys_and_bad_patterns_are_errors() {
    // The original DeiT-3 checkpoints name LayerScale `gamma_1` / `gamma_2`.
    let dir = tempfile::tempdir().unwrap();
    let renamed: BTreeMap<_, _> = weights("deit3_reduced")
        .into_iter()
        .map(|(k, v)| {
            (
                k.replace(".ls1.gamma", ".gamma_1")
                    .replace(".ls2.gamma", ".gamma_2"),
                v,
            )
        })
        .collect();
    let path = dir.path().join("deit3_original.safetensors");
    write_tensors(&path, &renamed).unwrap();
    let device = Device::default();
    let remap = [(r"\.gamma_1$", ".ls1.gamma"), (r"\.gamma_2$", ".ls2.gamma")];
    let (model, report) = load_weights(
        config("deit3_reduced").init(&device).unwrap(),
        &path,
        &remap,
    )
    .unwrap();
    assert!(report.unexpected.is_empty());
    assert_parity("deit3_reduced", &model);
    let bad = load_weights(
        config("deit3_reduced").init(&device).unwrap(),
        &path,
        &[("(", "x")],
    );
    assert!(matches!(bad, Err(Error::RemapPattern { .. })));
}

#[test]
fn tensor_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::default();
    let t: Tensor<2> = Tensor::from_floats([[1.0, -2.5], [3.25, 4.0]], &device);
    let mut map = BTreeMap::new();
    map.insert("x".to_owned(), t.into_data());
    let path = dir.path().join("t.safetensors");
    write_tensors(&path, &map).unwrap();
    let back = read_tensors(&path).unwrap();
    assert_eq!(back["x"].as_slice::<f32>().unwrap(), [1.0, -2.5, 3.25, 4.0]);
    assert_eq!(back["x"].shape().to_vec(), vec![2, 2]);
}

#[test]
fn resnet_pickles_with_int64_counters_load() {
    let device = Device::default();
    let config: ModelConfig = serde_json::from_value(meta("resnet18_reduced").config).unwrap();
    let model = config.init("resnet18_reduced", &device).unwrap();
    let path = fixtures().join("resnet18_reduced.weights.pth");
    let (_, report) = model
        .load_weights(&path, config.weight_remap(), Default::default())
        .unwrap();
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    // One counter per BatchNorm: the stem's, two per block, one per downsample (4: the stem's
    // 64 channels differ from stage 1's 8, so layer1.0 projects too).
    assert_eq!(report.ignored.len(), 1 + 8 * 2 + 4);
}

/// The original Microsoft Swin layout (SN-Net's checkpoints): merging at the end of stage s,
/// `head.*`, stored buffers, wrapped as `{"model": ...}`.
#[test]
fn swin_original_layout_loads() {
    let device = Device::default();
    let config: ModelConfig = serde_json::from_value(meta("swin_reduced").config).unwrap();
    let entry = snnet_zoo::ModelEntry {
        name: "swin_reduced".into(),
        config,
        pretrained: None,
    };
    let (model, report) = entry
        .load(&fixtures().join("swin_reduced.original.pth"), &device)
        .unwrap();
    assert_eq!(report.top_level_key.as_deref(), Some("model"));
    assert!(report.unexpected.is_empty(), "{:?}", report.unexpected);
    assert!(
        report
            .ignored
            .iter()
            .any(|k| k.ends_with(".relative_position_index"))
    );
    assert!(report.ignored.iter().any(|k| k.ends_with(".attn_mask")));
    let io = io("swin_reduced");
    let logits = snnet_zoo::Anchor::forward(&model, tensor::<4>(&io["input"], &device)).unwrap();
    let err = max_abs_diff(logits, &io["logits"], "logits");
    assert!(err <= 1e-4, "{err}");
}
