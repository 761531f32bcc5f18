//! Request bodies to image tensors, logits to top-k predictions.

// Reads input from files or requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use snnet_core::burn::tensor::activation::softmax;
use snnet_core::burn::tensor::{Device, Tensor, TensorData};
use snnet_core::zoo::PretrainedConfig;
use snnet_core::zoo::tensor_io::f32_values;

use crate::error::{Error, Result};

/// The name of the tensor a safetensors body must hold.
pub const INPUT_KEY: &str = "input";

/// Decodes a request body: a PNG or JPEG image (preprocessed as timm's eval transform with
/// `config`: resize, center crop, normalise) or a safetensors file holding an `f32` (or `f64`)
/// tensor named `input` of shape `[B, C, H, W]` matching `config.input_size`.
///
/// # Shapes
/// Returns `[B, C, H, W]` (`B = 1` for an image).
///
/// # Errors
/// [`Error::Input`] for anything else: bytes of no known format, an undecodable image, a
/// safetensors file without `input`, of another dtype or shape.
pub fn decode(bytes: &[u8], config: &PretrainedConfig, device: &Device) -> Result<Tensor<4>> {
    let [c, h, w] = config.input_size;
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let image = snnet_core::zoo::decode_image(bytes, "the request body")
            .map_err(|e| Error::Input(e.to_string()))?;
        return snnet_core::zoo::preprocess(&image, config, device)
            .map_err(|e| Error::Input(e.to_string()));
    }
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Input(format!(
            "the body is not a PNG, JPEG or safetensors file ({e})"
        ))
    })?;
    let view = tensors.tensor(INPUT_KEY).map_err(|_| {
        Error::Input(format!(
            "the safetensors body has no tensor named `{INPUT_KEY}`"
        ))
    })?;
    let shape = view.shape().to_vec();
    let &[b, sc, sh, sw] = shape.as_slice() else {
        return Err(Error::Input(format!(
            "`{INPUT_KEY}` must be [B, {c}, {h}, {w}], got {shape:?}"
        )));
    };
    if b == 0 || [sc, sh, sw] != [c, h, w] {
        return Err(Error::Input(format!(
            "`{INPUT_KEY}` must be [B >= 1, {c}, {h}, {w}], got {shape:?}"
        )));
    }
    let values = f32_values(&view).ok_or_else(|| {
        Error::Input(format!(
            "`{INPUT_KEY}` has dtype {:?}; send F32 or F64",
            view.dtype()
        ))
    })?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Input(format!(
            "`{INPUT_KEY}` holds NaN or infinite values"
        )));
    }
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// One class of an image's top-k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The class index.
    pub index: usize,
    /// The class label (from the labels file), or `class {index}`.
    pub label: String,
    /// The softmax probability.
    pub prob: f32,
}

/// The `k` most probable classes of every row of `logits`, most probable first, labelled from
/// `labels` (by index) where it has them.
///
/// # Shapes
/// `logits`: `[B, classes]` → `B` lists of `min(k, classes)` predictions.
///
/// # Errors
/// [`Error::Device`] when the probabilities cannot be read back as `f32`.
pub fn top_k(logits: Tensor<2>, k: usize, labels: &[String]) -> Result<Vec<Vec<Prediction>>> {
    let [_, classes] = logits.dims();
    let probs = softmax(logits, 1)
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("cannot read the probabilities: {e:?}")))?;
    Ok(probs
        .chunks(classes.max(1))
        .map(|row| {
            let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked
                .into_iter()
                .take(k)
                .map(|(index, prob)| Prediction {
                    index,
                    label: labels
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| format!("class {index}")),
                    prob,
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing
)]
mod tests {
    use std::collections::HashMap;

    use safetensors::tensor::Dtype;

    use super::*;

    fn config() -> PretrainedConfig {
        PretrainedConfig::imagenet([3, 8, 8], 10)
    }

    fn safetensors_body(shape: Vec<usize>, dtype: Dtype, bytes: &[u8]) -> Vec<u8> {
        let view = safetensors::tensor::TensorView::new(dtype, shape, bytes).unwrap();
        let map: HashMap<String, _> = [("input".to_owned(), view)].into_iter().collect();
        safetensors::serialize(&map, None).unwrap()
    }

    #[test]
    fn decodes_images_and_tensors() {
        let device = Device::default();
        let img = image::RgbImage::from_fn(20, 12, |x, _| image::Rgb([x as u8 * 10, 0, 0]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(
            decode(&png, &config(), &device).unwrap().dims(),
            [1, 3, 8, 8]
        );

        let values: Vec<u8> = (0..2 * 3 * 8 * 8)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect();
        let body = safetensors_body(vec![2, 3, 8, 8], Dtype::F32, &values);
        let t = decode(&body, &config(), &device).unwrap();
        assert_eq!(t.dims(), [2, 3, 8, 8]);
        assert_eq!(t.into_data().try_into_vec::<f32>().unwrap()[5], 5.0);
    }

    #[test]
    fn rejects_bad_bodies() {
        let device = Device::default();
        let bad = |bytes: &[u8]| {
            let err = decode(bytes, &config(), &device).unwrap_err();
            assert!(matches!(err, Error::Input(_)), "{err}");
            err.to_string()
        };
        assert!(bad(b"garbage").contains("not a PNG, JPEG or safetensors"));
        assert!(bad(b"").contains("not a PNG"));
        assert!(bad(b"\x89PNG\r\n\x1a\nbroken").contains("not a decodable JPEG or PNG"));
        let values: Vec<u8> = vec![0; 3 * 4 * 4 * 4];
        let wrong = safetensors_body(vec![1, 3, 4, 4], Dtype::F32, &values);
        assert!(bad(&wrong).contains("must be [B >= 1, 3, 8, 8]"));
        let flat = safetensors_body(vec![48], Dtype::F32, &values);
        assert!(bad(&flat).contains("must be"));
        let ints = safetensors_body(vec![1, 3, 8, 8], Dtype::I16, &vec![0; 2 * 192]);
        assert!(bad(&ints).contains("dtype"));
    }

    #[test]
    fn top_k_ranks_and_labels() {
        let device = Device::default();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![0.0f32, 2.0, 1.0, 5.0, 0.0, 0.0], [2, 3]),
            &device,
        );
        let top = top_k(logits, 2, &["cat".to_owned()]).unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0][0].index, 1);
        assert_eq!(top[0][0].label, "class 1");
        assert_eq!(top[0][1].index, 2);
        assert_eq!(top[1][0].label, "cat");
        assert!((top[1].iter().map(|p| p.prob).sum::<f32>() - 0.99335).abs() < 1e-3);
    }
}
