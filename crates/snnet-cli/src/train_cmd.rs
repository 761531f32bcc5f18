//! The training verbs' data helpers.

use std::path::Path;

use snnet_core::ModelEntry;
use snnet_core::burn::tensor::{Device, Tensor};
use snnet_train::data::{BatchConfig, Batcher, DEFAULT_DIR, FashionMnist, Split, Transform};

use crate::CliError;

/// The first `samples` Fashion-MNIST training images, prepared for `anchor` (its input size,
/// Fashion-MNIST's normalisation), without augmentation.
pub(crate) fn fashion_mnist_images(
    dir: Option<&Path>,
    samples: usize,
    anchor: &ModelEntry,
    device: &Device,
) -> Result<Tensor<4>, CliError> {
    let dir = dir.unwrap_or(Path::new(DEFAULT_DIR));
    let transform = Transform::fashion_mnist().with_input_size(anchor.pretrained().input_size);
    let data = FashionMnist::load(dir, Split::Train)?
        .subset(samples)
        .with_transform(transform)?;
    let batcher = Batcher::new(data, BatchConfig::eval(samples), device.clone())?;
    Ok(batcher.batch(0, 0)?.images)
}
