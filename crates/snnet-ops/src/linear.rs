//! `linear`: a linear layer with its epilogue (bias, GELU, residual) fused into the product.

use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::{Kernels, activation, kernels};

/// What is applied to a linear layer's output before the residual is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing: `x·W + b`.
    None,
    /// Exact GELU: `gelu(x·W + b)` (see [`crate::gelu`]).
    Gelu,
}

/// `residual + epilogue(layer(x))` — the layer's bias, the epilogue and the residual fused into
/// the product where the fused kernels run.
///
/// On Flex in f32 at inference: **one multi-threaded GEMM over all rows** (faer's f32 kernels,
/// runtime AVX2/AVX-512 dispatch), the output starting as the bias — plus the residual when the
/// epilogue is [`Epilogue::None`] — so that the product accumulates onto it, then GELU in
/// parallel chunks with a vectorised erf (Abramowitz & Stegun 7.1.26, the approximation
/// PyTorch's vectorised CPU `erf` uses: ≤ 6e-7 measured in f32) and the residual after it. Burn's
/// Flex path zero-fills the output, splits batched products into one single-threaded GEMM per
/// item and adds the bias and the residual in separate passes (docs/PERFORMANCE.md measures
/// both).
///
/// Generic path (every backend, autodiff, [`Kernels::Generic`]): [`linear_rows`] with the
/// layer's weight and bias (Burn's product on the rows flattened), then [`crate::gelu`] for
/// [`Epilogue::Gelu`], then `residual + y`.
///
/// # Shapes
/// `x`: `[..., C_in]`; `residual`: the output's shape `[..., C_out]` → `[..., C_out]`. The
/// layer's weight is `[C_in, C_out]` (Burn's layout); a mismatch is the caller's bug, rejected by
/// Burn's ops as [`Linear::forward`] rejects it.
pub fn linear<const D: usize>(
    x: Tensor<D>,
    layer: &Linear,
    epilogue: Epilogue,
    residual: Option<Tensor<D>>,
) -> Tensor<D> {
    linear_with(kernels(), x, layer, epilogue, residual)
}

/// [`linear`] on the given kernels.
pub(crate) fn linear_with<const D: usize>(
    kernels: Kernels,
    x: Tensor<D>,
    layer: &Linear,
    epilogue: Epilogue,
    residual: Option<Tensor<D>>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::linear::linear(&x, layer, epilogue, residual.as_ref())
    {
        return y;
    }
    let y = forward_rows(layer, x);
    let y = match epilogue {
        Epilogue::None => y,
        Epilogue::Gelu => activation::gelu_with(kernels, y),
    };
    match residual {
        Some(r) => r + y,
        None => y,
    }
}

/// `layer(x)` as one product over all rows ([`linear_rows`] with the layer's weight and bias).
fn forward_rows<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear_rows(x, layer.weight.val(), layer.bias.as_ref().map(|b| b.val()))
}

/// `x·W + b` over the last dimension as **one product over all rows**: `x` flattened to
/// `[rows, C_in]`, then the output reshaped back — on every backend, under autodiff too.
///
/// Burn's [`burn::tensor::module::linear`] keeps a `[B, N, C]` input batched when its `N` rows
/// are few and the merged output would be less square (its tiling policy,
/// `MatmulTransformPolicy`), so a ViT's 50-token items become one small product per image, in
/// the forward and, through autodiff, in the backward (`dx = g·Wᵀ` goes through the same
/// policy). Flattened, every output is the same dot product, computed in one product:
/// docs/PERFORMANCE.md measures the training step.
///
/// # Shapes
/// `x`: `[..., C_in]`, `weight`: `[C_in, C_out]`, `bias`: `[C_out]` → `[..., C_out]`.
pub fn linear_rows<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    if D <= 2 {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let x: Tensor<2> = x.reshape([rows, dims[D - 1]]);
    let y = burn::tensor::module::linear(x, weight, bias);
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_close, backward, grad, leaf};

    #[test]
    fn fused_linear_equals_the_generic_path_and_is_taken_only_at_inference() {
        let device = Device::flex();
        device.seed(3);
        // A small output and one of 1.3 M elements (several parallel chunks of rows).
        for (bias, [b, n, k]) in [
            (true, [3, 5, 24]),
            (false, [3, 5, 24]),
            (true, [2, 16_400, 8]),
            (false, [2, 16_400, 8]),
        ] {
            let layer = LinearConfig::new(k, 40).with_bias(bias).init(&device);
            let x: Tensor<3> = Tensor::random([b, n, k], Distribution::Normal(0.0, 2.0), &device);
            let r: Tensor<3> = Tensor::random([b, n, 40], Distribution::Normal(0.0, 1.0), &device);
            for e in [Epilogue::None, Epilogue::Gelu] {
                for res in [None, Some(r.clone())] {
                    let fast = flex::linear::linear(&x, &layer, e, res.as_ref())
                        .expect("the fused kernel on Flex");
                    let slow = linear_with(Kernels::Generic, x.clone(), &layer, e, res);
                    assert_close(fast, slow);
                }
            }
            // A non-contiguous input (a transposed view) gives the same.
            let xt: Tensor<3> = x.clone().swap_dims(0, 1);
            let fast = flex::linear::linear(&xt, &layer, Epilogue::Gelu, None).expect("fused");
            let slow = linear_with(Kernels::Generic, xt, &layer, Epilogue::Gelu, None);
            assert_close(fast, slow);
        }
        // Under autodiff the generic path runs (gradients must flow).
        let ad = device.autodiff();
        let layer = LinearConfig::new(4, 6).init(&ad);
        let x: Tensor<3> = Tensor::ones([1, 2, 4], &ad);
        assert!(flex::linear::linear(&x, &layer, Epilogue::None, None).is_none());
    }

    /// Under autodiff, every epilogue with and without a residual: the output and the gradients
    /// of the input, the residual, the weight and the bias equal the generic path's.
    #[test]
    fn linear_gradients_equal_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(4);
        let layer = LinearConfig::new(12, 9).init(&device);
        let x0: Tensor<3> = Tensor::random([2, 5, 12], Distribution::Normal(0.0, 2.0), &device);
        let r0: Tensor<3> = Tensor::random([2, 5, 9], Distribution::Normal(0.0, 1.0), &device);
        for e in [Epilogue::None, Epilogue::Gelu] {
            for with_residual in [false, true] {
                let run = |kernels| {
                    let (x, r) = (leaf(&x0), leaf(&r0));
                    let res = with_residual.then(|| r.clone());
                    let out = linear_with(kernels, x.clone(), &layer, e, res);
                    let grads = backward(&out);
                    let bias = layer.bias.as_ref().map(|b| grad(&b.val(), &grads));
                    let r = with_residual.then(|| grad(&r, &grads));
                    let w = grad(&layer.weight.val(), &grads);
                    (out, grad(&x, &grads), w, bias, r)
                };
                let (fused, generic) = (run(Kernels::Fused), run(Kernels::Generic));
                assert_close(fused.0, generic.0);
                assert_close(fused.1, generic.1);
                assert_close(fused.2, generic.2);
                assert_close(fused.3.expect("bias"), generic.3.expect("bias"));
                if let (Some(a), Some(b)) = (fused.4, generic.4) {
                    assert_close(a, b);
                }
            }
        }
    }
}
