//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong building, loading or running an anchor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model name the registry does not know.
    #[error("unknown model `{name}`{}", suggestion_text(.suggestions))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Known names close to it, best first.
        suggestions: Vec<String>,
    },
    /// A configuration that cannot describe a model.
    #[error("invalid {family} config: {reason}")]
    InvalidConfig {
        /// The model family.
        family: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Input images of the wrong shape.
    #[error("input of shape {found:?} does not fit the model: expected {expected}")]
    InputShape {
        /// What the model needs, in words.
        expected: String,
        /// The shape given.
        found: Vec<usize>,
    },
    /// A weight file that cannot be read or parsed (missing, truncated, garbled).
    #[error("cannot read weights from {path}: {reason}")]
    WeightFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A weight file burn-store cannot read, or a model it cannot write (the store's error kept
    /// as the source).
    #[error("cannot read weights from {path}: {source}")]
    WeightStore {
        /// The file.
        path: PathBuf,
        /// The store's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A key remap pattern that is not a valid regular expression.
    #[error("invalid key remap pattern `{pattern}`: {reason}")]
    RemapPattern {
        /// The pattern.
        pattern: String,
        /// The regex parser's message (burn-store's `regex` is built without `std`, so its
        /// error is not a `std::error::Error` to keep as a source).
        reason: String,
    },
    /// A tensor file (model inputs, outputs, features) that is not valid safetensors.
    #[error("tensor file {}: {source}", .path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: safetensors::SafeTensorError,
    },
    /// Bytes the image decoder refuses (the decoder's error kept as the source).
    #[error("{input}: not a decodable JPEG or PNG image: {source}")]
    ImageDecode {
        /// The file or request the bytes came from.
        input: String,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// A tensor file (model inputs, outputs, features) that cannot be read or written.
    #[error("tensor file {}: {reason}", .path.display())]
    TensorFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A tensor the model needs that the weight file lacks.
    #[error(
        "weights from {path} lack {} tensor(s) the model needs: {}",
        .keys.len(), .keys.join(", ")
    )]
    MissingTensors {
        /// The file.
        path: PathBuf,
        /// The model's keys (timm names) that were not found.
        keys: Vec<String>,
    },
    /// A tensor whose shape differs from the model's.
    #[error("tensor `{key}` in {path} has shape {found:?}, the model needs {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// Bytes that are not a decodable JPEG or PNG image.
    #[error("{input}: not a decodable JPEG or PNG image: {reason}")]
    Image {
        /// The file or request the bytes came from.
        input: String,
        /// The decoder's reason.
        reason: String,
    },
    /// An input over one of the documented limits (see [`crate::limits`]), refused before
    /// anything is allocated for it.
    #[error("{input}: {what} is {value}, over the limit of {limit} ({constant})")]
    Limit {
        /// The file or request.
        input: String,
        /// What was measured.
        what: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
        /// The constant that sets the limit.
        constant: &'static str,
    },
    /// A weight tensor holds NaN or infinite values (a damaged or hostile file: the model would
    /// answer with NaN logits or silently wrong ones).
    #[error("tensor `{key}` in {} holds {count} NaN or infinite value(s)", .path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor's key (timm's naming).
        key: String,
        /// How many values are not finite.
        count: usize,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing a file safely failed (or its target is not a regular file).
    #[error(transparent)]
    Write(#[from] snnet_fs::Error),
    /// Malformed JSON.
    #[error("invalid JSON in {}: {source}", .path.display())]
    Json {
        /// The file (empty for strings).
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl Error {
    /// [`Error::InvalidConfig`] of `family` for `reason`.
    pub(crate) fn invalid_config(family: &'static str, reason: String) -> Self {
        Self::InvalidConfig { family, reason }
    }
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        "; run `snnet models` to list the known models".to_owned()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
