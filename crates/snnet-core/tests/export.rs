//! One stitch exported on its own: a ViT, a Swin, a ResNet and a ResNet→Swin SN-Net, two-way
//! multi-cut paths with LoRA layers; logits equal to the SN-Net's bit for bit after a file
//! round trip, files smaller than the SN-Net's, and typed errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use snnet_core::burn::tensor::{Device, Distribution, Tensor};
use snnet_core::zoo::ModelConfig;
use snnet_core::{
    Direction, Error, ExportError, LoraConfig, ModelEntry, ModelFile, SnNet, SnNetConfig,
    SpaceConfig, StitchId, StitchModel, sniff_model_file,
};

fn zoo_entry(file: &str) -> ModelEntry {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../snnet-zoo/tests/fixtures");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
    ModelEntry {
        name: json["name"].as_str().unwrap().to_owned(),
        config: serde_json::from_value(json["config"].clone()).unwrap(),
        pretrained: None,
    }
}

/// A wider copy of `entry` (channels × 2), under another name.
fn wider(entry: &ModelEntry) -> ModelEntry {
    let mut config = entry.config.clone();
    match &mut config {
        ModelConfig::Vit(c) => {
            c.embed_dim *= 2;
            c.mlp_hidden *= 2;
        }
        ModelConfig::Swin(c) => c.embed_dim *= 2,
        ModelConfig::ResNet(c) => c.channels = c.channels.map(|w| w * 2),
        ModelConfig::EfficientNet(_) => panic!("no EfficientNet fixture here"),
    }
    ModelEntry {
        name: format!("{}_wide", entry.name),
        config,
        pretrained: None,
    }
}

/// The fixture `file`'s model and a wider copy of it: the anchors of most tests here.
fn pair(file: &str) -> Vec<ModelEntry> {
    let small = zoo_entry(file);
    let wide = wider(&small);
    vec![small, wide]
}

/// The seeded SN-Net of `anchors` with the default space.
fn pair_net(anchors: Vec<ModelEntry>, device: &Device) -> SnNet {
    net(SnNetConfig::new(anchors, SpaceConfig::default()), device)
}

fn net(config: SnNetConfig, device: &Device) -> SnNet {
    device.seed(7);
    config.init(device).unwrap()
}

/// The first stitch of `net` that is not an anchor.
fn first_stitch(net: &SnNet) -> StitchId {
    net.plan()
        .paths()
        .iter()
        .find(|p| !p.is_anchor())
        .unwrap()
        .id
}

fn images(net: &SnNet, device: &Device) -> Tensor<4> {
    let [c, h, w] = net.plan().pretrained().input_size;
    Tensor::random([2, c, h, w], Distribution::Normal(0.0, 1.0), device)
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Exports every stitch of `net` (or every `step`-th), saves, loads and compares the logits
/// bit for bit; returns the largest stitch file's size.
fn round_trip_all(net: &SnNet, step: usize, dir: &Path) -> u64 {
    let device = Device::default();
    let x = images(net, &device);
    let whole = dir.join("snnet.safetensors");
    net.save(&whole).unwrap();
    let whole = std::fs::metadata(&whole).unwrap().len();
    let mut largest = 0;
    let ids: Vec<usize> = (0..net.num_stitches()).step_by(step).collect();
    for &id in &ids {
        let id = StitchId(id);
        let expected = values(net.forward(x.clone(), id).unwrap());
        let exported = net.export_stitch(id).unwrap();
        assert_eq!(values(exported.forward(x.clone()).unwrap()), expected);
        let file = dir.join(format!("stitch{id}.safetensors"));
        exported.save(&file).unwrap();
        assert_eq!(sniff_model_file(&file).unwrap(), ModelFile::Stitch);
        let loaded = StitchModel::load(&file, &device).unwrap();
        assert_eq!(loaded.stitch_id(), id);
        assert_eq!(loaded.cost(), net.cost(id).unwrap());
        assert_eq!(
            values(loaded.forward(x.clone()).unwrap()),
            expected,
            "stitch {id}: {}",
            loaded.description()
        );
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(
            size < whole,
            "stitch {id}: {size} bytes, the SN-Net {whole}"
        );
        largest = largest.max(size);
    }
    largest
}

#[test]
fn vit_stitches_round_trip_and_anchors_keep_timm_keys() {
    let device = Device::default();
    let anchors = pair("vit_reduced.json");
    let small = anchors[0].clone();
    let net = pair_net(anchors, &device);
    let dir = tempfile::tempdir().unwrap();
    round_trip_all(&net, 1, dir.path());

    // An exported anchor is a timm weight file: bare timm keys, loadable by the zoo.
    let anchor = net.export_stitch(StitchId(0)).unwrap();
    let file = dir.path().join("anchor.safetensors");
    anchor.save(&file).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut keys: Vec<String> = st.names().into_iter().map(str::to_owned).collect();
    keys.sort();
    assert!(
        keys.contains(&"patch_embed.proj.weight".to_owned()),
        "{keys:?}"
    );
    assert!(keys.contains(&"head.weight".to_owned()), "{keys:?}");
    let (timm, report) = small.load(&file, &device).unwrap();
    assert!(report.unexpected.is_empty());
    let x = images(&net, &device);
    use snnet_core::Anchor;
    assert_eq!(
        values(timm.forward(x.clone()).unwrap()),
        values(net.forward(x, StitchId(0)).unwrap())
    );
}

#[test]
fn two_way_lora_paths_round_trip() {
    let device = Device::default();
    let config = SnNetConfig::new(
        pair("vit_reduced.json"),
        SpaceConfig::default().with_direction(Direction::TwoWay),
    )
    .with_lora(Some(LoraConfig::new(2)));
    let net = net(config, &device);
    assert!(
        net.plan().paths().iter().any(|p| p.layers.len() == 2),
        "two-way has multi-cut paths"
    );
    let dir = tempfile::tempdir().unwrap();
    round_trip_all(&net, 1, dir.path());
    // LoRA layers are kept: their file has lora_A / lora_B.
    let id = net
        .plan()
        .paths()
        .iter()
        .find(|p| p.layers.len() == 2)
        .unwrap()
        .id;
    let bytes = net.export_stitch(id).unwrap().to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.names().contains(&"stitch_layers.1.transform.lora_A"));
}

/// A Swin, a ResNet, and a ResNet→Swin SN-Net (every `step`-th stitch of the larger ones).
#[test]
fn swin_resnet_and_resnet_to_swin_stitches_round_trip() {
    let device = Device::default();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("swin", pair("swin_reduced.json"), 3),
        ("resnet", pair("resnet18_reduced.json"), 3),
        (
            "resnet_to_swin",
            vec![
                zoo_entry("resnet18_reduced.json"),
                zoo_entry("swin_reduced.json"),
            ],
            1,
        ),
    ];
    for (name, anchors, step) in cases {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        round_trip_all(&pair_net(anchors, &device), step, &sub);
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let device = Device::default();
    let net = pair_net(pair("vit_reduced.json"), &device);
    let n = net.num_stitches();
    assert!(matches!(
        net.export_stitch(StitchId(n)),
        Err(Error::Space(snnet_core::space::Error::UnknownStitch { .. }))
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stitch.safetensors");
    net.export_stitch(StitchId(n - 1))
        .unwrap()
        .save(&file)
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();

    // Truncated: in the data, and in the header.
    for keep in [bytes.len() - 100, 20] {
        let cut = dir.path().join(format!("cut{keep}.safetensors"));
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        assert!(
            matches!(
                StitchModel::load(&cut, &device),
                Err(Error::Export(ExportError::Truncated { .. }))
            ),
            "{keep}"
        );
    }
    // An SN-Net checkpoint is not a stitch file.
    let whole = dir.path().join("snnet.safetensors");
    net.save(&whole).unwrap();
    assert_eq!(sniff_model_file(&whole).unwrap(), ModelFile::SnNet);
    assert!(matches!(
        StitchModel::load(&whole, &device),
        Err(Error::Export(ExportError::NotAStitch {
            found: ModelFile::SnNet,
            ..
        }))
    ));
    // Garbage.
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a model at all").unwrap();
    assert!(matches!(
        sniff_model_file(&junk),
        Err(Error::Export(ExportError::NotAModelFile { .. }))
    ));
    // A stitch id out of range in the metadata: rewritten with the same tensors.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = meta.metadata().clone().unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&meta[snnet_core::STITCH_KEY]).unwrap();
    config["stitch"] = serde_json::json!(n + 5);
    meta.insert(snnet_core::STITCH_KEY.to_owned(), config.to_string());
    let tampered = dir.path().join("tampered.safetensors");
    std::fs::write(
        &tampered,
        safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        StitchModel::load(&tampered, &device),
        Err(Error::Space(snnet_core::space::Error::UnknownStitch { .. }))
    ));
}

#[test]
fn loaded_stitches_leave_the_skipped_blocks_unallocated() {
    use snnet_core::burn::module::{Module, ModuleVisitor, Param};
    struct Count {
        initialised: usize,
        lazy: usize,
        path: Vec<String>,
        names: Vec<String>,
    }
    impl ModuleVisitor for Count {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_owned());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.is_initialized() {
                self.names.push(self.path.join("."));
                self.initialised += 1;
            } else {
                self.lazy += 1;
            }
        }
    }
    let device = Device::default();
    let net = pair_net(pair("vit_reduced.json"), &device);
    let id = first_stitch(&net);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stitch.safetensors");
    net.export_stitch(id).unwrap().save(&file).unwrap();
    let loaded = StitchModel::load(&file, &device).unwrap();
    let mut count = Count {
        initialised: 0,
        lazy: 0,
        path: Vec::new(),
        names: Vec::new(),
    };
    loaded.visit(&mut count);
    let st_bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&st_bytes).unwrap();
    // One parameter per tensor of the file, and the end anchor's class token and position
    // embedding, which the zoo builds eagerly (zeros).
    assert_eq!(count.initialised, st.len() + 2, "{:?}", count.names);
    let eager: Vec<&String> = count
        .names
        .iter()
        .filter(|n| n.starts_with("anchors.1.") && !n.contains("blocks") && n.contains("_"))
        .collect();
    assert_eq!(eager.len(), 2, "{eager:?}");
    assert!(count.lazy > 0, "the skipped blocks are never allocated");
}

mod features {
    use super::*;
    use snnet_core::zoo::{Activation, Anchor};
    use snnet_core::{Features, StitchPath};

    /// Every block output of an anchor's own loop, as maps.
    fn anchor_blocks(net: &SnNet, a: usize, x: Tensor<4>) -> Vec<Vec<f32>> {
        let anchor = &net.anchors[a];
        let info = net.plan().feature_info(a).to_vec();
        let mut out = Vec::new();
        anchor.blocks_with_states(0..anchor.num_blocks(), anchor.embed(x), &mut |s, act| {
            if s == 0 {
                return;
            }
            let f = &info[s - 1];
            let map = match act.clone() {
                Activation::Map(m) => m,
                Activation::Tokens(t) => {
                    let [_, n, _] = t.dims();
                    Activation::Tokens(t.narrow(1, f.prefix_tokens, n - f.prefix_tokens))
                        .into_map(f.grid)
                }
            };
            out.push(map.into_data().try_to_vec::<f32>().unwrap());
        });
        out
    }

    fn check(net: &SnNet) {
        let device = Device::default();
        let x = images(net, &device);
        for path in net.plan().paths() {
            let StitchPath { id, segments, .. } = path;
            let blocks: usize = segments.iter().map(|s| s.len()).sum();
            let all = Features::Blocks((0..blocks).collect());
            let features = net.forward_features(x.clone(), *id, &all).unwrap();
            assert_eq!(features.len(), blocks);
            for (f, t) in &features {
                let [b, c, h, w] = t.dims();
                assert_eq!(
                    (b, c, [h, w]),
                    (2, f.block.channels, f.block.grid),
                    "stitch {id} {}",
                    f.name
                );
            }
            if path.is_anchor() {
                // An anchor's features are its own block outputs.
                let own = anchor_blocks(net, segments[0].anchor, x.clone());
                let ours: Vec<Vec<f32>> = features
                    .into_iter()
                    .map(|(_, t)| t.into_data().try_to_vec::<f32>().unwrap())
                    .collect();
                assert_eq!(ours, own, "anchor {id}");
            }
            // Stages: the last block of each stage, with increasing reduction.
            let stages = net.feature_info(*id, &Features::Stages).unwrap();
            assert!(!stages.is_empty());
            assert!(
                stages
                    .windows(2)
                    .all(|w| w[0].block.stage < w[1].block.stage)
            );
            assert_eq!(stages.last().unwrap().position, blocks - 1);
            assert!(matches!(
                net.forward_features(x.clone(), *id, &Features::Blocks(vec![blocks])),
                Err(Error::Export(ExportError::NoSuchBlock { .. }))
            ));
        }
    }

    #[test]
    fn features_along_vit_swin_resnet_and_mixed_paths() {
        let device = Device::default();
        let vit = zoo_entry("vit_reduced.json");
        let swin = zoo_entry("swin_reduced.json");
        let resnet = zoo_entry("resnet18_reduced.json");
        for anchors in [
            vec![vit.clone(), wider(&vit)],
            vec![swin.clone(), wider(&swin)],
            vec![resnet.clone(), swin.clone()],
        ] {
            check(&net(
                SnNetConfig::new(anchors, SpaceConfig::default()),
                &device,
            ));
        }
        // The last stage feature of a stitch is what its head pools: the ResNet → Swin stitch's
        // stage-3 map has the Swin's last width and a 32× reduction.
        let net = net(
            SnNetConfig::new(vec![resnet, swin], SpaceConfig::default()),
            &device,
        );
        let id = first_stitch(&net);
        let stages = net.feature_info(id, &Features::Stages).unwrap();
        let last = stages.last().unwrap();
        assert_eq!((last.name.as_str(), last.block.reduction), ("stage.3", 32));
    }
}

mod int8 {
    use super::*;
    use snnet_core::quantize::is_quantized;
    use snnet_core::{LoadedModel, load_model_file};

    #[test]
    fn quantized_networks_and_stitches_round_trip_through_burnpack() {
        let device = Device::default();
        let net = pair_net(pair("vit_reduced.json"), &device);
        let x = images(&net, &device);
        let id = first_stitch(&net);
        let f32_logits = values(net.forward(x.clone(), id).unwrap());
        let stitch = net.export_stitch(id).unwrap().quantized();
        let f32_print = net.fingerprint().unwrap();
        let q = net.quantized();
        assert!(is_quantized(&q));
        // Evaluation tables record the fingerprint: the int8 network is another network.
        assert_ne!(q.fingerprint().unwrap(), f32_print);
        let q_logits = values(q.forward(x.clone(), id).unwrap());
        let diff = f32_logits
            .iter()
            .zip(&q_logits)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        let scale = f32_logits.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        assert!(
            diff > 0.0 && diff < 0.05 * scale.max(1.0),
            "int8 error {diff} vs {scale}"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("net.bin");
        q.save_burnpack(&file).unwrap();
        assert_eq!(sniff_model_file(&file).unwrap(), ModelFile::Burnpack);
        let LoadedModel::SnNet(loaded) = load_model_file(&file, &device).unwrap() else {
            panic!("an SN-Net");
        };
        assert!(is_quantized(loaded.as_ref()));
        assert_eq!(values(loaded.forward(x.clone(), id).unwrap()), q_logits);
        let st = dir.path().join("stitch.bpk");
        stitch.save_burnpack(&st).unwrap();
        let LoadedModel::Stitch(loaded) = load_model_file(&st, &device).unwrap() else {
            panic!("a stitch");
        };
        assert_eq!(values(loaded.forward(x.clone()).unwrap()), q_logits);
        // A quantized network dequantized runs the same values in f32.
        let deq = snnet_core::quantize::dequantized(*loaded);
        assert!(!is_quantized(&deq));
        let d = values(deq.forward(x).unwrap());
        let close = d.iter().zip(&q_logits).all(|(a, b)| (a - b).abs() < 1e-4);
        assert!(close, "{d:?} vs {q_logits:?}");
        // A truncated burnpack is a typed error.
        let bytes = std::fs::read(&file).unwrap();
        let cut = dir.path().join("cut.bpk");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(
            load_model_file(&cut, &device),
            Err(Error::Export(ExportError::Burnpack { .. }))
        ));
    }
}

/// A stitch file (safetensors, f32 burnpack, int8 burnpack) or an SN-Net burnpack whose
/// stitching layer holds infinite values is refused on load, naming the tensor.
#[test]
fn non_finite_weights_are_refused_in_every_file_format() {
    use snnet_core::burn::module::{Module, ModuleMapper, Param};
    /// Adds +inf to every parameter under `stitch_layers`.
    struct Poison(Vec<String>);
    impl ModuleMapper for Poison {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_owned());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.0.first().map(String::as_str) == Some("stitch_layers") {
                param.map(|t| t.add_scalar(f32::INFINITY))
            } else {
                param
            }
        }
    }
    let poison = |m: StitchModel| m.map(&mut Poison(Vec::new()));
    let device = Device::default();
    let net = pair_net(pair("vit_reduced.json"), &device);
    let id = first_stitch(&net);
    let stitch = net.export_stitch(id).unwrap();
    assert_eq!(snnet_core::first_non_finite(&stitch), None);
    let dir = tempfile::tempdir().unwrap();
    let refused = |result: snnet_core::Result<StitchModel>, what: &str| match result {
        Err(Error::NonFinite { key, count, .. }) => {
            assert!(key.starts_with("stitch_layers.0"), "{what}: {key}");
            assert!(count > 0, "{what}");
        }
        other => panic!("{what}: {other:?}"),
    };
    let file = dir.path().join("inf.safetensors");
    poison(stitch.clone()).save(&file).unwrap();
    refused(StitchModel::load(&file, &device), "safetensors");
    let file = dir.path().join("inf.bpk");
    poison(stitch.clone()).save_burnpack(&file).unwrap();
    refused(StitchModel::load_burnpack(&file, &device), "f32 burnpack");
    let file = dir.path().join("inf.int8");
    poison(stitch.clone().quantized())
        .save_burnpack(&file)
        .unwrap();
    refused(StitchModel::load_burnpack(&file, &device), "int8 burnpack");
    // The intact int8 stitch loads (its dequantized weights are finite).
    let file = dir.path().join("ok.int8");
    stitch.quantized().save_burnpack(&file).unwrap();
    assert!(StitchModel::load_burnpack(&file, &device).is_ok());

    // A whole SN-Net in burnpack.
    let file = dir.path().join("net.bpk");
    net.map(&mut Poison(Vec::new()))
        .save_burnpack(&file)
        .unwrap();
    assert!(matches!(
        SnNet::load_burnpack(&file, &device),
        Err(Error::NonFinite { ref key, .. }) if key.starts_with("stitch_layers.")
    ));
}
