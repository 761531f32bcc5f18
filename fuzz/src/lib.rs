//! Shared pieces of the fuzz targets in `fuzz_targets/`: the tiny models they parse files
//! against, a scratch file for the parsers that read paths, and the seed corpus.
//!
//! Every target calls [`init`] once at start-up (libFuzzer's `LLVMFuzzerInitialize`, before the
//! corpus is read): with `SNNET_FUZZ_SEED_DIR=<dir>` set it writes the target's valid seed inputs
//! ([`seeds::seeds`]) into `<dir>`, so `run_all.sh` (or a user) gets a corpus from the committed
//! generator without a separate build.

#![forbid(unsafe_code)]

pub mod pickle;
pub mod seeds;

use std::path::PathBuf;
use std::sync::OnceLock;

use snnet_core::burn::tensor::Device;
use snnet_core::zoo::{ModelConfig, ModelEntry, PretrainedConfig, VitConfig};
use snnet_core::{SnNet, SnNetConfig, SpaceConfig};

/// The environment variable naming the folder [`init`] writes the seed corpus to.
pub const SEED_DIR_VAR: &str = "SNNET_FUZZ_SEED_DIR";

/// Start-up of a fuzz target: writes its seeds when [`SEED_DIR_VAR`] is set.
///
/// # Panics
/// When the seeds cannot be generated or written: a broken generator must not go unnoticed.
pub fn init(target: &str) {
    let Some(dir) = std::env::var_os(SEED_DIR_VAR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("cannot create the seed folder");
    let seeds = seeds::seeds(target);
    assert!(!seeds.is_empty(), "no seeds for target {target}");
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("cannot write a seed");
    }
    eprintln!("{target}: wrote {} seeds to {}", seeds.len(), dir.display());
}

/// With `SNNET_FUZZ_DEBUG` set, prints what a parser returned (`ok` or the error): to check that
/// the seeds parse, or why a reproduced input is refused. Silent otherwise.
pub fn debug<T, E: std::fmt::Display>(what: &str, result: &Result<T, E>) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("SNNET_FUZZ_DEBUG").is_some()) {
        match result {
            Ok(_) => eprintln!("{what}: ok"),
            Err(e) => eprintln!("{what}: {e}"),
        }
    }
}

/// What a parser returned, as [`debug`] prints it, then its value: `None` for an error (the
/// target stops there).
pub fn parsed<T, E: std::fmt::Display>(what: &str, result: Result<T, E>) -> Option<T> {
    debug(what, &result);
    result.ok()
}

/// The CPU device (Burn's Flex backend) every target runs on.
pub fn device() -> Device {
    Device::default()
}

/// The environment variable naming the folder of [`scratch_file`] (`run_all.sh` sets it to a
/// folder it removes afterwards).
pub const SCRATCH_DIR_VAR: &str = "SNNET_FUZZ_SCRATCH_DIR";

/// A per-process scratch file for the parsers that take a path (weight files, checkpoints,
/// tensor files): in [`SCRATCH_DIR_VAR`]'s folder when set, else on `/dev/shm` (memory) when it
/// exists, else in the temporary folder. Each execution overwrites it with its input; it is
/// left behind when the process ends.
///
/// # Panics
/// When the file cannot be written (a broken machine, not a finding).
pub fn scratch_file(tag: &str, bytes: &[u8]) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        if let Some(dir) = std::env::var_os(SCRATCH_DIR_VAR) {
            PathBuf::from(dir)
        } else if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let path = dir.join(format!("snnet-fuzz-{}-{tag}.bin", std::process::id()));
    std::fs::write(&path, bytes).expect("cannot write the scratch file");
    path
}

/// A tiny ViT (4×4 images, one 4×4 patch, 4 channels, 1 head, 1 block, 2 classes, ~400
/// parameters): the model the weight-file targets load into, so each execution is cheap.
pub fn tiny_vit_entry() -> ModelEntry {
    vit_entry("fuzz_vit", 4, 1)
}

fn vit_entry(name: &str, embed_dim: usize, depth: usize) -> ModelEntry {
    let config = VitConfig {
        img_size: [4, 4],
        patch_size: [4, 4],
        num_classes: 2,
        mlp_hidden: 2 * embed_dim,
        ..VitConfig::base(embed_dim, depth, 1)
    };
    ModelEntry {
        name: name.to_owned(),
        config: ModelConfig::Vit(config),
        pretrained: None,
    }
}

/// A tiny SN-Net: two ViT anchors (4 and 8 channels, 2 blocks each, 4×4 images).
pub fn tiny_snnet_config() -> SnNetConfig {
    SnNetConfig::new(
        vec![vit_entry("fuzz_vit_s", 4, 2), vit_entry("fuzz_vit_m", 8, 2)],
        SpaceConfig::default(),
    )
}

/// [`tiny_snnet_config`] with random weights.
///
/// # Panics
/// When the tiny network cannot be built (a library regression, reported as a finding).
pub fn tiny_snnet(device: &Device) -> SnNet {
    tiny_snnet_config()
        .init(device)
        .expect("the tiny SN-Net builds")
}

/// The preprocessing of the tiny models' inputs (`[3, 4, 4]`, ImageNet normalisation).
pub fn tiny_pretrained() -> PretrainedConfig {
    PretrainedConfig::imagenet([3, 4, 4], 2)
}
