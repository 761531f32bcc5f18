//! The `snnet` binary end to end: outputs, exit codes and error messages. Most invocations are
//! rows of tables: the arguments, the exit code, and fragments the output must hold (stdout on
//! success, stderr on failure).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

use common::snnet;

/// Exit codes: success, an error of the command (`error: ...` on stderr), a usage error that
/// clap refuses before the command runs.
const OK: i32 = 0;
const FAILS: i32 = 1;
const USAGE: i32 = 2;

/// Runs `snnet args`, checks its exit code, that it never panics, that a failure says
/// `error: ...`, and that its output (stdout on success, stderr otherwise) holds every fragment
/// of `want`; returns that output.
fn expect(code: i32, args: &[&str], want: &[&str]) -> String {
    let output = snnet(args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "snnet {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "snnet {args:?}: {stderr}");
    let text = if code == OK {
        String::from_utf8(output.stdout).unwrap()
    } else {
        assert!(stderr.starts_with("error: "), "snnet {args:?}: {stderr}");
        stderr
    };
    for fragment in want {
        assert!(
            text.contains(fragment),
            "snnet {args:?}: no {fragment:?} in {text}"
        );
    }
    text
}

/// Runs every row of a table through [`expect`].
fn expect_all(cases: &[(i32, &[&str], &[&str])]) {
    for (code, args, want) in cases {
        expect(*code, args, want);
    }
}

/// The stdout of a successful `snnet args`.
fn stdout(args: &[&str]) -> String {
    expect(OK, args, &[])
}

/// The JSON that a successful `snnet args` prints.
fn json(args: &[&str]) -> Value {
    serde_json::from_str(&stdout(args)).unwrap()
}

/// A command line's arguments, split at spaces.
fn words(line: &str) -> Vec<&str> {
    line.split(' ').collect()
}

/// Owned arguments as `&str`s.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A path as an argument.
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A fixture file under `crates/<crate_dir>` (`fixtures/reference` at the top with `..`).
fn fixture_in(crate_dir: &str, name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", crate_dir, name]
        .iter()
        .collect();
    path.to_string_lossy().into_owned()
}

fn fixture(name: &str) -> String {
    fixture_in("../fixtures/reference", name)
}

fn zoo_fixture(name: &str) -> String {
    fixture_in("snnet-zoo/tests/fixtures", name)
}

fn core_fixture(name: &str) -> String {
    fixture_in("snnet-core/tests/fixtures", name)
}

const DEIT: &str = "deit_tiny_patch16_224,deit_small_patch16_224,deit_base_patch16_224";

#[test]
fn space_json_has_the_documented_shape() {
    let json = json(&["space", "--anchors", DEIT, "--format", "json"]);
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
    let space = |anchors: &str, flags: &[&str]| {
        let mut args = vec!["space", "--anchors", anchors, "--format", "json"];
        args.extend(flags);
        json(&args)
    };
    // Stitch counts (all evaluated unless said) of families and space rules.
    for (anchors, flags, count) in [
        (swin, &[][..], 41),
        ("resnet18,resnet50", &[], 10),
        (DEIT, &["--all-pairs"], 732),
        (DEIT, &["--kernel-size", "3"], 111),
    ] {
        assert_eq!(space(anchors, flags)["count"], count, "{anchors} {flags:?}");
    }
    let json = space(swin, &[]);
    assert_eq!(json["stitches"][9]["stage"], 2);
    assert_eq!(json["stitches"][9]["cuts"], serde_json::json!([[1, 3]]));
    let v2 = space(
        "deit3_small_patch16_224,deit3_large_patch16_224",
        &["--direction", "two-way"],
    );
    assert_eq!(
        (v2["count"].as_u64(), v2["evaluated_count"].as_u64()),
        (Some(135), Some(134))
    );
    assert_eq!(v2["stitches"][13]["evaluated"], false);
}

#[test]
fn space_table_lists_every_stitch() {
    let out = stdout(&["space", "--anchors", DEIT]);
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
    let spec = arg(&spec);
    let json = json(&[
        "space",
        "--anchors",
        "vit_s,vit_m",
        "--anchor-spec",
        spec,
        "--format",
        "json",
    ]);
    // 2 anchors + 10 cuts of the paired rule on 4 blocks.
    assert_eq!(json["count"], 12);
    let garbled = dir.path().join("garbled.json");
    std::fs::write(&garbled, "{\"anchors\": [").unwrap();
    expect_all(&[
        (
            OK,
            &["anchors", "--anchor-spec", spec],
            &["vit_m", "resnet50"],
        ),
        (
            FAILS,
            &[
                "space",
                "--anchors",
                "vit_s",
                "--anchor-spec",
                arg(&garbled),
            ],
            &["invalid anchor spec file"],
        ),
    ]);
}

#[test]
fn select_and_pareto_on_the_reference_table() {
    let table = fixture("deit_ti_s_b.jsonl");
    let out = stdout(&["select", "--table", &table, "--max-flops", "5G"]);
    assert!(out.starts_with("stitch 1 "), "{out}");
    let json = json(&[
        "select",
        "--table",
        &table,
        "--max-flops",
        "3e9",
        "--format",
        "json",
    ]);
    // The most accurate stitch under 3 GFLOPs, read off the published table.
    assert_eq!(json["cfg_id"], 19); // 2,933,260,800 FLOPs, 76.48 %: best under 3e9 in the file
    let frontier = self::json(&["pareto", "--table", &table, "--format", "json"]);
    let frontier = frontier.as_array().unwrap();
    assert_eq!(frontier.len(), 39);
    let flops: Vec<u64> = frontier
        .iter()
        .map(|r| r["flops"].as_u64().unwrap())
        .collect();
    assert!(flops.windows(2).all(|w| w[0] < w[1]));
    let params = stdout(&["pareto", "--table", &table, "--cost", "params"]);
    assert!(params.starts_with("Pareto frontier by params"));
}

#[test]
fn errors_are_clear_and_never_panic() {
    let table = fixture("deit_ti_s_b.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let bad = write(
        "bad.jsonl",
        "{\"cfg_id\": 0, \"acc1\": 70.0, \"flops\": 1}\n{\"cfg_id\": 1, \"acc1\": \n",
    );
    let dup = write(
        "dup.jsonl",
        "{\"cfg_id\": 0, \"acc1\": 70.0}\n{\"cfg_id\": 0, \"acc1\": 71.0}\n",
    );
    let nan = write("nan.jsonl", "{\"cfg_id\": 0, \"acc1\": NaN}\n");
    let missing = write(
        "nolatency.jsonl",
        "{\"cfg_id\": 0, \"acc1\": 70.0, \"flops\": 5}\n",
    );
    let swin = "swin_tiny,swin_small";
    let cases: Vec<(i32, String, &str)> = vec![
        (
            FAILS,
            "space --anchors deit_tiny_patch16,deit_small".into(),
            "did you mean deit_tiny_patch16_224",
        ),
        (
            FAILS,
            "space --anchors resnet50,resnet18".into(),
            "small to large",
        ),
        (
            FAILS,
            format!("space --anchors {swin} --stages 0,7"),
            "stage 7 does not exist",
        ),
        (
            FAILS,
            format!("space --anchors {DEIT} --stride 0"),
            "stride must be at least 1",
        ),
        (
            FAILS,
            format!("space --anchors {swin} --direction two-way"),
            "plain anchors only",
        ),
        (
            FAILS,
            format!("select --table {table} --max-flops 1G"),
            "no stitch fits",
        ),
        (
            FAILS,
            "select --table /nonexistent.jsonl --max-flops 1".into(),
            "/nonexistent.jsonl",
        ),
        (FAILS, format!("pareto --table {bad}"), "line 2"),
        (FAILS, format!("pareto --table {bad}"), "bad.jsonl"),
        (
            FAILS,
            format!("pareto --table {dup}"),
            "duplicate stitch id 0",
        ),
        (FAILS, format!("pareto --table {nan}"), ""),
        (
            FAILS,
            format!("select --table {missing} --max-latency-ms 10"),
            "latency",
        ),
        // Bad flags are usage errors (exit code 2), not panics.
        (USAGE, "select --table x.jsonl".into(), ""),
        (
            USAGE,
            "select --table x.jsonl --max-flops lots".into(),
            "not a count",
        ),
        (
            USAGE,
            format!("space --anchors {DEIT} --direction sideways"),
            "",
        ),
        (USAGE, "space".into(), ""),
        (
            USAGE,
            "run --joint-epochs 0 --out /nonexistent/never-written".into(),
            "--joint-epochs",
        ),
    ];
    for (code, line, want) in &cases {
        expect(*code, &words(line), &[want]);
    }
}

/// Counts are whole numbers from 0 to `u64::MAX`: one above, a negative one or a fraction is
/// refused (it used to be capped or rounded, and the command went on with exit 0).
#[test]
fn counts_out_of_range_are_refused() {
    let table = fixture("deit_ti_s_b.jsonl");
    let select = format!("select --table {table}");
    for (line, want) in [
        (
            format!("{select} --max-flops 18446744073709551616"),
            "above the largest count",
        ),
        (
            format!("{select} --max-flops 2e19"),
            "above the largest count",
        ),
        (
            format!("{select} --max-params 99999999999999999999G"),
            "above the largest count",
        ),
        (format!("{select} --max-flops 2.5"), "not a whole number"),
        (format!("{select} --max-flops=-5 --format=json"), "negative"),
        (
            "run --budget-flops 1e20 --out /nonexistent/x".into(),
            "above the largest count",
        ),
    ] {
        expect(USAGE, &words(&line), &[want]);
    }
    // The largest count itself is a budget: every stitch fits it.
    let line = format!("{select} --max-flops 18446744073709551615");
    let out = stdout(&words(&line));
    assert!(out.starts_with("stitch 39 "), "{out}");
}

/// `snnet forward` of the reduced DeiT fixture (`config` from [`reduced_model_config`]) with
/// `weights`, then `rest`.
fn forward_reduced(config: &str, weights: &str, rest: &[&str]) -> Vec<String> {
    let line = format!("forward --model deit_reduced --model-config {config} --weights {weights}");
    words(&line)
        .into_iter()
        .chain(rest.iter().copied())
        .map(String::from)
        .collect()
}

/// A `--model-config` file for the reduced DeiT fixture, from its export metadata.
fn reduced_model_config(dir: &Path) -> String {
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
    let out = stdout(&["models", "deit3*"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.contains("deit3_large_patch16_224"));
    assert!(
        json(&["models", "--format", "json"])
            .as_array()
            .unwrap()
            .len()
            >= 12
    );
    for (model, flops, params, blocks) in [
        (
            "deit_tiny_patch16_224",
            1_258_411_200u64,
            5_717_416u64,
            12usize,
        ),
        ("deit_small_patch16_224", 4_608_338_304, 22_050_664, 12),
        ("deit_base_patch16_224", 17_582_740_224, 86_567_656, 12),
        (
            "swin_tiny_patch4_window7_224",
            4_509_194_496,
            28_288_354,
            12,
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
        let json = json(&["cost", "--model", model, "--format", "json"]);
        assert_eq!(json["model"], model);
        assert_eq!(json["total"]["flops"], flops, "{model}");
        assert_eq!(json["total"]["params"], params, "{model}");
        let list = json["blocks"].as_array().unwrap();
        assert_eq!(list.len(), blocks, "{model}");
        assert_eq!(list[3]["index"], 3, "{model}");
    }
    let out = stdout(&["models", "swin*"]);
    assert_eq!(out.lines().count(), 5, "{out}");
    expect(
        FAILS,
        &["cost", "--model", "deit_tiny"],
        &["did you mean deit_tiny_patch16_224"],
    );
}

#[test]
fn snnet_cost_of_every_stitch() {
    let json = json(&[
        "cost",
        "--anchors",
        DEIT,
        "--reference-compat",
        "--format",
        "json",
    ]);
    assert_eq!(json["count"], 71);
    let s = &json["stitches"][24];
    assert_eq!(s["flops"], 2_758_967_808_u64);
    assert_eq!(s["params"], 13_038_760);
    assert_eq!(json["stitches"][56]["flops"], 10_048_040_448_u64);
    expect_all(&[
        (OK, &["cost", "--anchors", DEIT], &["71 stitches"]),
        (
            FAILS,
            &["cost", "--anchors", "deit_tiny_patch16_224,nope"],
            &["nope"],
        ),
    ]);
}

/// A flag that would not act in its combination is refused, never silently ignored. Rows: the
/// exit code, the command line (split at spaces) and a fragment of the error.
#[test]
fn flags_that_would_not_act_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = arg(dir.path());
    let table = fixture("deit_ti_s_b.jsonl");
    let svg = dir.path().join("plot.svg");
    let svg = arg(&svg);
    let tiny = "deit_tiny_patch16_224";
    let model = format!("--model {tiny} --weights w.pth");
    let snnet_0 = "--snnet n.safetensors --stitch 0";
    let io = "--input i.safetensors --output o.safetensors";
    let cases: Vec<(i32, String, &str)> = vec![
        // `cost --model`: the stitch-space flags and --reference-compat are --anchors' only.
        (
            USAGE,
            format!("cost --model {tiny} --reference-compat"),
            "--reference-compat",
        ),
        (USAGE, format!("cost --model {tiny} --stride 3"), "--stride"),
        (
            USAGE,
            format!("cost --model {tiny} --all-pairs"),
            "--all-pairs",
        ),
        (
            USAGE,
            format!("cost --model {tiny} --layers per-cut"),
            "--layers",
        ),
        // --stages: for hierarchical anchors only.
        (
            FAILS,
            "space --anchors deit_tiny,deit_small --stages 0".into(),
            "plain",
        ),
        (
            FAILS,
            format!("cost --anchors {tiny},deit_small_patch16_224 --stages 0"),
            "plain",
        ),
        // `run --shards`: at most a batch's images, refused before the run folder is written.
        (
            FAILS,
            format!("run --shards 1000 --out {out}"),
            "every shard needs at least one",
        ),
        // `plot --anchors`: every id must be in the table.
        (
            FAILS,
            format!("plot --table {table} --anchors 0,1,999 --output {svg}"),
            "no row for stitch 999",
        ),
        // `init`: --data reads a --dataset only.
        (
            USAGE,
            format!("init --anchors {tiny} --weights w.pth {io} --data {out}"),
            "--data",
        ),
        (
            USAGE,
            format!("init --anchors {tiny} --weights w --images {out} --data {out} --output o"),
            "--data",
        ),
        // `forward --snnet`: --weights and --model-config are --model's.
        (
            USAGE,
            format!("forward {snnet_0} --weights w.pth --image i.png"),
            "--weights",
        ),
        // `forward`: each mode's flags are refused in the other (clap excuses a missing
        // requirement that conflicts with a present flag: `requires` alone let them pass).
        (
            USAGE,
            format!("forward {model} --image i.png --stitch 3"),
            "--stitch",
        ),
        (
            USAGE,
            format!("forward {model} --image i.png --output o.st"),
            "--output",
        ),
        (
            USAGE,
            format!("forward {model} --image i.png --features"),
            "--features",
        ),
        (
            USAGE,
            format!("forward {model} {io} --labels l.txt"),
            "--labels",
        ),
        // `eval` reads the test split only.
        (
            USAGE,
            "eval --snnet n --output e.jsonl --batch-size 8".into(),
            "--batch-size",
        ),
    ];
    for (code, line, want) in &cases {
        expect(*code, &words(line), &[want]);
    }
    assert!(!Path::new(svg).exists(), "a refused plot writes nothing");
    // `train`: its flags, the exit code and a fragment of the error.
    let flags: &[(&str, i32, &str)] = &[
        // It reads the training split only.
        ("--test-samples 100", USAGE, "--test-samples"),
        // The teacher's flags go together and name a known model.
        (
            "--teacher fmnist_vit_l",
            FAILS,
            "--teacher and --teacher-weights go together",
        ),
        (
            "--teacher no_such_model --teacher-weights t.pth",
            FAILS,
            "no_such_model",
        ),
        (
            "--distill none --teacher l --teacher-weights t.pth",
            FAILS,
            "--teacher distils",
        ),
        (
            "--model-config m.json",
            FAILS,
            "--model-config defines a teacher's model",
        ),
        // Flags of a distillation or sampling not chosen. A FLOPs-group weighting without
        // FLOPs groups would be ignored silently: refused.
        (
            "--flops-sampling-k 35",
            FAILS,
            "needs --sampling flops-grouped",
        ),
        (
            "--sampling uniform --flops-sampling-k 35",
            FAILS,
            "flops-grouped",
        ),
        (
            "--flops-gap 2G",
            FAILS,
            "--flops-gap sizes FLOPs groups: it needs --sampling",
        ),
        (
            "--stitch-only --anchor-lr-scale 0.1",
            USAGE,
            "--anchor-lr-scale",
        ),
        ("--temperature 2", FAILS, "--temperature softens"),
        (
            "--distill none --alpha 0.3",
            FAILS,
            "--alpha weighs the distillation",
        ),
        (
            "--distill none --teacher-targets online",
            FAILS,
            "--teacher-targets",
        ),
        // Values the recipe or the data cannot use: refused before any file is read.
        (
            "--shards 1000000000000",
            FAILS,
            "every shard needs at least one",
        ),
        ("--batch-size 0", FAILS, "batch size must be at least 1"),
        (
            "--grad-clip=-1",
            FAILS,
            "gradient-clipping norm must be positive",
        ),
        (
            "--weight-decay NaN",
            FAILS,
            "weight decay must be non-negative",
        ),
        (
            "--stitch-lr-scale=-1",
            FAILS,
            "learning-rate scales must be non-negative",
        ),
        (
            "--anchor-lr-scale inf",
            FAILS,
            "learning-rate scales must be non-negative",
        ),
        ("--warmup-epochs NaN", FAILS, "warm-up of NaN epochs"),
        ("--lr 0", FAILS, "learning rates must be positive"),
        ("--flops-gap=-1 --sampling flops-grouped", USAGE, "negative"),
    ];
    for (flags, code, want) in flags {
        let line = format!("train --snnet none.safetensors --out {out} {flags}");
        expect(*code, &words(&line), &[want]);
    }
}

#[test]
fn forward_matches_the_timm_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let config = reduced_model_config(dir.path());
    let output = dir.path().join("out.safetensors");
    let io = zoo_fixture("deit_reduced.io.safetensors");
    let pth = zoo_fixture("deit_reduced.weights.pth");
    let safetensors = zoo_fixture("deit_reduced.weights.safetensors");
    let image = dir.path().join("img.png");
    std::fs::write(&image, image_bytes()).unwrap();
    let forward = |weights: &str, rest: &[&str]| forward_reduced(&config, weights, rest);
    let to_output = ["--output", arg(&output)];
    let cases: Vec<(i32, Vec<String>, &[&str])> = vec![
        (
            OK,
            forward(
                &pth,
                &[&["--input", &io], &to_output[..], &["--features"]].concat(),
            ),
            &["wrote logits [2, 10]"],
        ),
        // Errors: missing weights, an input that is not a tensor file, a wrong input key.
        (
            FAILS,
            forward("/nonexistent.safetensors", &["--image", arg(&image)]),
            &["/nonexistent.safetensors"],
        ),
        (
            FAILS,
            forward(
                &safetensors,
                &[&["--input", arg(&image)], &to_output[..]].concat(),
            ),
            &["tensor file"],
        ),
        (
            FAILS,
            forward(
                &safetensors,
                &[&["--input", &safetensors], &to_output[..]].concat(),
            ),
            &["no tensor named `input`"],
        ),
    ];
    for (code, args, want) in &cases {
        expect(*code, &strs(args), want);
    }
    // The first case's output against timm's.
    let ours = snnet_core::zoo::tensor_io::read_tensors(&output).unwrap();
    let timm = snnet_core::zoo::tensor_io::read_tensors(Path::new(&io)).unwrap();
    for key in ["logits", "features.0", "features.1"] {
        let (a, b) = (
            ours[key].as_slice::<f32>().unwrap(),
            timm[key].as_slice::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{key}");
        assert!(max_abs_diff(a, b) <= 1e-4, "{key}: {}", max_abs_diff(a, b));
    }

    // An image: top-5 with probabilities.
    let args = forward(&safetensors, &["--image", arg(&image)]);
    let out = stdout(&strs(&args));
    assert_eq!(
        out.lines().filter(|l| l.contains("class")).count(),
        5,
        "{out}"
    );
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
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

/// Writes the SN-Net fixture's anchors as a --model-config file and its tensors as input files.
fn snnet_fixture(dir: &Path) -> (String, String, String) {
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
    let snnet_path = dir.path().join("random.safetensors");
    let init = |rest: &[&'static str]| -> Vec<&str> {
        let mut args = vec![
            "init",
            "--anchors",
            "vit0,vit1,vit2",
            "--random-weights",
            "--model-config",
            &models,
            "--output",
            arg(&snnet_path),
        ];
        args.extend(rest);
        args
    };
    let cases: Vec<(i32, Vec<&str>, &[&str])> = vec![
        (FAILS, init(&[]), &["--init kaiming"]),
        (
            FAILS,
            init(&["--init", "kaiming", "--samples", "5"]),
            &["--samples"],
        ),
        (
            FAILS,
            init(&["--init", "kaiming", "--allow-nonfinite"]),
            &["--allow-nonfinite"],
        ),
        (
            FAILS,
            init(&["--init", "kaiming", "--stages", "0"]),
            &["--stages", "plain"],
        ),
        (OK, init(&["--init", "kaiming"]), &["23 stitches"]),
    ];
    for (code, args, want) in &cases {
        expect(*code, args, want);
    }
    let table = dir.path().join("profile.jsonl");
    stdout(&[
        "profile",
        "--snnet",
        arg(&snnet_path),
        "--ids",
        "0,3,22",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--output",
        arg(&table),
    ]);
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
fn init_then_forward_a_stitch() {
    let dir = tempfile::tempdir().unwrap();
    let (models, images, input) = snnet_fixture(dir.path());
    let weights = (0..3)
        .map(|a| core_fixture(&format!("vit{a}.safetensors")))
        .collect::<Vec<_>>()
        .join(",");
    let snnet_file = dir.path().join("snnet.safetensors");
    let snnet_path = arg(&snnet_file);
    let logits_file = dir.path().join("logits.safetensors");
    let empty = dir.path().join("empty.safetensors");
    snnet_core::zoo::tensor_io::write_tensors(
        &empty,
        &[(
            "input".to_owned(),
            snnet_core::burn::tensor::TensorData::new(Vec::<f32>::new(), [0, 3, 32, 32]),
        )]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let init = |weights: &str, images: &str| {
        vec![
            "init",
            "--anchors",
            "vit0,vit1,vit2",
            "--weights",
            weights,
            "--model-config",
            &models,
            "--input",
            images,
            "--output",
            snnet_path,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let forward = |stitch: &str| {
        [
            "forward",
            "--snnet",
            snnet_path,
            "--stitch",
            stitch,
            "--input",
            &input,
            "--output",
            arg(&logits_file),
        ]
        .map(String::from)
        .to_vec()
    };
    let mut ls = init(&weights, &images);
    ls.push("--reference-compat".into());
    let with_models = {
        let mut args = forward("5");
        args.extend(["--model-config".into(), models.clone()]);
        args
    };
    let cases: Vec<(i32, Vec<String>, &[&str])> = vec![
        (OK, ls, &["23 stitches", "6 layers fitted"]),
        (OK, forward("5"), &["stitch 5"]),
        // Errors: unknown stitch, mismatched weights, no images, a flag --snnet would ignore.
        (FAILS, forward("99"), &["99"]),
        (
            FAILS,
            init(&core_fixture("vit0.safetensors"), &images),
            &["3 anchors but 1 weight files"],
        ),
        (FAILS, init(&weights, arg(&empty)), &["is empty"]),
        (FAILS, with_models, &["--model-config"]),
    ];
    for (code, args, want) in &cases {
        expect(*code, &strs(args), want);
    }
    // The second case's logits against the reference's.
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
    let diff = max_abs_diff(&a, &b);
    assert!(diff <= 1e-4, "max abs diff {diff}");
}

/// NaN weights are refused, naming the tensor; `--allow-nonfinite` loads them with a warning
/// per tensor.
#[test]
fn nonfinite_weights_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let config = reduced_model_config(dir.path());
    let mut tensors = snnet_core::zoo::tensor_io::read_tensors(Path::new(&zoo_fixture(
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
    let mut args = forward_reduced(
        &config,
        arg(&weights),
        &["--input", &input, "--output", arg(&output)],
    );
    expect(FAILS, &strs(&args), &["norm.bias", "NaN"]);
    assert!(!output.exists());
    args.push("--allow-nonfinite".into());
    let allowed = snnet(&strs(&args));
    assert_eq!(allowed.status.code(), Some(OK));
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
