//! The stitched network against the reference (ziplab/SN-Net stitching_deit, run on three small
//! timm ViTs by tests/fixtures/export_snnet.py): least-squares init, every stitch's logits,
//! loading the reference's checkpoint layout, and our own checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use snnet_core::burn::tensor::{Device, Tensor, TensorData};
use snnet_core::zoo::tensor_io::read_tensors;
use snnet_core::{
    Error, LsOptions, ModelEntry, SnNet, SnNetConfig, SpaceConfig, StitchId, StitchLayers,
    read_config,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn config() -> SnNetConfig {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("snnet_vit.json")).unwrap())
            .unwrap();
    let anchors: Vec<ModelEntry> = serde_json::from_value(json["anchors"].clone()).unwrap();
    SnNetConfig::new(anchors, SpaceConfig::default()).with_reference_compat(true)
}

/// The fixture's inputs and the reference's logits, by name.
fn io() -> BTreeMap<String, TensorData> {
    read_tensors(&fixtures().join("snnet_vit.io.safetensors")).unwrap()
}

fn tensor4(io: &BTreeMap<String, TensorData>, key: &str, device: &Device) -> Tensor<4> {
    Tensor::from_data(io[key].clone(), device)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn logits(net: &SnNet, x: &Tensor<4>, id: usize) -> Vec<f32> {
    values(net.forward(x.clone(), StitchId(id)).unwrap())
}

/// The reference's own SN-Net checkpoint (`{"model": state_dict}` .pth).
fn reference(device: &Device) -> (SnNet, snnet_core::CheckpointReport) {
    SnNet::load_with_config(
        &fixtures().join("snnet_vit.reference.pth"),
        &config(),
        device,
    )
    .unwrap()
}

fn with_anchor_weights(config: &SnNetConfig, device: &Device) -> SnNet {
    let weights: Vec<_> = (0..config.anchors.len())
        .map(|a| fixtures().join(format!("vit{a}.safetensors")))
        .collect();
    let (net, reports) = SnNet::from_pretrained(config.clone(), &weights, device).unwrap();
    assert!(reports.iter().all(|r| r.unexpected.is_empty()));
    net
}

fn check_all_stitches(net: &SnNet, what: &str) {
    let device = Device::default();
    let io = io();
    let x = tensor4(&io, "input", &device);
    assert_eq!(net.num_stitches(), 23);
    for id in 0..net.num_stitches() {
        let ours = logits(net, &x, id);
        let diff = max_diff(&ours, io[&format!("logits.{id}")].as_slice().unwrap());
        assert!(diff <= 1e-4, "{what}: stitch {id}: max abs diff {diff}");
    }
}

#[test]
fn least_squares_init_and_every_stitch_match_the_reference() {
    let device = Device::default();
    let config = config();
    let net = with_anchor_weights(&config, &device);
    let images = tensor4(&io(), "images", &device);
    let mut events = 0;
    let (net, report) = net
        .init_least_squares(images, &LsOptions::default(), &mut |_| events += 1)
        .unwrap();
    assert_eq!(report.images, 16);
    assert_eq!(report.layers.len(), 6);
    assert!(events >= 6);
    // The first layer of each pair averages the four cuts of the first window.
    assert_eq!(report.layers[0].cuts.len(), 4);

    // The reference's own stitching-layer weights.
    let (reference, _) = reference(&device);
    for (i, (ours, theirs)) in net
        .stitch_layers
        .iter()
        .zip(&reference.stitch_layers)
        .enumerate()
    {
        let (t, r) = (&ours.transform, &theirs.transform);
        let dw = max_diff(&values(t.weight.val()), &values(r.weight.val()));
        let db = max_diff(&values(t.bias.val()), &values(r.bias.val()));
        assert!(
            dw <= 1e-4 && db <= 1e-4,
            "layer {i}: weight {dw}, bias {db}"
        );
    }
    check_all_stitches(&net, "least-squares init");
}

/// A tensor's values.
fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().unwrap()
}

/// A layer's weight and bias, flattened.
fn layer_values(l: &snnet_core::StitchingLayer) -> Vec<f32> {
    let mut v = values(l.transform.weight.val());
    v.extend(values(l.transform.bias.val()));
    v
}

#[test]
fn per_cut_layers_are_the_shared_layers_unaveraged_and_round_trip() {
    let device = Device::default();
    let shared_config = config();
    let per_cut_config = SnNetConfig::new(
        shared_config.anchors.clone(),
        SpaceConfig::default().with_layers(StitchLayers::PerCut),
    );
    let images = tensor4(&io(), "images", &device);
    let init = |config: &SnNetConfig| {
        with_anchor_weights(config, &device)
            .init_least_squares(images.clone(), &LsOptions::default(), &mut |_| {})
            .unwrap()
    };
    let (shared, shared_report) = init(&shared_config);
    let (per_cut, per_cut_report) = init(&per_cut_config);
    assert_eq!(per_cut.num_stitches(), shared.num_stitches());
    // Two pairs of depth-4 ViTs: 10 cuts each, on 3 shared layers or 10 layers of their own.
    assert_eq!(
        (shared_report.layers.len(), per_cut_report.layers.len()),
        (6, 20)
    );
    assert!(per_cut_report.layers.iter().all(|l| l.cuts.len() == 1));
    // The reference averages the least-squares solutions of a shared layer's cuts: each shared
    // layer is the mean of the per-cut layers of its cuts.
    for fit in &shared_report.layers {
        let ours = layer_values(&shared.stitch_layers[shared.plan().layer_index(fit.key).unwrap()]);
        let mut mean = vec![0.0f32; ours.len()];
        for cut in &fit.cuts {
            let own = per_cut_report
                .layers
                .iter()
                .find(|l| {
                    (l.key.front, l.key.end) == (fit.key.front, fit.key.end) && l.cuts == [*cut]
                })
                .unwrap();
            let values =
                layer_values(&per_cut.stitch_layers[per_cut.plan().layer_index(own.key).unwrap()]);
            for (m, v) in mean.iter_mut().zip(values) {
                *m += v / fit.cuts.len() as f32;
            }
        }
        let diff = max_diff(&ours, &mean);
        assert!(diff <= 1e-4, "layer {}: {diff}", fit.key);
    }
    // Saved and loaded, the per-cut network keeps its space and its outputs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("per_cut.safetensors");
    per_cut.save(&path).unwrap();
    assert_eq!(
        read_config(&path).unwrap().space.layers,
        StitchLayers::PerCut
    );
    let (loaded, _) = SnNet::load(&path, &device).unwrap();
    assert_eq!(loaded.stitch_layers.len(), 20);
    let x = tensor4(&io(), "input", &device);
    for id in [3, 4, 14] {
        assert_eq!(
            logits(&loaded, &x, id),
            logits(&per_cut, &x, id),
            "stitch {id}"
        );
    }
}

#[test]
fn reference_checkpoint_runs_every_stitch() {
    let device = Device::default();
    let (net, report) = reference(&device);
    assert_eq!(report.anchors.len(), 3);
    assert_eq!(report.stitch_tensors.len(), 2 * 3 * 2);
    check_all_stitches(&net, "reference checkpoint");
}

#[test]
fn switching_stitches_keeps_no_state() {
    let device = Device::default();
    let (net, _) = reference(&device);
    let x = tensor4(&io(), "input", &device);
    let first = logits(&net, &x, 7);
    let other = logits(&net, &x, 20);
    assert_ne!(first, other);
    assert_eq!(logits(&net, &x, 7), first);
}

/// The reference network saved by us into a fresh folder: (network, folder, file).
fn saved_reference(device: &Device) -> (SnNet, tempfile::TempDir, PathBuf) {
    let (net, _) = reference(device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snnet.safetensors");
    net.save(&path).unwrap();
    (net, dir, path)
}

#[test]
fn save_and_load_round_trip() {
    let device = Device::default();
    let (net, dir, path) = saved_reference(&device);
    // Only the file itself: the temporary file was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(read_config(&path).unwrap(), *net.config());

    // The reference's key layout, PyTorch's tensor layout.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shape = |k: &str| st.tensor(k).unwrap().shape().to_vec();
    assert_eq!(shape("anchors.0.blocks.0.attn.qkv.weight"), vec![48, 16]);
    assert_eq!(shape("anchors.2.norm.weight"), vec![64]);
    assert_eq!(shape("stitch_layers.1.2.transform.weight"), vec![64, 32]);
    assert_eq!(st.names().len(), 3 * 4 * 12 + 3 * 8 + 12);

    let (loaded, report) = SnNet::load(&path, &device).unwrap();
    assert!(report.anchors.iter().all(|r| !r.applied.is_empty()));
    let x = tensor4(&io(), "input", &device);
    for id in [0, 2, 5, 22] {
        assert_eq!(logits(&loaded, &x, id), logits(&net, &x, id), "stitch {id}");
    }

    // Equal networks give byte-identical files (the header's metadata in key order), whatever
    // the process's hash seeds: saved again, and saved from the loaded copy.
    let again = dir.path().join("again.safetensors");
    for source in [&net, &loaded, &net] {
        source.save(&again).unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), bytes);
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let device = Device::default();
    let net = config().init(&device).unwrap();
    let x = Tensor::<4>::zeros([1, 3, 32, 32], &device);
    assert!(matches!(net.forward(x, StitchId(23)), Err(Error::Space(_))));
    let wrong = Tensor::<4>::zeros([1, 3, 40, 40], &device);
    assert!(matches!(
        net.forward(wrong, StitchId(5)),
        Err(Error::Zoo(_))
    ));
    assert!(matches!(
        SnNet::load(Path::new("/nonexistent/snnet.safetensors"), &device),
        Err(Error::Io { .. })
    ));
    // A plain anchor file has no SN-Net config.
    assert!(matches!(
        SnNet::load(&fixtures().join("vit0.safetensors"), &device),
        Err(Error::NoConfig { .. })
    ));
    // An anchor file lacks the stitching layers.
    let err = SnNet::load_with_config(&fixtures().join("vit0.safetensors"), &config(), &device);
    assert!(err.is_err());
    let none = Tensor::<4>::zeros([0, 3, 32, 32], &device);
    assert!(matches!(
        net.clone()
            .init_least_squares(none, &LsOptions::default(), &mut |_| {}),
        Err(Error::NoImages)
    ));
}

/// Hostile inputs at the entry points are typed errors, checked once before anything runs.
#[test]
fn hostile_inputs_are_refused_at_the_entry() {
    let device = Device::default();
    let net = config().init(&device).unwrap();
    fn zoo_error<T>(r: Result<T, Error>) -> bool {
        matches!(r, Err(Error::Zoo(_)))
    }
    // An empty batch, the wrong channels, the wrong size: forward, forward_many, LS init.
    for dims in [[0, 3, 32, 32], [1, 1, 32, 32], [2, 3, 32, 31]] {
        let x = Tensor::<4>::zeros(dims, &device);
        assert!(zoo_error(net.forward(x.clone(), StitchId(5))), "{dims:?}");
        assert!(
            zoo_error(net.forward_many(x.clone(), &[StitchId(0), StitchId(5)])),
            "{dims:?}"
        );
        let init = net
            .clone()
            .init_least_squares(x, &LsOptions::default(), &mut |_| {});
        assert!(
            matches!(init, Err(Error::Zoo(_) | Error::NoImages)),
            "{dims:?}"
        );
    }
    // A chunk larger than the batch is one chunk.
    let x = Tensor::<4>::zeros([2, 3, 32, 32], &device);
    let options = LsOptions {
        chunk: 7,
        ..LsOptions::default()
    };
    assert!(
        net.clone()
            .init_least_squares(x.clone(), &options, &mut |_| {})
            .is_ok()
    );
    // A path that is not the plan's (here: one anchor too many).
    let mut foreign = net.plan().path(StitchId(5)).unwrap().clone();
    foreign.segments.push(foreign.segments[0]);
    assert!(matches!(
        net.forward_path(x.clone(), &foreign),
        Err(Error::ForeignPath { .. })
    ));
    // Parts that no longer follow the plan.
    let mut broken = net.clone();
    broken.stitch_layers.pop();
    assert!(matches!(
        broken.forward(x.clone(), StitchId(5)),
        Err(Error::Parts { .. })
    ));
    assert!(matches!(
        broken.init_least_squares(x, &LsOptions::default(), &mut |_| {}),
        Err(Error::Parts { .. })
    ));
}

/// A safetensors tensor: dtype, shape, bytes.
type RawTensor = (safetensors::Dtype, Vec<usize>, Vec<u8>);

/// Edits one tensor by name: `None` drops it.
type Edit<'a> = &'a dyn Fn(&str, safetensors::Dtype, Vec<usize>, Vec<u8>) -> Option<RawTensor>;

/// `path`'s tensors rewritten by `edit` (name, dtype, shape, bytes → kept or dropped) into
/// `out`, with the same metadata (the SN-Net config).
fn rewrite(
    path: &Path,
    out: &Path,
    edit: impl Fn(
        &str,
        safetensors::Dtype,
        Vec<usize>,
        Vec<u8>,
    ) -> Option<(safetensors::Dtype, Vec<usize>, Vec<u8>)>,
) {
    use safetensors::tensor::TensorView;
    let bytes = std::fs::read(path).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, RawTensor)> = st
        .tensors()
        .into_iter()
        .filter_map(|(name, view)| {
            let edited = edit(
                &name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )?;
            Some((name, edited))
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    let out_bytes = safetensors::serialize(views, metadata.metadata().clone()).unwrap();
    std::fs::write(out, out_bytes).unwrap();
}

/// Every way a stitching layer's tensors can be wrong is a typed error naming the tensor's file
/// key; a 1×1 convolution's `[C_out, C_in, 1, 1]` weight loads as the linear map it is.
#[test]
fn bad_stitching_tensors_are_typed_errors() {
    let device = Device::default();
    let (net, dir, path) = saved_reference(&device);
    let target = "stitch_layers.1.2.transform.weight";
    let edited = dir.path().join("edited.safetensors");
    let load = |edit: Edit<'_>| {
        rewrite(&path, &edited, edit);
        SnNet::load(&edited, &device).map(|(net, _)| net)
    };

    // Missing.
    match load(&|name, d, s, b| (name != target).then_some((d, s, b))) {
        Err(Error::MissingLayer { layer, tried, .. }) => {
            assert_eq!(layer, "stitch_layers.1.2");
            assert_eq!(tried, vec![target.to_owned()]);
        }
        other => panic!("expected MissingLayer, got {:?}", other.map(|_| ())),
    }
    // The wrong shape (one output row short).
    match load(&|name, d, s, b| {
        if name == target {
            let cols = s[1];
            Some((d, vec![s[0] - 1, cols], b[..b.len() - 4 * cols].to_vec()))
        } else {
            Some((d, s, b))
        }
    }) {
        Err(Error::TensorShape {
            key,
            expected,
            found,
            ..
        }) => {
            assert_eq!(key, target);
            assert_eq!(expected, vec![64, 32]);
            assert_eq!(found, vec![63, 32]);
        }
        other => panic!("expected TensorShape, got {:?}", other.map(|_| ())),
    }
    // Integers where floats belong.
    match load(&|name, d, s, b| {
        if name == target {
            Some((safetensors::Dtype::I32, s, b))
        } else {
            Some((d, s, b))
        }
    }) {
        Err(Error::TensorDtype { key, .. }) => assert_eq!(key, target),
        other => panic!("expected TensorDtype, got {:?}", other.map(|_| ())),
    }
    // A 1×1 convolution's weight, and f64 values: the same network.
    let x = tensor4(&io(), "input", &device);
    let conv = load(&|name, d, s, b| {
        if name == target {
            let f64s: Vec<u8> = b
                .chunks_exact(4)
                .flat_map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
                .collect();
            Some((safetensors::Dtype::F64, vec![s[0], s[1], 1, 1], f64s))
        } else {
            Some((d, s, b))
        }
    })
    .unwrap();
    for id in [0, 5, 22] {
        assert_eq!(logits(&conv, &x, id), logits(&net, &x, id), "stitch {id}");
    }
    // Truncated: the header intact, the data cut short.
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    assert!(matches!(
        SnNet::load(&truncated, &device),
        Err(Error::Zoo(_) | Error::Store { .. })
    ));
    // Cut inside the header: not safetensors.
    std::fs::write(&truncated, &bytes[..20]).unwrap();
    assert!(matches!(
        SnNet::load(&truncated, &device),
        Err(Error::NotSafetensors { .. })
    ));
}

/// A stitching layer holding NaN is refused at load, naming the tensor; `allow_nonfinite`
/// loads it and reports it.
#[test]
fn nonfinite_stitching_layers_are_refused_unless_allowed() {
    let device = Device::default();
    let (mut net, _) = reference(&device);
    let layer = net.stitch_layers[1].clone();
    let weight = layer.transform.weight.val();
    let [o, i] = weight.dims();
    let mut bad = values(weight);
    bad[3] = f32::NAN;
    bad[4] = f32::NEG_INFINITY;
    let weight = Tensor::<2>::from_data(TensorData::new(bad, [o, i]), &device);
    let bias = layer.transform.bias.val();
    net.stitch_layers[1] = layer.with_weights(weight, bias).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.safetensors");
    net.save(&path).unwrap();
    match SnNet::load(&path, &device) {
        Err(Error::NonFinite { key, count, .. }) => {
            assert!(
                key.starts_with("stitch_layers.") && key.ends_with(".transform.weight"),
                "{key}"
            );
            assert_eq!(count, 2);
        }
        other => panic!("expected a NonFinite error, got {:?}", other.map(|_| ())),
    }
    let options = snnet_core::zoo::LoadOptions::default().with_allow_nonfinite(true);
    let (_, report) = SnNet::load_with(&path, options, &device).unwrap();
    let found = report.non_finite();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].0.ends_with(".weight") && found[0].1 == 2,
        "{found:?}"
    );
}

/// `forward_many` shares the anchors' front parts and gives every stitch's `forward` output
/// bit for bit, in the order asked: on the reference's ViT SN-Net (all stitches, shuffled,
/// one repeated) and on a hierarchical ResNet-18 → Swin one (stage transitions inside fronts).
#[test]
fn forward_many_equals_forward_bit_for_bit() {
    let device = Device::default();
    let (net, _) = reference(&device);
    let x = tensor4(&io(), "input", &device);
    let mut ids: Vec<StitchId> = (0..net.num_stitches()).rev().map(StitchId).collect();
    ids.push(StitchId(7));
    let many = net.forward_many(x.clone(), &ids).unwrap();
    assert_eq!(many.len(), ids.len());
    for (id, out) in ids.iter().zip(many) {
        let got = values(out);
        assert_eq!(got, logits(&net, &x, id.index()), "stitch {id}");
    }
    assert!(net.forward_many(x.clone(), &[]).unwrap().is_empty());
    assert!(matches!(
        net.forward_many(x, &[StitchId(0), StitchId(999)]),
        Err(Error::Space(_))
    ));

    let zoo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../snnet-zoo/tests/fixtures");
    // The fixture's `name` and `config` (its other keys describe the export; no `pretrained`).
    let entry = |file: &str| -> ModelEntry {
        serde_json::from_str(&std::fs::read_to_string(zoo.join(file)).unwrap()).unwrap()
    };
    device.seed(5);
    let net = SnNetConfig::new(
        vec![entry("resnet18_reduced.json"), entry("swin_reduced.json")],
        SpaceConfig::default(),
    )
    .init(&device)
    .unwrap();
    assert!(net.num_stitches() > 2);
    let x = Tensor::<4>::random(
        [2, 3, 64, 64],
        snnet_core::burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let ids: Vec<StitchId> = (0..net.num_stitches()).map(StitchId).collect();
    for (id, out) in ids.iter().zip(net.forward_many(x.clone(), &ids).unwrap()) {
        let got = values(out);
        assert_eq!(got, logits(&net, &x, id.index()), "stitch {id}");
    }
}
