//! Your own images: one sub-folder per class, prepared as an anchor's pretrained config says.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use snnet_zoo::PretrainedConfig;

use super::Dataset;
use crate::error::{Error, Result};

/// The file extensions read (compared case-insensitively).
pub const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Images in `root/<class>/**/*.{jpg,jpeg,png}` (torchvision's `ImageFolder` layout): class
/// names are the sub-folders' names, sorted, and labels their positions; files are sorted by
/// path. Hidden entries (names starting with `.`) and other files are skipped.
///
/// Images are prepared by [`snnet_zoo::load_image`] — timm's eval transform for the given
/// [`PretrainedConfig`]: resize, center crop by `crop_pct`, normalise by its mean and std — on
/// the CPU; random augmentation (e.g. [`Augment::FLIP`](super::Augment::FLIP) for training) is
/// the batcher's.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    items: Vec<(PathBuf, usize)>,
    config: PretrainedConfig,
    device: Device,
}

impl ImageFolder {
    /// Lists the classes and images under `root`; images are read later, one by one.
    ///
    /// # Errors
    /// [`Error::Zoo`] for an invalid config; [`Error::Dataset`] naming the folder when `root`
    /// cannot be read, has no class sub-folders, or a class folder has no images.
    pub fn open(root: &Path, config: PretrainedConfig) -> Result<Self> {
        config.validate()?;
        let dataset_error = |path: &Path, reason: String| Error::Dataset {
            path: path.to_owned(),
            reason,
            hint: None,
        };
        let mut class_dirs = Vec::new();
        for entry in read_dir(root)? {
            if entry.is_dir() {
                let name = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                class_dirs.push((name, entry));
            }
        }
        class_dirs.sort();
        if class_dirs.is_empty() {
            return Err(dataset_error(
                root,
                "no class sub-folders (expected root/<class>/<image>.jpg|png)".to_owned(),
            ));
        }
        let mut items = Vec::new();
        for (label, (_, dir)) in class_dirs.iter().enumerate() {
            let mut files = Vec::new();
            collect_images(dir, &mut files)?;
            if files.is_empty() {
                return Err(dataset_error(
                    dir,
                    format!("class folder without images ({})", EXTENSIONS.join(", ")),
                ));
            }
            files.sort();
            items.extend(files.into_iter().map(|f| (f, label)));
        }
        Ok(Self {
            root: root.to_owned(),
            classes: class_dirs.into_iter().map(|(name, _)| name).collect(),
            items,
            config,
            device: cpu_device(),
        })
    }

    /// Prepares images on `device` instead of the CPU (the values come back to the host).
    #[must_use]
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The class names, by label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Every image's path and label, in order.
    pub fn items(&self) -> &[(PathBuf, usize)] {
        &self.items
    }

    /// The preprocessing.
    pub fn config(&self) -> &PretrainedConfig {
        &self.config
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no images (never true for an opened folder).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn shape(&self) -> [usize; 3] {
        self.config.input_size
    }

    fn pad_value(&self) -> Vec<f32> {
        let [chans, ..] = self.config.input_size;
        self.config
            .mean
            .iter()
            .zip(&self.config.std)
            .take(chans)
            .map(|(mean, std)| -mean / std)
            .collect()
    }

    fn load(&self, index: usize, out: &mut [f32]) -> Result<usize> {
        let Some((path, label)) = self.items.get(index) else {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        };
        super::check_out(self.shape(), out)?;
        let image_error = |reason: String| Error::Dataset {
            path: path.clone(),
            reason,
            hint: None,
        };
        let tensor = snnet_zoo::load_image(path, &self.config, &self.device)
            .map_err(|e| image_error(format!("cannot load the image: {e}")))?;
        let values = tensor
            .try_into_data()
            .map_err(|e| image_error(format!("cannot read the prepared image back: {e:?}")))?
            .try_into_vec_as::<f32>()
            .map_err(|e| image_error(format!("prepared image is not f32: {e:?}")))?;
        if values.len() != out.len() {
            return Err(image_error(format!(
                "prepared image has {} values, expected {}",
                values.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&values);
        Ok(*label)
    }
}

/// The CPU device of the compiled backends (Flex when compiled in), for decoding images.
fn cpu_device() -> Device {
    #[cfg(feature = "flex")]
    {
        Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        Device::default()
    }
}

/// The non-hidden entries of `dir`.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let error = |e: std::io::Error| Error::Dataset {
        path: dir.to_owned(),
        reason: format!("cannot list the folder: {e}"),
        hint: None,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let entry = entry.map_err(error)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    Ok(paths)
}

/// The images under `dir`, recursively.
fn collect_images(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for path in read_dir(dir)? {
        if path.is_dir() {
            collect_images(&path, files)?;
        } else if path.extension().is_some_and(|e| {
            let e = e.to_string_lossy().to_ascii_lowercase();
            EXTENSIONS.contains(&e.as_str())
        }) {
            files.push(path);
        }
    }
    Ok(())
}
