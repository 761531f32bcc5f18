//! `attention` and `window_attention`: multi-head self-attention of a fused qkv projection.

use burn::tensor::Tensor;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::{Kernels, kernels};

/// Multi-head self-attention of a fused qkv projection: `softmax(q·kᵀ/√d)·v` per head, heads
/// concatenated (timm's `Attention` between its `qkv` and `proj` layers).
///
/// On Flex in f32: q, k and v read in place from the projection's output (no permuted copies),
/// one task per (item, head), the softmax taken in one pass with a vectorised `exp`, each head
/// written straight into its columns of the output. Under autodiff (training) the same forward
/// is one tracked op that keeps the softmax probabilities, and its backward computes the gradient
/// of q, k and v per (item, head) in one task — in place of Burn's decomposition (reshape,
/// permute, three narrowed copies, the attention op), each step recorded and differentiated
/// separately. Values and gradients equal the generic path's to 1e-5.
///
/// Generic path (every backend, [`Kernels::Generic`]): q, k and v split off by reshape, permute
/// and narrow, then Burn's attention op [`burn::tensor::module::attention`] (each backend's own
/// kernel: Flex's fused CPU attention, the GPU backends' attention kernels).
///
/// # Shapes
/// `qkv`: `[B, N, 3C]`, ordered q | k | v with heads contiguous (timm), `C` a multiple of
/// `heads` → `[B, N, C]`.
pub fn attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    attention_with(kernels(), qkv, heads)
}

/// [`attention`] on the given kernels.
pub(crate) fn attention_with(kernels: Kernels, qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::attention::attention(&qkv, heads, None)
    {
        return y;
    }
    let _ = kernels;
    let [b, n, c3] = qkv.dims();
    let (c, d) = (c3 / 3, c3 / 3 / heads);
    // [B, N, 3, H, D] → [3, B, H, N, D]
    let qkv = qkv.reshape([b, n, 3, heads, d]).permute([2, 0, 3, 1, 4]);
    let take = |i: usize| qkv.clone().narrow(0, i, 1).reshape([b, heads, n, d]);
    // softmax(q kᵀ / √d) v (timm's scale).
    let options = AttentionModuleOptions::default();
    burn_attention(take(0), take(1), take(2), None, None, options)
        .swap_dims(1, 2)
        .reshape([b, n, c])
}

/// Multi-head self-attention within windows, with an additive bias per window and head:
/// `softmax(q·kᵀ/√d + bias)·v` (Swin's window attention; the bias is its relative position bias,
/// plus the shift mask of a shifted block).
///
/// On Flex in f32 at inference: as [`attention`] (one task per (window, head), q, k and v read
/// in place), the bias added in the softmax's pass. Generic path (every backend, autodiff,
/// [`Kernels::Generic`]): Burn's attention op [`burn::tensor::module::attention`] over the
/// `B × nW·heads` heads, the bias broadcast over the batch.
///
/// # Shapes
/// `qkv`: `[B, nW, N, 3C]`, ordered q | k | v with heads contiguous (timm), `C` a multiple of
/// `heads`; `bias`: `[W, heads, N, N]` with `W` = `nW` (a bias per window) or 1 (the same for
/// every window) → `[B, nW, N, C]`.
pub fn window_attention(qkv: Tensor<4>, heads: usize, bias: Tensor<4>) -> Tensor<4> {
    window_attention_with(kernels(), qkv, heads, bias)
}

/// [`window_attention`] on the given kernels.
pub(crate) fn window_attention_with(
    kernels: Kernels,
    qkv: Tensor<4>,
    heads: usize,
    bias: Tensor<4>,
) -> Tensor<4> {
    let [b, windows, n, c3] = qkv.dims();
    let (c, d) = (c3 / 3, c3 / 3 / heads);
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::attention::attention(
            &qkv.clone().reshape([b * windows, n, c3]),
            heads,
            Some(&bias),
        )
    {
        return y.reshape([b, windows, n, c]);
    }
    let _ = kernels;
    // q, k, v: [B, nW·heads, N, d].
    let qkv = qkv
        .reshape([b, windows, n, 3, heads, d])
        .permute([3, 0, 1, 4, 2, 5]);
    let take = |i: usize| {
        qkv.clone()
            .narrow(0, i, 1)
            .reshape([b, windows * heads, n, d])
    };
    let bias = bias
        .expand([windows, heads, n, n])
        .reshape([1, windows * heads, n, n]);
    let options = AttentionModuleOptions::default();
    burn_attention(take(0), take(1), take(2), None, Some(bias), options)
        .reshape([b, windows, heads, n, d])
        .permute([0, 1, 3, 2, 4])
        .reshape([b, windows, n, c])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_close, assert_paths_agree, backward, grad, leaf};

    #[test]
    fn fused_attention_equals_the_generic_path() {
        let device = Device::flex();
        device.seed(5);
        let (b, n, heads, d) = (2, 7, 3, 4);
        let c = heads * d;
        let qkv: Tensor<3> = Tensor::random([b, n, 3 * c], Distribution::Normal(0.0, 2.0), &device);
        let fast = flex::attention::attention(&qkv, heads, None).expect("the fused kernel");
        assert_close(fast, attention_with(Kernels::Generic, qkv.clone(), heads));
        assert!(flex::attention::attention(&Tensor::ones([1, 2, 7], &device), 2, None).is_none());
        // An additive bias per window and head (W = nW = 2), and one for every window (W = 1).
        let windows = qkv.clone().reshape([1, b, n, 3 * c]);
        let one: Tensor<4> =
            Tensor::random([1, heads, n, n], Distribution::Normal(0.0, 1.0), &device);
        for bias in [Tensor::cat(vec![one.clone(), one.clone() * 5.0], 0), one] {
            let fast = flex::attention::attention(&qkv, heads, Some(&bias)).expect("fused");
            let slow = window_attention_with(Kernels::Generic, windows.clone(), heads, bias);
            assert_close(fast.reshape([1, b, n, c]), slow);
        }
        let wrong: Tensor<4> = Tensor::zeros([1, heads, n + 1, n + 1], &device);
        assert!(flex::attention::attention(&qkv, heads, Some(&wrong)).is_none());
    }

    /// Under autodiff the fused attention op's output and its gradient with respect to qkv
    /// equal the generic path's (reshape, permute, narrow, Burn's attention op), for a
    /// contiguous input and a transposed view; without a tracked input it is the forward.
    #[test]
    fn fused_attention_gradient_equals_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(6);
        let (b, n, heads, d) = (3, 9, 2, 5);
        let c = heads * d;
        let contiguous: Tensor<3> =
            Tensor::random([b, n, 3 * c], Distribution::Normal(0.0, 2.0), &device);
        let transposed: Tensor<3> =
            Tensor::random([b, 3 * c, n], Distribution::Normal(0.0, 2.0), &device);
        for (x0, view) in [
            (contiguous.clone(), None),
            (transposed, Some(|t: Tensor<3>| t.swap_dims(1, 2))),
        ] {
            let run = |kernels| {
                let x = leaf(&x0);
                let input = view.map_or(x.clone(), |f| f(x.clone()));
                let out = attention_with(kernels, input, heads);
                let grads = backward(&out);
                (out, grad(&x, &grads))
            };
            let input = view.map_or(leaf(&x0), |f| f(leaf(&x0)));
            assert!(flex::attention::attention(&input, heads, None).is_some());
            let (fused, generic) = (run(Kernels::Fused), run(Kernels::Generic));
            assert_eq!(fused.1.dims(), x0.dims());
            assert_close(fused.0, generic.0);
            assert_close(fused.1, generic.1);
        }
        // Untracked autodiff input: the same forward.
        let untracked = flex::attention::attention(&contiguous, heads, None).expect("fused");
        assert_close(
            untracked,
            attention_with(Kernels::Generic, contiguous, heads),
        );
    }

    /// Under autodiff window attention runs the generic path whatever the kernels: the output
    /// and the gradients of qkv and the bias equal the generic path's.
    #[test]
    fn window_attention_gradients_equal_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(7);
        let (b, windows, n, heads, d) = (2, 3, 5, 2, 4);
        let c = heads * d;
        let qkv0: Tensor<4> = Tensor::random(
            [b, windows, n, 3 * c],
            Distribution::Normal(0.0, 2.0),
            &device,
        );
        for w in [windows, 1] {
            let bias0: Tensor<4> =
                Tensor::random([w, heads, n, n], Distribution::Normal(0.0, 1.0), &device);
            let run = |kernels| {
                let (qkv, bias) = (leaf(&qkv0), leaf(&bias0));
                let out = window_attention_with(kernels, qkv.clone(), heads, bias.clone());
                let grads = backward(&out);
                [out, grad(&qkv, &grads), grad(&bias, &grads)]
            };
            assert_paths_agree(run);
        }
    }
}
