//! Joint training of every stitch (SN-Net §3.3): one sampled stitch per step, cross-entropy with
//! label smoothing plus distillation, AdamW with warm-up and cosine decay, checkpoints every
//! epoch and exact resumption.
//!
//! - [`TrainConfig`] (`config.rs`): the recipe, with [`Distill`], [`TeacherTargets`] and
//!   [`Sampling`];
//! - [`StitchSampler`] (`sampler.rs`): which stitch each step trains;
//! - [`Trainable`] (`trainable.rs`): what it trains — an SN-Net, or one anchor alone;
//! - [`Trainer`] (`trainer.rs`): the loop;
//! - [`EpochLog`], [`TrainEvent`] (`events.rs`): what it reports;
//! - `resume.rs`: its checkpoints, and when one may resume a run.

mod config;
mod events;
mod resume;
mod sampler;
mod trainable;
mod trainer;

pub use config::{Distill, Sampling, TeacherTargets, TrainConfig};
pub use events::{EpochLog, TrainEvent};
pub use sampler::StitchSampler;
pub use trainable::{Trainable, TrainablePath};
pub use trainer::Trainer;
