//! Datasets and the batcher.
//!
//! A [`Dataset`] hands out prepared images (`[C, H, W]` `f32`, normalised) and labels by index;
//! a [`Batcher`] turns one into batches of Burn tensors, shuffled, augmented and resumable.
//!
//! - [`idx`]: the IDX file format (LeCun's MNIST format), gzipped or not.
//! - [`FashionMnist`]: Fashion-MNIST from those files, prepared by a [`Transform`].
//! - [`ImageFolder`]: `root/class/*.{jpg,jpeg,png}`, prepared by a
//!   [`PretrainedConfig`](snnet_zoo::PretrainedConfig).
//! - [`Augment`]: random crop with padding and horizontal flip, applied by the batcher.

use std::sync::Arc;

use crate::error::Result;

mod augment;
mod batcher;
mod fashion_mnist_dataset;
pub mod idx;
mod image_folder;
mod transform;

pub use augment::{Augment, permutation, sample_rng};
pub use batcher::{Batch, BatchConfig, Batcher, Batches};
pub use fashion_mnist_dataset::{CLASSES, DEFAULT_DIR, FashionMnist, MEAN, SIDE, STD, Split};
pub use image_folder::{EXTENSIONS, ImageFolder};
pub use transform::{Resize, Transform};

/// One prepared image and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `[C, H, W]` values, row-major, normalised.
    pub image: Vec<f32>,
    /// The class id, below [`Dataset::num_classes`].
    pub label: usize,
}

/// Images with class labels, by index: what a [`Batcher`] batches.
///
/// Every image has the same [`shape`](Dataset::shape). Implementations must be deterministic:
/// the same index gives the same values (randomness is the batcher's [`Augment`]).
pub trait Dataset: Send + Sync {
    /// The number of items.
    fn len(&self) -> usize;

    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of classes; labels are below it.
    fn num_classes(&self) -> usize;

    /// `[channels, height, width]` of every prepared image.
    fn shape(&self) -> [usize; 3];

    /// Per channel, the prepared value of a black pixel (`(0 - mean) / std`): what random
    /// crops pad with, as torchvision pads before normalising.
    fn pad_value(&self) -> Vec<f32>;

    /// Writes item `index`'s prepared image (`[C, H, W]`, `C·H·W` values) into `out` and
    /// returns its label.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`](crate::Error::IndexOutOfRange) past the end,
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) when `out` has the wrong length,
    /// [`Error::Dataset`](crate::Error::Dataset) when the item cannot be read.
    fn load(&self, index: usize, out: &mut [f32]) -> Result<usize>;

    /// Item `index`, prepared, in a new buffer; see [`load`](Dataset::load).
    ///
    /// # Errors
    /// As [`load`](Dataset::load).
    fn get(&self, index: usize) -> Result<Sample> {
        let [c, h, w] = self.shape();
        let mut image = vec![0.0; c * h * w];
        let label = self.load(index, &mut image)?;
        Ok(Sample { image, label })
    }
}

macro_rules! forward_dataset {
    ($($ty:ty),*) => {$(
        impl<D: Dataset + ?Sized> Dataset for $ty {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn num_classes(&self) -> usize {
                (**self).num_classes()
            }
            fn shape(&self) -> [usize; 3] {
                (**self).shape()
            }
            fn pad_value(&self) -> Vec<f32> {
                (**self).pad_value()
            }
            fn load(&self, index: usize, out: &mut [f32]) -> Result<usize> {
                (**self).load(index, out)
            }
        }
    )*};
}

forward_dataset!(&D, Box<D>, Arc<D>);

/// Checks that `out` holds one image of `shape`.
fn check_out(shape: [usize; 3], out: &[f32]) -> Result<()> {
    let want = shape.iter().product::<usize>();
    if out.len() == want {
        Ok(())
    } else {
        Err(crate::Error::InvalidConfig {
            what: "output buffer",
            reason: format!(
                "an image of shape {shape:?} needs {want} values, the buffer holds {}",
                out.len()
            ),
        })
    }
}
