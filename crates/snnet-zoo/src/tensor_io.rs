//! Named tensors in safetensors files: model inputs, outputs and features.

// Tensor files come from users and requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::TensorData;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};

/// Reads every tensor of a safetensors file as `f32` data (`f64` is narrowed; other dtypes are
/// an error).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Safetensors`] when it is not a valid
/// safetensors file, [`Error::TensorFile`] when it holds a tensor that is not `f32`/`f64`.
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, TensorData>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let bad = |reason: String| Error::TensorFile {
        path: path.to_owned(),
        reason,
    };
    let file = SafeTensors::deserialize(&bytes).map_err(|source| Error::Safetensors {
        path: path.to_owned(),
        source,
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let values = f32_values(&view).ok_or_else(|| {
            bad(format!(
                "tensor `{name}` has dtype {:?}; only F32 and F64 are supported",
                view.dtype()
            ))
        })?;
        out.insert(name, TensorData::new(values, view.shape().to_vec()));
    }
    Ok(out)
}

/// Writes `f32` tensors to a safetensors file atomically (a temporary file in the same
/// directory, then a rename).
///
/// # Errors
/// [`Error::TensorFile`] for a tensor that is not `f32`, [`Error::Safetensors`] when the
/// tensors cannot be serialised, [`Error::Io`] when writing fails.
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, TensorData>) -> Result<()> {
    let bad = |reason: String| Error::TensorFile {
        path: path.to_owned(),
        reason,
    };
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, data) in tensors {
        let values = data
            .as_slice::<f32>()
            .map_err(|e| bad(format!("tensor `{name}` is not f32: {e:?}")))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        buffers.push((name.as_str(), data.shape().to_vec(), bytes));
    }
    let views = buffers
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|view| (*name, view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .and_then(|views| safetensors::serialize(views, None))
        .map_err(|source| Error::Safetensors {
            path: path.to_owned(),
            source,
        })?;
    Ok(snnet_fs::write_atomic(path, &views)?)
}

/// A safetensors tensor's values as `f32` (F64 narrowed), or `None` for any other dtype. The one
/// decoder of tensor files and request bodies.
pub fn f32_values(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let raw = view.data();
    match view.dtype() {
        Dtype::F32 => Some(
            raw.chunks_exact(4)
                .filter_map(|b| b.try_into().ok().map(f32::from_le_bytes))
                .collect(),
        ),
        #[allow(clippy::cast_possible_truncation)]
        Dtype::F64 => Some(
            raw.chunks_exact(8)
                .filter_map(|b| b.try_into().ok().map(|b| f64::from_le_bytes(b) as f32))
                .collect(),
        ),
        _ => None,
    }
}
