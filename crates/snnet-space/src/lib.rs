//! The typed stitch space of Stitchable Neural Networks (SN-Net, Pan, Cai & Zhuang, CVPR 2023;
//! SN-Netv2, arXiv 2307.00154).
//!
//! SN-Net joins pretrained models of one family at several scales (the *anchors*) with small
//! *stitching layers*: a smaller anchor runs its first blocks, a stitching layer maps its
//! activation into a larger anchor's space, and the larger anchor runs its remaining blocks. This
//! crate enumerates every such path — the *stitches* — exactly as the reference implementation
//! does, as typed data that forward, cost, initialisation and training all read:
//!
//! - [`AnchorSpec`]: an anchor's per-stage depths and widths and its activation [`Layout`];
//!   built in for the timm names the zoo carries ([`builtin_anchor`], [`AnchorRegistry`],
//!   derived from the one table of built-in anchors, [`builtin::ANCHORS`], which the zoo's model
//!   configs are derived from too) and loadable from JSON for custom families.
//! - [`SpaceConfig`]: sliding-window kernel size and stride, nearest or all pairing,
//!   [`Direction`] (Fast-to-Slow, Slow-to-Fast, SN-Netv2 two-way), the stages to stitch and
//!   whether cuts share stitching layers as in the reference ([`StitchLayers`]).
//! - [`StitchSpace`]: the stitches ([`Stitch`], ids identical to the reference's config ids),
//!   the stitching layers they share ([`LayerGroup`], with the cuts each layer's least-squares
//!   initialisation averages over), each stitch's path as block [`Segment`]s, and a readable
//!   description.
//! - [`rules`]: the reference's depth-mapping rules, which the space composes.
//! - [`limits`]: the documented bounds on sizes read from outside (spec files, checkpoints),
//!   checked before anything is allocated; [`display_safe`] escapes names read from outside for
//!   printing.
//!
//! The crate has no tensor library; it is plain data with `serde` on every type.
//!
//! ```
//! use snnet_space::{SpaceConfig, StitchKind, StitchSpace};
//!
//! let space = StitchSpace::builtin(
//!     &["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224"],
//!     SpaceConfig::default(),
//! )?;
//! assert_eq!(space.len(), 71);
//! let singles = space.stitches().iter().filter(|s| s.kind() == StitchKind::Single).count();
//! assert_eq!(singles, 68);
//! for stitch in space.stitches().iter().take(4) {
//!     println!("{:>3}  {}", stitch.id, space.describe(stitch));
//! }
//! # Ok::<(), snnet_space::Error>(())
//! ```
//!
//! Counts the reference produces and this crate reproduces (see the tests): DeiT-Ti/S/B 71,
//! Swin-T/S/B 41, ResNet-18/50 10, ResNet-18/Swin-T 8, SN-Netv2 DeiT3-S/L 135 (134 evaluated).

#![cfg_attr(
    not(test),
    warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

mod anchor;
mod config;
mod count;
mod enumerate;
mod error;
mod layers;
pub mod limits;
pub mod rules;
mod space;
mod stitch;
mod untrusted;
mod validate;

pub use anchor::{
    AnchorRegistry, AnchorSpec, Layout, StageSpec, builtin, builtin_anchor, builtin_names,
    json_items,
};
pub use config::{Direction, Pairing, SpaceConfig, StitchLayers};
pub use error::{AnchorProblem, Error, NameProblem, Result, Unsupported};
pub use layers::{Junction, LayerGroup};
pub use space::{StitchDisplay, StitchSpace};
pub use stitch::{Cut, LayerKey, Segment, Stitch, StitchId, StitchKind};
pub use untrusted::{display_safe, strip_json_position};
