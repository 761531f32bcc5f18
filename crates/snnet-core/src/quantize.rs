//! int8 weights with Burn's own quantization ([`Quantizer`], a per-block symmetric
//! [`QuantScheme`]), stored as burnpack (Burn 0.22.1's safetensors store refuses quantized
//! tensors).
//!
//! Every float parameter of two or more dimensions (linear and convolution weights, stitching
//! layers, position embeddings) is quantized to `Q8S` — symmetric int8 — with one f32 scale per
//! block of 32 values along its last dimension (16 or 8 where 32 does not divide it, one scale
//! per tensor where none does). Biases and norms (1-D) stay f32: they are a few percent of the
//! bytes and what per-channel scales would lose most on.
//!
//! Loaded, the weights stay quantized: Burn's ops dequantize them where they are used, and the
//! fused CPU kernels of `snnet-ops`, which take f32 tensors only, leave them to Burn's ops.
//! [`dequantized`] turns them back into f32 once, after loading, for the fused kernels' speed
//! with the int8 file's values.

use std::path::Path;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, Quantizer};
use burn::store::burn_pack::Reader;
use burn::store::{BurnpackStore, ModuleSnapshot, PathFilter};
use burn::tensor::quantization::{Calibration, QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{DType, Device, FloatDType, Tensor};

use crate::checkpoint::CONFIG_KEY;
use crate::error::Result;
use crate::net::SnNet;
use crate::plan::SnNetConfig;
use crate::stitch_file::{ExportError, ModelFile, STITCH_KEY, check_applied, sniff_model_file};
use crate::stitch_model::{StitchConfig, StitchModel};

/// The block sizes tried along a weight's last dimension, largest first.
const BLOCKS: [usize; 3] = [32, 16, 8];

/// The int8 scheme: symmetric `Q8S`, stored natively (one byte per value), f32 scales, one per
/// `block` values along the last dimension (`None`: one per tensor).
pub fn int8_scheme(block: Option<usize>) -> QuantScheme {
    let scheme = QuantScheme::default()
        .with_value(QuantValue::Q8S)
        .with_store(QuantStore::Native);
    match block.and_then(|b| u8::try_from(b).ok()) {
        Some(b) => scheme.per_block([b], ScaleDtype::F32),
        None => scheme.per_tensor(ScaleDtype::F32),
    }
}

/// The float parameters of two or more dimensions, grouped by the block size that divides
/// their last dimension (`None`: none does).
#[derive(Default)]
struct Groups(Vec<(Option<usize>, Vec<burn::module::ParamId>)>);

impl ModuleVisitor for Groups {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Parameters never materialised (the parts of an anchor a loaded stitch skips) stay so.
        if D < 2 || !param.is_initialized() {
            return;
        }
        let last = param.lazy_shape().dims::<D>().last().copied().unwrap_or(0);
        let block = BLOCKS.into_iter().find(|b| last % b == 0);
        match self.0.iter_mut().find(|(b, _)| *b == block) {
            Some((_, ids)) => ids.push(param.id),
            None => self.0.push((block, vec![param.id])),
        }
    }
}

/// `module` with its weights (float parameters of two or more dimensions) quantized to int8
/// by Burn's [`Quantizer`] (min-max calibration, [`int8_scheme`]).
pub fn quantize_int8<M: Module>(module: M) -> M {
    let mut groups = Groups::default();
    module.visit(&mut groups);
    groups.0.into_iter().fold(module, |module, (block, ids)| {
        let mut quantizer = Quantizer::new(Calibration::MinMax, int8_scheme(block));
        module.quantize_weights_group(&mut quantizer, ParamGroup::from_ids(ids))
    })
}

/// Turns quantized parameters back into f32.
struct Dequantize;

impl ModuleMapper for Dequantize {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| match t.dtype() {
            DType::QFloat(_) => t.dequantize().cast(FloatDType::F32),
            _ => t,
        })
    }
}

/// `module` with every quantized parameter dequantized to f32 (the values the int8 weights
/// stand for).
pub fn dequantized<M: Module>(module: M) -> M {
    module.map(&mut Dequantize)
}

/// Whether any parameter of `module` is quantized.
pub fn is_quantized<M: Module>(module: &M) -> bool {
    struct Any(bool);
    impl ModuleVisitor for Any {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 |= param.is_initialized() && matches!(param.val().dtype(), DType::QFloat(_));
        }
    }
    let mut any = Any(false);
    module.visit(&mut any);
    any.0
}

fn pack_error(path: &Path, source: burn::store::burn_pack::Error) -> crate::Error {
    ExportError::Burnpack {
        path: path.to_owned(),
        source: Box::new(source),
    }
    .into()
}

/// Saves `module` (the tensors at `paths` only, if given) as burnpack with one metadata entry;
/// atomic (the store writes beside the target and renames).
fn save_burnpack<M: Module + ModuleSnapshot>(
    module: &M,
    path: &Path,
    (key, value): (&str, String),
    paths: Option<Vec<String>>,
) -> Result<()> {
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true)
        .metadata(key, value);
    if let Some(paths) = paths {
        store = store.with_filter(
            paths
                .into_iter()
                .fold(PathFilter::new(), |f, p| f.with_full_path(p)),
        );
    }
    module
        .save_into(&mut store)
        .map_err(|source| pack_error(path, source))
}

/// Loads burnpack tensors into `module`: every tensor, or those at `needed`; refuses NaN or
/// infinite values ([`crate::Error::NonFinite`]).
fn load_burnpack<M: Module + ModuleSnapshot>(
    mut module: M,
    path: &Path,
    needed: Option<Vec<String>>,
) -> Result<M> {
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|source| pack_error(path, source))?;
    check_applied(module, path, result, needed)
}

/// What a burnpack file written by this crate holds.
#[derive(Debug)]
pub enum PackedConfig {
    /// A whole SN-Net.
    SnNet(SnNetConfig),
    /// One stitch.
    Stitch(StitchConfig),
}

/// Reads the configuration of a burnpack file written by [`SnNet::save_burnpack`] or
/// [`StitchModel::save_burnpack`].
///
/// # Errors
/// [`ExportError::Burnpack`] for a file burnpack cannot read, [`ExportError::NoConfig`] for
/// one without our configuration, [`ExportError::BadConfig`].
pub fn read_packed_config(path: &Path) -> Result<PackedConfig> {
    let reader = Reader::from_file(path).map_err(|source| pack_error(path, source))?;
    let metadata = reader.metadata();
    let bad = |key, source| ExportError::BadConfig {
        path: path.to_owned(),
        key,
        source,
    };
    if let Some(json) = metadata.get(STITCH_KEY) {
        return Ok(PackedConfig::Stitch(
            serde_json::from_str(json).map_err(|e| bad(STITCH_KEY, e))?,
        ));
    }
    if let Some(json) = metadata.get(CONFIG_KEY) {
        return Ok(PackedConfig::SnNet(
            serde_json::from_str(json).map_err(|e| bad(CONFIG_KEY, e))?,
        ));
    }
    Err(ExportError::NoConfig {
        path: path.to_owned(),
    }
    .into())
}

fn config_json<T: serde::Serialize>(path: &Path, key: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| {
        ExportError::BadConfig {
            path: path.to_owned(),
            key,
            source,
        }
        .into()
    })
}

impl SnNet {
    /// The network with its weights quantized to int8 ([`quantize_int8`]).
    #[must_use]
    pub fn quantized(self) -> Self {
        quantize_int8(self)
    }

    /// Saves the network — quantized or not — as burnpack, its [`SnNetConfig`] in the metadata
    /// under [`CONFIG_KEY`].
    ///
    /// # Errors
    /// [`ExportError::Burnpack`], [`ExportError::BadConfig`].
    pub fn save_burnpack(&self, path: &Path) -> Result<()> {
        let config = config_json(path, CONFIG_KEY, self.config())?;
        save_burnpack(self, path, (CONFIG_KEY, config), None)
    }

    /// Loads a network saved by [`SnNet::save_burnpack`]; quantized weights stay quantized.
    ///
    /// # Errors
    /// As [`read_packed_config`]; [`ExportError::NotAnSnNet`] for a stitch's file;
    /// [`ExportError::Apply`] and
    /// [`ExportError::MissingTensors`] for tensors that do not fit;
    /// [`Error::NonFinite`](crate::Error::NonFinite) for NaN or infinite weights.
    pub fn load_burnpack(path: &Path, device: &Device) -> Result<Self> {
        match read_packed_config(path)? {
            PackedConfig::SnNet(config) => load_burnpack(
                config.init_with(snnet_stitch::Init::Zeros, device)?,
                path,
                None,
            ),
            PackedConfig::Stitch(_) => Err(ExportError::NotAnSnNet {
                path: path.to_owned(),
                found: ModelFile::Burnpack,
            }
            .into()),
        }
    }
}

impl StitchModel {
    /// The stitch with its weights quantized to int8 ([`quantize_int8`]).
    #[must_use]
    pub fn quantized(self) -> Self {
        quantize_int8(self)
    }

    /// Saves the stitch — quantized or not — as burnpack, its [`StitchConfig`] in the metadata
    /// under [`STITCH_KEY`]: the tensors its path runs, as [`StitchModel::save`].
    ///
    /// # Errors
    /// [`ExportError::Burnpack`], [`ExportError::BadConfig`].
    pub fn save_burnpack(&self, path: &Path) -> Result<()> {
        let config = config_json(path, STITCH_KEY, self.config())?;
        save_burnpack(
            self,
            path,
            (STITCH_KEY, config),
            Some(self.run_tensors(false, true)),
        )
    }

    /// Loads a stitch saved by [`StitchModel::save_burnpack`].
    ///
    /// # Errors
    /// As [`SnNet::load_burnpack`], with [`ExportError::NotAStitch`] for a network's file.
    pub fn load_burnpack(path: &Path, device: &Device) -> Result<Self> {
        match read_packed_config(path)? {
            PackedConfig::Stitch(config) => {
                let model = Self::init(config, device)?;
                let needed = model.run_params();
                load_burnpack(model, path, Some(needed))
            }
            PackedConfig::SnNet(_) => Err(ExportError::NotAStitch {
                path: path.to_owned(),
                found: ModelFile::Burnpack,
            }
            .into()),
        }
    }
}

/// A model file of any kind this crate writes, loaded: an SN-Net or one stitch, from
/// safetensors or burnpack (told apart by content).
#[derive(Debug)]
pub enum LoadedModel {
    /// A whole SN-Net.
    SnNet(Box<SnNet>),
    /// One stitch.
    Stitch(Box<StitchModel>),
}

impl LoadedModel {
    /// The model with its quantized weights dequantized to f32 ([`dequantized`]): an int8
    /// file's values at the fused f32 kernels' speed, at f32's memory. A model without
    /// quantized weights is returned as it is.
    #[must_use]
    pub fn dequantized(self) -> Self {
        match self {
            LoadedModel::SnNet(net) => LoadedModel::SnNet(Box::new(dequantized(*net))),
            LoadedModel::Stitch(stitch) => LoadedModel::Stitch(Box::new(dequantized(*stitch))),
        }
    }
}

/// Loads any model file this crate writes (see [`LoadedModel`]); an SN-Net checkpoint in
/// safetensors loads as [`SnNet::load`] does.
///
/// # Errors
/// As [`sniff_model_file`], [`SnNet::load`], [`StitchModel::load`], [`read_packed_config`].
pub fn load_model_file(path: &Path, device: &Device) -> Result<LoadedModel> {
    Ok(match sniff_model_file(path)? {
        ModelFile::SnNet => LoadedModel::SnNet(Box::new(SnNet::load(path, device)?.0)),
        ModelFile::Stitch => LoadedModel::Stitch(Box::new(StitchModel::load(path, device)?)),
        ModelFile::Burnpack => match read_packed_config(path)? {
            PackedConfig::SnNet(_) => {
                LoadedModel::SnNet(Box::new(SnNet::load_burnpack(path, device)?))
            }
            PackedConfig::Stitch(_) => {
                LoadedModel::Stitch(Box::new(StitchModel::load_burnpack(path, device)?))
            }
        },
    })
}
