//! Stitchable Neural Networks (SN-Net) in Rust — the one dependency.
//!
//! SN-Net (Pan, Cai & Zhuang, CVPR 2023) takes a family of pretrained models at several scales
//! (the *anchors*), cuts them at block boundaries and joins a smaller anchor's front to a larger
//! anchor's back with a small *stitching layer*. One network then holds dozens of *stitches*
//! spanning the accuracy/FLOPs range between the anchors, and an application switches stitch at
//! run time to fit its resource budget.
//!
//! This crate re-exports the workspace's crates so that one `snnet-core` dependency suffices:
//!
//! - [`space`] (`snnet-space`): the typed stitch space — anchors, stitches with the reference's
//!   ids, stitching layers and their least-squares averaging sets.
//! - [`select`] (`snnet-select`): per-stitch accuracy/cost tables, the Pareto frontier and the
//!   budget selector.
//! - [`zoo`] (`snnet-zoo`): the anchors as Burn modules (ViT/DeiT, Swin, ResNet), a registry by
//!   timm name, timm weight loading and fvcore costs.
//! - [`stitch`] (`snnet-stitch`): stitching layers (tokens, maps, map→tokens, LoRA) and the
//!   least-squares solver.
//!
//! and adds the stitched network itself: [`SnNetConfig`] (anchors + space rules) → [`Plan`]
//! (every stitch's path and cost, computed once) → [`SnNet`] (a Burn module; `forward(images,
//! stitch_id)`), its least-squares initialisation ([`SnNet::init_least_squares`]) and
//! checkpoints in the reference's key layout ([`SnNet::save`], [`SnNet::load`],
//! [`SnNet::load_with_config`] for the released ziplab files).
//!
//! ```
//! use snnet_core::select::{Budget, StitchTable};
//! use snnet_core::space::{SpaceConfig, StitchSpace};
//!
//! // The 71 stitches of DeiT-Ti/S/B, with the reference's ids.
//! let space = StitchSpace::builtin(
//!     &["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"],
//!     SpaceConfig::default(),
//! )?;
//! assert_eq!(space.len(), 71);
//!
//! // An evaluation table (here two rows of the reference's own format) and a FLOPs budget.
//! let table: StitchTable = r#"
//! {"cfg_id": 0, "flops": 1258411200, "params": 5717416, "acc1": 70.564}
//! {"cfg_id": 24, "flops": 2758967808, "params": 13038760, "acc1": 75.626}
//! "#
//! .parse()?;
//! let best = table.select(Budget::flops(3_000_000_000))?;
//! assert_eq!(best.id, 24);
//! let stitch = space.get(best.id.into())?;
//! assert_eq!(space.describe(stitch), "deit_tiny[..=7] →L6→ deit_small[7..]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod checkpoint;
pub mod device;
pub mod error;
pub mod features;
pub mod finite;
pub mod init;
pub mod net;
pub mod plan;
pub mod quantize;
pub mod stitch_file;
pub mod stitch_model;

pub use checkpoint::{
    CheckpointKeys, CheckpointReport, StitchLoad, apply_stitch_layers, module_digest, read_config,
    read_tensors,
};
pub use device::{DeviceSpec, TchDevice};
pub use error::{Error, Result};
pub use features::{Features, PathFeature};
pub use finite::first_non_finite;
pub use init::{LayerFit, LsOptions, LsProgress, LsReport};
pub use net::SnNet;
pub use plan::{LayerFitPlan, Plan, SnNetConfig, StitchPath};
pub use quantize::{LoadedModel, load_model_file};
pub use stitch_file::{ExportError, ModelFile, STITCH_KEY, read_stitch_config, sniff_model_file};
pub use stitch_model::{StitchConfig, StitchModel};

pub use snnet_select as select;
pub use snnet_space as space;
pub use snnet_stitch as stitch;
pub use snnet_zoo as zoo;

pub use snnet_select::{Budget, CostKind, Frontier, StitchRecord, StitchTable};
pub use snnet_space::{
    AnchorSpec, Direction, Pairing, SpaceConfig, Stitch, StitchId, StitchLayers, StitchSpace,
};
pub use snnet_stitch::{Init, LoraConfig, StitchingLayer, StitchingLayerConfig};
pub use snnet_zoo::{Anchor, Model, ModelConfig, ModelEntry, Registry};

/// Burn, as snnet-rs pins it (`=0.22.1`): tensors, devices and modules for users of the zoo.
pub use snnet_zoo::burn;

#[cfg(test)]
mod tests {
    /// Compiles only when `T` can be shared across threads.
    fn assert_send_sync<T: Send + Sync>() {}

    /// One network serves concurrent requests for different stitches: it must be shareable
    /// (`Arc<SnNet>` across threads) — checked at compile time.
    #[test]
    fn network_and_plan_are_send_and_sync() {
        assert_send_sync::<crate::SnNet>();
        assert_send_sync::<crate::Plan>();
        assert_send_sync::<crate::SnNetConfig>();
    }
}
