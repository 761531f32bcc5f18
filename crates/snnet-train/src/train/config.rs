//! The training recipe ([`TrainConfig`]) and its choices: distillation ([`Distill`]), where the
//! teacher's outputs come from ([`TeacherTargets`]) and stitch sampling ([`Sampling`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the teacher's outputs enter the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Distill {
    /// No teacher: the loss is the (label-smoothed) cross-entropy alone.
    None,
    /// Hard distillation, the reference's default: cross-entropy against the teacher's top-1.
    #[default]
    Hard,
    /// Soft distillation: `T² · KL(softmax(t/T) ‖ softmax(s/T))`.
    Soft {
        /// The temperature `T`.
        temperature: f32,
    },
}

/// Where the teacher's outputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TeacherTargets {
    /// The teacher runs on every training batch as the student sees it, augmented (the
    /// reference: DeiT's hard distillation). One teacher forward per image and epoch.
    #[default]
    Online,
    /// The teacher runs once, before the first epoch, on every training image without
    /// augmentation, and each step reads the outputs of its items: one teacher forward per
    /// image for the whole run. The same targets as [`Online`](TeacherTargets::Online) when the
    /// training data is not augmented; with augmentation the student sees a shifted or flipped
    /// copy of the image whose teacher output it is trained towards.
    Precomputed,
}

/// How each step picks the stitch it trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Sampling {
    /// Uniformly over all evaluated stitches, anchors included (SN-Net).
    #[default]
    Uniform,
    /// SN-Netv2's FLOPs-grouped sampling: stitches sorted by FLOPs are grouped (a new group
    /// starts when a stitch is more than `gap_flops` above its group's first), a group is drawn
    /// (uniformly, or with SN-Netv2's linearly rising probability, see `flops_sampling_k`), then
    /// a stitch within it uniformly.
    FlopsGrouped {
        /// The group width in FLOPs (SN-Netv2: 1 GFLOP).
        gap_flops: u64,
        /// SN-Netv2's `--flops_sampling_k`: group `i` of `G` (cheapest first) is drawn with
        /// probability proportional to `i / k + 1 / G`, so that costlier groups train more
        /// often (smaller `k`: steeper). `None`: every group alike.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flops_sampling_k: Option<f64>,
    },
}

/// The training recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    /// Warm-up length in epochs (fractions allowed), linear from `warmup_lr` to `lr`.
    pub warmup_epochs: f64,
    /// Learning rate at the start of the warm-up.
    pub warmup_lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f32,
    /// Learning-rate scale of the anchors' parameters (Swin recipe: 0.1).
    pub anchor_lr_scale: f64,
    /// Learning-rate scale of the stitching layers (Swin recipe: 1.0).
    pub stitch_lr_scale: f64,
    /// Clip each parameter's gradient to this L2 norm (Burn's per-parameter norm clipping).
    pub grad_clip: Option<f32>,
    /// Label smoothing of the cross-entropy on the labels.
    pub label_smoothing: f32,
    /// Distillation.
    pub distill: Distill,
    /// Weight of the distillation term: `(1 − α)·CE + α·KD` (reference: 0.5).
    pub distill_alpha: f32,
    /// Stitch sampling.
    pub sampling: Sampling,
    /// Where the teacher's outputs come from (ignored without distillation).
    #[serde(default)]
    pub teacher_targets: TeacherTargets,
    /// Train the stitching layers only (the reference's `fulltune = false`); anchors frozen and
    /// only stitched paths sampled.
    pub stitch_only: bool,
    /// Seed of the stitch sampling (the data order has its own, in the batcher's config).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_epochs: 0.5,
            warmup_lr: 1e-6,
            weight_decay: 0.05,
            anchor_lr_scale: 1.0,
            stitch_lr_scale: 1.0,
            grad_clip: Some(5.0),
            label_smoothing: 0.1,
            distill: Distill::Hard,
            distill_alpha: 0.5,
            sampling: Sampling::Uniform,
            teacher_targets: TeacherTargets::Online,
            stitch_only: false,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Checks the recipe.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidConfig {
                what: "training",
                reason,
            })
        };
        if self.epochs == 0 {
            return bad("epochs must be positive".into());
        }
        let non_negative = |x: f64| x >= 0.0 && x.is_finite();
        let rates_usable = self.lr > 0.0
            && self.lr.is_finite()
            && non_negative(self.min_lr)
            && non_negative(self.warmup_lr);
        if !rates_usable {
            return bad(format!(
                "learning rates must be positive and finite (lr {}, min {}, warm-up {})",
                self.lr, self.min_lr, self.warmup_lr
            ));
        }
        if !(0.0..=1.0).contains(&self.label_smoothing)
            || !(0.0..=1.0).contains(&self.distill_alpha)
        {
            return bad("label smoothing and the distillation weight must be in [0, 1]".into());
        }
        if let Distill::Soft { temperature } = self.distill
            && (temperature.is_nan() || temperature <= 0.0)
        {
            return bad(format!("temperature must be positive, got {temperature}"));
        }
        if let Sampling::FlopsGrouped {
            flops_sampling_k: Some(k),
            ..
        } = self.sampling
            && !(k > 0.0 && k.is_finite())
        {
            return bad(format!(
                "flops_sampling_k must be positive and finite, got {k}"
            ));
        }
        if !non_negative(self.anchor_lr_scale) || !non_negative(self.stitch_lr_scale) {
            return bad(format!(
                "learning-rate scales must be non-negative and finite (anchors {}, stitching \
                 layers {})",
                self.anchor_lr_scale, self.stitch_lr_scale
            ));
        }
        if !non_negative(f64::from(self.weight_decay)) {
            return bad(format!(
                "weight decay must be non-negative and finite, got {}",
                self.weight_decay
            ));
        }
        if let Some(clip) = self.grad_clip
            && !(clip > 0.0 && clip.is_finite())
        {
            return bad(format!(
                "the gradient-clipping norm must be positive and finite, got {clip}"
            ));
        }
        if !non_negative(self.warmup_epochs) || self.warmup_epochs > self.epochs as f64 {
            return bad(format!(
                "warm-up of {} epochs in a run of {}",
                self.warmup_epochs, self.epochs
            ));
        }
        Ok(())
    }

    /// The learning rate at fractional epoch `t`: linear warm-up, then cosine decay.
    pub fn lr_at(&self, t: f64) -> f64 {
        if t < self.warmup_epochs {
            return self.warmup_lr + (self.lr - self.warmup_lr) * t / self.warmup_epochs;
        }
        let span = (self.epochs as f64 - self.warmup_epochs).max(f64::EPSILON);
        let progress = ((t - self.warmup_epochs) / span).clamp(0.0, 1.0);
        self.min_lr
            + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_refuses_values_the_loop_cannot_use() {
        assert!(TrainConfig::default().validate().is_ok());
        let with = |change: fn(&mut TrainConfig)| {
            let mut config = TrainConfig::default();
            change(&mut config);
            config
        };
        let refused = [
            with(|c| c.epochs = 0),
            with(|c| c.min_lr = f64::NAN),
            with(|c| c.warmup_lr = f64::INFINITY),
            with(|c| c.weight_decay = -0.1),
            with(|c| c.weight_decay = f32::NAN),
            with(|c| c.anchor_lr_scale = -1.0),
            with(|c| c.stitch_lr_scale = f64::NAN),
            with(|c| c.grad_clip = Some(-1.0)),
            with(|c| c.grad_clip = Some(f32::NAN)),
            with(|c| c.warmup_epochs = f64::NAN),
            with(|c| c.distill = Distill::Soft { temperature: 0.0 }),
        ];
        for config in refused {
            assert!(
                matches!(config.validate(), Err(Error::InvalidConfig { .. })),
                "{config:?}"
            );
        }
        // Frozen anchors (scale 0) and no clipping are valid recipes.
        let frozen = with(|c| {
            c.anchor_lr_scale = 0.0;
            c.grad_clip = None;
        });
        assert!(frozen.validate().is_ok());
    }
}
