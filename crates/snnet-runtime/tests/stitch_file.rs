//! One exported stitch served: the runtime, the profiler and a real server on 127.0.0.1 work on
//! a stitch file (safetensors, and int8 burnpack) as on the SN-Net, answering only its own id.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use serde_json::Value;
use snnet_core::burn::tensor::{Device, Tensor};
use snnet_core::select::StitchTable;
use snnet_core::{SnNet, StitchId, StitchModel};
use snnet_runtime::{Choice, Error, Network, Runtime, load_network, top_k};

use common::http::{get, local_config, post, spawn};
use common::{eval_table, images, quick_profile, safetensors_body, tiny_net};

/// A stitch between two anchors (not an anchor) of the tiny SN-Net.
const STITCH: StitchId = StitchId(7);

/// `net`'s profile (one row per stitch it runs), merged into the SN-Net's evaluation table.
fn profiled_table(net: &dyn Network, eval: &StitchTable, device: &Device) -> StitchTable {
    quick_profile(net, device).to_table(Some(eval)).unwrap()
}

fn logits(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// The tiny SN-Net and its stitch [`STITCH`] saved as a stitch file in `dir`.
fn exported(dir: &std::path::Path, device: &Device) -> (SnNet, std::path::PathBuf) {
    device.seed(3);
    let net = tiny_net(device);
    let file = dir.join("stitch7.safetensors");
    net.export_stitch(STITCH).unwrap().save(&file).unwrap();
    (net, file)
}

#[test]
fn a_served_stitch_file_answers_its_stitch_with_the_snnets_logits() {
    let device = Device::default();
    let dir = tempfile::tempdir().unwrap();
    let (net, file) = exported(dir.path(), &device);
    let served = load_network(&file, &device).unwrap();
    assert_eq!(served.stitch_ids(), [STITCH]);

    // Profiling a stitch file measures its one stitch; the SN-Net's table keeps its rows, and
    // the runtime keeps the served stitch's.
    let table = profiled_table(served.as_ref(), &eval_table(&net), &device);
    assert_eq!(table.len(), net.num_stitches());
    let runtime = Arc::new(Runtime::new(served, table, device.clone()).unwrap());
    assert_eq!(runtime.table().len(), 1);
    assert_eq!(runtime.current_stitch(), STITCH);
    assert!(matches!(
        runtime.resolve(Choice::Stitch(StitchId(3))),
        Err(Error::StitchNotServed {
            id: 3,
            served: STITCH
        })
    ));

    let server = spawn(runtime.clone(), local_config());
    let url = |path: &str| format!("http://{}{path}", server.addr());

    let x = images(1, &device);
    let expected = top_k(net.forward(x.clone(), STITCH).unwrap(), 5, &[]).unwrap();
    let body = safetensors_body(&x);
    // Named, by default, by a deadline and by a budget: every choice resolves to the stitch.
    for query in [
        "?stitch=7",
        "",
        "?deadline_ms=5000",
        "?max_flops=1000000000000",
    ] {
        let (status, answer) = post(&url(&format!("/v1/classify{query}")), &body);
        assert_eq!(status, 200, "{query}: {answer}");
        assert_eq!(answer["stitch"].as_u64(), Some(7), "{query}: {answer}");
        let got = answer["predictions"][0].as_array().unwrap();
        assert_eq!(got.len(), expected[0].len());
        for (e, g) in expected[0].iter().zip(got) {
            assert_eq!(g["index"].as_u64(), Some(e.index as u64), "{query}");
            assert_eq!(g["prob"].as_f64().unwrap() as f32, e.prob, "{query}");
        }
    }

    // Another stitch of the SN-Net: a 400 naming both ids.
    let (status, answer) = post(&url("/v1/classify?stitch=3"), &body);
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.contains("stitch 3") && message.contains("stitch 7"),
        "{message}"
    );

    let (status, stitches) = get(&url("/v1/stitches"));
    assert_eq!(status, 200);
    assert_eq!(
        stitches["stitches"].as_array().map(Vec::len),
        Some(1),
        "{stitches}"
    );
    assert_eq!(stitches["profile_matches"], Value::Bool(true));
    server.shutdown().unwrap();
}

#[test]
fn an_int8_stitch_burnpack_is_served_as_loaded() {
    let device = Device::default();
    let dir = tempfile::tempdir().unwrap();
    let (net, file) = exported(dir.path(), &device);
    let packed = dir.path().join("stitch7.bpk");
    StitchModel::load(&file, &device)
        .unwrap()
        .quantized()
        .save_burnpack(&packed)
        .unwrap();
    let served = load_network(&packed, &device).unwrap();
    let table = profiled_table(served.as_ref(), &eval_table(&net), &device);
    let runtime = Runtime::new(served, table, device.clone()).unwrap();
    let x = images(2, &device);
    let answer = runtime.infer(x.clone(), Choice::Default).unwrap();
    assert_eq!(answer.stitch, STITCH);
    let direct = StitchModel::load_burnpack(&packed, &device).unwrap();
    assert_eq!(logits(answer.logits), logits(direct.forward(x).unwrap()));

    // A table without the stitch's row cannot serve it.
    let others = StitchTable::from_records(
        eval_table(&net)
            .iter()
            .filter(|r| r.id != STITCH)
            .cloned()
            .collect(),
    )
    .unwrap();
    let served = load_network(&packed, &device).unwrap();
    assert!(matches!(
        Runtime::new(served, others, device),
        Err(Error::Config(_))
    ));
}
