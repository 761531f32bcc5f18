//! The seed corpus: valid (and a few near-valid) inputs of every target, generated from the
//! library's own writers (`save_weights`, `SnNet::save`, `write_tensors`, the registries'
//! serialisers) or written independently (IDX, images, `.pth` pickles), so that the fuzzer starts
//! deep inside each parser instead of at its magic number.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
use safetensors::tensor::{Dtype, TensorView};
use snnet_core::space::{AnchorSpec, builtin_anchor};
use snnet_core::zoo::Registry;
use snnet_core::zoo::burn::tensor::TensorData;
use snnet_core::{Direction, Pairing, SnNetConfig, SpaceConfig, StitchId};

use crate::pickle::{self, Container};
use crate::{device, scratch_file, tiny_snnet, tiny_snnet_config, tiny_vit_entry};

/// A seed: a short name and its bytes.
pub type Seed = (String, Vec<u8>);

/// The seeds of `target` (a name in `fuzz_targets/`); empty for an unknown target.
///
/// # Panics
/// When a seed cannot be produced (the library's writers failing is a regression).
pub fn seeds(target: &str) -> Vec<Seed> {
    match target {
        "anchor_spec" => anchor_spec(),
        "stitch_table" => stitch_table(),
        "model_config" => model_config(),
        "idx" => idx(),
        "image" => images(),
        "weights_safetensors" => weights_safetensors(),
        "weights_pth" => weights_pth(),
        "tensors" => tensors(),
        "snnet_checkpoint" => snnet_checkpoint(),
        "http_request" => http_request(),
        _ => Vec::new(),
    }
}

fn seed(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Seed {
    (name.into(), bytes.into())
}

/// A built-in anchor's spec under a new name (spec files may not redefine known names).
fn renamed_spec(builtin: &str, name: &str) -> serde_json::Value {
    let mut spec: AnchorSpec = builtin_anchor(builtin).expect("a built-in anchor");
    spec.name = name.to_owned();
    spec.label = None;
    serde_json::to_value(spec).expect("specs serialise")
}

/// `anchor_spec`: one flag byte choosing the space rules (see the target), then a JSON spec
/// document in each of its three shapes.
fn anchor_spec() -> Vec<Seed> {
    let plain: Vec<_> = [
        ("deit_tiny_patch16_224", "fz_ti"),
        ("deit_small_patch16_224", "fz_s"),
        ("deit_base_patch16_224", "fz_b"),
    ]
    .iter()
    .map(|(b, n)| renamed_spec(b, n))
    .collect();
    let swin = vec![
        renamed_spec("swin_tiny_patch4_window7_224", "fz_swin_t"),
        renamed_spec("swin_small_patch4_window7_224", "fz_swin_s"),
    ];
    let cnn = vec![
        renamed_spec("resnet18", "fz_r18"),
        renamed_spec("resnet50", "fz_r50"),
    ];
    let docs = [
        ("one", plain[0].to_string()),
        (
            "plain_list",
            serde_json::Value::from(plain.clone()).to_string(),
        ),
        (
            "swin_wrapped",
            serde_json::json!({ "anchors": swin }).to_string(),
        ),
        ("cnn_list", serde_json::Value::from(cnn).to_string()),
        (
            "handwritten",
            r#"{"anchors": [
  {"name": "a", "label": "small", "layout": "tokens", "stages": [{"depth": 2, "width": 8}]},
  {"name": "b", "layout": "tokens", "stages": [{"depth": 3, "width": 16}]}
]}"#
            .to_owned(),
        ),
    ];
    // kernel 2 / stride 1 / nearest / fast-to-slow; all pairs; slow-to-fast; two-way with
    // kernel 3 and stride 2; explicit stages.
    let flags = [0x01_u8, 0x09, 0x11, 0x26, 0x41];
    let mut out = Vec::new();
    for (name, doc) in &docs {
        for flag in flags {
            let mut bytes = vec![flag];
            bytes.extend_from_slice(doc.as_bytes());
            out.push(seed(format!("{name}-{flag:02x}"), bytes));
        }
    }
    out
}

/// `stitch_table`: the repository's example tables and the tiny SN-Net's table.
fn stitch_table() -> Vec<Seed> {
    let net = tiny_snnet(&device());
    let mut lines = String::new();
    for id in 0..net.num_stitches() {
        let cost = net.cost(StitchId(id)).expect("every stitch has a cost");
        let record = serde_json::json!({
            "cfg_id": id, "flops": cost.flops, "params": cost.params,
            "acc1": 50.0 + id as f64 / 3.0, "acc5": 90.5, "latency_ms": 1.25 + id as f64,
            "memory_bytes": 4096 * (id + 1), "evaluated": id % 2 == 0,
        });
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    vec![
        seed(
            "deit_ti_s_b",
            include_str!("../../fixtures/reference/deit_ti_s_b.jsonl"),
        ),
        seed(
            "deit_profile_b1",
            include_str!("../../benches/results/deit_ti_s_b_profile_b1.jsonl"),
        ),
        seed("tiny_snnet", lines),
        seed(
            "handwritten",
            "{\"id\": 3, \"acc1\": 71.5, \"params\": 10}\n\n{\"cfg_id\": 0, \"acc1\": 0, \
             \"flops\": 5e9, \"latency_ms\": 0.5, \"memory_bytes\": 1e6}\n",
        ),
    ]
}

/// `model_config`: built-in models of every family under new names, in the three document
/// shapes, and the tiny ViT.
fn model_config() -> Vec<Seed> {
    let registry = Registry::builtin();
    let entry = |builtin: &str, name: &str| {
        let mut entry = registry.get(builtin).expect("a built-in model").clone();
        entry.name = name.to_owned();
        serde_json::to_value(entry).expect("entries serialise")
    };
    let mut no_pretrained = entry("deit_small_distilled_patch16_224", "fz_deit_s_dist");
    no_pretrained
        .as_object_mut()
        .expect("an object")
        .remove("pretrained");
    vec![
        seed(
            "deit_ti",
            entry("deit_tiny_patch16_224", "fz_deit_ti").to_string(),
        ),
        seed(
            "vit_list",
            serde_json::json!([
                entry("deit3_small_patch16_224", "fz_deit3_s"),
                no_pretrained,
                entry("vit_base_patch16_224", "fz_vit_b"),
            ])
            .to_string(),
        ),
        seed(
            "swin_wrapped",
            serde_json::json!({ "models": [
                entry("swin_tiny_patch4_window7_224", "fz_swin_t"),
                entry("swin_base_patch4_window12_384", "fz_swin_b384"),
            ]})
            .to_string(),
        ),
        seed(
            "resnet_list",
            serde_json::json!([entry("resnet18", "fz_r18"), entry("resnet50", "fz_r50")])
                .to_string(),
        ),
        seed(
            "tiny_vit",
            serde_json::to_string(&tiny_vit_entry()).expect("entries serialise"),
        ),
    ]
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let ndims = u8::try_from(dims.len()).expect("few dimensions");
    let mut bytes = vec![0, 0, 0x08, ndims];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("in memory");
    encoder.finish().expect("in memory")
}

/// `idx`: image and label arrays, plain and gzipped.
fn idx() -> Vec<Seed> {
    let images: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 13) as u8).collect();
    let images = idx_bytes(&[2, 3, 3], &images);
    let labels = idx_bytes(&[5], &[0, 9, 3, 3, 1]);
    vec![
        seed("images", images.clone()),
        seed("labels", labels.clone()),
        seed("images.gz", gzip(&images)),
        seed("labels.gz", gzip(&labels)),
    ]
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("in memory");
    out.into_inner()
}

/// Small PNGs (RGB, grey, RGBA, 16-bit) and JPEGs (colour, grey).
fn image_seeds() -> Vec<Seed> {
    let rgb = ImageBuffer::from_fn(7, 5, |x, y| Rgb([(x * 36) as u8, (y * 60) as u8, 128]));
    let grey = ImageBuffer::from_fn(3, 3, |x, y| Luma([(x * 80 + y * 10) as u8]));
    let rgba = ImageBuffer::from_fn(16, 4, |x, y| Rgba([(x * 16) as u8, 0, (y * 64) as u8, 200]));
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(4, 6, |x, y| Rgb([(x * 9000) as u16, (y * 9000) as u16, 7]));
    let rgb = DynamicImage::ImageRgb8(rgb);
    let grey = DynamicImage::ImageLuma8(grey);
    vec![
        seed("rgb.png", encode(rgb.clone(), ImageFormat::Png)),
        seed("grey.png", encode(grey.clone(), ImageFormat::Png)),
        seed(
            "rgba.png",
            encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png),
        ),
        seed(
            "rgb16.png",
            encode(DynamicImage::ImageRgb16(deep), ImageFormat::Png),
        ),
        seed("rgb.jpg", encode(rgb, ImageFormat::Jpeg)),
        seed("grey.jpg", encode(grey, ImageFormat::Jpeg)),
    ]
}

fn images() -> Vec<Seed> {
    image_seeds()
}

/// The tiny ViT's weights as timm-layout safetensors bytes (from `save_weights`).
fn tiny_vit_safetensors() -> Vec<u8> {
    let model = tiny_vit_entry()
        .init(&device())
        .expect("the tiny ViT builds");
    let path = scratch_file("seed-weights", &[]);
    model.save_weights(&path).expect("save_weights");
    let bytes = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_file(&path);
    bytes
}

/// The tensors of a safetensors file as `f32` (every seed file here is `f32`).
fn tensors_of(bytes: &[u8]) -> Vec<pickle::Tensor> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("a safetensors file");
    let mut out: Vec<pickle::Tensor> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| pickle::Tensor {
            name,
            shape: view.shape().to_vec(),
            data: view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Serialises tensors as safetensors, `f64` when `wide`, with optional metadata.
fn safetensors_bytes(
    tensors: &[pickle::Tensor],
    wide: bool,
    metadata: Option<BTreeMap<String, String>>,
) -> Vec<u8> {
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|t| {
            let bytes = if wide {
                t.data
                    .iter()
                    .flat_map(|&v| f64::from(v).to_le_bytes())
                    .collect()
            } else {
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect()
            };
            (t.name.clone(), t.shape.clone(), bytes)
        })
        .collect();
    let dtype = if wide { Dtype::F64 } else { Dtype::F32 };
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(dtype, shape.clone(), bytes).expect("consistent tensors");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, metadata.map(|m| m.into_iter().collect())).expect("serialises")
}

/// `weights_safetensors`: the tiny ViT as `save_weights` writes it, with an extra key, in
/// `f64`, and with metadata.
fn weights_safetensors() -> Vec<Seed> {
    let saved = tiny_vit_safetensors();
    let tensors = tensors_of(&saved);
    let mut extra = tensors.clone();
    extra.push(pickle::Tensor {
        name: "blocks.0.attn.relative_position_index".to_owned(),
        shape: vec![2],
        data: vec![0.0, 1.0],
    });
    extra.push(pickle::Tensor {
        name: "unexpected".to_owned(),
        shape: vec![1, 2],
        data: vec![1.0, -1.0],
    });
    let metadata = BTreeMap::from([("format".to_owned(), "pt".to_owned())]);
    vec![
        seed("tiny_vit", saved),
        seed(
            "tiny_vit_extra_keys",
            safetensors_bytes(&extra, false, None),
        ),
        seed("tiny_vit_f64", safetensors_bytes(&tensors, true, None)),
        seed(
            "tiny_vit_metadata",
            safetensors_bytes(&tensors, false, Some(metadata)),
        ),
    ]
}

/// `weights_pth`: the tiny ViT as `torch.save` would write its state dict, in both containers,
/// plain and wrapped (`{"model": ...}`, `{"state_dict": ...}`).
fn weights_pth() -> Vec<Seed> {
    let tensors = tensors_of(&tiny_vit_safetensors());
    vec![
        seed(
            "legacy",
            pickle::checkpoint(&tensors, None, Container::Legacy),
        ),
        seed(
            "legacy_model",
            pickle::checkpoint(&tensors, Some("model"), Container::Legacy),
        ),
        seed("zip", pickle::checkpoint(&tensors, None, Container::Zip)),
        seed(
            "zip_state_dict",
            pickle::checkpoint(&tensors, Some("state_dict"), Container::Zip),
        ),
    ]
}

/// `tensors`: input and feature files as `write_tensors` writes them, and an `f64` one.
fn tensors() -> Vec<Seed> {
    let values: Vec<f32> = (0..48).map(|i| i as f32 / 7.0 - 3.0).collect();
    let mut map = BTreeMap::new();
    map.insert(
        "input".to_owned(),
        TensorData::new(values.clone(), [1, 3, 4, 4]),
    );
    map.insert(
        "features".to_owned(),
        TensorData::new(vec![0.5_f32, -0.25], [2]),
    );
    let path = scratch_file("seed-tensors", &[]);
    snnet_core::zoo::tensor_io::write_tensors(&path, &map).expect("write_tensors");
    let written = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_file(&path);
    let wide = safetensors_bytes(
        &[pickle::Tensor {
            name: "input".to_owned(),
            shape: vec![1, 3, 4, 4],
            data: values,
        }],
        true,
        None,
    );
    vec![seed("input_features", written), seed("input_f64", wide)]
}

fn saved_snnet(config: &SnNetConfig) -> Vec<u8> {
    let net = config.init(&device()).expect("the tiny SN-Net builds");
    let path = scratch_file("seed-snnet", &[]);
    net.save(&path).expect("SnNet::save");
    let bytes = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_file(&path);
    bytes
}

/// `snnet_checkpoint`: the tiny SN-Net as `SnNet::save` writes it, under three space rules, and
/// as a reference checkpoint (no config; `.pth` in both containers, and safetensors).
fn snnet_checkpoint() -> Vec<Seed> {
    let base = tiny_snnet_config();
    let mut all_pairs = base.clone();
    all_pairs.space = SpaceConfig::default()
        .with_pairing(Pairing::All)
        .with_kernel_size(1);
    let mut two_way = base.clone();
    two_way.space = SpaceConfig::default().with_direction(Direction::TwoWay);
    two_way.reference_compat = true;
    let saved = saved_snnet(&base);
    // Reference checkpoints: the same tensors without our config, as ziplab releases them
    // (`torch.save({"model": state_dict})`) and as safetensors.
    let tensors = tensors_of(&saved);
    vec![
        seed(
            "reference_legacy",
            pickle::checkpoint(&tensors, Some("model"), Container::Legacy),
        ),
        seed(
            "reference_zip",
            pickle::checkpoint(&tensors, Some("model"), Container::Zip),
        ),
        seed(
            "reference_safetensors",
            safetensors_bytes(&tensors, false, None),
        ),
        seed("tiny_snnet", saved),
        seed("tiny_snnet_all_pairs", saved_snnet(&all_pairs)),
        seed("tiny_snnet_two_way", saved_snnet(&two_way)),
    ]
}

/// `http_request`: bodies of `POST /v1/classify` (images, safetensors `input`) and of
/// `PUT /v1/budget` (one objective).
fn http_request() -> Vec<Seed> {
    let mut out = image_seeds();
    let batch: Vec<f32> = (0..2 * 48).map(|i| (i % 11) as f32 - 5.0).collect();
    out.push(seed(
        "input_b2.safetensors",
        safetensors_bytes(
            &[pickle::Tensor {
                name: "input".to_owned(),
                shape: vec![2, 3, 4, 4],
                data: batch.clone(),
            }],
            false,
            None,
        ),
    ));
    out.push(seed(
        "input_b1_f64.safetensors",
        safetensors_bytes(
            &[pickle::Tensor {
                name: "input".to_owned(),
                shape: vec![1, 3, 4, 4],
                data: batch[..48].to_vec(),
            }],
            true,
            None,
        ),
    ));
    for (name, body) in [
        ("flops", r#"{"max_flops": 20000}"#),
        ("params", r#"{"max_params": 3000}"#),
        ("latency", r#"{"max_latency_ms": 2.5}"#),
        ("memory", r#"{"max_memory_bytes": 1048576}"#),
        ("slo", r#"{"slo_p95_ms": 40.0}"#),
    ] {
        out.push(seed(format!("budget_{name}.json"), body));
    }
    out
}
