//! Deterministic preparation of grey 8-bit images: resize, channels, normalisation.

use serde::{Deserialize, Serialize};
use snnet_zoo::PretrainedConfig;

use crate::error::{Error, Result};

/// How [`Transform`] resizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resize {
    /// Nearest neighbour as PyTorch's `interpolate(mode="nearest")`: source pixel
    /// `floor(dst · src_size / dst_size)`.
    Nearest,
    /// Bilinear as PyTorch's `interpolate(mode="bilinear", align_corners=False,
    /// antialias=False)`: half-pixel centres, edges clamped. Smooth when enlarging (28 → 32 or
    /// 224); without antialiasing it aliases when shrinking.
    #[default]
    Bilinear,
}

/// Prepares a grey 8-bit image for a model: resize to `size`, scale to [0, 1], replicate to
/// `channels` (1, or 3 for anchors with `in_chans = 3`), normalise channel `c` by `mean[c]`
/// and `std[c]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// Output channels: 1, 2 or 3 (copies of the grey image).
    pub channels: usize,
    /// Per-channel mean subtracted after scaling to [0, 1] (entries past `channels` unused).
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
    /// The resize filter (unused when the size does not change).
    pub resize: Resize,
}

impl Default for Transform {
    /// [`Transform::fashion_mnist`].
    fn default() -> Self {
        Self::fashion_mnist()
    }
}

impl Transform {
    /// Fashion-MNIST as it is: 28×28, one channel, normalised by the training set's mean
    /// ([`MEAN`](super::MEAN), 0.2860) and std ([`STD`](super::STD), 0.3530).
    pub fn fashion_mnist() -> Self {
        Self {
            size: [super::SIDE, super::SIDE],
            channels: 1,
            mean: [super::MEAN; 3],
            std: [super::STD; 3],
            resize: Resize::Bilinear,
        }
    }

    /// The input an anchor takes: size and channels from `config.input_size`, and its
    /// normalisation (the statistics its pretrained weights expect, usually ImageNet's).
    /// timm's bicubic resize is replaced by bilinear.
    pub fn for_pretrained(config: &PretrainedConfig) -> Self {
        let [channels, h, w] = config.input_size;
        Self {
            size: [h, w],
            channels,
            mean: config.mean,
            std: config.std,
            resize: Resize::Bilinear,
        }
    }

    /// With output `[channels, height, width]`, the normalisation kept.
    #[must_use]
    pub fn with_input_size(mut self, [channels, h, w]: [usize; 3]) -> Self {
        self.size = [h, w];
        self.channels = channels;
        self
    }

    /// With the same mean and std for every channel.
    #[must_use]
    pub fn with_normalization(mut self, mean: f32, std: f32) -> Self {
        self.mean = [mean; 3];
        self.std = [std; 3];
        self
    }

    /// With another resize filter.
    #[must_use]
    pub fn with_resize(mut self, resize: Resize) -> Self {
        self.resize = resize;
        self
    }

    /// `[channels, height, width]` of the output.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.size[0], self.size[1]]
    }

    /// The number of output values, `channels · height · width`.
    pub fn numel(&self) -> usize {
        self.shape().iter().product()
    }

    /// Per channel, the output of a black pixel: `(0 - mean) / std`.
    pub fn pad_value(&self) -> Vec<f32> {
        (0..self.channels)
            .map(|c| -self.mean[c] / self.std[c])
            .collect()
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty size, channels other than 1 to 3, a non-positive
    /// or non-finite std or a non-finite mean.
    pub fn validate(&self) -> Result<()> {
        let c = self.channels;
        let ok = self.size.iter().all(|&d| d > 0)
            && (1..=3).contains(&c)
            && self.std[..c].iter().all(|s| *s > 0.0 && s.is_finite())
            && self.mean[..c].iter().all(|m| m.is_finite());
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                what: "transform",
                reason: format!(
                    "size must be positive, channels 1 to 3, std positive and finite: {self:?}"
                ),
            })
        }
    }

    /// Prepares the grey `[height, width]` image `src` (`size` gives its dimensions) into
    /// `out`, which must hold [`numel`](Transform::numel) values (`[C, H, W]`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `src` or `out` has the wrong length.
    pub fn apply(&self, src: &[u8], [sh, sw]: [usize; 2], out: &mut [f32]) -> Result<()> {
        if src.len() != sh * sw || sh == 0 || sw == 0 {
            return Err(Error::InvalidConfig {
                what: "transform input",
                reason: format!("{} bytes for a {sh}×{sw} image", src.len()),
            });
        }
        super::check_out(self.shape(), out)?;
        let [dh, dw] = self.size;
        let plane = dh * dw;
        let (first, rest) = out.split_at_mut(plane);
        if [sh, sw] == [dh, dw] {
            for (o, &p) in first.iter_mut().zip(src) {
                *o = f32::from(p) / 255.0;
            }
        } else {
            let ys = axis(sh, dh, self.resize);
            let xs = axis(sw, dw, self.resize);
            let px = |y: usize, x: usize| f32::from(src[y * sw + x]);
            for (row, &(y0, y1, wy)) in first.chunks_exact_mut(dw).zip(&ys) {
                for (o, &(x0, x1, wx)) in row.iter_mut().zip(&xs) {
                    let top = px(y0, x0) + wx * (px(y0, x1) - px(y0, x0));
                    let bottom = px(y1, x0) + wx * (px(y1, x1) - px(y1, x0));
                    *o = (top + wy * (bottom - top)) / 255.0;
                }
            }
        }
        // Channels 1.. from the [0, 1] plane, then channel 0 in place.
        for (c, channel) in rest.chunks_exact_mut(plane).enumerate() {
            let (mean, std) = (self.mean[c + 1], self.std[c + 1]);
            for (o, &v) in channel.iter_mut().zip(first.iter()) {
                *o = (v - mean) / std;
            }
        }
        let (mean, std) = (self.mean[0], self.std[0]);
        for o in first {
            *o = (*o - mean) / std;
        }
        Ok(())
    }
}

/// Per output index along one axis: the two source indices and the weight of the second.
fn axis(src: usize, dst: usize, resize: Resize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| match resize {
            Resize::Nearest => {
                let i = ((d as f64 * scale).floor() as usize).min(src - 1);
                (i, i, 0.0)
            }
            Resize::Bilinear => {
                let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(src - 1);
                let i1 = (i0 + 1).min(src - 1);
                (i0, i1, (s - i0 as f64) as f32)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_scales_and_normalises() {
        let t = Transform::fashion_mnist().with_input_size([1, 2, 2]);
        let mut out = [0.0; 4];
        t.apply(&[0, 255, 51, 0], [2, 2], &mut out).unwrap();
        assert!((out[0] - (-0.2860 / 0.3530)).abs() < 1e-6);
        assert!((out[1] - (1.0 - 0.2860) / 0.3530).abs() < 1e-6);
        assert!((out[2] - (0.2 - 0.2860) / 0.3530).abs() < 1e-6);
        assert_eq!(t.pad_value(), vec![out[0]]);
    }

    #[test]
    fn resizes_like_pytorch() {
        // 2×2 → 4×4 bilinear (align_corners=False): rows/cols 0.25, 0.75 interpolate.
        let t = Transform::fashion_mnist()
            .with_input_size([1, 4, 4])
            .with_normalization(0.0, 1.0);
        let mut out = [0.0; 16];
        t.apply(&[0, 255, 255, 255], [2, 2], &mut out).unwrap();
        assert!(out[0].abs() < 1e-6);
        assert!((out[1] - 0.25).abs() < 1e-6);
        // (y, x) = (0.25, 0.25): 0.25 on the top row, 1 on the bottom one.
        assert!((out[5] - 0.4375).abs() < 1e-6);
        assert!((out[15] - 1.0).abs() < 1e-6);
        // Nearest: each source pixel becomes a 2×2 block.
        let t = t.with_resize(Resize::Nearest);
        t.apply(&[0, 255, 255, 255], [2, 2], &mut out).unwrap();
        assert_eq!(&out[..4], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(&out[4..8], &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(&out[8..12], &[1.0; 4]);
    }

    #[test]
    fn replicates_grey_to_three_channels() {
        let t = Transform {
            size: [1, 2],
            channels: 3,
            mean: [0.0, 0.5, 1.0],
            std: [1.0, 0.5, 2.0],
            resize: Resize::Bilinear,
        };
        let mut out = [0.0; 6];
        t.apply(&[0, 255], [1, 2], &mut out).unwrap();
        assert_eq!(out, [0.0, 1.0, -1.0, 1.0, -0.5, 0.0]);
        assert_eq!(t.pad_value(), vec![0.0, -1.0, -0.5]);
    }

    #[test]
    fn rejects_bad_configs_and_buffers() {
        assert!(Transform::fashion_mnist().validate().is_ok());
        let bad = Transform::fashion_mnist().with_input_size([4, 28, 28]);
        assert!(bad.validate().is_err());
        let bad = Transform::fashion_mnist().with_normalization(0.0, 0.0);
        assert!(bad.validate().is_err());
        let t = Transform::fashion_mnist();
        assert!(t.apply(&[0; 10], [28, 28], &mut [0.0; 784]).is_err());
        assert!(t.apply(&[0; 784], [28, 28], &mut [0.0; 10]).is_err());
    }
}
