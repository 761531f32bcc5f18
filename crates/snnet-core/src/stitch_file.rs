//! Stitch files: a [`StitchModel`] as self-describing safetensors, and telling the files this
//! crate writes apart by their content.
//!
//! | tensors | keys |
//! |---|---|
//! | a single anchor (an exported anchor) | its timm keys, bare (a timm weight file) |
//! | anchor `k` of a stitched path (first-use order) | `anchors.{k}.<timm key>` |
//! | stitching layer `j` of the path | `stitch_layers.{j}.transform.{weight,bias,lora_A,lora_B}` |
//!
//! Only the tensors the path runs are written. The [`StitchConfig`] is JSON under the
//! safetensors metadata key [`STITCH_KEY`] (an SN-Net checkpoint has [`CONFIG_KEY`] instead).

// Reads input from files: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore, SafetensorsStoreError,
};
use burn::tensor::Device;
use snnet_space::Segment;
use snnet_zoo::FeatureInfo;

use crate::checkpoint::CONFIG_KEY;
use crate::error::Result;
use crate::stitch_model::{StitchConfig, StitchModel};

/// The safetensors metadata key holding a stitch file's [`StitchConfig`] JSON.
pub const STITCH_KEY: &str = "snnet_stitch";

/// The first four bytes of a burnpack file (Burn's own format; quantized weights).
const BURNPACK_MAGIC: [u8; 4] = burn::store::burn_pack::MAGIC_NUMBER.to_le_bytes();

/// The largest safetensors header read (the files' JSON headers are kilobytes).
const MAX_HEADER: u64 = 100 << 20;

/// What a model file holds, told from its content (never its extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFile {
    /// An SN-Net checkpoint ([`crate::SnNet::save`]): safetensors with [`CONFIG_KEY`].
    SnNet,
    /// One exported stitch ([`StitchModel::save`]): safetensors with [`STITCH_KEY`].
    Stitch,
    /// A burnpack file (Burn's own format, e.g. quantized weights).
    Burnpack,
}

/// What can go wrong exporting, saving or loading one stitch, or selecting its features.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A file shorter than its header says (a truncated copy or download).
    #[error(
        "{}: truncated: its header describes {expected} bytes, the file has {found}",
        .path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes its header describes.
        expected: u64,
        /// Bytes it has.
        found: u64,
    },
    /// A file that is neither safetensors nor burnpack, or whose safetensors header is not
    /// JSON.
    #[error("{}: not a model file (neither safetensors nor burnpack)", .path.display())]
    NotAModelFile {
        /// The file.
        path: PathBuf,
        /// The header's parse error, when it got that far.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A safetensors file with neither an SN-Net's nor a stitch's configuration (e.g. timm
    /// weights).
    #[error(
        "{}: a safetensors file without an SN-Net or stitch configuration in its metadata",
        .path.display()
    )]
    NoConfig {
        /// The file.
        path: PathBuf,
    },
    /// A configuration in the metadata that does not parse.
    #[error("{}: invalid `{key}` configuration in the metadata", .path.display())]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A file of another kind where a stitch file was expected.
    #[error("{}: a {found:?} file, not an exported stitch", .path.display())]
    NotAStitch {
        /// The file.
        path: PathBuf,
        /// What it is.
        found: ModelFile,
    },
    /// burn-store could not read or write the tensors.
    #[error("{}: cannot read or write the tensors", .path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// burn-store's error.
        #[source]
        source: Box<SafetensorsStoreError>,
    },
    /// A tensor of the file that does not fit the model (shape or dtype).
    #[error("{}: a tensor does not fit the stitch", .path.display())]
    Apply {
        /// The file.
        path: PathBuf,
        /// The first mismatch.
        #[source]
        source: Box<ApplyError>,
    },
    /// Tensors the stitch runs that the file lacks.
    #[error("{}: {} tensor(s) the stitch runs are missing, e.g. {:?}", .path.display(), .keys.len(), .keys.first())]
    MissingTensors {
        /// The file.
        path: PathBuf,
        /// The module paths missing.
        keys: Vec<String>,
    },
    /// A burnpack file that cannot be read or written.
    #[error("{}: burnpack", .path.display())]
    Burnpack {
        /// The file.
        path: PathBuf,
        /// burn-pack's error.
        #[source]
        source: Box<burn::store::burn_pack::Error>,
    },
    /// A file of one stitch where a whole SN-Net was expected.
    #[error("{}: one exported stitch ({found:?}), not a whole SN-Net", .path.display())]
    NotAnSnNet {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: ModelFile,
    },
    /// A quantized network or stitch given where f32 weights are needed (training, the
    /// least-squares init, safetensors output).
    #[error("{}: holds int8 (quantized) weights; {what} needs f32 weights", .path.display())]
    Quantized {
        /// The file.
        path: PathBuf,
        /// What needs f32.
        what: &'static str,
    },
    /// A feature position past the end of a stitch's block sequence.
    #[error("stitch {id} runs {blocks} blocks; no block at position {position}")]
    NoSuchBlock {
        /// The stitch.
        id: snnet_space::StitchId,
        /// Blocks on its path.
        blocks: usize,
        /// The position asked for.
        position: usize,
    },
    /// An invalid key pattern (a bug: the patterns are built from the plan).
    #[error("invalid key pattern `{pattern}`")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// The regex error.
        #[source]
        source: Box<regex::Error>,
    },
}

fn io_error(path: &Path, source: std::io::Error) -> crate::Error {
    crate::Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a safetensors file's JSON header, checking that the file holds every byte it
/// describes.
fn read_header(path: &Path) -> Result<serde_json::Value> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let size = file.metadata().map_err(|e| io_error(path, e))?.len();
    let not_model = |source| ExportError::NotAModelFile {
        path: path.to_owned(),
        source,
    };
    let mut len = [0u8; 8];
    if size < 8 {
        return Err(not_model(None).into());
    }
    file.read_exact(&mut len).map_err(|e| io_error(path, e))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER {
        return Err(not_model(None).into());
    }
    let truncated = |expected| ExportError::Truncated {
        path: path.to_owned(),
        expected,
        found: size,
    };
    let header_end = len.saturating_add(8);
    if header_end > size {
        return Err(truncated(header_end).into());
    }
    let mut header = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact(&mut header)
        .map_err(|e| io_error(path, e))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| not_model(Some(e)))?;
    // The data section ends where the furthest tensor does.
    let data_end = header
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let expected = header_end.saturating_add(data_end);
    if expected > size {
        return Err(truncated(expected).into());
    }
    Ok(header)
}

/// The metadata value under `key` of a parsed safetensors header.
fn metadata<'h>(header: &'h serde_json::Value, key: &str) -> Option<&'h str> {
    header.get("__metadata__")?.get(key)?.as_str()
}

/// Tells what a model file holds from its content: an SN-Net checkpoint, an exported stitch
/// or a burnpack file.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) for an unreadable file, and [`ExportError`]'s
/// `Truncated`, `NotAModelFile` and `NoConfig` for what is not one of them.
pub fn sniff_model_file(path: &Path) -> Result<ModelFile> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let n = file.read(&mut magic).map_err(|e| io_error(path, e))?;
    if n == 4 && magic == BURNPACK_MAGIC {
        return Ok(ModelFile::Burnpack);
    }
    let header = read_header(path)?;
    if metadata(&header, STITCH_KEY).is_some() {
        Ok(ModelFile::Stitch)
    } else if metadata(&header, CONFIG_KEY).is_some() {
        Ok(ModelFile::SnNet)
    } else {
        Err(ExportError::NoConfig {
            path: path.to_owned(),
        }
        .into())
    }
}

/// Reads the [`StitchConfig`] of a stitch file.
///
/// # Errors
/// As [`sniff_model_file`], [`ExportError::NotAStitch`] for another kind of model file and
/// [`ExportError::BadConfig`].
pub fn read_stitch_config(path: &Path) -> Result<StitchConfig> {
    let kind = sniff_model_file(path)?;
    if kind != ModelFile::Stitch {
        return Err(ExportError::NotAStitch {
            path: path.to_owned(),
            found: kind,
        }
        .into());
    }
    let header = read_header(path)?;
    let json = metadata(&header, STITCH_KEY).unwrap_or_default();
    Ok(
        serde_json::from_str(json).map_err(|source| ExportError::BadConfig {
            path: path.to_owned(),
            key: STITCH_KEY,
            source,
        })?,
    )
}

/// Which part of an anchor a timm key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Stem,
    Block(usize),
    Head,
}

/// The first-level names of the stems' tensors (ViT, Swin, ResNet); everything outside the
/// blocks and the stem is head (final norm, classifier).
const STEM_NAMES: [&str; 8] = [
    "patch_embed",
    "cls_token",
    "dist_token",
    "reg_token",
    "pos_embed",
    "absolute_pos_embed",
    "conv1",
    "bn1",
];

/// The part of an anchor a timm key belongs to: the block whose module path prefixes it, the
/// first block of the stage whose container prefixes it (Swin's `layers.{s}.downsample`, run
/// by the stage's first block), the stem, or the head.
fn part_of(key: &str, info: &[FeatureInfo]) -> Part {
    let under = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    if let Some(block) = info.iter().find(|f| under(&f.module)) {
        return Part::Block(block.index);
    }
    for f in info {
        // `layers.2.blocks.1` → the stage container `layers.2`.
        let mut parts = f.module.rsplitn(3, '.');
        let (_, _, stage) = (parts.next(), parts.next(), parts.next());
        if let Some(stage) = stage
            && under(stage)
        {
            return Part::Block(f.index);
        }
    }
    let first = key.split('.').next().unwrap_or_default();
    if STEM_NAMES.contains(&first) {
        Part::Stem
    } else {
        Part::Head
    }
}

/// What a load through a Burn store left to check: the first tensor that did not apply
/// ([`ExportError::Apply`]), the tensors missing ([`ExportError::MissingTensors`]: of those
/// `needed`, or of every parameter when `None`), and NaN or infinite values in the loaded
/// `module` ([`Error::NonFinite`](crate::Error::NonFinite)).
pub(crate) fn check_applied<M: burn::module::Module>(
    module: M,
    path: &Path,
    result: ApplyResult,
    needed: Option<Vec<String>>,
) -> Result<M> {
    if let Some(source) = result.errors.into_iter().next() {
        return Err(ExportError::Apply {
            path: path.to_owned(),
            source: Box::new(source),
        }
        .into());
    }
    let missing: Vec<String> = match needed {
        None => result.missing.into_iter().map(|(k, _)| k).collect(),
        Some(needed) => {
            let applied: std::collections::BTreeSet<String> =
                result.applied.iter().map(|k| without_variant(k)).collect();
            needed
                .into_iter()
                .filter(|k| !applied.contains(k))
                .collect()
        }
    };
    if !missing.is_empty() {
        return Err(ExportError::MissingTensors {
            path: path.to_owned(),
            keys: missing,
        }
        .into());
    }
    crate::finite::refuse_non_finite(&module, path)?;
    Ok(module)
}

/// A module path without the [`snnet_zoo::Model`] variant: `anchors.0.Vit.model.x` →
/// `anchors.0.model.x`.
pub(crate) fn without_variant(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["anchors", k, variant, rest @ ..]
            if variant.starts_with(|c: char| c.is_ascii_uppercase()) =>
        {
            std::iter::once("anchors")
                .chain(std::iter::once(*k))
                .chain(rest.iter().copied())
                .collect::<Vec<_>>()
                .join(".")
        }
        _ => path.to_owned(),
    }
}

/// Whether the segments of one anchor run the part of `key`.
fn runs(key: &str, info: &[FeatureInfo], segments: &[&Segment]) -> bool {
    match part_of(key, info) {
        Part::Stem => segments.iter().any(|s| s.stem),
        Part::Head => segments.iter().any(|s| s.head),
        Part::Block(b) => segments.iter().any(|s| s.blocks().contains(&b)),
    }
}

impl StitchModel {
    /// Whether this stitch runs the tensor at module path `key` (burn-store's path, with or
    /// without enum variants: `anchors.{k}[.Vit].model.<timm key>` or `stitch_layers.{j}.…`).
    fn runs_tensor(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix("anchors.") else {
            return key.starts_with("stitch_layers.");
        };
        let (Some((k, _)), Some((_, timm))) = (rest.split_once('.'), rest.split_once(".model."))
        else {
            return false;
        };
        let Ok(k) = k.parse::<usize>() else {
            return false;
        };
        let segments: Vec<&Segment> = self.segments().iter().filter(|s| s.anchor == k).collect();
        runs(timm, self.anchor_feature_info(k), &segments)
    }

    /// The module → file key remapper (or file → module with `inverse`).
    fn remapper(&self, inverse: bool) -> Result<KeyRemapper> {
        let (from, to) = match (self.anchors.len() == 1, inverse) {
            (true, false) => (r"^anchors\.0\.model\.", ""),
            (true, true) => (r"^", "anchors.0.model."),
            (false, false) => (r"^anchors\.(\d+)\.model\.", "anchors.$1."),
            (false, true) => (r"^anchors\.(\d+)\.", "anchors.$1.model."),
        };
        let mut pairs = vec![(from, to)];
        if self.anchors.len() == 1 {
            // No stitching layer on an anchor's path; nothing else to rename.
        } else if inverse {
            pairs.push((r"\.transform\.lora_A$", ".transform.lora_a"));
            pairs.push((r"\.transform\.lora_B$", ".transform.lora_b"));
        } else {
            pairs.push((r"\.transform\.lora_a$", ".transform.lora_A"));
            pairs.push((r"\.transform\.lora_b$", ".transform.lora_B"));
        }
        let mut remapper = KeyRemapper::new();
        for (from, to) in pairs {
            remapper = remapper
                .add_pattern(from, to)
                .map_err(|e| ExportError::Pattern {
                    pattern: from.to_owned(),
                    source: Box::new(e),
                })?;
        }
        Ok(remapper)
    }

    /// The paths of the tensors this stitch runs: burn-store's module paths (enum variants
    /// skipped unless `variants`), or with `pytorch` the paths its [`BurnToPyTorchAdapter`]
    /// gives them (norm `weight`, not `gamma`), which its save filter sees.
    pub(crate) fn run_tensors(&self, pytorch: bool, variants: bool) -> Vec<String> {
        let adapter: Option<Box<dyn burn::store::ModuleAdapter>> = if pytorch {
            Some(Box::new(BurnToPyTorchAdapter))
        } else {
            None
        };
        self.collect(None, adapter, !variants)
            .iter()
            .map(|t| t.name.clone())
            .filter(|k| self.runs_tensor(k))
            .collect()
    }

    /// The module paths (enum variants skipped, Burn's names) of the parameters this stitch
    /// runs, found without materialising any (a visitor that reads no value).
    pub(crate) fn run_params(&self) -> Vec<String> {
        #[derive(Default)]
        struct Paths {
            path: Vec<String>,
            all: Vec<String>,
        }
        impl burn::module::ModuleVisitor for Paths {
            fn enter_module(&mut self, name: &str, _container: &str) {
                self.path.push(name.to_owned());
            }
            fn exit_module(&mut self, _name: &str, _container: &str) {
                self.path.pop();
            }
            fn visit_float<const D: usize>(
                &mut self,
                _param: &burn::module::Param<burn::tensor::Tensor<D>>,
            ) {
                self.all.push(without_variant(&self.path.join(".")));
            }
        }
        let mut paths = Paths::default();
        burn::module::Module::visit(self, &mut paths);
        paths
            .all
            .into_iter()
            .filter(|k| self.runs_tensor(k))
            .collect()
    }

    /// The file's bytes: the tensors the stitch runs, in PyTorch's layout, with the
    /// [`StitchConfig`] as metadata.
    ///
    /// # Errors
    /// [`ExportError::Store`] when the tensors cannot be serialised.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let path = Path::new("-");
        let store_error = |source| ExportError::Store {
            path: path.to_owned(),
            source: Box::new(source),
        };
        let config =
            serde_json::to_string(self.config()).map_err(|source| ExportError::BadConfig {
                path: path.to_owned(),
                key: STITCH_KEY,
                source,
            })?;
        let mut store = SafetensorsStore::from_bytes(None)
            .with_to_adapter(BurnToPyTorchAdapter)
            .skip_enum_variants(true)
            .with_full_paths(self.run_tensors(true, false))
            .remap(self.remapper(false)?)
            .metadata(STITCH_KEY, config);
        self.save_into(&mut store).map_err(store_error)?;
        let bytes = store.get_bytes().map_err(store_error)?;
        Ok(snnet_zoo::canonical_safetensors(bytes)
            .map_err(|reason| store_error(SafetensorsStoreError::Other(reason)))?)
    }

    /// Saves the stitch as one self-describing safetensors file (see the module docs); the
    /// write is atomic ([`snnet_fs::write_atomic`]).
    ///
    /// # Errors
    /// As [`StitchModel::to_bytes`], and [`Error::Write`](crate::Error::Write).
    pub fn save(&self, path: &Path) -> Result<()> {
        Ok(snnet_fs::write_atomic(path, &self.to_bytes()?)?)
    }

    /// Loads a stitch file written by [`StitchModel::save`], without the SN-Net it came from.
    ///
    /// # Errors
    /// As [`read_stitch_config`]; [`Error::Space`](crate::Error::Space),
    /// [`Error::Zoo`](crate::Error::Zoo) for a configuration whose plan cannot be built or
    /// whose stitch id is out of range; [`ExportError::Store`], [`ExportError::Apply`] and
    /// [`ExportError::MissingTensors`] for tensors that do not fit;
    /// [`Error::NonFinite`](crate::Error::NonFinite) for NaN or infinite weights.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let config = read_stitch_config(path)?;
        let mut model = Self::init(config, device)?;
        let needed = model.run_params();
        let mut store = SafetensorsStore::from_file(path)
            .with_from_adapter(PyTorchToBurnAdapter)
            .skip_enum_variants(true)
            .remap(model.remapper(true)?)
            .allow_partial(true)
            .validate(false);
        let result = model
            .load_from(&mut store)
            .map_err(|source| ExportError::Store {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        check_applied(model, path, result, Some(needed))
    }
}
