//! Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from its IDX files, as Debian's
//! `dataset-fashion-mnist` package installs them.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::idx::{self, IdxArray};
use super::{Dataset, Transform};
use crate::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The class names, by label.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The side of the images, in pixels.
pub const SIDE: usize = 28;

/// The mean pixel of the training set, scaled to [0, 1].
pub const MEAN: f32 = 0.2860;

/// The standard deviation of the training set's pixels, scaled to [0, 1].
pub const STD: f32 = 0.3530;

const MISSING_HINT: &str = "install Debian's package with `apt-get install dataset-fashion-mnist` \
     (it puts the files in /usr/share/datasets/fashion-mnist), or pass `--data DIR` with the four \
     IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and \
     t10k-labels-idx1-ubyte (each gzipped as `.gz` or not)";

const MISSING_OWN_HINT: &str = "the folder must hold the four IDX files train-images-idx3-ubyte, \
     train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each gzipped as \
     `.gz` or not); without --data, Debian's package dataset-fashion-mnist is read";

const CORRUPT_HINT: &str = "the file is damaged: reinstall Debian's package with \
     `apt-get install --reinstall dataset-fashion-mnist`, or pass `--data DIR` with intact \
     copies of the four IDX files";

const CORRUPT_OWN_HINT: &str = "this is not an intact Fashion-MNIST IDX file: replace it with an \
     intact copy";

/// Whether `dir` is where Debian's package installs the files (the hints differ: a user's own
/// folder is not fixed by reinstalling a package).
fn is_package_dir(dir: &Path) -> bool {
    dir == Path::new(DEFAULT_DIR)
}

/// The hint for `dir`: `package`'s for Debian's folder, `own`'s for a user's.
fn hint_for(dir: &Path, package: &str, own: &str) -> String {
    if is_package_dir(dir) { package } else { own }.to_owned()
}

fn missing_hint(dir: &Path) -> String {
    hint_for(dir, MISSING_HINT, MISSING_OWN_HINT)
}

fn corrupt_hint(dir: &Path) -> String {
    hint_for(dir, CORRUPT_HINT, CORRUPT_OWN_HINT)
}

/// Which half of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl Split {
    /// The file stems of the images and the labels (without `.gz`).
    pub fn stems(self) -> [&'static str; 2] {
        match self {
            Self::Train => ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
            Self::Test => ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
        }
    }

    /// The number of images in the published dataset.
    pub fn published_len(self) -> usize {
        match self {
            Self::Train => 60_000,
            Self::Test => 10_000,
        }
    }
}

/// Fashion-MNIST images (28×28 grey bytes) and labels (0 to 9, [`CLASSES`]), with the
/// [`Transform`] that prepares them as a [`Dataset`].
///
/// The original MNIST files have the same names and format and load as well.
#[derive(Debug, Clone, PartialEq)]
pub struct FashionMnist {
    images: Vec<u8>,
    labels: Vec<u8>,
    transform: Transform,
}

impl FashionMnist {
    /// Loads a split from `dir` (e.g. [`DEFAULT_DIR`]): `<stem>.gz` or else `<stem>` for the
    /// images and the labels (see [`Split::stems`]). Prepared by [`Transform::fashion_mnist`].
    ///
    /// # Errors
    /// [`Error::Dataset`] when a file is missing or corrupt (not IDX, truncated, of the wrong
    /// shape, or with labels past 9). For [`DEFAULT_DIR`] the message says how to install (or
    /// reinstall) Debian's package or pass `--data DIR`; for another folder, which files it must
    /// hold or that the file is damaged.
    pub fn load(dir: &Path, split: Split) -> Result<Self> {
        let [image_stem, label_stem] = split.stems();
        let (image_path, images) = read(dir, image_stem)?;
        let (label_path, labels) = read(dir, label_stem)?;
        let corrupt = |path: &Path, reason: String| Error::Dataset {
            path: path.to_owned(),
            reason,
            hint: Some(corrupt_hint(dir)),
        };
        let n = match images.dims[..] {
            [n, SIDE, SIDE] => n,
            _ => {
                return Err(corrupt(
                    &image_path,
                    format!(
                        "images of shape {:?}, expected [n, {SIDE}, {SIDE}]",
                        images.dims
                    ),
                ));
            }
        };
        if labels.dims != [n] {
            return Err(corrupt(
                &label_path,
                format!("labels of shape {:?} for {n} images", labels.dims),
            ));
        }
        Self::from_parts(images.data, labels.data).map_err(|e| match e {
            Error::InvalidConfig { reason, .. } => corrupt(&label_path, reason),
            other => other,
        })
    }

    /// Loads a split from [`DEFAULT_DIR`]; see [`load`](FashionMnist::load).
    ///
    /// # Errors
    /// As [`load`](FashionMnist::load).
    pub fn load_default(split: Split) -> Result<Self> {
        Self::load(Path::new(DEFAULT_DIR), split)
    }

    /// Images (`n × 28 × 28` bytes, row-major) and labels (`n` bytes, each below 10).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the lengths do not match or a label is 10 or more.
    pub fn from_parts(images: Vec<u8>, labels: Vec<u8>) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidConfig {
            what: "Fashion-MNIST data",
            reason,
        };
        if labels.len().checked_mul(SIDE * SIDE) != Some(images.len()) {
            return Err(invalid(format!(
                "{} bytes of images for {} labels (need {SIDE}×{SIDE} per label)",
                images.len(),
                labels.len()
            )));
        }
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= CLASSES.len())
        {
            return Err(invalid(format!("label {l} of image {i} is not below 10")));
        }
        Ok(Self {
            images,
            labels,
            transform: Transform::fashion_mnist(),
        })
    }

    /// `n` synthetic images that a small network tells apart within a few steps (tests,
    /// examples, device checks): image `i` is black with label `i % 10`, painted as a bright
    /// 10×5 bar at a place of its own (rows 14·(label / 5) + 0..10, columns 5·(label % 5) + 0..5).
    #[must_use]
    pub fn bars(n: usize) -> Self {
        const PIXELS: usize = SIDE * SIDE;
        let mut images = vec![0u8; n.saturating_mul(PIXELS)];
        let labels: Vec<u8> = (0..10).cycle().take(n).collect();
        for (image, &label) in images.chunks_exact_mut(PIXELS).zip(&labels) {
            let top = usize::from(label / 5).saturating_mul(14);
            let left = usize::from(label % 5).saturating_mul(5);
            for row in image.chunks_exact_mut(SIDE).skip(top).take(10) {
                row.iter_mut().skip(left).take(5).for_each(|p| *p = 255);
            }
        }
        Self {
            images,
            labels,
            transform: Transform::fashion_mnist(),
        }
    }

    /// The same data prepared by `transform` (e.g. [`Transform::for_pretrained`] for an
    /// anchor taking 3×224×224).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid transform.
    pub fn with_transform(mut self, transform: Transform) -> Result<Self> {
        transform.validate()?;
        self.transform = transform;
        Ok(self)
    }

    /// The transform that prepares the images.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// The first `n` images (all if there are fewer), e.g. for quick runs.
    #[must_use]
    pub fn subset(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            images: self
                .images
                .get(..n.saturating_mul(SIDE * SIDE))
                .unwrap_or_default()
                .to_vec(),
            labels: self.labels.get(..n).unwrap_or_default().to_vec(),
            transform: self.transform,
        }
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All images, `len() × 28 × 28` bytes.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Image `index` as 28×28 bytes (0 black, 255 white), if it exists.
    pub fn pixels(&self, index: usize) -> Option<&[u8]> {
        let size = SIDE * SIDE;
        let start = index.checked_mul(size)?;
        self.images.get(start..start.checked_add(size)?)
    }

    /// Label `index`, if it exists.
    pub fn label(&self, index: usize) -> Option<u8> {
        self.labels.get(index).copied()
    }

    /// The number of images per class.
    pub fn class_counts(&self) -> [usize; 10] {
        let mut counts = [0usize; 10];
        for &l in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(l)) {
                *count = count.saturating_add(1);
            }
        }
        counts
    }
}

impl Dataset for FashionMnist {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn num_classes(&self) -> usize {
        CLASSES.len()
    }

    fn shape(&self) -> [usize; 3] {
        self.transform.shape()
    }

    fn pad_value(&self) -> Vec<f32> {
        self.transform.pad_value()
    }

    fn load(&self, index: usize, out: &mut [f32]) -> Result<usize> {
        let (Some(pixels), Some(label)) = (self.pixels(index), self.label(index)) else {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        };
        self.transform.apply(pixels, [SIDE, SIDE], out)?;
        Ok(usize::from(label))
    }
}

/// Finds and reads one IDX file, with the install hint when missing, the reinstall hint when
/// corrupt.
fn read(dir: &Path, stem: &str) -> Result<(PathBuf, IdxArray)> {
    let Some(path) = idx::find(dir, stem) else {
        let [gz, raw] = idx::candidates(dir, stem);
        let reason = if dir.is_dir() {
            format!("not found (nor {})", raw.display())
        } else {
            format!("not found: {} is not a directory", dir.display())
        };
        return Err(Error::Dataset {
            path: gz,
            reason,
            hint: Some(missing_hint(dir)),
        });
    };
    match idx::read_idx(&path) {
        Ok(array) => Ok((path, array)),
        Err(Error::Dataset { path, reason, .. }) => Err(Error::Dataset {
            path,
            reason,
            hint: Some(corrupt_hint(dir)),
        }),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn package_folder_hints_name_the_package_own_folders_do_not() {
        let package = Path::new(DEFAULT_DIR);
        assert!(missing_hint(package).contains("apt-get install dataset-fashion-mnist"));
        assert!(corrupt_hint(package).contains("apt-get install --reinstall"));
        let own = Path::new("/home/user/data");
        assert!(!missing_hint(own).contains("apt-get"));
        assert!(missing_hint(own).contains("train-images-idx3-ubyte"));
        assert!(!corrupt_hint(own).contains("apt-get"));
    }

    #[test]
    fn from_parts_checks_lengths_and_labels() {
        assert!(FashionMnist::from_parts(vec![0; 784 * 2], vec![1, 9]).is_ok());
        assert!(FashionMnist::from_parts(vec![0; 784], vec![1, 9]).is_err());
        assert!(FashionMnist::from_parts(vec![0; 784], vec![10]).is_err());
    }

    #[test]
    fn subsets_and_loads_items() {
        let images: Vec<u8> = (0..3 * 784).map(|i| (i / 784) as u8 * 100).collect();
        let data = FashionMnist::from_parts(images, vec![4, 5, 6]).unwrap();
        let small = data.subset(2);
        assert_eq!(small.len(), 2);
        assert_eq!(small.labels(), [4, 5]);
        assert_eq!(data.subset(10).len(), 3);
        let sample = data.get(1).unwrap();
        assert_eq!(sample.label, 5);
        assert!((sample.image[0] - (100.0 / 255.0 - MEAN) / STD).abs() < 1e-6);
        assert!(matches!(
            data.get(3),
            Err(Error::IndexOutOfRange { index: 3, len: 3 })
        ));
        assert_eq!(data.class_counts()[4..7], [1, 1, 1]);
    }
}
