//! The Fashion-MNIST demo: its anchor family and the data settings of its training and
//! evaluation.
//!
//! The family ([`ANCHORS_JSON`], `configs/fashion_mnist_vit.json` in this crate) is three ViTs
//! with patch 4 on 1×28×28 (49 patches and a class token), widths 16/32/64 (1/2/4 heads, MLP
//! ratio 2), equal depth 6: [`ANCHOR_NAMES`], small to large, 1.16 / 3.55 / 12.01 MFLOPs.
//! Why this family: docs/REPRODUCTION.md (the candidates measured). [`anchor_registry`] is the zoo's built-in registry with
//! them added, the registry the `snnet` CLI resolves names in.
//!
//! [`DataConfig`] says which Fashion-MNIST images a step uses (folder, subset sizes, batch size,
//! seed, data-parallel shards) and builds the batchers for an anchor: its input size, Fashion-MNIST's
//! normalisation, augmentation for training only.
//!
//! ```no_run
//! use snnet_train::burn::tensor::Device;
//! use snnet_train::fashion_mnist::{ANCHOR_NAMES, DataConfig, anchor_registry};
//!
//! let registry = anchor_registry()?;
//! let small = registry.get(ANCHOR_NAMES[0]).map_err(snnet_train::Error::from)?;
//! let data = DataConfig { train_samples: 1_000, ..DataConfig::default() };
//! let batcher = data.train_batcher(small, &Device::default().autodiff())?;
//! assert_eq!(batcher.batches_per_epoch(), 7); // 1,000 / 128, the last partial batch dropped
//! # Ok::<(), snnet_train::Error>(())
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use snnet_core::{ModelEntry, Registry};

use crate::data::{BatchConfig, Batcher, DEFAULT_DIR, FashionMnist, Split, Transform};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::parallel::DataParallel;

/// The anchor family's model configs (the zoo's JSON format: `{"models": [...]}`).
pub const ANCHORS_JSON: &str = include_str!("../configs/fashion_mnist_vit.json");

/// Names of the family's anchors, small to large.
pub const ANCHOR_NAMES: [&str; 3] = ["fmnist_vit_s", "fmnist_vit_m", "fmnist_vit_l"];

/// Adds the family to `registry`, unless it already has a model of the first anchor's name
/// (e.g. from a custom model config).
///
/// # Errors
/// [`Error::Zoo`] if the configs do not parse (they are tested to).
pub fn add_anchors(registry: &mut Registry) -> Result<()> {
    if registry.get(ANCHOR_NAMES[0]).is_err() {
        registry.add_json_str(ANCHORS_JSON)?;
    }
    Ok(())
}

/// The zoo's built-in models and the Fashion-MNIST anchors.
///
/// # Errors
/// As [`add_anchors`].
pub fn anchor_registry() -> Result<Registry> {
    let mut registry = Registry::builtin();
    add_anchors(&mut registry)?;
    Ok(registry)
}

/// The shipped pretrained weights of [`ANCHOR_NAMES`], in order (timm layout, safetensors;
/// `configs/fmnist_vit_{s,m,l}.safetensors` in this crate), trained by
/// `scripts/pretrain_anchors.sh`. Recipe, seed, data, accuracy and costs:
/// `configs/MODEL_CARD.md`.
const PRETRAINED: [&[u8]; 3] = [
    include_bytes!("../configs/fmnist_vit_s.safetensors"),
    include_bytes!("../configs/fmnist_vit_m.safetensors"),
    include_bytes!("../configs/fmnist_vit_l.safetensors"),
];

/// The recorded SHA-256 of the shipped weights, as `sha256sum` prints them
/// (`configs/SHA256SUMS`).
pub const PRETRAINED_SHA256SUMS: &str = include_str!("../configs/SHA256SUMS");

/// The recorded SHA-256 (lower-case hex) of anchor `name`'s shipped weights.
///
/// # Errors
/// [`Error::NoPretrained`] for a name without shipped weights.
pub fn pretrained_sha256(name: &str) -> Result<&'static str> {
    PRETRAINED_SHA256SUMS
        .lines()
        .filter_map(|line| line.split_once("  "))
        .find(|(_, file)| file.trim() == format!("{name}.safetensors"))
        .map(|(sum, _)| sum.trim())
        .ok_or_else(|| Error::NoPretrained(name.to_owned()))
}

/// The SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks `bytes` against the recorded SHA-256 of anchor `name`'s shipped weights.
///
/// # Errors
/// [`Error::NoPretrained`], and [`Error::Checksum`] when the bytes differ (a damaged file).
pub fn verify_pretrained(name: &str, what: &Path, bytes: &[u8]) -> Result<()> {
    let expected = pretrained_sha256(name)?;
    let actual = sha256_hex(bytes);
    if actual != expected {
        return Err(Error::Checksum {
            path: what.to_owned(),
            expected: expected.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Anchor `name`'s shipped weights, checked against their recorded SHA-256.
///
/// # Errors
/// As [`verify_pretrained`].
pub fn pretrained_weights(name: &str) -> Result<&'static [u8]> {
    let index = ANCHOR_NAMES
        .iter()
        .position(|n| *n == name)
        .ok_or_else(|| Error::NoPretrained(name.to_owned()))?;
    let bytes = PRETRAINED[index];
    verify_pretrained(
        name,
        Path::new(&format!("configs/{name}.safetensors")),
        bytes,
    )?;
    Ok(bytes)
}

/// Writes anchor `name`'s shipped weights to `path` (atomically), after checking them; a file
/// already at `path` is checked instead and kept when it matches.
///
/// # Errors
/// As [`verify_pretrained`]; [`Error::Checksum`] for a damaged file at `path`; write errors.
pub fn install_pretrained(name: &str, path: &Path) -> Result<()> {
    if path.exists() {
        let bytes = std::fs::read(path).map_err(|e| Error::Checkpoint {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        return verify_pretrained(name, path, &bytes);
    }
    let bytes = pretrained_weights(name)?;
    snnet_fs::write_atomic(path, bytes).map_err(|e| Error::Checkpoint {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Which Fashion-MNIST images a training or evaluation uses, and how they are batched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataConfig {
    /// Folder of the IDX files (`None`: Debian's `dataset-fashion-mnist`, [`DEFAULT_DIR`]).
    #[serde(rename = "data")]
    pub dir: Option<PathBuf>,
    /// Training images to use (the first N; 0: all 60,000).
    pub train_samples: usize,
    /// Test images to evaluate on (the first N; 0: all 10,000).
    pub test_samples: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Seed of the data order and augmentation.
    pub seed: u64,
    /// Data-parallel shards per training batch, each on its own thread (0: [`default_shards`]).
    pub shards: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: None,
            train_samples: 0,
            test_samples: 0,
            batch_size: 128,
            seed: 0,
            shards: 0,
        }
    }
}

/// The batch size of evaluation batchers.
pub const EVAL_BATCH_SIZE: usize = 256;

impl DataConfig {
    /// The IDX files' folder.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(DEFAULT_DIR))
    }

    /// The shuffled, augmented training batches (the first `train_samples` images) prepared
    /// for `anchor`, on `device` (give it autodiff to train).
    ///
    /// # Errors
    /// Dataset errors (missing or corrupt files) and [`Error::InvalidConfig`]
    /// for a batch size of 0.
    pub fn train_batcher(
        &self,
        anchor: &ModelEntry,
        device: &Device,
    ) -> Result<Batcher<FashionMnist>> {
        let train = split(self.dir(), Split::Train, self.train_samples, anchor)?;
        Batcher::new(
            train,
            BatchConfig::train(self.batch_size, self.seed),
            device.clone(),
        )
    }

    /// The test batches (the first `test_samples` images, in order, [`EVAL_BATCH_SIZE`] each,
    /// not augmented) prepared for `anchor`, on `device`.
    ///
    /// # Errors
    /// Dataset errors.
    pub fn test_batcher(
        &self,
        anchor: &ModelEntry,
        device: &Device,
    ) -> Result<Batcher<FashionMnist>> {
        let test = split(self.dir(), Split::Test, self.test_samples, anchor)?;
        Batcher::new(test, BatchConfig::eval(EVAL_BATCH_SIZE), device.clone())
    }

    /// The data parallelism of [`shards`](Self::shards) on `device`, with autodiff.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (never for the default).
    pub fn parallel(&self, device: &Device) -> Result<DataParallel> {
        DataParallel::threads(
            device.clone().autodiff(),
            default_shards(self.shards, self.batch_size),
        )
    }
}

/// `shards`, or for 0 two per CPU core (shards in flight overlap one's serial element-wise work
/// with another's parallel matrix products) with at least 32 images per shard. Measured on 2
/// cores (docs/PERFORMANCE.md): batch 128 in 4 shards beat 2; batch 64 of the shipped family
/// with its teacher in 2 shards beat 4 by 8 %, shards of 16 images being mostly per-op overhead.
pub fn default_shards(shards: usize, batch_size: usize) -> usize {
    if shards > 0 {
        return shards;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (2 * cores).min(batch_size / 32).max(1)
}

/// A Fashion-MNIST split of `dir` (its first `samples` images; 0: all) prepared for `anchor`
/// (its input size, Fashion-MNIST's normalisation).
///
/// # Errors
/// Dataset errors.
pub fn split(
    dir: &Path,
    split: Split,
    samples: usize,
    anchor: &ModelEntry,
) -> Result<FashionMnist> {
    let transform = Transform::fashion_mnist().with_input_size(anchor.pretrained().input_size);
    let data = FashionMnist::load(dir, split)?;
    let data = if samples > 0 {
        data.subset(samples)
    } else {
        data
    };
    data.with_transform(transform)
}

/// The first `samples` training images of `dir` (`None`: [`DEFAULT_DIR`]) prepared for
/// `anchor`, without augmentation, as one batch: e.g. the images of a least-squares init.
///
/// # Shapes
/// - output: `[samples, C, H, W]` (fewer when the split is smaller), `[C, H, W]` the anchor's
///   input size.
///
/// # Errors
/// Dataset errors.
pub fn train_images(
    dir: Option<&Path>,
    samples: usize,
    anchor: &ModelEntry,
    device: &Device,
) -> Result<Tensor<4>> {
    let data = split(
        dir.unwrap_or(Path::new(DEFAULT_DIR)),
        Split::Train,
        samples,
        anchor,
    )?;
    let n = data.len();
    let batcher = Batcher::new(data, BatchConfig::eval(n.max(1)), device.clone())?;
    Ok(batcher.batch(0, 0)?.images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_parses_small_to_large() -> Result<()> {
        let registry = anchor_registry()?;
        let params: Vec<u64> = ANCHOR_NAMES
            .iter()
            .map(|name| registry.get(name).map(|e| e.config.cost().total().params))
            .collect::<std::result::Result<_, _>>()?;
        assert!(params.windows(2).all(|w| w[0] < w[1]), "{params:?}");
        // Adding twice keeps one copy.
        let mut again = registry.clone();
        add_anchors(&mut again)?;
        assert_eq!(again.list("fmnist_*").len(), 3);
        Ok(())
    }

    #[test]
    fn shipped_weights_match_their_recorded_sha256() -> Result<()> {
        for name in ANCHOR_NAMES {
            let bytes = pretrained_weights(name)?;
            assert_eq!(sha256_hex(bytes), pretrained_sha256(name)?);
        }
        Ok(())
    }

    #[test]
    fn a_damaged_anchor_file_is_refused() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Checkpoint {
            path: "tmp".into(),
            reason: e.to_string(),
        })?;
        let path = dir.path().join("fmnist_vit_m.safetensors");
        install_pretrained("fmnist_vit_m", &path)?;
        install_pretrained("fmnist_vit_m", &path)?; // an intact file is kept
        let mut bytes = std::fs::read(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let err = install_pretrained("fmnist_vit_m", &path).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(matches!(
            pretrained_weights("deit_tiny_patch16_224"),
            Err(Error::NoPretrained(_))
        ));
        Ok(())
    }

    #[test]
    fn shards_default_to_two_per_core_of_32_images() {
        assert_eq!(default_shards(3, 128), 3);
        assert_eq!(default_shards(0, 16), 1);
        assert_eq!(default_shards(0, 32), 1);
        assert!(default_shards(0, 64) <= 2);
        assert_eq!(default_shards(0, 8), 1);
        assert!(default_shards(0, 128) >= 1);
    }
}
