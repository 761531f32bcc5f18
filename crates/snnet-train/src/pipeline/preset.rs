//! The settings of a run ([`RunConfig`], recorded as `run.json`) and the presets they start
//! from ([`Preset`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fashion_mnist::{ANCHOR_NAMES, DataConfig};
use crate::train::{Distill, Sampling, TrainConfig};
use snnet_core::DeviceSpec;

/// The presets of the main job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// A few minutes on a 2-core CPU: subsets of the data, few epochs.
    Quick,
    /// The long run: all the data, more epochs.
    Full,
}

/// The settings of a run, recorded in its folder as `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The preset the settings come from.
    pub preset: Preset,
    /// The anchors, small to large, by name in [`crate::fashion_mnist::anchor_registry`].
    pub anchors: Vec<String>,
    /// Start from the anchors' shipped pretrained weights
    /// ([`crate::fashion_mnist::install_pretrained`], checked against their recorded SHA-256)
    /// instead of pretraining them.
    #[serde(default)]
    pub pretrained: bool,
    /// The anchors' pretraining data.
    pub pretrain_data: DataConfig,
    /// The anchors' pretraining recipe (distillation is ignored: there is no teacher).
    pub pretrain: TrainConfig,
    /// Training images of the least-squares init (the reference uses 100).
    pub init_samples: usize,
    /// The joint training's data.
    pub joint_data: DataConfig,
    /// The joint training's recipe (the teacher is the largest anchor, frozen at its start).
    pub joint: TrainConfig,
    /// The evaluation's data (its `test_samples`).
    pub eval_data: DataConfig,
    /// The FLOPs budget of the final selection (`None`: halfway between the smallest and the
    /// largest anchor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_flops: Option<u64>,
}

impl RunConfig {
    /// The settings of `preset`, on Debian's Fashion-MNIST with the default data parallelism.
    ///
    /// - [`Preset::Quick`]: the SN-Net part on the shipped pretrained anchors
    ///   ([`RunConfig::pretrained`]): least-squares init on 100 images, 5 epochs of joint training
    ///   (peak learning rate 3e-3; SN-Netv2's rising FLOPs sampling, every stitch its own group,
    ///   `flops_sampling_k` 35: a stitch is drawn with probability proportional to its FLOPs
    ///   rank + 1) on all 60,000 training images, evaluation on all 10,000 test images (with
    ///   [`RunConfig::with_pretraining`], the anchors are pretrained for 6 epochs first).
    /// - [`Preset::Full`]: every image, the anchors pretrained for 15 epochs, 10 of joint training
    ///   (peak learning rate 1e-3).
    pub fn preset(preset: Preset) -> Self {
        let data = |train_samples, test_samples| DataConfig {
            dir: None,
            train_samples,
            test_samples,
            batch_size: 64,
            seed: 0,
            shards: 0,
            devices: Vec::new(),
        };
        // The quick preset's five joint epochs take a higher peak rate than the full preset's
        // ten, and draw the costlier stitches more often: measured in docs/REPRODUCTION.md
        // (joint recipes), 3e-3 is what lets a few epochs adapt the anchors to the stitched
        // paths, and under uniform sampling the M→L stitches' accuracy hardly rises with FLOPs
        // in that time.
        let (pre_samples, pre_epochs, joint_samples, joint_epochs, joint_lr, test) = match preset {
            Preset::Quick => (0, 6, 0, 5, 3e-3, 0),
            Preset::Full => (0, 15, 0, 10, 1e-3, 0),
        };
        let joint_sampling = match preset {
            Preset::Quick => Sampling::FlopsGrouped {
                gap_flops: 0,
                flops_sampling_k: Some(35.0),
            },
            Preset::Full => Sampling::Uniform,
        };
        Self {
            preset,
            anchors: ANCHOR_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            pretrained: preset == Preset::Quick,
            pretrain_data: data(pre_samples, test),
            pretrain: TrainConfig {
                epochs: pre_epochs,
                lr: 3e-3,
                warmup_epochs: 0.2,
                distill: Distill::None,
                ..TrainConfig::default()
            },
            init_samples: 100,
            joint_data: data(joint_samples, test),
            joint: TrainConfig {
                epochs: joint_epochs,
                lr: joint_lr,
                warmup_epochs: 0.2,
                sampling: joint_sampling,
                ..TrainConfig::default()
            },
            eval_data: data(joint_samples, test),
            budget_flops: None,
        }
    }

    /// The data of the three steps: pretraining, joint training, evaluation.
    fn data_configs_mut(&mut self) -> [&mut DataConfig; 3] {
        [
            &mut self.pretrain_data,
            &mut self.joint_data,
            &mut self.eval_data,
        ]
    }

    /// Reads Fashion-MNIST from `dir` (`None`: Debian's package) in every step.
    #[must_use]
    pub fn with_data_dir(mut self, dir: Option<PathBuf>) -> Self {
        for data in self.data_configs_mut() {
            data.dir.clone_from(&dir);
        }
        self
    }

    /// Splits every training batch into `shards` data-parallel shards (0: the default, see
    /// [`crate::fashion_mnist::default_shards`]).
    #[must_use]
    pub fn with_shards(mut self, shards: usize) -> Self {
        for data in self.data_configs_mut() {
            data.shards = shards;
        }
        self
    }

    /// Runs every training batch's shards on `devices`, one shard per entry (empty: the
    /// [`with_shards`](Self::with_shards) shards on threads of the run's device); the first must
    /// be the run's device. See [`DataConfig::devices`].
    #[must_use]
    pub fn with_devices(mut self, devices: Vec<DeviceSpec>) -> Self {
        for data in self.data_configs_mut() {
            data.devices.clone_from(&devices);
        }
        self
    }

    /// Checks the settings that need no data or network: every [`DataConfig`] and both recipes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    pub fn validate(&self) -> Result<()> {
        for data in [&self.pretrain_data, &self.joint_data, &self.eval_data] {
            data.validate()?;
        }
        self.pretrain.validate()?;
        self.joint.validate()
    }

    /// Pretrains the anchors from scratch (`true`) instead of starting from the shipped weights.
    #[must_use]
    pub fn with_pretraining(mut self, pretrain: bool) -> Self {
        self.pretrained = !pretrain;
        self
    }

    /// Selects within `budget` FLOPs at the end (`None`: halfway between the smallest and the
    /// largest anchor).
    #[must_use]
    pub fn with_budget_flops(mut self, budget: Option<u64>) -> Self {
        self.budget_flops = budget;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::file_error;
    use std::path::Path;

    #[test]
    fn presets_serialise_as_run_json_did() -> Result<()> {
        let quick = RunConfig::preset(Preset::Quick)
            .with_data_dir(Some("/data".into()))
            .with_shards(3);
        let json = serde_json::to_value(&quick).map_err(|e| file_error(Path::new("-"), e))?;
        assert_eq!(json["preset"], "Quick");
        assert_eq!(json["anchors"][2], "fmnist_vit_l");
        assert_eq!(json["pretrain_data"]["data"], "/data");
        assert_eq!(json["joint_data"]["shards"], 3);
        assert_eq!(json["eval_data"]["test_samples"], 0);
        assert_eq!(json["pretrain"]["epochs"], 6);
        assert_eq!(json["joint"]["epochs"], 5);
        assert_eq!(json["joint"]["sampling"]["kind"], "flops-grouped");
        assert_eq!(json["joint"]["sampling"]["flops_sampling_k"], 35.0);
        assert_eq!(json["pretrained"], true);
        assert!(json.get("budget_flops").is_none());
        let back: RunConfig =
            serde_json::from_value(json).map_err(|e| file_error(Path::new("-"), e))?;
        assert_eq!(back, quick);
        assert!(quick.validate().is_ok());
        assert!(quick.clone().with_shards(65).validate().is_err()); // batches of 64
        let full = RunConfig::preset(Preset::Full);
        assert_eq!(full.joint_data.train_samples, 0);
        assert_eq!(full.joint.epochs, 10);
        assert_eq!(full.joint.sampling, Sampling::Uniform);
        Ok(())
    }
}
