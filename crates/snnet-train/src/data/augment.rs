//! Light augmentation and the seeded randomness behind shuffling and augmenting.
//!
//! All randomness is derived from the seed and the position in training alone — the
//! permutation of an epoch from `(seed, epoch)`, an item's augmentation from
//! `(seed, epoch, index)` — never from what was drawn before, so batches do not depend on
//! iteration history (resuming, skipping, parallel loading). Streams are ChaCha8
//! ([`rand_chacha::ChaCha8Rng`]), whose output is fixed across platforms and versions, and the
//! bounded draws are this module's own, so the same seed gives the same data everywhere.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Stream tags, so that shuffling and augmentation never share a stream.
const SHUFFLE: u64 = 0x5348_5546_464c_4521;
const AUGMENT: u64 = 0x4155_474d_454e_5421;

/// Random augmentation of a prepared `[C, H, W]` image: a random crop with padding, then a
/// horizontal flip.
///
/// The crop pads the image by `crop_padding` pixels on every side with black (the dataset's
/// [`pad_value`](super::Dataset::pad_value)) and crops a random window of the original size
/// back (torchvision's `RandomCrop(size, padding)`); padding is in pixels of the prepared image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Pixels of padding for the random crop; 0 for no crop.
    pub crop_padding: usize,
    /// Probability of a horizontal flip, in [0, 1].
    pub hflip: f32,
}

impl Default for Augment {
    /// [`Augment::NONE`].
    fn default() -> Self {
        Self::NONE
    }
}

impl Augment {
    /// No augmentation (evaluation).
    pub const NONE: Self = Self {
        crop_padding: 0,
        hflip: 0.0,
    };

    /// Light augmentation for 28×28 Fashion-MNIST: crop with 2 pixels of padding, flip with
    /// probability 0.5.
    pub const LIGHT: Self = Self {
        crop_padding: 2,
        hflip: 0.5,
    };

    /// Only a horizontal flip with probability 0.5 (e.g. for an [`ImageFolder`](super::ImageFolder)).
    pub const FLIP: Self = Self {
        crop_padding: 0,
        hflip: 0.5,
    };

    /// [`LIGHT`](Augment::LIGHT) scaled to images of side `side`: padding `side / 14`
    /// (2 at 28, 16 at 224), flip with probability 0.5.
    pub fn light_for(side: usize) -> Self {
        Self {
            crop_padding: side / 14,
            hflip: 0.5,
        }
    }

    /// Whether this changes nothing.
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && self.hflip <= 0.0
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a flip probability outside [0, 1].
    pub fn validate(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.hflip) {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                what: "augmentation",
                reason: format!("flip probability {} is not in [0, 1]", self.hflip),
            })
        }
    }

    /// Augments `image` (`[C, H, W]` as `shape`) in place, drawing from `rng`: first the crop
    /// offsets (when padding), then the flip (when its probability is positive). `pad` holds a
    /// value per channel; `scratch` is reused between calls to save allocations.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `image` or `pad` does not fit `shape`.
    pub fn apply(
        &self,
        image: &mut [f32],
        shape: [usize; 3],
        pad: &[f32],
        rng: &mut impl RngCore,
        scratch: &mut Vec<f32>,
    ) -> Result<()> {
        let [c, h, w] = shape;
        super::check_out(shape, image)?;
        if pad.len() != c {
            return Err(Error::InvalidConfig {
                what: "augmentation",
                reason: format!("{} pad values for {c} channels", pad.len()),
            });
        }
        let p = self.crop_padding;
        let (dy, dx) = if p > 0 {
            let span = 2 * p as u64 + 1;
            (below(rng, span) as usize, below(rng, span) as usize)
        } else {
            (p, p)
        };
        let flip = self.hflip > 0.0 && unit(rng) < self.hflip;
        if (dy, dx) == (p, p) && !flip {
            return Ok(());
        }
        scratch.clear();
        scratch.extend_from_slice(image);
        // Output (y, x) reads padded (y + dy, x' + dx), i.e. source (y + dy - p, x' + dx - p),
        // where x' is x mirrored when flipping.
        for ch in 0..c {
            let src = &scratch[ch * h * w..(ch + 1) * h * w];
            let dst = &mut image[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                let sy = (y + dy).checked_sub(p).filter(|&sy| sy < h);
                let row = &mut dst[y * w..(y + 1) * w];
                for (x, o) in row.iter_mut().enumerate() {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = (xx + dx).checked_sub(p).filter(|&sx| sx < w);
                    *o = match (sy, sx) {
                        (Some(sy), Some(sx)) => src[sy * w + sx],
                        _ => pad[ch],
                    };
                }
            }
        }
        Ok(())
    }
}

/// The random stream of item `index`'s augmentation in `epoch`.
pub fn sample_rng(seed: u64, epoch: usize, index: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(seed, &[AUGMENT, epoch as u64, index as u64]))
}

/// A permutation of `0..len` that depends only on `(seed, epoch)` (Fisher–Yates on a
/// ChaCha8 stream).
pub fn permutation(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(derive(seed, &[SHUFFLE, epoch as u64]));
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        let j = below(&mut rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// SplitMix64's finaliser: a bijective 64-bit mix.
fn splitmix64(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed for the stream named by `parts` under `seed`.
fn derive(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix64(seed), |h, &p| splitmix64(h ^ splitmix64(p)))
}

/// Uniform in `0..n` (`n > 0`), unbiased (Lemire's multiply-and-reject).
fn below(rng: &mut impl RngCore, n: u64) -> u64 {
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// Uniform in [0, 1) with 24 bits.
fn unit(rng: &mut impl RngCore) -> f32 {
    (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_seeded_per_epoch() {
        let p = permutation(1000, 7, 0);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(p, permutation(1000, 7, 0));
        assert_ne!(p, permutation(1000, 7, 1));
        assert_ne!(p, permutation(1000, 8, 0));
        assert!(permutation(0, 1, 0).is_empty());
        assert_eq!(permutation(1, 1, 0), [0]);
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut rng = sample_rng(1, 2, 3);
        let mut seen = [0usize; 5];
        for _ in 0..1000 {
            seen[below(&mut rng, 5) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
    }

    #[test]
    fn crops_pad_and_flips() {
        // 1×2×3 image, values 1..=6.
        let base: Vec<f32> = (1..=6).map(|v| v as f32).collect();
        let flip = Augment {
            crop_padding: 0,
            hflip: 1.0,
        };
        let mut img = base.clone();
        let mut scratch = Vec::new();
        flip.apply(
            &mut img,
            [1, 2, 3],
            &[-1.0],
            &mut sample_rng(0, 0, 0),
            &mut scratch,
        )
        .unwrap();
        assert_eq!(img, [3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        // Padding 1: every crop keeps the values or pads; all offsets show up.
        let crop = Augment {
            crop_padding: 1,
            hflip: 0.0,
        };
        let mut shifted = 0;
        for i in 0..200 {
            let mut img = base.clone();
            crop.apply(
                &mut img,
                [1, 2, 3],
                &[-1.0],
                &mut sample_rng(0, 0, i),
                &mut scratch,
            )
            .unwrap();
            assert!(img.iter().all(|v| *v == -1.0 || base.contains(v)));
            shifted += usize::from(img != base);
        }
        assert!(shifted > 100 && shifted < 200, "{shifted}");
        assert!(Augment::NONE.is_identity() && !Augment::LIGHT.is_identity());
        assert!(
            Augment {
                crop_padding: 0,
                hflip: 1.5
            }
            .validate()
            .is_err()
        );
    }
}
