//! Shared helpers of the parity tests: fixture files, the deterministic fixture weights
//! (a bit-exact port of `fixture_weight` in `tests/fixtures/export_timm.py`) and comparisons.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use serde::Deserialize;

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `NAME.json` written by the export script.
#[derive(Debug, Deserialize)]
pub struct Meta {
    pub name: String,
    pub timm_name: String,
    pub config: serde_json::Value,
    pub full_size: bool,
    /// `[key, shape, dtype]` of every state-dict entry, in timm's order.
    pub manifest: Vec<(String, Vec<usize>, String)>,
}

pub fn meta(name: &str) -> Meta {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The fixture's inputs and outputs.
pub fn io(name: &str) -> BTreeMap<String, TensorData> {
    snnet_zoo::tensor_io::read_tensors(&fixtures().join(format!("{name}.io.safetensors"))).unwrap()
}

pub fn tensor<const D: usize>(data: &TensorData, device: &Device) -> Tensor<D> {
    Tensor::from_data(data.clone(), device)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn fnv1a64(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GOLDEN);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `(offset, scale)` of a parameter; see `weight_rule` in the export script.
fn weight_rule(key: &str, shape: &[usize]) -> (f32, f32) {
    let last = key.rsplit('.').next().unwrap_or(key);
    match last {
        "running_var" => (1.0, 0.25),
        "running_mean" => (0.0, 0.1),
        "gamma" => (0.1, 0.05),
        "cls_token" | "dist_token" | "pos_embed" | "relative_position_bias_table" => (0.0, 0.1),
        "weight" if shape.len() == 1 => (1.0, 0.1),
        _ if shape.len() >= 2 => {
            let fan_in: usize = shape[1..].iter().product();
            #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
            (0.0, (1.0 / (fan_in as f64).sqrt()) as f32)
        }
        _ => (0.0, 0.05),
    }
}

/// The fixture weight of `key`: `offset + scale · u`, `u` uniform in [-1, 1) from splitmix64.
pub fn fixture_weight(key: &str, shape: &[usize]) -> TensorData {
    let n: usize = shape.iter().product();
    let seed = fnv1a64(key);
    let (offset, scale) = weight_rule(key, shape);
    let values: Vec<f32> = (0..n as u64)
        .map(|i| {
            let bits = splitmix64(seed.wrapping_add(i.wrapping_mul(GOLDEN)));
            #[allow(clippy::cast_precision_loss)]
            let u = (bits >> 40) as f32 / (1u32 << 23) as f32 - 1.0;
            let v = u * scale;
            if offset == 0.0 { v } else { v + offset }
        })
        .collect();
    TensorData::new(values, shape.to_vec())
}

/// Writes the fixture weights of every float entry of the manifest to a safetensors file.
pub fn write_fixture_weights(meta: &Meta, path: &Path) {
    let tensors: BTreeMap<String, TensorData> = meta
        .manifest
        .iter()
        .filter(|(_, _, dtype)| dtype.starts_with("float"))
        .map(|(key, shape, _)| (key.clone(), fixture_weight(key, shape)))
        .collect();
    snnet_zoo::tensor_io::write_tensors(path, &tensors).unwrap();
}

/// The weight file of a fixture: the committed timm file, or (full-size models) one generated
/// into `dir`.
pub fn weights_file(meta: &Meta, dir: &Path) -> PathBuf {
    if meta.full_size {
        let path = dir.join(format!("{}.weights.safetensors", meta.name));
        write_fixture_weights(meta, &path);
        path
    } else {
        fixtures().join(format!("{}.weights.safetensors", meta.name))
    }
}

/// Largest absolute difference, asserting equal shapes.
pub fn max_abs_diff<const D: usize>(ours: Tensor<D>, theirs: &TensorData, what: &str) -> f32 {
    assert_eq!(
        ours.dims().to_vec(),
        theirs.shape().to_vec(),
        "{what}: shape"
    );
    let ours = ours.into_data();
    let a = ours.as_slice::<f32>().unwrap();
    let b = theirs.as_slice::<f32>().unwrap();
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
