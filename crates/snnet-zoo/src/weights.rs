//! Loading timm weights from `.safetensors` and PyTorch `.pth` files.
//!
//! Field names follow timm's checkpoint keys, so loading needs only burn-store's
//! [`PyTorchToBurnAdapter`] (Linear weights transposed, norm `weight`/`bias` read as
//! `gamma`/`beta`) and a short per-family remap table (see `docs/WEIGHTS.md`).

// Weight files come from users: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::store::{
    ApplyError, ApplyResult, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore,
    SafetensorsStore,
};
use burn::tensor::{DType, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A weight file's format, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    /// safetensors (the Hugging Face hub's format for timm weights).
    Safetensors,
    /// A PyTorch pickle (`torch.save`), zip or legacy.
    Pytorch,
}

/// What a load did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    /// The file read.
    pub path: PathBuf,
    /// Its format.
    pub format: WeightFormat,
    /// The nested dict the state dict was found under (`model`, `state_dict`), if any.
    pub top_level_key: Option<String>,
    /// Model tensors that were loaded (model paths).
    pub applied: Vec<String>,
    /// Keys in the file the model has no place for (after remapping); reported, not loaded.
    pub unexpected: Vec<String>,
    /// Keys in the file that carry no weights and are skipped by design: BatchNorm's int64
    /// `num_batches_tracked` counters, and the buffers old Swin checkpoints store
    /// (`relative_position_index`, `attn_mask`), which the model recomputes.
    pub ignored: Vec<String>,
    /// Tensors (timm keys) that hold NaN or infinite values, with how many, loaded because
    /// [`LoadOptions::allow_nonfinite`] was set (otherwise such a file is an error).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_finite: Vec<(String, usize)>,
}

/// How weights are loaded.
///
/// ```
/// use snnet_zoo::LoadOptions;
///
/// // The default refuses NaN and infinite weights; a user who really wants them opts in.
/// assert!(!LoadOptions::default().allow_nonfinite);
/// let lenient = LoadOptions::default().with_allow_nonfinite(true);
/// assert!(lenient.allow_nonfinite);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Load tensors holding NaN or infinite values instead of refusing them with
    /// [`Error::NonFinite`]; they are listed in [`LoadReport::non_finite`]. Off by default: such
    /// weights make a model answer with NaN logits or silently wrong ones.
    pub allow_nonfinite: bool,
}

impl LoadOptions {
    /// Sets [`LoadOptions::allow_nonfinite`].
    #[must_use]
    pub fn with_allow_nonfinite(mut self, allow: bool) -> Self {
        self.allow_nonfinite = allow;
        self
    }
}

/// File keys that hold no weights (suffixes): skipped without being reported as unexpected.
const IGNORED_SUFFIXES: [&str; 3] = [
    ".num_batches_tracked",
    ".relative_position_index",
    ".attn_mask",
];

/// The state dicts checkpoints are commonly wrapped in, tried in order when the file's
/// top-level keys do not fit the model.
const WRAPPERS: [&str; 2] = ["model", "state_dict"];

/// Tells a weight file's format from its first bytes.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened, [`Error::WeightFile`] when it is too short to
/// be either format or starts like neither.
pub fn sniff_format(path: &Path) -> Result<WeightFormat> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut head = [0u8; 9];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = file.read(&mut head).map_err(io)?;
    match head.get(..n).unwrap_or_default() {
        // safetensors: a little-endian u64 header length, then the JSON header.
        [_, _, _, _, _, _, _, _, b'{'] => Ok(WeightFormat::Safetensors),
        // A zip archive (torch.save's default since 1.6) or a legacy pickle (protocol 2+).
        [b'P', b'K', 3, 4, ..] | [0x80, ..] => Ok(WeightFormat::Pytorch),
        _ => Err(Error::WeightFile {
            path: path.to_owned(),
            reason: "neither a safetensors file nor a PyTorch checkpoint".to_owned(),
        }),
    }
}

/// Loads timm weights into `model` from a `.safetensors` or PyTorch file, renaming file keys by
/// `remap` (`(regex, replacement)` pairs applied in order).
///
/// Every tensor of the model must be present with the model's shape; extra keys in the file are
/// reported in [`LoadReport::unexpected`]. PyTorch files wrapped as `{"model": ...}` or
/// `{"state_dict": ...}` are unwrapped.
///
/// On error the model may hold a mix of loaded and initial weights: discard it.
///
/// # Errors
/// [`Error::Io`] for an unreadable file, [`Error::WeightFile`] for a truncated or garbled one or
/// an invalid remap pattern, [`Error::ShapeMismatch`] for a tensor of the wrong shape (the first
/// one, with both shapes), [`Error::MissingTensors`] naming every model tensor the file lacks.
pub fn load_weights<M>(model: M, path: &Path, remap: &[(&str, &str)]) -> Result<(M, LoadReport)>
where
    M: Module + ModuleSnapshot,
{
    load_weights_with(model, path, remap, LoadOptions::default())
}

/// As [`load_weights`], with `options` (e.g. [`LoadOptions::allow_nonfinite`]).
///
/// # Errors
/// As [`load_weights`]; [`Error::NonFinite`] (naming the first such tensor) unless
/// `options.allow_nonfinite`.
pub fn load_weights_with<M>(
    model: M,
    path: &Path,
    remap: &[(&str, &str)],
    options: LoadOptions,
) -> Result<(M, LoadReport)>
where
    M: Module + ModuleSnapshot,
{
    let format = sniff_format(path)?;
    let store_error = |e: Box<dyn std::error::Error + Send + Sync>| Error::WeightStore {
        path: path.to_owned(),
        source: e,
    };
    let mut remapper = KeyRemapper::new();
    for (from, to) in remap {
        remapper = remapper
            .add_pattern(from, *to)
            .map_err(|e| Error::RemapPattern {
                pattern: (*from).to_owned(),
                reason: e.to_string(),
            })?;
    }
    let mut model = model;
    let (result, top_level_key) = match format {
        WeightFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(path)
                .remap(remapper)
                .with_from_adapter(PyTorchToBurnAdapter)
                .allow_partial(true)
                .validate(false);
            let result = model
                .load_from(&mut store)
                .map_err(|e| store_error(e.into()))?;
            (result, None)
        }
        WeightFormat::Pytorch => {
            let open = |key: Option<&str>| {
                let store = PytorchStore::from_file(path)
                    .remap(remapper.clone())
                    .allow_partial(true)
                    .validate(false);
                match key {
                    Some(key) => store.with_top_level_key(key),
                    None => store,
                }
            };
            let mut store = open(None);
            let mut result = model
                .load_from(&mut store)
                .map_err(|e| store_error(e.into()))?;
            let mut top = None;
            if result.applied.is_empty() {
                for key in WRAPPERS {
                    let mut store = open(Some(key));
                    if let Ok(wrapped) = model.load_from(&mut store)
                        && !wrapped.applied.is_empty()
                    {
                        result = wrapped;
                        top = Some(key.to_owned());
                        break;
                    }
                }
            }
            (result, top)
        }
    };
    let mut report = check(result, path, format, top_level_key)?;
    let (model, non_finite) =
        finite_f32(model, options.allow_nonfinite, timm_key).map_err(|(key, count)| {
            Error::NonFinite {
                path: path.to_owned(),
                key,
                count,
            }
        })?;
    report.non_finite = non_finite;
    Ok((model, report))
}

/// A tensor holding NaN or infinite values: its name and how many.
pub type NonFinite = (String, usize);

/// `module` as loaded weights must be: every float parameter cast to `f32` (burn-store loads a
/// tensor in the file's dtype, f64, f16 or bf16, and the models run in `f32`), and none holding
/// NaN or infinite values unless `allow_nonfinite`, in which case those are listed. A tensor is
/// named by `key` applied to its module path (relative to `module`).
///
/// # Errors
/// The first parameter holding NaN or infinite values (named, how many) unless
/// `allow_nonfinite`.
pub fn finite_f32<M: Module>(
    module: M,
    allow_nonfinite: bool,
    key: impl Fn(&str) -> String,
) -> std::result::Result<(M, Vec<NonFinite>), NonFinite> {
    let module = module.map(&mut CastF32);
    let mut finite = FiniteCheck {
        all: allow_nonfinite,
        ..FiniteCheck::default()
    };
    module.visit(&mut finite);
    let mut named = finite
        .bad
        .into_iter()
        .map(|(path, count)| (key(&path), count));
    if allow_nonfinite {
        Ok((module, named.collect()))
    } else {
        named.next().map_or(Ok((module, Vec::new())), Err)
    }
}

/// The first float parameter of `module` (in visiting order) holding NaN or infinite values:
/// its module path and how many. Quantized parameters are checked dequantized; parameters never
/// materialised (the parts of an anchor a stitch skips) are not read.
pub fn first_non_finite<M: Module>(module: &M) -> Option<NonFinite> {
    let mut finite = FiniteCheck::default();
    module.visit(&mut finite);
    finite.bad.into_iter().next()
}

/// Finds the float parameters holding NaN or infinite values (the first only, unless `all`),
/// by module path.
#[derive(Default)]
struct FiniteCheck {
    path: Vec<String>,
    all: bool,
    bad: Vec<(String, usize)>,
}

impl ModuleVisitor for FiniteCheck {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // A parameter never materialised (the blocks a stitch skips) holds nothing loaded.
        if (!self.all && !self.bad.is_empty()) || !param.is_initialized() {
            return;
        }
        let value = param.val();
        // Quantized weights are checked as the values they stand for (scales included).
        let value = match value.dtype() {
            DType::QFloat(_) => value.dequantize(),
            _ => value,
        };
        let data = value.into_data();
        let count = match data.as_slice::<f32>() {
            Ok(values) => values.iter().filter(|v| !v.is_finite()).count(),
            Err(_) => data.iter::<f64>().filter(|v: &f64| !v.is_finite()).count(),
        };
        if count > 0 {
            self.bad.push((self.path.join("."), count));
        }
    }
}

/// Casts every float parameter to `f32`.
struct CastF32;

impl ModuleMapper for CastF32 {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            if t.dtype() == DType::F32 {
                t
            } else {
                t.cast(FloatDType::F32)
            }
        })
    }
}

/// Turns burn-store's result into our report or a typed error.
fn check(
    result: ApplyResult,
    path: &Path,
    format: WeightFormat,
    top_level_key: Option<String>,
) -> Result<LoadReport> {
    if let Some(error) = result.errors.first() {
        return Err(match error {
            ApplyError::ShapeMismatch {
                path: key,
                expected,
                found,
            } => {
                // Burn stores Linear weights `[in, out]`; report timm's `[out, in]`.
                let timm_shape = |dims: Vec<usize>| {
                    if key.ends_with(".weight") && dims.len() == 2 {
                        dims.into_iter().rev().collect()
                    } else {
                        dims
                    }
                };
                Error::ShapeMismatch {
                    path: path.to_owned(),
                    key: timm_key(key),
                    expected: timm_shape(expected.to_vec()),
                    found: timm_shape(found.to_vec()),
                }
            }
            other => Error::WeightFile {
                path: path.to_owned(),
                reason: other.to_string(),
            },
        });
    }
    if !result.missing.is_empty() {
        return Err(Error::MissingTensors {
            path: path.to_owned(),
            keys: result
                .missing
                .iter()
                .map(|(key, _)| timm_key(key))
                .collect(),
        });
    }
    let (ignored, unexpected) = result
        .unused
        .into_iter()
        .partition(|key| IGNORED_SUFFIXES.iter().any(|suffix| key.ends_with(suffix)));
    Ok(LoadReport {
        path: path.to_owned(),
        format,
        top_level_key,
        applied: result.applied,
        unexpected,
        ignored,
        non_finite: Vec::new(),
    })
}

/// A model path in timm's naming (norm `gamma`/`beta` are `weight`/`bias` there).
fn timm_key(path: &str) -> String {
    match path.rsplit_once('.') {
        Some((module, "gamma")) if !module.ends_with(".ls1") && !module.ends_with(".ls2") => {
            format!("{module}.weight")
        }
        Some((module, "beta")) => format!("{module}.bias"),
        _ => path.to_owned(),
    }
}

/// Saves a model's weights as a timm-layout safetensors file (timm keys, PyTorch tensor
/// layouts), loadable by [`load_weights`] and by timm. The write is atomic (a temporary file
/// in the same folder, renamed when complete).
///
/// # Errors
/// [`Error::Io`] and [`Error::WeightFile`] when the file cannot be written.
pub fn save_weights<M>(model: &M, path: &Path) -> Result<()>
where
    M: Module + ModuleSnapshot,
{
    let store_error = |e: Box<dyn std::error::Error + Send + Sync>| Error::WeightStore {
        path: path.to_owned(),
        source: e,
    };
    let mut store =
        SafetensorsStore::from_bytes(None).with_to_adapter(burn::store::BurnToPyTorchAdapter);
    model
        .save_into(&mut store)
        .map_err(|e| store_error(e.into()))?;
    let bytes = store.get_bytes().map_err(|e| store_error(e.into()))?;
    let bytes = canonical_safetensors(bytes).map_err(|reason| Error::WeightFile {
        path: path.to_owned(),
        reason,
    })?;
    Ok(snnet_fs::write_atomic(path, &bytes)?)
}

/// Rewrites a safetensors file's JSON header with its entries and its `__metadata__` in key
/// order, the tensor data untouched: burn-store writes the metadata from a `HashMap`, so the
/// same weights would otherwise give files whose bytes differ from run to run. With it, equal
/// models give byte-identical files (`sha256sum` can check a reproduction).
///
/// # Errors
/// A message when `bytes` is not a well-formed safetensors file (header length past the end,
/// header not a JSON object).
pub fn canonical_safetensors(bytes: Vec<u8>) -> std::result::Result<Vec<u8>, String> {
    use std::collections::BTreeMap;

    use serde_json::Value;

    let malformed = |what: &str| format!("malformed safetensors bytes: {what}");
    let length: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("shorter than the header length"))?;
    let end = usize::try_from(u64::from_le_bytes(length))
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| malformed("the header runs past the end"))?;
    let header = bytes
        .get(8..end)
        .ok_or_else(|| malformed("the header runs past the end"))?;
    let header: BTreeMap<String, Value> =
        serde_json::from_slice(header).map_err(|e| malformed(&e.to_string()))?;
    let header: BTreeMap<String, Value> = header
        .into_iter()
        .map(|(key, value)| match value {
            Value::Object(map) => {
                let sorted: BTreeMap<String, Value> = map.into_iter().collect();
                (key, Value::Object(sorted.into_iter().collect()))
            }
            other => (key, other),
        })
        .collect();
    let mut text = serde_json::to_string(&header).map_err(|e| malformed(&e.to_string()))?;
    // The format pads the header with spaces to a multiple of 8 bytes.
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let data = bytes.get(end..).unwrap_or_default();
    let mut out = Vec::new();
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing
    )]

    use burn::tensor::Device;

    use super::*;
    use crate::VitConfig;

    #[test]
    fn equal_models_save_to_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = VitConfig::base(8, 1, 2).with_img_size([8, 8]);
        config.patch_size = [4, 4];
        let model = config.init(&Device::default()).unwrap();
        let first = dir.path().join("a.safetensors");
        save_weights(&model, &first).unwrap();
        let bytes = std::fs::read(&first).unwrap();
        // The header stays valid safetensors and holds the metadata in key order.
        let (n, _) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        let at = |key: &str| header.find(&format!("\"{key}\"")).unwrap();
        assert!(at("__metadata__") < at("cls_token"));
        assert!(at("format") < at("version"));
        let second = dir.path().join("b.safetensors");
        for _ in 0..3 {
            save_weights(&model, &second).unwrap();
            assert_eq!(std::fs::read(&second).unwrap(), bytes);
        }
        let (loaded, _) =
            load_weights(config.init(&Device::default()).unwrap(), &second, &[]).unwrap();
        let x = Tensor::<4>::ones([1, 3, 8, 8], &Device::default());
        assert_eq!(
            loaded.embed_tokens(x.clone()).into_data(),
            model.embed_tokens(x).into_data()
        );
    }

    #[test]
    fn malformed_bytes_are_errors() {
        assert!(canonical_safetensors(vec![]).is_err());
        assert!(canonical_safetensors(vec![1, 2, 3]).is_err());
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(canonical_safetensors(huge).is_err());
        let mut not_json = 4u64.to_le_bytes().to_vec();
        not_json.extend_from_slice(b"{{{{");
        assert!(canonical_safetensors(not_json).is_err());
        let mut empty = 2u64.to_le_bytes().to_vec();
        empty.extend_from_slice(b"{}");
        let out = canonical_safetensors(empty).unwrap();
        assert_eq!(&out[8..], b"{}      ");
    }
}
