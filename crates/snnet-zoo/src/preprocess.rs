//! Image preprocessing as timm's eval transform: resize, center crop, normalise.

// Images come from users and requests: no indexing or integer arithmetic that could panic.
#![deny(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use image::imageops::FilterType;

use crate::error::{Error, Result};
use crate::limits::{
    MAX_IMAGE_ALLOC_BYTES, MAX_IMAGE_ASPECT, MAX_IMAGE_SIDE, MAX_MODEL_IMAGE_SIDE,
};
use crate::pretrained::{Interpolation, PretrainedConfig};

/// Decodes JPEG or PNG bytes within the [limits](crate::limits): sides up to
/// [`MAX_IMAGE_SIDE`], decoder allocations up to [`MAX_IMAGE_ALLOC_BYTES`] and an aspect ratio
/// up to [`MAX_IMAGE_ASPECT`] (the resize to the model's input would otherwise blow a thin
/// strip up to gigabytes). `input` names the source in errors.
///
/// # Errors
/// [`Error::Image`] for bytes of another format, [`Error::ImageDecode`] for bytes the decoder
/// refuses, [`Error::Limit`] for an image over a limit.
pub fn decode_image(bytes: &[u8], input: &str) -> Result<image::DynamicImage> {
    let image_error = |reason: String| Error::Image {
        input: input.to_owned(),
        reason,
    };
    let decode_error = |source: image::ImageError| Error::ImageDecode {
        input: input.to_owned(),
        source,
    };
    let reader = |limited: bool| -> Result<image::ImageReader<std::io::Cursor<&[u8]>>> {
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| decode_error(image::ImageError::IoError(e)))?;
        match reader.format() {
            Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
            Some(f) => return Err(image_error(format!("{f:?} images are not supported"))),
            None => return Err(image_error("unknown format".to_owned())),
        }
        let mut limits = image::Limits::default();
        if limited {
            limits.max_image_width = Some(MAX_IMAGE_SIDE);
            limits.max_image_height = Some(MAX_IMAGE_SIDE);
        }
        limits.max_alloc = Some(MAX_IMAGE_ALLOC_BYTES);
        reader.limits(limits);
        Ok(reader)
    };
    // The header first: sizes are checked (and named) before the pixels are allocated.
    let (w, h) = reader(false)?.into_dimensions().map_err(decode_error)?;
    let limit = |what, value: u32, limit: u32, constant| Error::Limit {
        input: input.to_owned(),
        what,
        value: u64::from(value),
        limit: u64::from(limit),
        constant,
    };
    if w > MAX_IMAGE_SIDE {
        return Err(limit("the width", w, MAX_IMAGE_SIDE, "MAX_IMAGE_SIDE"));
    }
    if h > MAX_IMAGE_SIDE {
        return Err(limit("the height", h, MAX_IMAGE_SIDE, "MAX_IMAGE_SIDE"));
    }
    let (short, long) = (w.min(h).max(1), w.max(h));
    let aspect = long.checked_div(short).unwrap_or(u32::MAX);
    if aspect > MAX_IMAGE_ASPECT {
        return Err(limit(
            "the aspect ratio",
            aspect,
            MAX_IMAGE_ASPECT,
            "MAX_IMAGE_ASPECT",
        ));
    }
    reader(true)?.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => image_error(format!(
            "{l} (limits: MAX_IMAGE_SIDE {MAX_IMAGE_SIDE}, MAX_IMAGE_ALLOC_BYTES \
             {MAX_IMAGE_ALLOC_BYTES})"
        )),
        other => decode_error(other),
    })
}

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
/// [`Error::Io`] when the file cannot be read, as [`decode_image`] for bytes that are not a
/// decodable image or an image over a limit, [`Error::InvalidConfig`] for a config with other
/// than 1 or 3 channels.
pub fn load_image(path: &Path, config: &PretrainedConfig, device: &Device) -> Result<Tensor<4>> {
    config.validate()?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let image = decode_image(&bytes, &path.display().to_string())?;
    preprocess(&image, config, device)
}

/// Prepares a decoded image; see [`load_image`].
///
/// # Errors
/// [`Error::InvalidConfig`] for a config with other than 1 or 3 channels, [`Error::Limit`] for
/// an image whose aspect ratio exceeds [`MAX_IMAGE_ASPECT`] (its resize would be huge).
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
    if h.max(w) > MAX_MODEL_IMAGE_SIDE {
        return Err(Error::Limit {
            input: "the model's input size".to_owned(),
            what: "the side",
            value: u64::try_from(h.max(w)).unwrap_or(u64::MAX),
            limit: MAX_MODEL_IMAGE_SIDE as u64,
            constant: "MAX_MODEL_IMAGE_SIDE",
        });
    }
    // Both sides are at most MAX_MODEL_IMAGE_SIDE: they fit u32, and every product below fits.
    let (h32, w32) = (
        u32::try_from(h).unwrap_or(u32::MAX),
        u32::try_from(w).unwrap_or(u32::MAX),
    );
    let filter = match config.interpolation {
        Interpolation::Bicubic => FilterType::CatmullRom,
        Interpolation::Bilinear => FilterType::Triangle,
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    #[allow(clippy::cast_precision_loss)]
    let scaled = |size: usize| (size as f32 / config.crop_pct).floor() as u32;
    let (iw, ih) = (image.width().max(1), image.height().max(1));
    let aspect = iw.max(ih).checked_div(iw.min(ih)).unwrap_or(u32::MAX);
    if aspect > MAX_IMAGE_ASPECT {
        return Err(Error::Limit {
            input: "image".to_owned(),
            what: "the aspect ratio",
            value: u64::from(aspect),
            limit: u64::from(MAX_IMAGE_ASPECT),
            constant: "MAX_IMAGE_ASPECT",
        });
    }
    // `s · long / short` with the aspect ratio bounded: fits u32 (saturating regardless).
    let stretch = |s: u32, long: u32, short: u32| {
        let v = u64::from(s)
            .saturating_mul(u64::from(long))
            .checked_div(u64::from(short))
            .unwrap_or(u64::MAX);
        u32::try_from(v).unwrap_or(u32::MAX)
    };
    let (rw, rh) = if h == w {
        // Shorter side to the scale size, aspect kept (torchvision Resize(int)).
        let s = scaled(h);
        if iw <= ih {
            (s, stretch(s, ih, iw))
        } else {
            (stretch(s, iw, ih), s)
        }
    } else {
        (scaled(w), scaled(h))
    };
    let resized = image.resize_exact(rw.max(w32), rh.max(h32), filter);
    // Center crop (rounded as torchvision's CenterCrop).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    #[allow(clippy::cast_precision_loss)]
    let offset = |size: u32, crop: u32| (f64::from(size.saturating_sub(crop)) / 2.0).round() as u32;
    let (left, top) = (offset(resized.width(), w32), offset(resized.height(), h32));
    let rgb = resized.to_rgb8();
    let crop = image::imageops::crop_imm(&rgb, left, top, w32, h32).to_image();
    let values: Vec<f32> = if chans == 1 {
        crop.pixels()
            .map(|p| {
                let [r, g, b] = p.0;
                let luma =
                    (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)) / 255.0;
                (luma - config.mean[0]) / config.std[0]
            })
            .collect()
    } else {
        // Planar (CHW): one pass per channel.
        config
            .mean
            .iter()
            .zip(&config.std)
            .enumerate()
            .flat_map(|(c, (&mean, &std))| {
                crop.pixels().map(move |p| {
                    let v = p.0.get(c).copied().unwrap_or_default();
                    (f32::from(v) / 255.0 - mean) / std
                })
            })
            .collect()
    };
    Ok(Tensor::from_data(
        TensorData::new(values, [1, chans, h, w]),
        device,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)]

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

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::GrayImage::from_pixel(width, height, image::Luma([7]));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageLuma8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    }

    #[test]
    fn thin_strips_and_huge_images_are_refused_before_decoding() {
        // A 1 × 65,535 PNG is a few hundred bytes; its resize to 224 would take 12 GB.
        let strip = png(1, 65_535);
        assert!(strip.len() < 100_000, "{}", strip.len());
        let limit = |bytes: &[u8]| match decode_image(bytes, "strip.png") {
            Err(Error::Limit {
                constant, value, ..
            }) => (constant, value),
            other => panic!("expected a limit, got {other:?}"),
        };
        assert_eq!(limit(&strip), ("MAX_IMAGE_SIDE", 65_535));
        // Within the side limit, the aspect ratio still stops it.
        assert_eq!(limit(&png(1, 16_000)), ("MAX_IMAGE_ASPECT", 16_000));
        // A header claiming 20,000 × 20,000 pixels: refused by its size, not by allocating.
        let mut big = png(2, 2);
        // IHDR's width and height sit at bytes 16..24 (big-endian); the CRC is not checked
        // before the limit, and a wrong CRC would be an error too — either way not a panic.
        big[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        big[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let err = decode_image(&big, "big.png").unwrap_err();
        assert!(
            matches!(err, Error::Limit { .. } | Error::ImageDecode { .. }),
            "{err}"
        );
        // A sane panorama passes.
        let wide = decode_image(&png(640, 100), "wide.png").unwrap();
        assert_eq!((wide.width(), wide.height()), (640, 100));
        let config = PretrainedConfig::imagenet([3, 32, 32], 10);
        let t = preprocess(&wide, &config, &Device::default()).unwrap();
        assert_eq!(t.dims(), [1, 3, 32, 32]);
    }

    #[test]
    fn bad_images_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jpg");
        std::fs::write(&path, b"not an image").unwrap();
        let config = PretrainedConfig::imagenet([3, 32, 32], 10);
        let device = Device::default();
        let err = load_image(&path, &config, &device).unwrap_err();
        assert!(matches!(err, Error::Image { .. }), "{err}");
        assert!(
            err.to_string().contains("not a decodable JPEG or PNG"),
            "{err}"
        );
        // A GIF decodes with the `image` crate's defaults but is not what we accept.
        let gif = dir.path().join("x.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
        let err = load_image(&gif, &config, &device).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let missing = dir.path().join("missing.png");
        assert!(matches!(
            load_image(&missing, &config, &device),
            Err(Error::Io { .. })
        ));
    }
}
