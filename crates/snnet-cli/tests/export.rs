//! `snnet export`, `snnet quantize` and the verbs that take their files as `--snnet`, end to
//! end on a random-weights SN-Net of the reference fixture's three small ViTs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::path::{Path, PathBuf};
use std::process::Command;

use snnet_core::zoo::tensor_io::read_tensors;

fn snnet(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_snnet"))
        .args(args)
        .output()
        .expect("the snnet binary runs");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        stderr,
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = snnet(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn fails(args: &[&str], want: &str) {
    let (code, _, err) = snnet(args);
    assert_ne!(code, 0, "{args:?} should fail");
    assert!(err.contains(want), "{args:?}: {err}");
}

/// `forward --snnet SNNET [--stitch ID] --input INPUT --output OUTPUT [--features]`.
fn forward_args<'a>(
    snnet: &'a Path,
    stitch: Option<&'a str>,
    input: &'a Path,
    output: &'a Path,
    features: bool,
) -> Vec<&'a str> {
    let mut args = vec!["forward", "--snnet", s(snnet)];
    if let Some(id) = stitch {
        args.extend(["--stitch", id]);
    }
    args.extend(["--input", s(input), "--output", s(output)]);
    if features {
        args.push("--features");
    }
    args
}

fn core_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../snnet-core/tests/fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The tensors of a safetensors file, by name: (name, shape, values).
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    read_tensors(path)
        .unwrap()
        .into_iter()
        .map(|(name, data)| {
            let values = data.as_slice::<f32>().unwrap().to_vec();
            (name, data.shape().to_vec(), values)
        })
        .collect()
}

/// The files of a test in `d`: a random-weights SN-Net of the fixture's three ViTs, the
/// fixture's input, and its stitch 5 exported (with what `snnet export` said).
struct Files {
    net: PathBuf,
    input: PathBuf,
    stitch: PathBuf,
    export_out: String,
}

fn files(d: &Path) -> Files {
    // The fixture's anchors as a model config, its input as a file.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(core_fixture("snnet_vit.json")).unwrap())
            .unwrap();
    let models = d.join("models.json");
    std::fs::write(
        &models,
        serde_json::json!({"models": json["anchors"]}).to_string(),
    )
    .unwrap();
    let bytes = std::fs::read(core_fixture("snnet_vit.io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let input = d.join("input.safetensors");
    safetensors::serialize_to_file([("input", st.tensor("input").unwrap())], None, &input).unwrap();

    let net = d.join("net.safetensors");
    ok(&[
        "init",
        "--anchors",
        "vit0,vit1,vit2",
        "--random-weights",
        "--init",
        "kaiming",
        "--model-config",
        s(&models),
        "--output",
        s(&net),
    ]);
    let stitch = d.join("stitch5.safetensors");
    let export_out = ok(&[
        "export",
        "--snnet",
        s(&net),
        "--stitch",
        "5",
        "--output",
        s(&stitch),
    ]);
    Files {
        net,
        input,
        stitch,
        export_out,
    }
}

#[test]
fn export_quantize_and_run_a_stitch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Files {
        net,
        input,
        stitch,
        export_out,
    } = files(d);
    assert!(export_out.contains("stitch 5"), "{export_out}");
    assert!(std::fs::metadata(&stitch).unwrap().len() < std::fs::metadata(&net).unwrap().len());

    // The stitch file runs with no --stitch, its logits the SN-Net's bit for bit.
    let (from_net, from_stitch) = (d.join("a.safetensors"), d.join("b.safetensors"));
    ok(&forward_args(&net, Some("5"), &input, &from_net, true));
    ok(&forward_args(&stitch, None, &input, &from_stitch, true));
    let (a, b) = (tensors(&from_net), tensors(&from_stitch));
    assert_eq!(a, b);
    let names: Vec<&str> = a.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["features.0", "logits"]);
    assert_eq!(a[0].1.len(), 4, "a map [B, C, H, W]");

    // Bad input: --stitch on a stitch file, an id out of range, a truncated file.
    fails(
        &forward_args(&stitch, Some("5"), &input, &from_stitch, false),
        "drop --stitch",
    );
    fails(
        &forward_args(&net, None, &input, &from_stitch, false),
        "--stitch",
    );
    fails(
        &[
            "export",
            "--snnet",
            s(&net),
            "--stitch",
            "99",
            "--output",
            s(&d.join("x")),
        ],
        "99",
    );
    let cut = d.join("cut.safetensors");
    let whole = std::fs::read(&stitch).unwrap();
    std::fs::write(&cut, &whole[..whole.len() - 64]).unwrap();
    fails(
        &forward_args(&cut, None, &input, &from_stitch, false),
        "truncated",
    );

    // int8: the SN-Net and the stitch, as burnpack (extension free), taken as --snnet.
    let qnet = d.join("net.int8");
    let out = ok(&["quantize", "--snnet", s(&net), "--output", s(&qnet)]);
    assert!(out.contains("int8"), "{out}");
    assert!(std::fs::metadata(&qnet).unwrap().len() < std::fs::metadata(&net).unwrap().len());
    let qstitch = d.join("stitch.bpk");
    ok(&["quantize", "--snnet", s(&stitch), "--output", s(&qstitch)]);
    let (qa, qb) = (d.join("qa.safetensors"), d.join("qb.safetensors"));
    ok(&forward_args(&qnet, Some("5"), &input, &qa, false));
    ok(&forward_args(&qstitch, None, &input, &qb, false));
    assert_eq!(tensors(&qa), tensors(&qb));
    assert_ne!(tensors(&qa), tensors(&from_net)[1..].to_vec());
    // Verbs that need f32 weights refuse a quantized file.
    fails(
        &[
            "export",
            "--snnet",
            s(&qnet),
            "--stitch",
            "5",
            "--output",
            s(&d.join("y")),
        ],
        "int8",
    );
    fails(
        &["quantize", "--snnet", s(&qnet), "--output", s(&d.join("z"))],
        "already",
    );
}

/// A `snnet serve` child process, killed when dropped (also when a test fails).
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 POST to `addr`: the status and the body.
fn post(addr: &str, target: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[test]
fn profile_and_serve_a_stitch_file() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Files { input, stitch, .. } = files(d);
    let packed = d.join("stitch5.bpk");
    ok(&["quantize", "--snnet", s(&stitch), "--output", s(&packed)]);

    // `profile` on a stitch file (safetensors, int8 burnpack): a one-row table.
    let profile = |file: &Path, table: &Path, extra: &[&str]| {
        let mut args = vec![
            "profile",
            "--snnet",
            s(file),
            "--iters",
            "2",
            "--warmup",
            "1",
            "--no-memory",
            "--output",
            s(table),
        ];
        args.extend(extra);
        ok(&args)
    };
    let table = d.join("table.jsonl");
    // The last one at batch 2, the batch the server below runs its latency figures at.
    for (file, extra) in [
        (&packed, &[][..]),
        (&packed, &["--dequantize-at-load"][..]),
        (&stitch, &["--batch", "2"][..]),
    ] {
        let out = profile(file, &table, extra);
        assert!(out.starts_with("1 stitches"), "{out}");
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(&table)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["cfg_id"], 5, "{rows:?}");
        assert!(rows[0]["latency_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(
            rows[0]["profile"]["batch"],
            extra.get(1).map_or(1, |_| 2),
            "{rows:?}"
        );
    }
    fails(
        &[
            "profile",
            "--snnet",
            s(&stitch),
            "--ids",
            "3",
            "--output",
            s(&d.join("x.jsonl")),
        ],
        "runs only stitch 5",
    );
    fails(
        &[
            "profile",
            "--snnet",
            s(&stitch),
            "--allow-nonfinite",
            "--output",
            s(&d.join("x.jsonl")),
        ],
        "--allow-nonfinite",
    );

    // `--deadline-config`: a missing file, an unknown field, an invalid value and a wrong type are refused
    // before the server starts.
    let tuning = d.join("deadline.json");
    let serve_with = |config: &Path| -> Vec<String> {
        [
            "serve",
            "--snnet",
            s(&stitch),
            "--table",
            s(&table),
            "--addr",
            "127.0.0.1:0",
            "--deadline-config",
            s(config),
            "--batch",
            "2",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    fails(&as_strs(&serve_with(&d.join("absent.json"))), "cannot read");
    for (json, want) in [
        (
            r#"{"idle_half_lif_ms": 50}"#,
            "unknown field `idle_half_lif_ms`",
        ),
        (r#"{"gain": 0}"#, "invalid deadline config"),
        (r#"{"late_share": "x"}"#, "invalid type"),
    ] {
        std::fs::write(&tuning, json).unwrap();
        fails(&as_strs(&serve_with(&tuning)), want);
    }
    std::fs::write(&tuning, r#"{"idle_half_life_ms": 50}"#).unwrap();
    // A default deadline needs a profile at the server's --batch (the table's is at 2).
    let mut batch_1 = serve_with(&tuning);
    batch_1.truncate(batch_1.len() - 2);
    batch_1.extend(["--deadline-ms".to_owned(), "50".to_owned()]);
    fails(
        &as_strs(&batch_1),
        "a default deadline uses a latency profile measured on",
    );
    // A nice value for the forward threads outside -20..=19 is refused too.
    let mut too_nice = serve_with(&tuning);
    too_nice.extend(["--forward-nice".to_owned(), "20".to_owned()]);
    fails(&as_strs(&too_nice), "nice value must be within -20..=19");

    // `serve` the stitch file with that table (and a valid deadline config, the forward
    // threads at nice 5): stitch 5 answers; another id is a 400.
    let (logits, input_body) = (d.join("logits.safetensors"), std::fs::read(&input).unwrap());
    ok(&forward_args(&stitch, None, &input, &logits, false));
    let logits = &tensors(&logits)[0].2;
    let classes = logits.len() / tensors(&input)[0].1[0];
    let top = (0..classes)
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap();
    let mut server = Served(
        Command::new(env!("CARGO_BIN_EXE_snnet"))
            .args(serve_with(&tuning))
            .args(["--forward-nice", "5"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("serving 1 stitches"), "{line}");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (status, body) = post(&addr, "/v1/classify", &input_body);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["stitch"], 5, "{answer}");
    assert_eq!(answer["predictions"][0][0]["index"], top, "{answer}");
    // A deadline runs on the batch-2 profile.
    let (status, body) = post(&addr, "/v1/classify?deadline_ms=60000", &input_body);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["stitch"], 5, "{answer}");
    assert!(
        answer["deadline_left_ms"].as_f64().unwrap() > 0.0,
        "{answer}"
    );
    let (status, body) = post(&addr, "/v1/classify?stitch=3", &input_body);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("runs only stitch 5"), "{body}");
}
