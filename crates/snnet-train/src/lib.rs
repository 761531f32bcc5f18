//! Training for SN-Net on Burn: data, joint training ([`train::Trainer`]), data parallelism
//! over threads or devices ([`parallel::DataParallel`]), evaluation of every stitch
//! ([`eval`]), the accuracy-vs-FLOPs plot ([`plot`]), the Fashion-MNIST demo family
//! ([`fashion_mnist`]) and the whole main job as one function ([`pipeline::run`]: pretrain →
//! SN-Net → least-squares init → joint training → evaluation → plot → selection).
//!
//! - [`data::FashionMnist`]: Fashion-MNIST from Debian's `dataset-fashion-mnist` package (IDX
//!   files, gzipped or not, in [`data::DEFAULT_DIR`] or any directory), with a
//!   [`data::Transform`] to the input an anchor takes (size, 1 or 3 channels, normalisation).
//! - [`data::ImageFolder`]: your own images, one sub-folder per class, prepared as the anchor's
//!   [`PretrainedConfig`](snnet_zoo::PretrainedConfig) says (resize, center crop, normalise).
//! - [`data::Batcher`]: batches of `[B, C, H, W]` images and `[B]` labels on a Burn device,
//!   shuffled by a seeded permutation per epoch and lightly augmented ([`data::Augment`]: random
//!   crop with padding, horizontal flip) with randomness derived from `(seed, epoch, index)`
//!   alone, so that a run resumed at any batch sees exactly the batches of an uninterrupted one.
//!
//! ```no_run
//! use snnet_train::burn::tensor::Device;
//! use snnet_train::data::{BatchConfig, Batcher, FashionMnist, Split, DEFAULT_DIR};
//!
//! let train = FashionMnist::load(DEFAULT_DIR.as_ref(), Split::Train)?;
//! let batcher = Batcher::new(train, BatchConfig::train(128, 42), Device::default())?;
//! for batch in batcher.iter_from(0, 0) {
//!     let batch = batch?;
//!     assert_eq!(batch.images.dims(), [128, 1, 28, 28]);
//! }
//! # Ok::<(), snnet_train::Error>(())
//! ```

pub use burn;

pub mod data;
pub mod error;
pub mod eval;
pub mod fashion_mnist;
pub mod parallel;
pub mod pipeline;
pub mod plot;
pub mod train;

pub use error::{Error, Result};
