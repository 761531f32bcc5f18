//! SN-Net checkpoints: our self-describing safetensors files and the released ziplab ones.
//!
//! Both use the reference's key layout, in PyTorch's tensor layout:
//!
//! | tensors | keys |
//! |---|---|
//! | anchor `a` | `anchors.{a}.<timm key>` |
//! | SN-Net DeiT layers | `stitch_layers.{pair}.{layer}.transform.{weight,bias}` |
//! | Swin, ResNet layers | `stitch_layers.{stage position}.{pair}.{layer}.transform.*` |
//! | SN-Netv2 layers | `stitch_layers.{front}.{layer}.transform.{weight,bias,lora_A,lora_B}` |
//!
//! A stitching layer's `weight` is `[C_out, C_in]`; the reference's ResNet 1×1 convolutions'
//! `[C_out, C_in, 1, 1]` loads too. Our files add the [`SnNetConfig`] as JSON under the
//! safetensors metadata key `snnet`, so [`SnNet::load`] needs nothing else.
//!
//! Loading goes through burn-store, as saving does: each anchor through the zoo
//! (`ModelEntry::load_prefixed_with`: timm's renames, per-anchor reports), the stitching layers
//! through [`read_tensors`] (the file's tensors renamed by [`CheckpointKeys::to_module`], the
//! inverse of the save remapper) and [`apply_stitch_layers`] (burn-store's shape and dtype
//! checks, then `f32` and the NaN check), every failure a typed [`Error`] naming the file key.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, KeyRemapper, ModuleAdapter, ModuleContext,
    ModuleSnapshot, ModuleStore, PathFilter, PytorchStore, SafetensorsStore, bridge,
};
use burn::tensor::{Device, Shape, Tensor, TensorData};
use snnet_stitch::{Init, StitchingLayer};
use snnet_zoo::weights::{finite_f32, sniff_format};
use snnet_zoo::{LoadOptions, LoadReport, WeightFormat};

use crate::error::{Error, Result};
use crate::net::SnNet;
use crate::plan::{Plan, SnNetConfig};

/// The safetensors metadata key holding the [`SnNetConfig`] JSON.
pub const CONFIG_KEY: &str = "snnet";

/// A stitching layer's tensors: (module name, checkpoint name).
const LAYER_TENSORS: [(&str, &str); 4] = [
    ("weight", "weight"),
    ("bias", "bias"),
    ("lora_a", "lora_A"),
    ("lora_b", "lora_B"),
];

/// The one table between the network's module keys and the checkpoint's file keys (the
/// reference's layout), derived from the plan. [`SnNet::save`] maps module → file with
/// [`CheckpointKeys::to_file`] and [`SnNet::load_with_config`] file → module with its inverse,
/// [`CheckpointKeys::to_module`] (both burn-store key remappers built from one list), so the two
/// directions cannot disagree; [`CheckpointKeys::file_key`] names a module tensor in errors and
/// reports.
///
/// | module key | file key |
/// |---|---|
/// | `anchors.{a}.model.<timm key>` | `anchors.{a}.<timm key>` |
/// | `stitch_layers.{flat}.transform.{weight,bias,lora_a,lora_b}` | `{reference prefix}.transform.{weight,bias,lora_A,lora_B}` |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointKeys {
    anchors: usize,
    layers: Vec<String>,
}

impl CheckpointKeys {
    /// The table of a plan.
    ///
    /// # Errors
    /// [`Error::NoCheckpointKey`] when a stitching layer has no reference key.
    pub fn new(plan: &Plan) -> Result<Self> {
        let layers = (0..plan.layer_keys().len())
            .map(|index| {
                plan.reference_layer_prefix(index)
                    .ok_or(Error::NoCheckpointKey { layer: index })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            anchors: plan.config().anchors.len(),
            layers,
        })
    }

    /// The file-key prefix of anchor `a`'s tensors (`anchors.{a}.`).
    pub fn anchor_prefix(a: usize) -> String {
        format!("anchors.{a}.")
    }

    /// The file key of flat stitching layer `index`'s tensor `name` (a module name:
    /// `weight`, `bias`, `lora_a`, `lora_b`).
    pub fn layer_key(&self, index: usize, name: &str) -> Option<String> {
        let (_, file) = LAYER_TENSORS.iter().find(|(module, _)| *module == name)?;
        Some(format!("{}.transform.{file}", self.layers.get(index)?))
    }

    /// The file key of a module key, or `None` for a key outside the network.
    pub fn file_key(&self, module_key: &str) -> Option<String> {
        if let Some(rest) = module_key.strip_prefix("anchors.") {
            let (a, key) = rest.split_once(".model.")?;
            let a: usize = a.parse().ok().filter(|&a| a < self.anchors)?;
            return Some(format!("{}{key}", Self::anchor_prefix(a)));
        }
        let rest = module_key.strip_prefix("stitch_layers.")?;
        let (index, name) = rest.split_once(".transform.")?;
        self.layer_key(index.parse().ok()?, name)
    }

    /// The renames between the two layouts as literal key fragments: (module fragment, file
    /// fragment, whether it is the key's start — otherwise its end). One list for both
    /// directions, so that loading undoes exactly what saving did.
    fn renames(&self) -> Vec<(String, String, bool)> {
        let anchors = (0..self.anchors)
            .map(|a| (format!("anchors.{a}.model."), Self::anchor_prefix(a), true));
        let tensors = LAYER_TENSORS
            .iter()
            .filter(|(module, file)| module != file)
            .map(|(module, file)| {
                (
                    format!(".transform.{module}"),
                    format!(".transform.{file}"),
                    false,
                )
            });
        // A file prefix has more indices than a module key (`stitch_layers.{pair}.{layer}`
        // against `stitch_layers.{flat}`), so a renamed key matches no later pattern either way.
        let layers = self.layers.iter().enumerate().map(|(index, prefix)| {
            (
                format!("stitch_layers.{index}.transform."),
                format!("{prefix}.transform."),
                true,
            )
        });
        anchors.chain(tensors).chain(layers).collect()
    }

    /// The renames of [`CheckpointKeys::renames`] as burn-store's key remapper, module → file
    /// keys (`to_file`) or back.
    fn remapper(&self, to_file: bool) -> Result<KeyRemapper> {
        let literal = |fragment: &str| fragment.replace('.', r"\.");
        self.renames().into_iter().try_fold(
            KeyRemapper::new(),
            |remapper, (module, file, start)| {
                let (from, to) = if to_file {
                    (module, file)
                } else {
                    (file, module)
                };
                let pattern = if start {
                    format!("^{}", literal(&from))
                } else {
                    format!("{}$", literal(&from))
                };
                remapper
                    .add_pattern(&pattern, to)
                    .map_err(|e| Error::RemapPattern {
                        pattern,
                        reason: e.to_string(),
                    })
            },
        )
    }

    /// The module → file remapping as burn-store's key remapper (for saving).
    ///
    /// # Errors
    /// [`Error::RemapPattern`] (the patterns are built from the plan: never in practice).
    pub fn to_file(&self) -> Result<KeyRemapper> {
        self.remapper(true)
    }

    /// The file → module remapping as burn-store's key remapper (for loading), the inverse of
    /// [`CheckpointKeys::to_file`].
    ///
    /// # Errors
    /// As [`CheckpointKeys::to_file`].
    pub fn to_module(&self) -> Result<KeyRemapper> {
        self.remapper(false)
    }
}

/// What loading a checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// The file.
    pub path: PathBuf,
    /// Per anchor, what its load did.
    pub anchors: Vec<LoadReport>,
    /// The stitching-layer tensors loaded (file keys).
    pub stitch_tensors: Vec<String>,
    /// Stitching-layer tensors (file keys) holding NaN or infinite values, with how many,
    /// loaded because [`LoadOptions::allow_nonfinite`] was set (otherwise an error).
    pub stitch_non_finite: Vec<(String, usize)>,
}

impl CheckpointReport {
    /// Every tensor (anchors' timm keys, stitching layers' file keys) loaded with NaN or
    /// infinite values under [`LoadOptions::allow_nonfinite`], with how many.
    pub fn non_finite(&self) -> Vec<(String, usize)> {
        self.anchors
            .iter()
            .flat_map(|r| r.non_finite.iter().cloned())
            .chain(self.stitch_non_finite.iter().cloned())
            .collect()
    }
}

/// Reads the [`SnNetConfig`] stored in a checkpoint written by [`SnNet::save`].
///
/// # Errors
/// [`Error::Io`]; [`Error::NotSafetensors`] or [`Error::Header`] when the file is not
/// safetensors; [`Error::NoConfig`] when it carries no config (a reference checkpoint needs
/// [`SnNet::load_with_config`]); [`Error::ConfigJson`] when the config does not parse.
pub fn read_config(path: &Path) -> Result<SnNetConfig> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let not_safetensors = |reason| Error::NotSafetensors {
        path: path.to_owned(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| not_safetensors("too short"))?;
    let len = u64::from_le_bytes(len);
    let size = file.metadata().map_err(io)?.len();
    if len > size.saturating_sub(8) || len > 100 << 20 {
        return Err(not_safetensors("bad header length"));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|source| Error::Header {
            path: path.to_owned(),
            source,
        })?;
    let config = header
        .get("__metadata__")
        .and_then(|m| m.get(CONFIG_KEY))
        .and_then(|c| c.as_str())
        .ok_or_else(|| Error::NoConfig {
            path: path.to_owned(),
        })?;
    serde_json::from_str(config).map_err(|source| Error::ConfigJson {
        path: path.to_owned(),
        source,
    })
}

/// A burn-store error as [`Error::Store`].
fn store_error(path: &Path, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Store {
        path: path.to_owned(),
        source: source.into(),
    }
}

/// The tensors of a checkpoint file in the reference's key layout — safetensors, or a PyTorch
/// file with or without the reference's `{"model": state_dict}` wrapper — renamed by
/// `remapper` (file → module keys, e.g. [`CheckpointKeys::to_module`]), their bytes unread
/// until a module takes them ([`apply_stitch_layers`]).
///
/// # Errors
/// [`Error::Io`] and [`Error::Zoo`] when the file is neither format, [`Error::Store`] when
/// burn-store cannot read it (truncated or garbled).
pub fn read_tensors(path: &Path, remapper: KeyRemapper) -> Result<Vec<PackTensor>> {
    let tensors = match sniff_format(path)? {
        WeightFormat::Safetensors => SafetensorsStore::from_file(path)
            .remap(remapper)
            .get_all_tensors()
            .map_err(|e| store_error(path, e))?
            .values()
            .cloned()
            .collect(),
        WeightFormat::Pytorch => {
            let mut plain = PytorchStore::from_file(path).remap(remapper.clone());
            let has_layers = plain
                .keys()
                .map(|k| k.iter().any(|k| k.starts_with("stitch_layers.")))
                .unwrap_or(false);
            let mut store = if has_layers {
                plain
            } else {
                PytorchStore::from_file(path)
                    .remap(remapper)
                    .with_top_level_key("model")
            };
            store
                .get_all_tensors()
                .map_err(|e| store_error(path, e))?
                .values()
                .cloned()
                .collect()
        }
    };
    Ok(tensors)
}

/// What [`apply_stitch_layers`] loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StitchLoad {
    /// The stitching-layer tensors loaded (file keys), in module order.
    pub loaded: Vec<String>,
    /// Those holding NaN or infinite values, with how many (only under
    /// [`LoadOptions::allow_nonfinite`]; otherwise they are an error).
    pub non_finite: Vec<(String, usize)>,
}

/// Loads `net`'s stitching layers from `tensors` (module keys, as [`read_tensors`] gives them
/// with [`CheckpointKeys::to_module`]) through burn-store: every tensor of every layer must be
/// there, a float of the layer's shape (a 1×1 convolution's `[C_out, C_in, 1, 1]` weight is
/// read as `[C_out, C_in]`); the values become `f32` and NaN or infinite ones are refused
/// unless `options.allow_nonfinite`. The anchors are left alone.
///
/// On error `net`'s stitching layers may hold a mix of loaded and initial weights: discard it.
///
/// # Errors
/// [`Error::MissingLayer`], [`Error::TensorShape`], [`Error::TensorDtype`],
/// [`Error::TensorRead`], [`Error::NonFinite`], each naming the tensor's file key.
pub fn apply_stitch_layers(
    net: &mut SnNet,
    tensors: Vec<PackTensor>,
    keys: &CheckpointKeys,
    path: &Path,
    options: LoadOptions,
) -> Result<StitchLoad> {
    let filter = PathFilter::new().with_regex(r"^stitch_layers\.");
    let result = net.apply(tensors, Some(filter), Some(Box::new(Conv1x1AsLinear)), true);
    check_stitch_result(&result, keys, path)?;
    let file_key = |index_key: &str| {
        let module_key = format!("stitch_layers.{index_key}");
        keys.file_key(&module_key).unwrap_or(module_key)
    };
    let layers = std::mem::take(&mut net.stitch_layers);
    let (layers, non_finite) = finite_f32(layers, options.allow_nonfinite, file_key)
        .map_err(|bad| Error::non_finite(path, bad))?;
    net.stitch_layers = layers;
    Ok(StitchLoad {
        loaded: result
            .applied
            .iter()
            .filter_map(|key| keys.file_key(key))
            .collect(),
        non_finite,
    })
}

/// Turns burn-store's result for the stitching layers into a typed error, naming file keys.
fn check_stitch_result(result: &ApplyResult, keys: &CheckpointKeys, path: &Path) -> Result<()> {
    let file_key = |module_key: &str| {
        keys.file_key(module_key)
            .unwrap_or_else(|| module_key.to_owned())
    };
    if let Some(error) = result.errors.first() {
        return Err(match error {
            ApplyError::ShapeMismatch {
                path: key,
                expected,
                found,
            } => Error::TensorShape {
                path: path.to_owned(),
                key: file_key(key),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            ApplyError::DTypeMismatch {
                path: key, found, ..
            } => Error::TensorDtype {
                path: path.to_owned(),
                key: file_key(key),
                found: *found,
            },
            ApplyError::AdapterError { path: key, .. }
            | ApplyError::LoadError { path: key, .. } => Error::TensorRead {
                path: path.to_owned(),
                key: file_key(key),
                source: Box::new(error.clone()),
            },
        });
    }
    let missing = result
        .missing
        .iter()
        .map(|(key, _)| key)
        .find(|key| key.starts_with("stitch_layers."));
    if let Some(key) = missing {
        let tried = file_key(key);
        return Err(Error::MissingLayer {
            path: path.to_owned(),
            layer: tried
                .split_once(".transform.")
                .map_or_else(|| tried.clone(), |(prefix, _)| prefix.to_owned()),
            tried: vec![tried],
        });
    }
    Ok(())
}

/// Reads the reference's ResNet stitching layers, 1×1 convolutions (`[C_out, C_in, 1, 1]`
/// weights), as the linear maps they are (`[C_out, C_in]`), and a bias stored with unit
/// dimensions as `[C_out]`; every other tensor passes unchanged.
#[derive(Debug, Clone, Copy)]
struct Conv1x1AsLinear;

impl ModuleAdapter for Conv1x1AsLinear {
    fn adapt(&self, tensor: PackTensor, _ctx: ModuleContext<'_>) -> PackTensor {
        let dims = tensor.shape.as_slice();
        let squeezed = match dims {
            [o, i, 1, 1] if tensor.name.ends_with(".transform.weight") => Shape::new([*o, *i]),
            [_, _, ..] if tensor.name.ends_with(".transform.bias") => {
                Shape::new([tensor.shape.num_elements()])
            }
            _ => return tensor,
        };
        let (name, dtype) = (tensor.name.clone(), tensor.dtype);
        let shape = squeezed.clone();
        bridge::map_data(tensor, name, dtype, squeezed, move |data| {
            TensorData::from_bytes(data.into_bytes(), shape.clone(), dtype)
        })
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

impl SnNet {
    /// Saves the whole SN-Net — anchors, stitching layers and its [`SnNetConfig`] — as one
    /// safetensors file in the reference's key layout (see the module docs), with the keys of
    /// [`CheckpointKeys`]. The write is atomic ([`snnet_fs::write_atomic`]).
    ///
    /// # Errors
    /// [`Error::Serialize`] or [`Error::Store`] when the network cannot be serialised,
    /// [`Error::Write`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let config = serde_json::to_string(self.config()).map_err(Error::Serialize)?;
        let remapper = CheckpointKeys::new(self.plan())?.to_file()?;
        let mut store = SafetensorsStore::from_bytes(None)
            .with_to_adapter(BurnToPyTorchAdapter)
            .skip_enum_variants(true)
            .remap(remapper)
            .metadata(CONFIG_KEY, config);
        self.save_into(&mut store)
            .map_err(|e| store_error(path, e))?;
        let bytes = store.get_bytes().map_err(|e| store_error(path, e))?;
        let bytes = snnet_zoo::canonical_safetensors(bytes).map_err(|e| store_error(path, e))?;
        Ok(snnet_fs::write_atomic(path, &bytes)?)
    }

    /// A SHA-256 fingerprint of the network: its configuration (anchors, space rules) and every
    /// parameter's `f32` values (quantized ones: their stored bytes), in module order — equal for equal networks whatever file or
    /// process they come from, different as soon as one weight differs. Evaluation tables and
    /// training checkpoints record it so that resuming against another network is an error.
    ///
    /// # Errors
    /// [`Error::Serialize`] when the configuration cannot be serialised (it always can).
    pub fn fingerprint(&self) -> Result<String> {
        let config = serde_json::to_string(self.config()).map_err(Error::Serialize)?;
        Ok(module_digest(config.as_bytes(), self))
    }

    /// Loads a checkpoint written by [`SnNet::save`].
    ///
    /// # Errors
    /// As [`read_config`] and [`SnNet::load_with_config`].
    pub fn load(path: &Path, device: &Device) -> Result<(Self, CheckpointReport)> {
        Self::load_with(path, LoadOptions::default(), device)
    }

    /// As [`SnNet::load`], with `options`: [`LoadOptions::allow_nonfinite`] loads NaN or
    /// infinite weights instead of refusing the file (they are listed in the report).
    ///
    /// # Errors
    /// As [`SnNet::load`].
    pub fn load_with(
        path: &Path,
        options: LoadOptions,
        device: &Device,
    ) -> Result<(Self, CheckpointReport)> {
        let config = read_config(path)?;
        load_checkpoint(path, &config, options, device)
    }

    /// Loads a checkpoint in the reference's key layout — a released ziplab SN-Net checkpoint
    /// (`.pth`, `{"model": state_dict}`) or one of ours — into an SN-Net of `config`.
    ///
    /// # Errors
    /// [`Error::Zoo`] for an anchor's missing or mis-shaped tensors; for stitching layers as
    /// [`read_tensors`] and [`apply_stitch_layers`].
    pub fn load_with_config(
        path: &Path,
        config: &SnNetConfig,
        device: &Device,
    ) -> Result<(Self, CheckpointReport)> {
        load_checkpoint(path, config, LoadOptions::default(), device)
    }
}

fn load_checkpoint(
    path: &Path,
    config: &SnNetConfig,
    options: LoadOptions,
    device: &Device,
) -> Result<(SnNet, CheckpointReport)> {
    let plan = Arc::new(config.plan()?);
    let keys = CheckpointKeys::new(&plan)?;
    let mut anchors = Vec::with_capacity(config.anchors.len());
    let mut reports = Vec::with_capacity(config.anchors.len());
    for (a, entry) in config.anchors.iter().enumerate() {
        let (model, report) =
            entry.load_prefixed_with(path, &CheckpointKeys::anchor_prefix(a), options, device)?;
        anchors.push(model);
        reports.push(report);
    }
    let layers: Vec<StitchingLayer> = crate::net::init_stitch_layers(&plan, Init::Zeros, device)?;
    let mut net = SnNet::from_parts(anchors, layers, plan);
    let tensors = read_tensors(path, keys.to_module()?)?;
    let stitch = apply_stitch_layers(&mut net, tensors, &keys, path, options)?;
    Ok((
        net,
        CheckpointReport {
            path: path.to_owned(),
            anchors: reports,
            stitch_tensors: stitch.loaded,
            stitch_non_finite: stitch.non_finite,
        },
    ))
}

/// SHA-256 (hex) of `prefix`, then every parameter of `module` in module order: its shape and
/// `f32` values (quantized ones: their stored bytes). The digest behind [`SnNet::fingerprint`]
/// (whose prefix is the configuration) and any other module's fingerprint.
pub fn module_digest<M: burn::module::Module>(prefix: &[u8], module: &M) -> String {
    use burn::module::{ModuleVisitor, Param};
    use sha2::{Digest, Sha256};

    struct Hash(Sha256);
    impl ModuleVisitor for Hash {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data();
            // Quantized weights hash as stored (int8 values and scales): another network.
            let data = if matches!(data.dtype(), burn::tensor::DType::QFloat(_)) {
                data
            } else {
                data.convert::<f32>()
            };
            for d in data.shape().iter() {
                self.0.update((*d as u64).to_le_bytes());
            }
            self.0.update(data.as_bytes());
        }
    }
    let mut hash = Hash(Sha256::new());
    hash.0.update(prefix);
    module.visit(&mut hash);
    hash.0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
