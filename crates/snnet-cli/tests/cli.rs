//! The `snnet` binary end to end: outputs, exit codes and error messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn snnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snnet"))
        .args(args)
        .output()
        .expect("the snnet binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "snnet failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr_of_failure(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "expected exit code 1");
    let err = String::from_utf8(output.stderr.clone()).unwrap();
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "fixtures",
        "reference",
        name,
    ]
    .iter()
    .collect();
    path.to_string_lossy().into_owned()
}

const DEIT: &str = "deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224";

#[test]
fn space_json_has_the_documented_shape() {
    let out = stdout(&snnet(&["space", "--anchors", DEIT, "--format", "json"]));
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["count"], 71);
    let stitches = json["stitches"].as_array().unwrap();
    assert_eq!(stitches.len(), 71);
    let s24 = &stitches[24];
    assert_eq!(s24["id"], 24);
    assert_eq!(s24["anchors"], serde_json::json!([0, 1]));
    assert_eq!(s24["cuts"], serde_json::json!([[7, 7]]));
    assert_eq!(s24["layers"], serde_json::json!([6]));
    assert_eq!(s24["description"], "deit_tiny[..=7] →L6→ deit_small[7..]");
    assert!(s24.get("stage").is_none(), "plain anchors have no stage");
    assert_eq!(stitches[0]["cuts"], serde_json::json!([]));
}

#[test]
fn hierarchical_and_two_way_spaces() {
    let swin =
        "swin_tiny_patch4_window7_224,swin_small_patch4_window7_224,swin_base_patch4_window7_224";
    let json: Value = serde_json::from_str(&stdout(&snnet(&[
        "space",
        "--anchors",
        swin,
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(json["count"], 41);
    assert_eq!(json["stitches"][9]["stage"], 2);
    assert_eq!(json["stitches"][9]["cuts"], serde_json::json!([[1, 3]]));
    let resnet: Value = serde_json::from_str(&stdout(&snnet(&[
        "space",
        "--anchors",
        "resnet18,resnet50",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(resnet["count"], 10);
    let v2: Value = serde_json::from_str(&stdout(&snnet(&[
        "space",
        "--anchors",
        "deit3_small_patch16_224,deit3_large_patch16_224",
        "--direction",
        "two-way",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(
        (v2["count"].as_u64(), v2["evaluated_count"].as_u64()),
        (Some(135), Some(134))
    );
    assert_eq!(v2["stitches"][13]["evaluated"], false);
    let all = stdout(&snnet(&[
        "space",
        "--anchors",
        DEIT,
        "--all-pairs",
        "--format",
        "json",
    ]));
    assert_eq!(serde_json::from_str::<Value>(&all).unwrap()["count"], 732);
    let k3 = stdout(&snnet(&[
        "space",
        "--anchors",
        DEIT,
        "--kernel-size",
        "3",
        "--format",
        "json",
    ]));
    assert_eq!(serde_json::from_str::<Value>(&k3).unwrap()["count"], 111);
}

#[test]
fn space_table_lists_every_stitch() {
    let out = stdout(&snnet(&["space", "--anchors", DEIT]));
    assert!(out.starts_with("71 stitches (71 evaluated)"));
    assert!(out.contains("   24  deit_tiny[..=7] →L6→ deit_small[7..]\n"));
    assert!(out.contains("   70  deit_small[..=11] →L10→ deit_base[11..]\n"));
}

#[test]
fn custom_anchor_specs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("family.json");
    std::fs::write(
        &spec,
        r#"{"anchors": [
            {"name": "vit_s", "layout": "tokens", "stages": [{"depth": 4, "width": 64}]},
            {"name": "vit_m", "layout": "tokens", "stages": [{"depth": 4, "width": 128}]}
        ]}"#,
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let json: Value = serde_json::from_str(&stdout(&snnet(&[
        "space",
        "--anchors",
        "vit_s,vit_m",
        "--anchor-spec",
        spec,
        "--format",
        "json",
    ])))
    .unwrap();
    // 2 anchors + 10 cuts of the paired rule on 4 blocks.
    assert_eq!(json["count"], 12);
    let listed = stdout(&snnet(&["anchors", "--anchor-spec", spec]));
    assert!(listed.contains("vit_m") && listed.contains("resnet50"));
    let garbled = dir.path().join("garbled.json");
    std::fs::write(&garbled, "{\"anchors\": [").unwrap();
    let err = stderr_of_failure(&snnet(&[
        "space",
        "--anchors",
        "vit_s",
        "--anchor-spec",
        garbled.to_str().unwrap(),
    ]));
    assert!(err.contains("invalid anchor spec file"), "{err}");
}

#[test]
fn select_and_pareto_on_the_reference_table() {
    let table = fixture("deit_ti_s_b.jsonl");
    let out = stdout(&snnet(&["select", "--table", &table, "--max-flops", "5G"]));
    assert!(out.starts_with("stitch 1 "), "{out}");
    let json: Value = serde_json::from_str(&stdout(&snnet(&[
        "select",
        "--table",
        &table,
        "--max-flops",
        "3e9",
        "--format",
        "json",
    ])))
    .unwrap();
    // The most accurate stitch under 3 GFLOPs, read off the published table.
    assert_eq!(json["cfg_id"], 19); // 2,933,260,800 FLOPs, 76.48 %: best under 3e9 in the file
    let frontier: Value = serde_json::from_str(&stdout(&snnet(&[
        "pareto", "--table", &table, "--format", "json",
    ])))
    .unwrap();
    let frontier = frontier.as_array().unwrap();
    assert_eq!(frontier.len(), 39);
    let flops: Vec<u64> = frontier
        .iter()
        .map(|r| r["flops"].as_u64().unwrap())
        .collect();
    assert!(flops.windows(2).all(|w| w[0] < w[1]));
    let params = stdout(&snnet(&["pareto", "--table", &table, "--cost", "params"]));
    assert!(params.starts_with("Pareto frontier by params"));
}

#[test]
fn run_refuses_zero_joint_epochs() {
    let output = snnet(&[
        "run",
        "--joint-epochs",
        "0",
        "--out",
        "/nonexistent/never-written",
    ]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("--joint-epochs"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn errors_are_clear_and_never_panic() {
    let err = stderr_of_failure(&snnet(&[
        "space",
        "--anchors",
        "deit_tiny_patch16,deit_small",
    ]));
    assert!(err.contains("did you mean deit_tiny_patch16_224"), "{err}");
    let err = stderr_of_failure(&snnet(&["space", "--anchors", "resnet50,resnet18"]));
    assert!(err.contains("small to large"), "{err}");
    let err = stderr_of_failure(&snnet(&[
        "space",
        "--anchors",
        "swin_tiny,swin_small",
        "--stages",
        "0,7",
    ]));
    assert!(err.contains("stage 7 does not exist"), "{err}");
    let err = stderr_of_failure(&snnet(&["space", "--anchors", DEIT, "--stride", "0"]));
    assert!(err.contains("stride must be at least 1"), "{err}");
    let err = stderr_of_failure(&snnet(&[
        "space",
        "--anchors",
        "swin_tiny,swin_small",
        "--direction",
        "two-way",
    ]));
    assert!(err.contains("plain anchors only"), "{err}");

    let table = fixture("deit_ti_s_b.jsonl");
    let err = stderr_of_failure(&snnet(&["select", "--table", &table, "--max-flops", "1G"]));
    assert!(err.contains("no stitch fits"), "{err}");
    let err = stderr_of_failure(&snnet(&[
        "select",
        "--table",
        "/nonexistent.jsonl",
        "--max-flops",
        "1",
    ]));
    assert!(err.contains("/nonexistent.jsonl"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"cfg_id\": 0, \"acc1\": 70.0, \"flops\": 1}\n{\"cfg_id\": 1, \"acc1\": \n",
    )
    .unwrap();
    let err = stderr_of_failure(&snnet(&["pareto", "--table", bad.to_str().unwrap()]));
    assert!(err.contains("bad.jsonl") && err.contains("line 2"), "{err}");
    let dup = dir.path().join("dup.jsonl");
    std::fs::write(
        &dup,
        "{\"cfg_id\": 0, \"acc1\": 70.0}\n{\"cfg_id\": 0, \"acc1\": 71.0}\n",
    )
    .unwrap();
    let err = stderr_of_failure(&snnet(&["pareto", "--table", dup.to_str().unwrap()]));
    assert!(err.contains("duplicate stitch id 0"), "{err}");
    let nan = dir.path().join("nan.jsonl");
    std::fs::write(&nan, "{\"cfg_id\": 0, \"acc1\": NaN}\n").unwrap();
    stderr_of_failure(&snnet(&["pareto", "--table", nan.to_str().unwrap()]));
    let missing = dir.path().join("nolatency.jsonl");
    std::fs::write(&missing, "{\"cfg_id\": 0, \"acc1\": 70.0, \"flops\": 5}\n").unwrap();
    let err = stderr_of_failure(&snnet(&[
        "select",
        "--table",
        missing.to_str().unwrap(),
        "--max-latency-ms",
        "10",
    ]));
    assert!(err.contains("latency"), "{err}");

    // Bad flags are usage errors (exit code 2), not panics.
    for args in [
        &["select", "--table", "x.jsonl"][..],
        &["select", "--table", "x.jsonl", "--max-flops", "lots"],
        &["space", "--anchors", DEIT, "--direction", "sideways"],
        &["space"],
    ] {
        let output = snnet(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    }
}

fn zoo_fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "snnet-zoo",
        "tests",
        "fixtures",
        name,
    ]
    .iter()
    .collect();
    path.to_string_lossy().into_owned()
}

/// A `--model-config` file for the reduced DeiT fixture, from its export metadata.
fn reduced_model_config(dir: &std::path::Path) -> String {
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(zoo_fixture("deit_reduced.json")).unwrap())
            .unwrap();
    let mut config = meta["config"].clone();
    config["family"] = "vit".into();
    let path = dir.join("models.json");
    std::fs::write(
        &path,
        serde_json::json!({"name": "deit_reduced", "config": config}).to_string(),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn models_and_costs() {
    let out = stdout(&snnet(&["models", "deit3*"]));
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.contains("deit3_large_patch16_224"));
    let json: Value =
        serde_json::from_str(&stdout(&snnet(&["models", "--format", "json"]))).unwrap();
    assert!(json.as_array().unwrap().len() >= 12);
    for (model, flops, params) in [
        ("deit_tiny_patch16_224", 1_258_411_200u64, 5_717_416u64),
        ("deit_small_patch16_224", 4_608_338_304, 22_050_664),
        ("deit_base_patch16_224", 17_582_740_224, 86_567_656),
    ] {
        let json: Value = serde_json::from_str(&stdout(&snnet(&[
            "cost", "--model", model, "--format", "json",
        ])))
        .unwrap();
        assert_eq!(json["model"], model);
        assert_eq!(json["total"]["flops"], flops);
        assert_eq!(json["total"]["params"], params);
        let blocks = json["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 12);
        assert_eq!(blocks[3]["index"], 3);
    }
    let err = stderr_of_failure(&snnet(&["cost", "--model", "deit_tiny"]));
    assert!(err.contains("did you mean deit_tiny_patch16_224"), "{err}");
}

#[test]
fn forward_matches_the_timm_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let config = reduced_model_config(dir.path());
    let output = dir.path().join("out.safetensors");
    let out = stdout(&snnet(&[
        "forward",
        "--model",
        "deit_reduced",
        "--model-config",
        &config,
        "--weights",
        &zoo_fixture("deit_reduced.weights.pth"),
        "--input",
        &zoo_fixture("deit_reduced.io.safetensors"),
        "--output",
        output.to_str().unwrap(),
        "--features",
    ]));
    assert!(out.contains("wrote logits [2, 10]"), "{out}");
    let ours = snnet_core::zoo::tensor_io::read_tensors(&output).unwrap();
    let timm = snnet_core::zoo::tensor_io::read_tensors(std::path::Path::new(&zoo_fixture(
        "deit_reduced.io.safetensors",
    )))
    .unwrap();
    for key in ["logits", "features.0", "features.1"] {
        let (a, b) = (
            ours[key].as_slice::<f32>().unwrap(),
            timm[key].as_slice::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{key}");
        let err = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(err <= 1e-4, "{key}: {err}");
    }

    // An image: top-5 with probabilities.
    let image = dir.path().join("img.png");
    let img = image_bytes();
    std::fs::write(&image, img).unwrap();
    let out = stdout(&snnet(&[
        "forward",
        "--model",
        "deit_reduced",
        "--model-config",
        &config,
        "--weights",
        &zoo_fixture("deit_reduced.weights.safetensors"),
        "--image",
        image.to_str().unwrap(),
    ]));
    assert_eq!(
        out.lines().filter(|l| l.contains("class")).count(),
        5,
        "{out}"
    );

    // Errors: missing weights, an input that is not a tensor file, a wrong input key.
    let err = stderr_of_failure(&snnet(&[
        "forward",
        "--model",
        "deit_reduced",
        "--model-config",
        &config,
        "--weights",
        "/nonexistent.safetensors",
        "--image",
        image.to_str().unwrap(),
    ]));
    assert!(err.contains("/nonexistent.safetensors"), "{err}");
    let err = stderr_of_failure(&snnet(&[
        "forward",
        "--model",
        "deit_reduced",
        "--model-config",
        &config,
        "--weights",
        &zoo_fixture("deit_reduced.weights.safetensors"),
        "--input",
        image.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]));
    assert!(err.contains("tensor file"), "{err}");
    let err = stderr_of_failure(&snnet(&[
        "forward",
        "--model",
        "deit_reduced",
        "--model-config",
        &config,
        "--weights",
        &zoo_fixture("deit_reduced.weights.safetensors"),
        "--input",
        &zoo_fixture("deit_reduced.weights.safetensors"),
        "--output",
        output.to_str().unwrap(),
    ]));
    assert!(err.contains("no tensor named `input`"), "{err}");
}

/// A small PNG (8×6, a colour gradient), encoded by hand-free means: the `image` crate.
fn image_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 6, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 40) as u8, 128])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

#[test]
fn hierarchical_models_cost_and_list() {
    for (model, flops, params, blocks) in [
        (
            "swin_tiny_patch4_window7_224",
            4_509_194_496u64,
            28_288_354u64,
            12usize,
        ),
        (
            "swin_base_patch4_window7_224",
            15_467_826_176,
            87_768_224,
            24,
        ),
        ("resnet18", 1_819_065_856, 11_689_512, 8),
        ("resnet50", 4_111_512_576, 25_557_032, 16),
    ] {
        let json: Value = serde_json::from_str(&stdout(&snnet(&[
            "cost", "--model", model, "--format", "json",
        ])))
        .unwrap();
        assert_eq!(json["total"]["flops"], flops, "{model}");
        assert_eq!(json["total"]["params"], params, "{model}");
        assert_eq!(json["blocks"].as_array().unwrap().len(), blocks, "{model}");
    }
    let out = stdout(&snnet(&["models", "swin*"]));
    assert_eq!(out.lines().count(), 5, "{out}");
}

#[test]
fn snnet_cost_of_every_stitch() {
    let out = stdout(&snnet(&[
        "cost",
        "--anchors",
        DEIT,
        "--reference-compat",
        "--format",
        "json",
    ]));
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["count"], 71);
    let s = &json["stitches"][24];
    assert_eq!(s["flops"], 2_758_967_808_u64);
    assert_eq!(s["params"], 13_038_760);
    assert_eq!(json["stitches"][56]["flops"], 10_048_040_448_u64);
    let table = stdout(&snnet(&["cost", "--anchors", DEIT]));
    assert!(table.contains("71 stitches"), "{table}");
    let err = stderr_of_failure(&snnet(&["cost", "--anchors", "deit_tiny_patch16_224,nope"]));
    assert!(err.contains("nope"), "{err}");
}

fn core_fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "snnet-core",
        "tests",
        "fixtures",
        name,
    ]
    .iter()
    .collect();
    path.to_string_lossy().into_owned()
}

/// Writes the SN-Net fixture's anchors as a --model-config file and its tensors as input files.
fn snnet_fixture(dir: &std::path::Path) -> (String, String, String) {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(core_fixture("snnet_vit.json")).unwrap())
            .unwrap();
    let models = dir.join("models.json");
    std::fs::write(
        &models,
        serde_json::to_string(&serde_json::json!({"models": json["anchors"]})).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(core_fixture("snnet_vit.io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let write = |key: &str, file: &str| {
        let view = st.tensor(key).unwrap();
        let path = dir.join(file);
        safetensors::serialize_to_file([("input", view)], None, &path).unwrap();
        path.to_string_lossy().into_owned()
    };
    (
        models.to_string_lossy().into_owned(),
        write("images", "images.safetensors"),
        write("input", "input.safetensors"),
    )
}

#[test]
fn random_weights_init_then_profile() {
    let dir = tempfile::tempdir().unwrap();
    let (models, _, _) = snnet_fixture(dir.path());
    let snnet_file = dir.path().join("random.safetensors");
    let snnet_path = snnet_file.to_str().unwrap();
    let err = stderr_of_failure(&snnet(&[
        "init",
        "--anchors",
        "vit0,vit1,vit2",
        "--random-weights",
        "--model-config",
        &models,
        "--output",
        snnet_path,
    ]));
    assert!(err.contains("--init kaiming"), "{err}");
    let out = stdout(&snnet(&[
        "init",
        "--anchors",
        "vit0,vit1,vit2",
        "--random-weights",
        "--init",
        "kaiming",
        "--model-config",
        &models,
        "--output",
        snnet_path,
    ]));
    assert!(out.contains("23 stitches"), "{out}");
    let table = dir.path().join("profile.jsonl");
    stdout(&snnet(&[
        "profile",
        "--snnet",
        snnet_path,
        "--ids",
        "0,3,22",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--output",
        table.to_str().unwrap(),
    ]));
    let rows: Vec<Value> = std::fs::read_to_string(&table)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<u64> = rows
        .iter()
        .filter_map(|r| r.get("cfg_id").and_then(Value::as_u64))
        .collect();
    assert_eq!(ids, [0, 3, 22], "{rows:?}");
    for r in rows.iter().filter(|r| r.get("cfg_id").is_some()) {
        assert!(r["latency_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn train_checks_its_teacher_options() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let err = stderr_of_failure(&snnet(&[
        "train",
        "--snnet",
        "none.safetensors",
        "--teacher",
        "fmnist_vit_l",
        "--out",
        out,
    ]));
    assert!(
        err.contains("--teacher and --teacher-weights go together"),
        "{err}"
    );
    let err = stderr_of_failure(&snnet(&[
        "train",
        "--snnet",
        "none.safetensors",
        "--teacher",
        "no_such_model",
        "--teacher-weights",
        "t.safetensors",
        "--out",
        out,
    ]));
    assert!(err.contains("no_such_model"), "{err}");
    // A FLOPs-group weighting without FLOPs groups would be ignored silently: refused.
    for sampling in [None, Some("uniform")] {
        let mut args = vec!["train", "--snnet", "none.safetensors", "--out", out];
        args.extend(sampling.iter().flat_map(|s| ["--sampling", s]));
        args.extend(["--flops-sampling-k", "35"]);
        let err = stderr_of_failure(&snnet(&args));
        assert!(err.contains("needs --sampling flops-grouped"), "{err}");
    }
}

#[test]
fn init_then_forward_a_stitch() {
    let dir = tempfile::tempdir().unwrap();
    let (models, images, input) = snnet_fixture(dir.path());
    let weights = (0..3)
        .map(|a| core_fixture(&format!("vit{a}.safetensors")))
        .collect::<Vec<_>>()
        .join(",");
    let snnet_file = dir.path().join("snnet.safetensors");
    let out = stdout(&snnet(&[
        "init",
        "--anchors",
        "vit0,vit1,vit2",
        "--weights",
        &weights,
        "--model-config",
        &models,
        "--input",
        &images,
        "--reference-compat",
        "--output",
        snnet_file.to_str().unwrap(),
    ]));
    assert!(out.contains("23 stitches"), "{out}");
    assert!(out.contains("6 layers fitted"), "{out}");
    let logits_file = dir.path().join("logits.safetensors");
    let out = stdout(&snnet(&[
        "forward",
        "--snnet",
        snnet_file.to_str().unwrap(),
        "--stitch",
        "5",
        "--input",
        &input,
        "--output",
        logits_file.to_str().unwrap(),
    ]));
    assert!(out.contains("stitch 5"), "{out}");
    let ours = std::fs::read(&logits_file).unwrap();
    let ours = safetensors::SafeTensors::deserialize(&ours).unwrap();
    let reference = std::fs::read(core_fixture("snnet_vit.io.safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&reference).unwrap();
    let f32s = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let a = f32s(ours.tensor("logits").unwrap().data());
    let b = f32s(reference.tensor("logits.5").unwrap().data());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff <= 1e-4, "max abs diff {diff}");

    // Errors: unknown stitch, mismatched weights, missing source.
    let err = stderr_of_failure(&snnet(&[
        "forward",
        "--snnet",
        snnet_file.to_str().unwrap(),
        "--stitch",
        "99",
        "--input",
        &input,
        "--output",
        logits_file.to_str().unwrap(),
    ]));
    assert!(err.contains("99"), "{err}");
    let err = stderr_of_failure(&snnet(&[
        "init",
        "--anchors",
        "vit0,vit1,vit2",
        "--weights",
        &core_fixture("vit0.safetensors"),
        "--model-config",
        &models,
        "--input",
        &images,
        "--output",
        snnet_file.to_str().unwrap(),
    ]));
    assert!(err.contains("3 anchors but 1 weight files"), "{err}");
}

/// NaN weights are refused, naming the tensor; `--allow-nonfinite` loads them with a warning
/// per tensor.
#[test]
fn nonfinite_weights_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let config = reduced_model_config(dir.path());
    let mut tensors = snnet_core::zoo::tensor_io::read_tensors(std::path::Path::new(&zoo_fixture(
        "deit_reduced.weights.safetensors",
    )))
    .unwrap();
    let data = tensors.remove("norm.bias").unwrap();
    let shape = data.shape().to_vec();
    let mut values = data.try_to_vec::<f32>().unwrap();
    values[0] = f32::NAN;
    tensors.insert(
        "norm.bias".into(),
        snnet_core::burn::tensor::TensorData::new(values, shape),
    );
    let weights = dir.path().join("nan.safetensors");
    snnet_core::zoo::tensor_io::write_tensors(&weights, &tensors).unwrap();
    let output = dir.path().join("out.safetensors");
    let input = zoo_fixture("deit_reduced.io.safetensors");
    let args = |allow: bool| {
        let mut args = vec![
            "forward",
            "--model",
            "deit_reduced",
            "--model-config",
            &config,
            "--weights",
            weights.to_str().unwrap(),
            "--input",
            &input,
            "--output",
            output.to_str().unwrap(),
        ];
        if allow {
            args.push("--allow-nonfinite");
        }
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |allow: bool| {
        let args = args(allow);
        snnet(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let err = stderr_of_failure(&run(false));
    assert!(err.contains("norm.bias") && err.contains("NaN"), "{err}");
    assert!(!output.exists());
    let allowed = run(true);
    stdout(&allowed);
    let warning = String::from_utf8(allowed.stderr).unwrap();
    assert!(
        warning.contains("warning:") && warning.contains("`norm.bias` holds 1 NaN"),
        "{warning}"
    );
    let logits = snnet_core::zoo::tensor_io::read_tensors(&output).unwrap();
    assert!(
        logits["logits"]
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_nan())
    );
}
