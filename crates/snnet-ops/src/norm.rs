//! `layer_norm`: LayerNorm over the last axis, with a fused backward pass on Flex.

use burn::nn::LayerNorm;
use burn::tensor::Tensor;

use crate::{Kernels, kernels};

/// `norm(x)`: LayerNorm over the last axis with `epsilon` — the one `norm` was built with (Burn
/// keeps a [`LayerNorm`]'s epsilon private, so the caller passes it).
///
/// Under autodiff on Flex in f32 with a bias (training): one tracked op over rows whose backward
/// is one pass too; Burn's autodiff records its decomposition (two means, a subtraction, a
/// product, a square root, a division, the scale and the shift) and differentiates each. Values
/// and gradients equal Burn's to 1e-5.
///
/// Generic path (every backend, inference — Flex's inference layer norm is already one fused
/// pass —, no bias, [`Kernels::Generic`]): [`LayerNorm::forward`], Burn's
/// [`burn::tensor::module::layer_norm`] op.
///
/// # Shapes
/// `[..., C]` → `[..., C]`, `C` the norm's `d_model`.
pub fn layer_norm<const D: usize>(norm: &LayerNorm, epsilon: f64, x: Tensor<D>) -> Tensor<D> {
    layer_norm_with(kernels(), norm, epsilon, x)
}

/// [`layer_norm`] on the given kernels.
pub(crate) fn layer_norm_with<const D: usize>(
    kernels: Kernels,
    norm: &LayerNorm,
    epsilon: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::norm::layer_norm_autodiff(norm, epsilon, &x)
    {
        return y;
    }
    let _ = (kernels, epsilon);
    norm.forward(x)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_close, backward, grad, leaf};

    /// Under autodiff the fused LayerNorm's output and gradients (input, scale, shift) equal
    /// Burn's `LayerNorm`, for a transposed input view; without a bias Burn's op runs.
    #[test]
    fn fused_layer_norm_gradients_equal_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(9);
        let c = 11;
        let mut norm = LayerNormConfig::new(c).with_epsilon(1e-6).init(&device);
        norm.gamma =
            Param::from_tensor(Tensor::random([c], Distribution::Normal(1.0, 0.5), &device));
        norm.beta = Some(Param::from_tensor(Tensor::random(
            [c],
            Distribution::Normal(0.0, 0.5),
            &device,
        )));
        let x0: Tensor<3> = Tensor::random([3, c, 37], Distribution::Normal(0.5, 2.0), &device);
        let run = |kernels| {
            let x = leaf(&x0);
            let out = layer_norm_with(kernels, &norm, 1e-6, x.clone().swap_dims(1, 2));
            let grads = backward(&out);
            let beta = norm.beta.as_ref().map(|b| grad(&b.val(), &grads));
            let gamma = grad(&norm.gamma.val(), &grads);
            (
                out,
                grad(&x, &grads),
                gamma,
                beta.expect("a shift gradient"),
            )
        };
        let rows = x0.clone().swap_dims(1, 2);
        assert!(flex::norm::layer_norm_autodiff(&norm, 1e-6, &rows).is_some());
        let (fused, generic) = (run(Kernels::Fused), run(Kernels::Generic));
        assert_close(fused.0, generic.0);
        assert_close(fused.1, generic.1);
        assert_close(fused.2, generic.2);
        assert_close(fused.3, generic.3);
        let mut no_bias = norm.clone();
        no_bias.beta = None;
        assert!(flex::norm::layer_norm_autodiff(&no_bias, 1e-6, &rows).is_none());
        // At inference Burn's (already fused) op runs.
        let x = Tensor::<2>::ones([2, c], &Device::flex());
        let norm = LayerNormConfig::new(c).init(&Device::flex());
        assert!(flex::norm::layer_norm_autodiff(&norm, 1e-5, &x).is_none());
    }
}
