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

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, ModuleStore, PytorchStore, SafetensorsStore,
    bridge,
};
use burn::tensor::{Device, Tensor, TensorData};
use snnet_stitch::Init;
use snnet_zoo::{LoadOptions, LoadReport, WeightFormat, weights::sniff_format};

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
/// reference's layout), derived from the plan. [`SnNet::save`] maps module → file with it and
/// [`SnNet::load_with_config`] file → module, so the two directions cannot disagree.
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

    /// The module key of a file key, or `None` for a key the network does not hold.
    pub fn module_key(&self, file_key: &str) -> Option<String> {
        for (index, prefix) in self.layers.iter().enumerate() {
            let Some(name) = file_key
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_prefix(".transform."))
            else {
                continue;
            };
            let (module, _) = LAYER_TENSORS.iter().find(|(_, file)| *file == name)?;
            return Some(format!("stitch_layers.{index}.transform.{module}"));
        }
        let rest = file_key.strip_prefix("anchors.")?;
        let (a, key) = rest.split_once('.')?;
        let a: usize = a.parse().ok().filter(|&a| a < self.anchors)?;
        Some(format!("anchors.{a}.model.{key}"))
    }

    /// The module → file remapping as Burn's key remapper (for saving).
    fn to_file(&self) -> std::result::Result<KeyRemapper, String> {
        let mut remapper = KeyRemapper::new()
            .add_pattern(r"^anchors\.(\d+)\.model\.", "anchors.$1.")
            .map_err(|e| e.to_string())?;
        for (module, file) in LAYER_TENSORS {
            if module != file {
                remapper = remapper
                    .add_pattern(
                        format!(r"\.transform\.{module}$"),
                        format!(".transform.{file}"),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
        for (index, prefix) in self.layers.iter().enumerate() {
            remapper = remapper
                .add_pattern(
                    format!(r"^stitch_layers\.{index}\.transform\."),
                    format!("{prefix}.transform."),
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(remapper)
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

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.into(),
    }
}
/// Reads the [`SnNetConfig`] stored in a checkpoint written by [`SnNet::save`].
///
/// # Errors
/// [`Error::Io`], and [`Error::Checkpoint`] when the file is not safetensors or carries no
/// (valid) config — a reference checkpoint needs [`SnNet::load_with_config`].
pub fn read_config(path: &Path) -> Result<SnNetConfig> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| checkpoint_error(path, "too short to be a safetensors file"))?;
    let len = u64::from_le_bytes(len);
    let size = file.metadata().map_err(io)?.len();
    if len > size.saturating_sub(8) || len > 100 << 20 {
        return Err(checkpoint_error(
            path,
            "not a safetensors file (bad header length)",
        ));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| checkpoint_error(path, format!("unreadable safetensors header: {e}")))?;
    let config = header
        .get("__metadata__")
        .and_then(|m| m.get(CONFIG_KEY))
        .and_then(|c| c.as_str())
        .ok_or_else(|| {
            checkpoint_error(
                path,
                "no SN-Net config in the metadata (a reference checkpoint: name its anchors)",
            )
        })?;
    serde_json::from_str(config)
        .map_err(|e| checkpoint_error(path, format!("invalid SN-Net config: {e}")))
}

/// Where a checkpoint's stitching-layer tensors come from.
enum TensorSource {
    Safetensors(Box<SafetensorsStore>),
    Pytorch(Box<PytorchStore>),
}

impl TensorSource {
    fn open(path: &Path) -> Result<Self> {
        Ok(match sniff_format(path)? {
            WeightFormat::Safetensors => {
                Self::Safetensors(Box::new(SafetensorsStore::from_file(path)))
            }
            WeightFormat::Pytorch => {
                // Reference checkpoints wrap the state dict as {"model": ...}.
                let mut plain = PytorchStore::from_file(path);
                let has_layers = plain
                    .keys()
                    .map(|k| k.iter().any(|k| k.starts_with("stitch_layers.")))
                    .unwrap_or(false);
                if has_layers {
                    Self::Pytorch(Box::new(plain))
                } else {
                    Self::Pytorch(Box::new(
                        PytorchStore::from_file(path).with_top_level_key("model"),
                    ))
                }
            }
        })
    }

    fn get(&mut self, path: &Path, key: &str) -> Result<Option<TensorData>> {
        let found = match self {
            Self::Safetensors(s) => s.get_tensor(key).map_err(|e| e.to_string()),
            Self::Pytorch(s) => s.get_tensor(key).map_err(|e| e.to_string()),
        }
        .map_err(|e| checkpoint_error(path, e))?;
        found
            .map(|t| bridge::to_data(t).map_err(|e| checkpoint_error(path, e.to_string())))
            .transpose()
    }
}

impl SnNet {
    /// Saves the whole SN-Net — anchors, stitching layers and its [`SnNetConfig`] — as one
    /// safetensors file in the reference's key layout (see the module docs), with the keys of
    /// [`CheckpointKeys`]. The write is atomic ([`snnet_fs::write_atomic`]).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the network cannot be serialised, [`Error::Write`] when the
    /// file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        let config = serde_json::to_string(self.config())
            .map_err(|e| checkpoint_error(path, e.to_string()))?;
        let remapper = CheckpointKeys::new(self.plan())?
            .to_file()
            .map_err(|e| checkpoint_error(path, e))?;
        let mut store = SafetensorsStore::from_bytes(None)
            .with_to_adapter(BurnToPyTorchAdapter)
            .skip_enum_variants(true)
            .remap(remapper)
            .metadata(CONFIG_KEY, config);
        self.save_into(&mut store)
            .map_err(|e| checkpoint_error(path, e.to_string()))?;
        let bytes = store
            .get_bytes()
            .map_err(|e| checkpoint_error(path, e.to_string()))?;
        let bytes =
            snnet_zoo::canonical_safetensors(bytes).map_err(|e| checkpoint_error(path, e))?;
        Ok(snnet_fs::write_atomic(path, &bytes)?)
    }

    /// A SHA-256 fingerprint of the network: its configuration (anchors, space rules) and every
    /// parameter's `f32` values (quantized ones: their stored bytes), in module order — equal for equal networks whatever file or
    /// process they come from, different as soon as one weight differs. Evaluation tables and
    /// training checkpoints record it so that resuming against another network is an error.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the configuration cannot be serialised (it always can).
    pub fn fingerprint(&self) -> Result<String> {
        use burn::module::{Module, ModuleVisitor, Param};
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
        let config = serde_json::to_string(self.config())
            .map_err(|e| checkpoint_error(Path::new("-"), e.to_string()))?;
        let mut hash = Hash(Sha256::new());
        hash.0.update(config.as_bytes());
        self.visit(&mut hash);
        Ok(hash
            .0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
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
    /// [`Error::Zoo`] for an anchor's missing or mis-shaped tensors, [`Error::MissingLayer`]
    /// and [`Error::Checkpoint`] for stitching layers.
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
    let mut source = TensorSource::open(path)?;
    let stitch_layers = crate::net::init_stitch_layers(&plan, Init::Zeros, device)?;
    let mut layers = Vec::with_capacity(stitch_layers.len());
    let mut loaded = Vec::new();
    let mut non_finite = NonFinite {
        allow: options.allow_nonfinite,
        found: Vec::new(),
    };
    for (index, layer) in stitch_layers.into_iter().enumerate() {
        let prefix = plan.reference_layer_prefix(index).unwrap_or_default();
        let key = |name: &str| keys.layer_key(index, name).unwrap_or_default();
        let (o, i) = (layer.out_width(), layer.in_width());
        let missing = |k: String| Error::MissingLayer {
            path: path.to_owned(),
            layer: prefix.clone(),
            tried: vec![k],
        };
        let weight = source
            .get(path, &key("weight"))?
            .ok_or_else(|| missing(key("weight")))?;
        let bias = source
            .get(path, &key("bias"))?
            .ok_or_else(|| missing(key("bias")))?;
        let shape = weight.shape().to_vec();
        if shape != [o, i] && shape != [o, i, 1, 1] {
            return Err(checkpoint_error(
                path,
                format!("{}: shape {shape:?}, expected [{o}, {i}]", key("weight")),
            ));
        }
        let weight = Tensor::<2>::from_data(
            TensorData::new(
                to_f32(path, &key("weight"), weight, &mut non_finite)?,
                [o, i],
            ),
            device,
        );
        let bias_len = bias.shape().iter().product::<usize>();
        if bias_len != o {
            return Err(checkpoint_error(
                path,
                format!("{}: {bias_len} values, expected {o}", key("bias")),
            ));
        }
        let bias = Tensor::<1>::from_data(
            TensorData::new(to_f32(path, &key("bias"), bias, &mut non_finite)?, [o]),
            device,
        );
        let mut layer = layer.with_weights(weight, bias)?;
        loaded.push(key("weight"));
        loaded.push(key("bias"));
        if let (Some(a), Some(b)) = (
            layer.transform.lora_a.clone(),
            layer.transform.lora_b.clone(),
        ) {
            let read = |source: &mut TensorSource,
                        non_finite: &mut NonFinite,
                        name: &str,
                        dims: [usize; 2]| {
                let data = source
                    .get(path, &key(name))?
                    .ok_or_else(|| missing(key(name)))?;
                if data.shape().to_vec() != dims.to_vec() {
                    return Err(checkpoint_error(
                        path,
                        format!("{}: shape {:?}, expected {dims:?}", key(name), data.shape()),
                    ));
                }
                Ok(Tensor::<2>::from_data(
                    TensorData::new(to_f32(path, &key(name), data, non_finite)?, dims),
                    device,
                ))
            };
            let a_val = read(&mut source, &mut non_finite, "lora_a", a.dims())?;
            let b_val = read(&mut source, &mut non_finite, "lora_b", b.dims())?;
            // Trainable, as `init` builds them (a plain tensor's `Param` is inactive).
            layer.transform.lora_a =
                Some(burn::module::Param::initialized(a.id, a_val).set_require_grad(true));
            layer.transform.lora_b =
                Some(burn::module::Param::initialized(b.id, b_val).set_require_grad(true));
            loaded.push(key("lora_a"));
            loaded.push(key("lora_b"));
        }
        layers.push(layer);
    }
    let net = SnNet::from_parts(anchors, layers, plan);
    Ok((
        net,
        CheckpointReport {
            path: path.to_owned(),
            anchors: reports,
            stitch_tensors: loaded,
            stitch_non_finite: non_finite.found,
        },
    ))
}

/// A tensor's values as `f32` (checkpoints may hold f16/bf16/f64). Integer or boolean tensors
/// are refused (a stitching layer's weights are never integers: converting them would hide a
/// wrong or hostile file), and so are NaN or infinite values.
fn to_f32(
    path: &Path,
    key: &str,
    data: TensorData,
    non_finite: &mut NonFinite,
) -> Result<Vec<f32>> {
    if !data.dtype().is_float() {
        return Err(checkpoint_error(
            path,
            format!(
                "{key}: dtype {:?}; a stitching layer's tensors are floats",
                data.dtype()
            ),
        ));
    }
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| checkpoint_error(path, format!("{key}: {e:?}")))?;
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        if !non_finite.allow {
            return Err(checkpoint_error(
                path,
                format!("{key}: {bad} NaN or infinite value(s)"),
            ));
        }
        non_finite.found.push((key.to_owned(), bad));
    }
    Ok(values)
}

/// Whether NaN or infinite stitching-layer values are allowed, and those found.
struct NonFinite {
    allow: bool,
    found: Vec<(String, usize)>,
}
