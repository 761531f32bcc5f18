//! A tiny SN-Net (three 4-block ViTs on 32×32 images, 23 stitches) for fast tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

pub(crate) mod http;

use snnet_core::burn::tensor::{Device, Distribution, Tensor, TensorData};
use snnet_core::select::{StitchRecord, StitchTable};
use snnet_core::{ModelEntry, SnNet, SnNetConfig, SpaceConfig, StitchId};
use snnet_runtime::{Network, Profile, ProfilerConfig};

/// One tiny ViT anchor's entry.
fn vit(name: &str, dim: usize, heads: usize) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "config": {
            "family": "vit", "img_size": [32, 32], "patch_size": [8, 8], "in_chans": 3,
            "num_classes": 10, "embed_dim": dim, "depth": 4, "num_heads": heads,
            "mlp_hidden": dim * 4, "qkv_bias": true, "class_token": true, "distilled": false,
            "no_embed_class": false, "layer_scale": false, "eps": 1e-6
        }
    })
}

/// The tiny SN-Net with random weights (23 stitches).
pub(crate) fn tiny_net(device: &Device) -> SnNet {
    let anchors: Vec<ModelEntry> = serde_json::from_value(serde_json::json!([
        vit("vit0", 16, 2),
        vit("vit1", 32, 2),
        vit("vit2", 64, 4)
    ]))
    .unwrap();
    SnNetConfig::new(anchors, SpaceConfig::default())
        .init(device)
        .unwrap()
}

/// An "evaluation" table: accuracy grows with FLOPs (a stand-in for a real evaluation).
pub(crate) fn eval_table(net: &SnNet) -> StitchTable {
    StitchTable::from_records(
        (0..net.num_stitches())
            .map(|id| {
                let cost = net.cost(StitchId(id)).unwrap();
                StitchRecord::new(id, 50.0 + cost.flops as f64 / 1e5)
                    .with_flops(cost.flops)
                    .with_params(cost.params)
            })
            .collect(),
    )
    .unwrap()
}

/// A quick profile of every stitch `net` runs (1 warm-up, 3 timed runs, batch 1).
pub(crate) fn quick_profile(net: &dyn Network, device: &Device) -> Profile {
    ProfilerConfig::new()
        .with_warmup(1)
        .with_iters(3)
        .init(device)
        .unwrap()
        .run(net, |_| {})
        .unwrap()
}

/// The tiny net, shared, with its eval table merged with a quick profile.
pub(crate) fn profiled(device: &Device) -> (Arc<SnNet>, StitchTable) {
    let net = tiny_net(device);
    let table = quick_profile(&net, device)
        .to_table(Some(&eval_table(&net)))
        .unwrap();
    (Arc::new(net), table)
}

/// Random images `[b, 3, 32, 32]`.
pub(crate) fn images(b: usize, device: &Device) -> Tensor<4> {
    Tensor::random([b, 3, 32, 32], Distribution::Normal(0.0, 1.0), device)
}

/// A safetensors file holding `input`.
pub(crate) fn safetensors_body(images: &Tensor<4>) -> Vec<u8> {
    let dims = images.dims().to_vec();
    let data: TensorData = images.clone().into_data();
    let values = data.try_into_vec::<f32>().unwrap();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, dims, &bytes).unwrap();
    safetensors::serialize([("input", view)], None).unwrap()
}
