//! `conv_bn`: ResNet's unit — convolution, batch norm, residual, ReLU — in one pass on Flex.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use crate::{Kernels, kernels};

/// `bn(conv(x))`, then `+ residual` when given, then ReLU when `relu_after` — at inference.
///
/// On Flex in f32 at inference: the convolution as one multi-threaded GEMM per image (faer) — a
/// 1×1 stride-1 unpadded convolution reads the image in place (`[C_in, H·W]` is already the
/// GEMM's right operand), any other lays out its patches first (im2col, in parallel) — and the
/// batch norm's affine map from its running statistics
/// `x·γ/√(σ²+ε) + (β − μ·γ/√(σ²+ε))`, the residual and the ReLU in one pass over the output.
/// Burn's Flex path runs the convolution, the batch norm, the add and the ReLU as four passes
/// with an output each (docs/PERFORMANCE.md measures both). Grouped convolutions and `Same`
/// padding take the generic path.
///
/// Generic path (every backend, autodiff, [`Kernels::Generic`]): [`Conv2d::forward`],
/// [`BatchNorm::forward`] (running statistics outside autodiff, batch statistics under it, as
/// Burn's module decides), the add and [`relu`].
///
/// # Shapes
/// `x`: `[B, C_in, H, W]`; `residual`: the output's shape `[B, C_out, H_out, W_out]`.
pub fn conv_bn(
    x: Tensor<4>,
    conv: &Conv2d,
    bn: &BatchNorm,
    residual: Option<Tensor<4>>,
    relu_after: bool,
) -> Tensor<4> {
    conv_bn_with(kernels(), x, conv, bn, residual, relu_after)
}

/// [`conv_bn`] on the given kernels.
pub(crate) fn conv_bn_with(
    kernels: Kernels,
    x: Tensor<4>,
    conv: &Conv2d,
    bn: &BatchNorm,
    residual: Option<Tensor<4>>,
    relu_after: bool,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::conv::conv_bn(&x, conv, bn, residual.as_ref(), relu_after)
    {
        return y;
    }
    let _ = kernels;
    let y = bn.forward(conv.forward(x));
    let y = match residual {
        Some(r) => y + r,
        None => y,
    };
    if relu_after { relu(y) } else { y }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_close, backward, grad, leaf};

    /// A batch norm of `channels` with random statistics and affine parameters.
    fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
        let normal =
            |mean: f64| Tensor::<1>::random([channels], Distribution::Normal(mean, 1.0), device);
        let mut bn = BatchNormConfig::new(channels)
            .with_epsilon(1e-5)
            .init(device);
        bn.gamma = Param::from_tensor(normal(1.0));
        bn.beta = Param::from_tensor(normal(0.0));
        bn.running_mean = RunningState::new(normal(0.0));
        bn.running_var = RunningState::new(normal(0.0).abs() + 0.1);
        bn
    }

    #[test]
    fn fused_conv_bn_equals_the_generic_path() {
        let device = Device::flex();
        device.seed(11);
        // (kernel, stride, padding, dilation, conv bias): 1×1 in place, strided 1×1 (the
        // projection shortcut), 3×3 padded, the 7×7/2 stem, dilated, unpadded with a bias,
        // and padding wider than a kernel tap's reach (whole padded rows and columns).
        let cases = [
            (1, 1, 0, 1, false),
            (1, 1, 2, 1, true),
            (3, 3, 4, 2, false),
            (5, 2, 6, 1, false),
            (1, 2, 0, 1, false),
            (3, 1, 1, 1, false),
            (3, 2, 1, 1, false),
            (7, 2, 3, 1, false),
            (3, 1, 2, 2, false),
            (3, 2, 0, 1, true),
        ];
        for (kernel, stride, pad, dilation, bias) in cases {
            let (cin, cout) = (5, 6);
            let conv = Conv2dConfig::new([cin, cout], [kernel, kernel])
                .with_stride([stride, stride])
                .with_dilation([dilation, dilation])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(bias)
                .init(&device);
            let bn = batch_norm(cout, &device);
            // One image (patches in parallel, one parallel product) and one per thread (one
            // image per task), whatever the machine's thread count.
            for batch in [1, rayon::current_num_threads().max(2)] {
                let x: Tensor<4> =
                    Tensor::random([batch, cin, 11, 9], Distribution::Normal(0.0, 1.0), &device);
                let dims = conv.forward(x.clone()).dims();
                let r: Tensor<4> = Tensor::random(dims, Distribution::Normal(0.0, 1.0), &device);
                for (res, relu_after) in [(None, false), (None, true), (Some(r), true)] {
                    let fast = flex::conv::conv_bn(&x, &conv, &bn, res.as_ref(), relu_after)
                        .expect("the fused kernel on Flex");
                    let slow =
                        conv_bn_with(Kernels::Generic, x.clone(), &conv, &bn, res, relu_after);
                    assert_close(fast, slow);
                }
            }
        }
        // Same padding and grouped convolutions are left to the generic path.
        let same = Conv2dConfig::new([2, 2], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(&device);
        let bn = BatchNormConfig::new(2).init(&device);
        let x: Tensor<4> = Tensor::ones([1, 2, 5, 5], &device);
        assert!(flex::conv::conv_bn(&x, &same, &bn, None, true).is_none());
        let grouped = Conv2dConfig::new([2, 2], [1, 1])
            .with_groups(2)
            .init(&device);
        assert!(flex::conv::conv_bn(&x, &grouped, &bn, None, true).is_none());
        // Under autodiff the generic path runs (gradients and batch statistics).
        let ad = device.autodiff();
        let conv = Conv2dConfig::new([2, 2], [1, 1]).init(&ad);
        let bn = BatchNormConfig::new(2).init(&ad);
        let x = Tensor::ones([1, 2, 3, 3], &ad);
        assert!(flex::conv::conv_bn(&x, &conv, &bn, None, true).is_none());
    }

    /// Under autodiff `conv_bn` runs the generic path whatever the kernels: the output and the
    /// gradients of the input, the residual and the parameters equal the generic path's.
    #[test]
    fn conv_bn_gradients_equal_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(12);
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let bn = batch_norm(4, &device);
        let x0: Tensor<4> = Tensor::random([2, 3, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        let r0: Tensor<4> = Tensor::random([2, 4, 6, 5], Distribution::Normal(0.0, 1.0), &device);
        let run = |kernels| {
            let (x, r) = (leaf(&x0), leaf(&r0));
            let out = conv_bn_with(kernels, x.clone(), &conv, &bn, Some(r.clone()), true);
            let grads = backward(&out);
            let params = [grad(&bn.gamma.val(), &grads), grad(&bn.beta.val(), &grads)];
            (
                out,
                grad(&x, &grads),
                grad(&r, &grads),
                grad(&conv.weight.val(), &grads),
                params,
            )
        };
        let (fused, generic) = (run(Kernels::Fused), run(Kernels::Generic));
        assert_close(fused.0, generic.0);
        assert_close(fused.1, generic.1);
        assert_close(fused.2, generic.2);
        assert_close(fused.3, generic.3);
        for (a, b) in fused.4.into_iter().zip(generic.4) {
            assert_close(a, b);
        }
    }
}
