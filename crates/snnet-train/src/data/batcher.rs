//! Batches of Burn tensors from a [`Dataset`]: shuffled, augmented, resumable.

use burn::config::Config;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::augment::{permutation, sample_rng};
use super::{Augment, Dataset};
use crate::error::{Error, Result};

/// How a [`Batcher`] batches. A Burn [`Config`]: `BatchConfig::new(batch_size, seed, shuffle,
/// drop_last)`, `with_augment`, `with_workers`; [`train`](BatchConfig::train) and
/// [`eval`](BatchConfig::eval) are the two usual settings.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct BatchConfig {
    /// Items per batch (the last batch may be smaller unless `drop_last`).
    pub batch_size: usize,
    /// The seed of the shuffling and the augmentation.
    pub seed: u64,
    /// Whether to visit the items in a seeded random order, new every epoch.
    pub shuffle: bool,
    /// Whether to skip the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Random augmentation of every item (default [`Augment::LIGHT`]).
    #[config(default = "Augment::LIGHT")]
    pub augment: Augment,
    /// Threads preparing a batch's items (default 1: the calling thread; at least 1). Results do
    /// not depend on it.
    #[config(default = 1)]
    pub workers: usize,
}

impl BatchConfig {
    /// Training: shuffled, the last partial batch dropped, [`Augment::LIGHT`], one worker.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            seed,
            shuffle: true,
            drop_last: true,
            augment: Augment::LIGHT,
            workers: 1,
        }
    }

    /// Evaluation: in order, every item, no augmentation, one worker.
    pub fn eval(batch_size: usize) -> Self {
        Self {
            batch_size,
            seed: 0,
            shuffle: false,
            drop_last: false,
            augment: Augment::NONE,
            workers: 1,
        }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a batch size of 0 or an invalid augmentation.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidConfig {
                what: "batch config",
                reason: "batch size 0".to_owned(),
            });
        }
        self.augment.validate()
    }
}

/// A batch: images, labels, and where they came from.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[B, C, H, W]` prepared (normalised, augmented) images.
    pub images: Tensor<4>,
    /// `[B]` class ids.
    pub labels: Tensor<1, Int>,
    /// The dataset indices of the items, in batch order.
    pub indices: Vec<usize>,
    /// The epoch.
    pub epoch: usize,
    /// The batch's position in its epoch: resume with
    /// [`iter_from(epoch, index + 1)`](Batcher::iter_from).
    pub index: usize,
}

/// Makes [`Batch`]es of a [`Dataset`] on a device.
///
/// Epoch `e` visits the items in the order [`order(e)`](Batcher::order) (a permutation seeded by
/// `(seed, e)` when shuffling); batch `i` holds positions `i·B .. (i+1)·B` of it; item `j` is
/// augmented with randomness seeded by `(seed, e, j)`. Every batch is thus a function of
/// `(config, e, i)` alone: [`batch(e, i)`](Batcher::batch) and
/// [`iter_from(e, i)`](Batcher::iter_from) give exactly what an uninterrupted run gives there.
#[derive(Debug, Clone)]
pub struct Batcher<D> {
    dataset: D,
    config: BatchConfig,
    device: Device,
}

impl<D: Dataset> Batcher<D> {
    /// A batcher of `dataset` putting batches on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid config.
    pub fn new(dataset: D, config: BatchConfig, device: Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            dataset,
            config,
            device,
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// The config.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// The device batches are put on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The number of batches in an epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The order in which epoch `epoch` visits the items.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        if self.config.shuffle {
            permutation(self.dataset.len(), self.config.seed, epoch)
        } else {
            (0..self.dataset.len()).collect()
        }
    }

    /// Batch `index` of epoch `epoch`, on its own (computes the epoch's order; to iterate, use
    /// [`iter_from`](Batcher::iter_from)).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] past the last batch; the dataset's errors.
    pub fn batch(&self, epoch: usize, index: usize) -> Result<Batch> {
        let count = self.batches_per_epoch();
        if index >= count {
            return Err(Error::IndexOutOfRange { index, len: count });
        }
        self.make(epoch, index, &self.order(epoch))
    }

    /// The batches of epoch `epoch`.
    pub fn epoch(&self, epoch: usize) -> Batches<'_, D> {
        self.iter_from(epoch, 0)
    }

    /// The batches of epoch `epoch` from batch `start` on (none if `start` is past the end):
    /// the same as those of an uninterrupted [`epoch`](Batcher::epoch).
    pub fn iter_from(&self, epoch: usize, start: usize) -> Batches<'_, D> {
        Batches {
            batcher: self,
            epoch,
            order: self.order(epoch),
            next: start,
            end: self.batches_per_epoch(),
        }
    }

    /// Prepares batch `index` of an epoch visiting the items in `order`.
    fn make(&self, epoch: usize, index: usize, order: &[usize]) -> Result<Batch> {
        let b = self.config.batch_size;
        let start = index * b;
        let indices = order[start..(start + b).min(order.len())].to_vec();
        let [c, h, w] = self.dataset.shape();
        let numel = c * h * w;
        let mut images = vec![0f32; indices.len() * numel];
        let mut labels = vec![0i64; indices.len()];
        let pad = self.dataset.pad_value();
        let workers = self.config.workers.clamp(1, indices.len().max(1));
        if workers == 1 {
            self.fill(epoch, &indices, &mut images, &mut labels, &pad)?;
        } else {
            let per = indices.len().div_ceil(workers);
            let pad = &pad;
            std::thread::scope(|scope| {
                let handles: Vec<_> = indices
                    .chunks(per)
                    .zip(images.chunks_mut(per * numel))
                    .zip(labels.chunks_mut(per))
                    .map(|((ids, imgs), labs)| {
                        scope.spawn(move || self.fill(epoch, ids, imgs, labs, pad))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Result<Vec<()>>>()
            })?;
        }
        let n = indices.len();
        Ok(Batch {
            images: Tensor::from_data(TensorData::new(images, [n, c, h, w]), &self.device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), &self.device),
            indices,
            epoch,
            index,
        })
    }

    /// Prepares the items `indices` into `images` (`[n, C, H, W]`) and `labels`.
    fn fill(
        &self,
        epoch: usize,
        indices: &[usize],
        images: &mut [f32],
        labels: &mut [i64],
        pad: &[f32],
    ) -> Result<()> {
        let shape = self.dataset.shape();
        let numel = shape.iter().product::<usize>();
        let augment = self.config.augment;
        let mut scratch = Vec::new();
        for ((&i, out), label) in indices
            .iter()
            .zip(images.chunks_exact_mut(numel))
            .zip(labels.iter_mut())
        {
            let l = self.dataset.load(i, out)?;
            if !augment.is_identity() {
                let mut rng = sample_rng(self.config.seed, epoch, i);
                augment.apply(out, shape, pad, &mut rng, &mut scratch)?;
            }
            *label = i64::try_from(l).map_err(|_| Error::InvalidConfig {
                what: "label",
                reason: format!("label {l} of item {i} exceeds i64"),
            })?;
        }
        Ok(())
    }
}

/// The batches of one epoch, prepared one at a time as they are asked for; see
/// [`Batcher::iter_from`].
#[derive(Debug)]
pub struct Batches<'a, D> {
    batcher: &'a Batcher<D>,
    epoch: usize,
    order: Vec<usize>,
    next: usize,
    end: usize,
}

impl<D: Dataset> Iterator for Batches<'_, D> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(self.batcher.make(self.epoch, index, &self.order))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl<D: Dataset> ExactSizeIterator for Batches<'_, D> {}
