//! `max_pool2d`: 2-D max pooling, one pass straight into the output on Flex.

use burn::tensor::Tensor;
use burn::tensor::ops::MaxPoolOptions;

use crate::{Kernels, kernels};

/// 2-D max pooling, `kernel`, `stride` and `padding` per axis (no dilation, floor mode; the
/// padding counts as −∞), as [`burn::tensor::module::max_pool2d`] computes it.
///
/// On Flex in f32 at inference: one parallel pass straight into the output, each window's
/// maximum read from the input in place (NaN propagating, as in PyTorch); Flex's own pooling runs
/// the general (with-indices) kernel and zero-fills its output first. Generic path (every
/// backend, autodiff, [`Kernels::Generic`]): [`burn::tensor::module::max_pool2d`].
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, (H + 2·pad − k)/stride + 1, (W + 2·pad − k)/stride + 1]`.
pub fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    max_pool2d_with(kernels(), x, kernel, stride, padding)
}

/// [`max_pool2d`] on the given kernels.
pub(crate) fn max_pool2d_with(
    kernels: Kernels,
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::pool::max_pool2d(&x, kernel, stride, padding)
    {
        return y;
    }
    let _ = kernels;
    let options = MaxPoolOptions::new(kernel)
        .with_stride(stride)
        .with_padding(padding);
    burn::tensor::module::max_pool2d(x, options)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_close, backward, grad, leaf};

    #[test]
    fn fused_max_pool_equals_the_generic_path_exactly() {
        let device = Device::flex();
        device.seed(11);
        // (kernel, stride, padding): ResNet's stem pool, unpadded, uneven, non-square.
        // The last two: chunks wider than the column buffer (window by window).
        let cases = [
            ([3, 3], [2, 2], [1, 1], 9),
            ([2, 2], [2, 2], [0, 0], 9),
            ([3, 2], [1, 3], [1, 1], 9),
            ([5, 5], [3, 3], [2, 2], 9),
            ([3, 3], [2, 2], [1, 1], 512),
            ([9, 9], [9, 9], [0, 0], 144),
        ];
        for (kernel, stride, padding, width) in cases {
            let x: Tensor<4> =
                Tensor::random([2, 3, 11, width], Distribution::Normal(0.0, 1.0), &device);
            let fast = flex::pool::max_pool2d(&x, kernel, stride, padding).expect("fused");
            let slow = max_pool2d_with(Kernels::Generic, x, kernel, stride, padding);
            assert_eq!(fast.dims(), slow.dims());
            fast.into_data().assert_eq(&slow.into_data(), true);
        }
        let x: Tensor<4> = Tensor::zeros([1, 1, 4, 4], &device);
        let none = |k, p| flex::pool::max_pool2d(&x, k, [1, 1], p).is_none();
        assert!(none([3, 3], [3, 3]), "padding ≥ kernel");
        assert!(none([5, 5], [0, 0]), "kernel > input");
        let ad: Tensor<4> = Tensor::zeros([1, 1, 4, 4], &device.autodiff());
        assert!(
            flex::pool::max_pool2d(&ad, [2, 2], [2, 2], [0, 0]).is_none(),
            "autodiff"
        );
    }

    /// Under autodiff max pooling runs the generic path whatever the kernels: the output and
    /// the input's gradient equal the generic path's.
    #[test]
    fn max_pool_gradient_equals_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(13);
        let x0: Tensor<4> = Tensor::random([2, 3, 9, 7], Distribution::Normal(0.0, 1.0), &device);
        let run = |kernels| {
            let x = leaf(&x0);
            let out = max_pool2d_with(kernels, x.clone(), [3, 3], [2, 2], [1, 1]);
            let grads = backward(&out);
            (out, grad(&x, &grads))
        };
        let (fused, generic) = (run(Kernels::Fused), run(Kernels::Generic));
        assert_close(fused.0, generic.0);
        assert_close(fused.1, generic.1);
    }
}
