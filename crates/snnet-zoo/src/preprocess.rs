//! Image preprocessing as timm's eval transform: resize, center crop, normalise.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;

use crate::error::{Error, Result};
use crate::pretrained::{Interpolation, PretrainedConfig};

/// Loads an image file (JPEG or PNG) and prepares it as timm's eval transform does: resize so
/// that the crop is `crop_pct` of the resized image (the shorter side for square inputs),
/// center crop to the input size, scale to [0, 1], normalise by the mean and std.
///
/// The resize uses the `image` crate's Catmull-Rom (bicubic) or triangle (bilinear) filter,
/// close to but not bit-identical with PIL's.
///
/// # Shapes
/// Returns `[1, channels, height, width]`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::InputShape`] when it is not a decodable
/// image, [`Error::InvalidConfig`] for a config with other than 1 or 3 channels.
pub fn load_image(path: &Path, config: &PretrainedConfig, device: &Device) -> Result<Tensor<4>> {
    config.validate()?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let image = image::load_from_memory(&bytes).map_err(|e| Error::InputShape {
        expected: format!("a JPEG or PNG image ({}: {e})", path.display()),
        found: Vec::new(),
    })?;
    preprocess(&image, config, device)
}

/// Prepares a decoded image; see [`load_image`].
///
/// # Errors
/// [`Error::InvalidConfig`] for a config with other than 1 or 3 channels.
pub fn preprocess(
    image: &image::DynamicImage,
    config: &PretrainedConfig,
    device: &Device,
) -> Result<Tensor<4>> {
    let [chans, h, w] = config.input_size;
    if chans != 1 && chans != 3 {
        return Err(Error::InvalidConfig {
            family: "pretrained",
            reason: format!("images have 1 or 3 channels, the model takes {chans}"),
        });
    }
    let filter = match config.interpolation {
        Interpolation::Bicubic => FilterType::CatmullRom,
        Interpolation::Bilinear => FilterType::Triangle,
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    #[allow(clippy::cast_precision_loss)]
    let scaled = |size: usize| (size as f32 / config.crop_pct).floor() as u32;
    let (iw, ih) = (image.width().max(1), image.height().max(1));
    let (rw, rh) = if h == w {
        // Shorter side to the scale size, aspect kept (torchvision Resize(int)).
        let s = scaled(h);
        if iw <= ih {
            (s, ((u64::from(s) * u64::from(ih)) / u64::from(iw)) as u32)
        } else {
            (((u64::from(s) * u64::from(iw)) / u64::from(ih)) as u32, s)
        }
    } else {
        (scaled(w), scaled(h))
    };
    let resized = image.resize_exact(rw.max(w as u32), rh.max(h as u32), filter);
    let (rw, rh) = (resized.width() as usize, resized.height() as usize);
    let top = ((rh - h) as f32 / 2.0).round() as usize;
    let left = ((rw - w) as f32 / 2.0).round() as usize;
    let mut values = vec![0f32; chans * h * w];
    let rgb = resized.to_rgb8();
    for y in 0..h {
        for x in 0..w {
            let pixel = rgb.get_pixel((left + x) as u32, (top + y) as u32).0;
            if chans == 1 {
                let luma = (0.299 * f32::from(pixel[0])
                    + 0.587 * f32::from(pixel[1])
                    + 0.114 * f32::from(pixel[2]))
                    / 255.0;
                values[y * w + x] = (luma - config.mean[0]) / config.std[0];
            } else {
                for c in 0..3 {
                    let v = f32::from(pixel[c]) / 255.0;
                    values[c * h * w + y * w + x] = (v - config.mean[c]) / config.std[c];
                }
            }
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(values, [1, chans, h, w]),
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_and_normalises() {
        let device = Device::default();
        // A 300×200 image, left half red, right half blue.
        let img = image::RgbImage::from_fn(300, 200, |x, _| {
            if x < 150 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let config = PretrainedConfig::imagenet([3, 32, 32], 10);
        let t = preprocess(&image::DynamicImage::ImageRgb8(img), &config, &device).unwrap();
        assert_eq!(t.dims(), [1, 3, 32, 32]);
        let data = t.into_data();
        let v = data.as_slice::<f32>().unwrap();
        // Top-left pixel is red: (1 - mean) / std in channel 0, (0 - mean) / std in channel 2.
        assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-3);
        assert!((v[2 * 32 * 32] - (0.0 - 0.406) / 0.225).abs() < 1e-3);
        // Top-right pixel is blue.
        assert!((v[2 * 32 * 32 + 31] - (1.0 - 0.406) / 0.225).abs() < 1e-3);
    }

    #[test]
    fn bad_images_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jpg");
        std::fs::write(&path, b"not an image").unwrap();
        let config = PretrainedConfig::imagenet([3, 32, 32], 10);
        let device = Device::default();
        assert!(matches!(
            load_image(&path, &config, &device),
            Err(Error::InputShape { .. })
        ));
        let missing = dir.path().join("missing.png");
        assert!(matches!(
            load_image(&missing, &config, &device),
            Err(Error::Io { .. })
        ));
    }
}
