//! The stitching layer: a per-token linear map, a 1×1 convolution, or a 1×1 convolution whose
//! output is flattened into tokens, with an optional low-rank (LoRA) update.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;
use serde::{Deserialize, Serialize};
use snnet_space::Layout;

use crate::error::{Error, Result};
use crate::lstsq::Affine;

/// The low-rank update of an SN-Netv2 stitching layer: `W = W₀ + (α / r) · B·A` with the
/// least-squares `W₀` frozen and `A` (`[r, C_in]`, Kaiming-uniform), `B` (`[C_out, r]`, zeros)
/// and the bias trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// The rank `r` (SN-Netv2: 64 for classification, 16 for depth estimation).
    pub rank: usize,
    /// `α`; the update is scaled by `α / r` (SN-Netv2: 1).
    #[serde(default = "one")]
    pub alpha: f64,
}

fn one() -> f64 {
    1.0
}

impl LoraConfig {
    /// Rank `rank` with `α = 1`, as SN-Netv2.
    pub fn new(rank: usize) -> Self {
        Self { rank, alpha: 1.0 }
    }

    /// The update's scale `α / r`.
    pub fn scaling(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

/// How a stitching layer's weights start before the least-squares fit (or instead of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// PyTorch's `nn.Linear` default (Kaiming-uniform with `a = √5`: weights and bias uniform in
    /// `±1/√C_in`), drawn from a seeded generator on the host — the same numbers on any device.
    Kaiming {
        /// The generator's seed.
        seed: u64,
    },
    /// Zeros (weights to be set from a least-squares fit or a checkpoint).
    Zeros,
}

impl Default for Init {
    fn default() -> Self {
        Self::Kaiming { seed: 0 }
    }
}

/// A stitching layer's shape: the front anchor's width and layout at the cut, the end
/// anchor's, and the optional LoRA update. A Burn [`Config`]:
/// `StitchingLayerConfig::new(in_width, out_width, in_layout, out_layout)`, `with_lora`.
#[derive(Config, Debug, PartialEq)]
pub struct StitchingLayerConfig {
    /// Input channels (front anchor).
    pub in_width: usize,
    /// Output channels (end anchor).
    pub out_width: usize,
    /// The front anchor's activation layout.
    pub in_layout: Layout,
    /// The end anchor's activation layout.
    pub out_layout: Layout,
    /// The low-rank update, if any.
    pub lora: Option<LoraConfig>,
}

impl StitchingLayerConfig {
    /// A token→token layer (ViT, Swin).
    pub fn tokens(in_width: usize, out_width: usize) -> Self {
        Self::new(in_width, out_width, Layout::Tokens, Layout::Tokens)
    }

    /// Checks the config.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a zero width or rank, a rank above `min(C_in, C_out)`, or
    /// a token→map layer (a token sequence carries no spatial grid to fold back into).
    pub fn validate(&self) -> Result<()> {
        if self.in_width == 0 || self.out_width == 0 {
            return Err(Error::InvalidConfig(format!(
                "widths must be positive, got {}→{}",
                self.in_width, self.out_width
            )));
        }
        if self.in_layout == Layout::Tokens && self.out_layout == Layout::Map {
            return Err(Error::InvalidConfig(
                "a token→map stitch is not supported: token sequences carry no grid to fold into \
                 a feature map"
                    .to_owned(),
            ));
        }
        if let Some(lora) = &self.lora {
            if lora.rank == 0 || lora.rank > self.in_width.min(self.out_width) {
                return Err(Error::InvalidConfig(format!(
                    "LoRA rank {} must be in 1..={} for a {}→{} layer",
                    lora.rank,
                    self.in_width.min(self.out_width),
                    self.in_width,
                    self.out_width
                )));
            }
            if !lora.alpha.is_finite() {
                return Err(Error::InvalidConfig("LoRA alpha must be finite".to_owned()));
            }
        }
        Ok(())
    }

    /// Parameters: `C_out·C_in + C_out` (+ `r·(C_in + C_out)` with LoRA).
    pub fn num_params(&self) -> u64 {
        let (i, o) = (self.in_width as u64, self.out_width as u64);
        let lora = self.lora.map_or(0, |l| l.rank as u64 * (i + o));
        i * o + o + lora
    }

    /// fvcore FLOPs of the layer on `rows` tokens or pixels: `rows · C_in · C_out` (the merged
    /// matrix; the reference evaluates with the LoRA update merged).
    pub fn flops(&self, rows: u64) -> u64 {
        rows * self.in_width as u64 * self.out_width as u64
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// As [`StitchingLayerConfig::validate`].
    pub fn init(&self, init: Init, device: &Device) -> Result<StitchingLayer> {
        self.validate()?;
        let (i, o) = (self.in_width, self.out_width);
        let (weight, bias) = match init {
            Init::Kaiming { seed } => {
                let mut rng = SplitMix64::seed_from_u64(seed);
                let bound = 1.0 / (i as f64).sqrt();
                (uniform(&mut rng, o * i, bound), uniform(&mut rng, o, bound))
            }
            Init::Zeros => (vec![0.0; o * i], vec![0.0; o]),
        };
        let tensor2 = |data: Vec<f32>, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(data, shape), device)
        };
        let (lora_a, lora_b, scaling) = match self.lora {
            Some(lora) => {
                let r = lora.rank;
                // kaiming_uniform_(a=√5) on [r, C_in]: bound = √(6 / ((1 + 5)·C_in)) = 1/√C_in.
                let seed = match init {
                    Init::Kaiming { seed } => seed ^ 0x4c6f_5241,
                    Init::Zeros => 0x4c6f_5241,
                };
                let mut rng = SplitMix64::seed_from_u64(seed);
                let a = uniform(&mut rng, r * i, 1.0 / (i as f64).sqrt());
                (
                    Some(Param::from_tensor(tensor2(a, [r, i]))),
                    Some(Param::from_tensor(tensor2(vec![0.0; o * r], [o, r]))),
                    lora.scaling(),
                )
            }
            None => (None, None, 0.0),
        };
        let mut weight = Param::from_tensor(tensor2(weight, [o, i]));
        if self.lora.is_some() {
            weight = weight.set_require_grad(false);
        }
        Ok(StitchingLayer {
            transform: Transform {
                weight,
                bias: Param::from_tensor(Tensor::<1>::from_data(
                    TensorData::new(bias, [o]),
                    device,
                )),
                lora_a,
                lora_b,
                scaling,
            },
            in_layout: self.in_layout,
            out_layout: self.out_layout,
        })
    }
}

/// The affine map of a stitching layer, stored as PyTorch stores it (the reference's
/// `StitchingLayer.transform`).
#[derive(Module, Debug)]
pub struct Transform {
    /// `[C_out, C_in]` (a 1×1 convolution's `[C_out, C_in, 1, 1]` weight, squeezed). Frozen
    /// when the layer has a LoRA update.
    pub weight: Param<Tensor<2>>,
    /// `[C_out]`.
    pub bias: Param<Tensor<1>>,
    /// LoRA `A`, `[r, C_in]` (checkpoint key `lora_A`).
    pub lora_a: Option<Param<Tensor<2>>>,
    /// LoRA `B`, `[C_out, r]` (checkpoint key `lora_B`).
    pub lora_b: Option<Param<Tensor<2>>>,
    /// `α / r`.
    pub scaling: f64,
}

impl Transform {
    /// The effective weight, `[C_out, C_in]`: `W₀ + (α/r)·B·A` with LoRA, `W₀` otherwise.
    pub fn effective_weight(&self) -> Tensor<2> {
        let w = self.weight.val();
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => w + b.val().matmul(a.val()).mul_scalar(self.scaling),
            _ => w,
        }
    }
}

/// A stitching layer: maps the front anchor's activation at a cut into the end anchor's input.
///
/// Applied per token (`[B, N, C_in]` → `[B, N, C_out]`, [`forward_tokens`]), per pixel as a
/// 1×1 convolution (`[B, C_in, H, W]` → `[B, C_out, H, W]`, [`forward_map`]), or per pixel and
/// flattened into tokens (`[B, C_in, H, W]` → `[B, H·W, C_out]`, rows in `(h, w)` order,
/// [`forward_map_to_tokens`]) for CNN → ViT/Swin; the layer's layouts decide which one it runs.
///
/// [`forward_tokens`]: StitchingLayer::forward_tokens
/// [`forward_map`]: StitchingLayer::forward_map
/// [`forward_map_to_tokens`]: StitchingLayer::forward_map_to_tokens
#[derive(Module, Debug)]
pub struct StitchingLayer {
    /// The affine map (checkpoint keys `transform.weight`, `transform.bias`, …).
    pub transform: Transform,
    #[module(skip)]
    in_layout: Layout,
    #[module(skip)]
    out_layout: Layout,
}

impl StitchingLayer {
    /// The layer in words: `192→384 tokens→tokens (LoRA r=64)`.
    pub fn describe(&self) -> String {
        let [o, i] = self.transform.weight.dims();
        let mut s = format!("{i}→{o} {}→{}", self.in_layout, self.out_layout);
        if let Some(a) = &self.transform.lora_a {
            s.push_str(&format!(" (LoRA r={})", a.dims()[0]));
        }
        s
    }

    /// Input channels.
    pub fn in_width(&self) -> usize {
        self.transform.weight.dims()[1]
    }

    /// Output channels.
    pub fn out_width(&self) -> usize {
        self.transform.weight.dims()[0]
    }

    /// The front anchor's layout.
    pub fn in_layout(&self) -> Layout {
        self.in_layout
    }

    /// The end anchor's layout.
    pub fn out_layout(&self) -> Layout {
        self.out_layout
    }

    /// Runs a tokens→tokens layer on every token.
    ///
    /// # Shapes
    /// `x`: `[B, N, C_in]` → `[B, N, C_out]`. The caller runs the method of the layer's
    /// layouts on activations of `C_in` channels (the SN-Net's plan builds every layer from the
    /// widths of the junctions it serves); unchecked here, as in Burn's `Linear`.
    pub fn forward_tokens(&self, x: Tensor<3>) -> Tensor<3> {
        self.linear(x)
    }

    /// Runs a map→map layer on every pixel (a 1×1 convolution).
    ///
    /// # Shapes
    /// `x`: `[B, C_in, H, W]` → `[B, C_out, H, W]` (as [`StitchingLayer::forward_tokens`]).
    pub fn forward_map(&self, x: Tensor<4>) -> Tensor<4> {
        self.linear(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
    }

    /// Runs a map→tokens layer (CNN → ViT/Swin) on every pixel and flattens the pixels into
    /// tokens, rows in `(h, w)` order.
    ///
    /// # Shapes
    /// `x`: `[B, C_in, H, W]` → `[B, H·W, C_out]` (as [`StitchingLayer::forward_tokens`]).
    pub fn forward_map_to_tokens(&self, x: Tensor<4>) -> Tensor<3> {
        let [b, _, h, w] = x.dims();
        self.linear(x.permute([0, 2, 3, 1]))
            .reshape([b, h * w, self.out_width()])
    }

    /// `x Wᵀ + b` over the last dimension.
    fn linear<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let weight = self.transform.effective_weight().transpose();
        snnet_ops::linear_rows(x, weight, Some(self.transform.bias.val()))
    }

    /// Sets the base weight and bias from a least-squares fit (LoRA `A` and `B` are kept).
    ///
    /// # Errors
    /// [`Error::WeightShape`] when the fit's shape is not the layer's.
    pub fn with_affine(self, affine: &Affine) -> Result<Self> {
        let (o, i) = (self.out_width(), self.in_width());
        if affine.out_features != o || affine.in_features != i {
            return Err(Error::WeightShape {
                layer: self.describe(),
                expected: vec![o, i],
                found: vec![affine.out_features, affine.in_features],
            });
        }
        let device = self.transform.weight.device();
        let weight: Vec<f32> = affine.weight.iter().map(|&v| v as f32).collect();
        let bias: Vec<f32> = affine.bias.iter().map(|&v| v as f32).collect();
        self.with_weights(
            Tensor::from_data(TensorData::new(weight, [o, i]), &device),
            Tensor::from_data(TensorData::new(bias, [o]), &device),
        )
    }

    /// Sets the base weight (`[C_out, C_in]`) and bias (`[C_out]`); a frozen base stays frozen.
    ///
    /// # Errors
    /// [`Error::WeightShape`] when the shapes are not the layer's.
    pub fn with_weights(mut self, weight: Tensor<2>, bias: Tensor<1>) -> Result<Self> {
        let (o, i) = (self.out_width(), self.in_width());
        if weight.dims() != [o, i] || bias.dims() != [o] {
            return Err(Error::WeightShape {
                layer: self.describe(),
                expected: vec![o, i],
                found: weight.dims().to_vec(),
            });
        }
        // Trainable as built by `init`: the base weight is frozen under LoRA only. (Reading the
        // old parameter's flag is not enough: `Param::initialized` on a plain tensor is inactive,
        // so a checkpoint round trip froze the layer.)
        let frozen = self.transform.lora_a.is_some();
        let id = self.transform.weight.id;
        self.transform.weight = Param::initialized(id, weight).set_require_grad(!frozen);
        let id = self.transform.bias.id;
        self.transform.bias = Param::initialized(id, bias).set_require_grad(true);
        Ok(self)
    }

    /// Folds the LoRA update into the base weight (for inference): one `[C_out, C_in]` matrix,
    /// the same outputs.
    pub fn merged(mut self) -> Self {
        if self.transform.lora_a.is_some() {
            let weight = self.transform.effective_weight();
            let id = self.transform.weight.id;
            self.transform.weight = Param::initialized(id, weight);
            self.transform.lora_a = None;
            self.transform.lora_b = None;
            self.transform.scaling = 0.0;
        }
        self
    }
}

/// `n` values uniform in `[-bound, bound)` from a seeded splitmix64 stream (host-side
/// initialisation).
fn uniform(rng: &mut SplitMix64, n: usize, bound: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            ((2.0 * unit - 1.0) * bound) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Tensor<3>, b: Tensor<3>, tol: f32) {
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(diff <= tol, "max abs diff {diff}");
    }

    #[test]
    fn tokens_map_and_map_to_tokens_agree() {
        let device = Device::default();
        let config = StitchingLayerConfig::tokens(3, 5);
        let layer = config.init(Init::Kaiming { seed: 7 }, &device).unwrap();
        let x = Tensor::<4>::random(
            [2, 3, 4, 2],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        // Tokens in (h, w) order.
        let tokens = x.clone().permute([0, 2, 3, 1]).reshape([2, 8, 3]);
        let t = layer.forward_tokens(tokens);
        let map_layer = StitchingLayerConfig {
            in_layout: Layout::Map,
            out_layout: Layout::Map,
            ..config.clone()
        }
        .init(Init::Kaiming { seed: 7 }, &device)
        .unwrap();
        let m = map_layer.forward_map(x.clone());
        assert_eq!(m.dims(), [2, 5, 4, 2]);
        close(m.permute([0, 2, 3, 1]).reshape([2, 8, 5]), t.clone(), 1e-6);
        let to_tokens = StitchingLayerConfig {
            in_layout: Layout::Map,
            out_layout: Layout::Tokens,
            ..config
        }
        .init(Init::Kaiming { seed: 7 }, &device)
        .unwrap();
        let tt = to_tokens.forward_map_to_tokens(x);
        close(tt, t, 1e-6);
    }

    #[test]
    fn affine_weights_apply_as_pytorch_linear() {
        let device = Device::default();
        let layer = StitchingLayerConfig::tokens(2, 2)
            .init(Init::Zeros, &device)
            .unwrap();
        let affine = Affine {
            weight: vec![1.0, 2.0, 3.0, 4.0],
            bias: vec![0.5, -1.0],
            in_features: 2,
            out_features: 2,
        };
        let layer = layer.with_affine(&affine).unwrap();
        let x = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 1.0], [1, 1, 2]), &device);
        let y = layer.forward_tokens(x);
        // y = W x + b = [1+2+0.5, 3+4-1].
        assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), vec![3.5, 6.0]);
        let wrong = Affine {
            in_features: 3,
            weight: vec![0.0; 6],
            ..affine
        };
        assert!(matches!(
            layer.clone().with_affine(&wrong),
            Err(Error::WeightShape { .. })
        ));
    }

    #[test]
    fn lora_starts_at_the_base_and_merges_exactly() {
        let device = Device::default();
        let config = StitchingLayerConfig::tokens(8, 6).with_lora(Some(LoraConfig::new(2)));
        let layer = config.init(Init::Kaiming { seed: 1 }, &device).unwrap();
        assert!(!layer.transform.weight.is_require_grad());
        assert_eq!(layer.num_params() as u64, config.num_params());
        let x = Tensor::<3>::random(
            [1, 4, 8],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        // B = 0 at init: the update is zero.
        let base = StitchingLayerConfig::tokens(8, 6)
            .init(Init::Kaiming { seed: 1 }, &device)
            .unwrap();
        let out = |l: &StitchingLayer| l.forward_tokens(x.clone());
        close(out(&layer), out(&base), 1e-6);
        // A trained B: merging gives the same outputs with one matrix.
        let mut trained = layer;
        trained.transform.lora_b = Some(Param::from_tensor(Tensor::random(
            [6, 2],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        )));
        let before = out(&trained);
        let merged = trained.merged();
        assert!(merged.transform.lora_a.is_none());
        close(out(&merged), before, 1e-5);
    }

    #[test]
    fn bad_configs_are_typed_errors() {
        let device = Device::default();
        let bad = StitchingLayerConfig {
            in_layout: Layout::Tokens,
            out_layout: Layout::Map,
            ..StitchingLayerConfig::tokens(4, 6)
        };
        assert!(matches!(bad.validate(), Err(Error::InvalidConfig(_))));
        let bad = StitchingLayerConfig::tokens(4, 6).with_lora(Some(LoraConfig::new(5)));
        assert!(bad.init(Init::Zeros, &device).is_err());
        assert!(StitchingLayerConfig::tokens(0, 6).validate().is_err());
    }

    #[test]
    fn kaiming_is_seeded_and_bounded() {
        let device = Device::default();
        let config = StitchingLayerConfig::tokens(16, 4);
        let a = config.init(Init::Kaiming { seed: 3 }, &device).unwrap();
        let b = config.init(Init::Kaiming { seed: 3 }, &device).unwrap();
        let c = config.init(Init::Kaiming { seed: 4 }, &device).unwrap();
        let w = |l: &StitchingLayer| {
            l.transform
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(w(&a), w(&b));
        assert_ne!(w(&a), w(&c));
        assert!(w(&a).iter().all(|v| v.abs() <= 0.25));
    }
}
