//! `gelu`: the exact GELU, with a fused backward pass on Flex.

use burn::tensor::Tensor;

use crate::{Kernels, kernels};

/// Exact GELU, `0.5·x·(1 + erf(x/√2))` (timm's `nn.GELU()`).
///
/// Under autodiff on Flex in f32 (training): one tracked op, vectorised and parallel, whose
/// backward is one pass (`gelu'(x) = Φ(x) + x·φ(x)`) — Burn's Flex GELU and its backward run
/// `erf` element by element on one thread. Its erf is Abramowitz & Stegun 7.1.26 (≤ 6e-7 in
/// f32), so values and gradients equal Burn's to 1e-5.
///
/// Generic path (every backend, Flex at inference, [`Kernels::Generic`]):
/// [`burn::tensor::activation::gelu`]. At inference on Flex the GELU of a linear layer is fused
/// into the product instead ([`crate::linear`] with [`crate::Epilogue::Gelu`]).
///
/// # Shapes
/// Any; the output has the input's shape.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    gelu_with(kernels(), x)
}

/// [`gelu`] on the given kernels.
pub(crate) fn gelu_with<const D: usize>(kernels: Kernels, x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::activation::gelu_autodiff(&x)
    {
        return y;
    }
    #[cfg(not(feature = "flex"))]
    let _ = kernels;
    burn::tensor::activation::gelu(x)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_close, backward, grad, leaf};

    /// Under autodiff the fused GELU's output and gradient equal Burn's `gelu` (Flex's exact-erf
    /// forward and backward), including a transposed view and large |x|.
    #[test]
    fn fused_gelu_gradient_equals_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(8);
        let x0: Tensor<3> = Tensor::random([4, 33, 7], Distribution::Normal(0.0, 3.0), &device);
        let x0 = Tensor::cat(vec![x0, Tensor::full([4, 1, 7], -12.0, &device)], 1);
        let run = |kernels| {
            let x = leaf(&x0);
            let input = x.clone().swap_dims(1, 2);
            let out = gelu_with(kernels, input);
            let grads = backward(&out);
            (out, grad(&x, &grads))
        };
        // The fused op is the one taken under autodiff.
        assert!(flex::activation::gelu_autodiff(&leaf(&x0)).is_some());
        let (fused, generic) = (run(Kernels::Fused), run(Kernels::Generic));
        assert_close(fused.0, generic.0);
        assert_close(fused.1, generic.1);
        // Outside autodiff the generic path runs (inference fuses GELU into `linear`).
        let plain: Tensor<2> = Tensor::ones([2, 2], &Device::flex());
        assert!(flex::activation::gelu_autodiff(&plain).is_none());
        assert_close(
            gelu_with(Kernels::Fused, plain.clone()),
            gelu_with(Kernels::Generic, plain),
        );
    }
}
