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
//!
//! The demo, by file: `family.rs` (the anchors), `pretrained.rs` (their shipped weights),
//! `data_config.rs` (the data settings). The Fashion-MNIST files themselves are read by
//! [`data::FashionMnist`](crate::data::FashionMnist).

mod data_config;
mod family;
mod pretrained;

pub use data_config::{DataConfig, EVAL_BATCH_SIZE, default_shards, split, train_images};
pub use family::{ANCHOR_NAMES, ANCHORS_JSON, add_anchors, anchor_registry};
pub use pretrained::{
    PRETRAINED_SHA256SUMS, install_pretrained, pretrained_sha256, pretrained_weights, sha256_hex,
    verify_pretrained,
};
