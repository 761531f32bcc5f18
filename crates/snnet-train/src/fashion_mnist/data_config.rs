//! Which Fashion-MNIST images a step of the demo uses ([`DataConfig`]), and the batchers and
//! image batches it builds for an anchor.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use snnet_core::{DeviceSpec, ModelEntry};

use crate::data::{BatchConfig, Batcher, DEFAULT_DIR, FashionMnist, Split, Transform};
use crate::error::{Error, Result};
use crate::parallel::DataParallel;

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
    /// One data-parallel shard per device instead of [`shards`](Self::shards) on threads of one
    /// (the CLI's `--devices`): shard `k` of every batch runs on `devices[k]`, and the gradients
    /// are summed in shard order on the first, which must be the training device. A device may
    /// appear several times: `[cpu, cpu]` is two shards on threads of the CPU, the same
    /// computation as `shards: 2`. Empty (the default, left out of the JSON): `shards`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceSpec>,
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
            devices: Vec::new(),
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
        let batches = BatchConfig::train(self.batch_size, self.seed);
        self.batcher(Split::Train, self.train_samples, batches, anchor, device)
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
        let batches = BatchConfig::eval(EVAL_BATCH_SIZE);
        self.batcher(Split::Test, self.test_samples, batches, anchor, device)
    }

    /// The first `samples` images (0: all) of `which`, prepared for `anchor`, in `batches`.
    fn batcher(
        &self,
        which: Split,
        samples: usize,
        batches: BatchConfig,
        anchor: &ModelEntry,
        device: &Device,
    ) -> Result<Batcher<FashionMnist>> {
        let data = split(self.dir(), which, samples, anchor)?;
        Batcher::new(data, batches, device.clone())
    }

    /// Checks the settings that need no data: a batch size of at least 1, and no more shards
    /// than a batch has images (a shard without images would be ignored).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidConfig {
                what: "data",
                reason: "the batch size must be at least 1".into(),
            });
        }
        if !self.devices.is_empty() && self.shards != 0 {
            return Err(Error::InvalidConfig {
                what: "data parallelism",
                reason: format!(
                    "{} shards and {} devices: the devices are the shards, give one or the other",
                    self.shards,
                    self.devices.len()
                ),
            });
        }
        if self.devices.len() > self.batch_size {
            return Err(Error::InvalidConfig {
                what: "data parallelism",
                reason: format!(
                    "{} devices for batches of {} images: every device's shard needs at least one",
                    self.devices.len(),
                    self.batch_size
                ),
            });
        }
        if self.shards > self.batch_size {
            return Err(Error::InvalidConfig {
                what: "data parallelism",
                reason: format!(
                    "{} shards for batches of {} images: every shard needs at least one",
                    self.shards, self.batch_size
                ),
            });
        }
        Ok(())
    }

    /// The data parallelism, with autodiff: one shard per entry of [`devices`](Self::devices)
    /// when there are any, else [`shards`](Self::shards) on threads of `device` (the training
    /// device).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] as [`validate`](Self::validate) (never for the default), and
    /// when the first of `devices` is not `device`; [`Error::Core`] for a device whose backend
    /// this build lacks.
    pub fn parallel(&self, device: &Device) -> Result<DataParallel> {
        self.validate()?;
        if let Some(first) = self.devices.first() {
            let devices = self
                .devices
                .iter()
                .map(|spec| Ok(spec.device()?.autodiff()))
                .collect::<Result<Vec<_>>>()?;
            if first.device()? != *device {
                return Err(Error::InvalidConfig {
                    what: "data parallelism",
                    reason: format!(
                        "the first device, {first}, is where the gradients are summed: it must \
                         be the training device, {device:?}"
                    ),
                });
            }
            return DataParallel::new(devices);
        }
        DataParallel::threads(
            device.clone().autodiff(),
            default_shards(self.shards, self.batch_size),
        )
    }
}

/// `shards`, or for 0 one per CPU core with at least 32 images per shard. Measured on 2 cores
/// (docs/PERFORMANCE.md, 2026-12-06): since the linear layers run as one product over all rows
/// (`snnet_ops::linear_rows`), batch 128 in 2 shards beats 4 (two per core won while the
/// products were one small product per image and shards overlapped serial element-wise work);
/// batch 64 of the shipped family with its teacher in 2 shards beat 4 by 8 %, shards of 16
/// images being mostly per-op overhead.
pub fn default_shards(shards: usize, batch_size: usize) -> usize {
    if shards > 0 {
        return shards;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.min(batch_size / 32).max(1)
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
    fn more_shards_than_images_are_refused() {
        let data = |batch_size, shards| DataConfig {
            devices: Vec::new(),
            batch_size,
            shards,
            ..DataConfig::default()
        };
        assert!(data(64, 64).validate().is_ok());
        assert!(data(64, 0).validate().is_ok());
        for bad in [data(64, 65), data(0, 0), data(8, usize::MAX)] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn devices_are_the_shards() {
        let data = DataConfig {
            batch_size: 4,
            devices: vec![DeviceSpec::Cpu, DeviceSpec::Cpu],
            ..DataConfig::default()
        };
        let device = DeviceSpec::Cpu.device().unwrap();
        let dp = data.parallel(&device).unwrap();
        assert_eq!(dp.shards(), 2);
        assert!(dp.devices().iter().all(|d| d.clone().inner() == device));
        // --devices and --shards together, and more devices than images, are refused.
        let both = DataConfig {
            shards: 2,
            ..data.clone()
        };
        assert!(matches!(both.validate(), Err(Error::InvalidConfig { .. })));
        let five = DataConfig {
            devices: vec![DeviceSpec::Cpu; 5],
            ..data.clone()
        };
        assert!(matches!(five.validate(), Err(Error::InvalidConfig { .. })));
        // Left out of the JSON when empty (run.json unchanged), read back when given.
        let json = serde_json::to_value(DataConfig::default()).unwrap();
        assert!(json.get("devices").is_none());
        let json = serde_json::to_string(&data).unwrap();
        assert!(json.contains(r#""devices":["cpu","cpu"]"#), "{json}");
        assert_eq!(serde_json::from_str::<DataConfig>(&json).unwrap(), data);
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
