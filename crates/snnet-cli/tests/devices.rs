//! `--devices`: one data-parallel shard per device. On one CPU, `--devices cpu,cpu` is the same
//! computation as `--shards 2` (two shards on threads of the CPU), to the byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

mod common;

use std::path::Path;

use snnet_train::data::idx::write_idx;

use common::snnet;

/// A Fashion-MNIST folder of `n` synthetic training and test images (labels 0..9 in turn).
fn synthetic_data(dir: &Path, n: usize) {
    let images: Vec<u8> = (0..n * 28 * 28)
        .map(|i| u8::try_from((i * 37 + i / 784 * 11) % 256).unwrap())
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| u8::try_from(i % 10).unwrap()).collect();
    for prefix in ["train", "t10k"] {
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &[n, 28, 28],
            &images,
        )
        .unwrap();
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            &[n],
            &labels,
        )
        .unwrap();
    }
}

/// Pretrains the smallest anchor for one epoch of 4 steps with `parallel` and returns the
/// weights file's bytes.
fn pretrain(data: &Path, out: &Path, parallel: &[&str]) -> Vec<u8> {
    let mut args = vec![
        "pretrain",
        "--model",
        "fmnist_vit_s",
        "--data",
        data.to_str().unwrap(),
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--warmup-epochs",
        "0",
        "--lr",
        "1e-2",
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(parallel);
    let output = snnet(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "snnet {args:?}: {stderr}");
    std::fs::read(out).unwrap()
}

#[test]
fn two_cpu_devices_are_two_shards_on_threads_to_the_byte() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_data(dir.path(), 32);
    let devices = pretrain(
        dir.path(),
        &dir.path().join("devices.safetensors"),
        &["--devices", "cpu,cpu"],
    );
    let threads = pretrain(
        dir.path(),
        &dir.path().join("threads.safetensors"),
        &["--device", "cpu", "--shards", "2"],
    );
    assert!(devices.len() > 1_000);
    assert!(
        devices == threads,
        "--devices cpu,cpu and --shards 2 differ"
    );
    // The comparison can tell shardings apart: one shard rounds differently.
    let one = pretrain(
        dir.path(),
        &dir.path().join("one.safetensors"),
        &["--devices", "cpu"],
    );
    assert!(one != devices, "one shard gave the bytes of two");
}

#[test]
fn devices_conflict_with_device_and_shards_and_bad_entries_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    for (args, code, want) in [
        (
            vec!["train", "--snnet", "x.safetensors", "--out", out],
            2,
            "--shards",
        ),
        (
            vec!["train", "--snnet", "x.safetensors", "--out", out],
            2,
            "--device",
        ),
        (vec!["run", "--out", out], 2, "--shards"),
        (vec!["run", "--out", out], 2, "--device"),
        (vec!["run", "--out", out], 2, "`gpu`"),
        (
            vec!["train", "--snnet", "x.safetensors", "--out", out],
            2,
            "`tpu`",
        ),
        (vec!["run", "--out", out], 1, "every device's shard"),
    ] {
        let extra: &[&str] = match want {
            "--shards" => &["--devices", "cpu,cpu", "--shards", "2"],
            "--device" => &["--devices", "cpu,cpu", "--device", "cpu"],
            "`gpu`" => &["--devices", "cpu,gpu"],
            "`tpu`" => &["--devices", "tpu"],
            _ => &["--devices", &"cpu,".repeat(65)[..259]],
        };
        let mut args = args.clone();
        args.extend_from_slice(extra);
        let output = snnet(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "snnet {args:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "snnet {args:?}: no {want:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "snnet {args:?}: {stderr}");
    }
    assert!(!Path::new(out).exists(), "a refused run wrote its folder");
}
