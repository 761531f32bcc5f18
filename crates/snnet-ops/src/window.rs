//! Swin's windows: the shifted-window partition and its inverse plus the shortcut, one pass each
//! on Flex.

use burn::tensor::Tensor;

use crate::{Kernels, kernels};

/// Swin's windows: a `grid` of tokens, cyclically shifted by `-shift`, cut into `window`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Tokens per column and per row, `[H, W]`.
    pub grid: [usize; 2],
    /// Window size `[wh, ww]`; both divide the grid.
    pub window: [usize; 2],
    /// The cyclic shift `[sh, sw]` (`[0, 0]` for a block without one).
    pub shift: [usize; 2],
}

impl Windows {
    /// Windows per image, `nW`.
    pub fn count(&self) -> usize {
        (self.grid[0] / self.window[0]) * (self.grid[1] / self.window[1])
    }

    /// Tokens per window, `N`.
    pub fn size(&self) -> usize {
        self.window[0] * self.window[1]
    }

    /// Whether the windows tile the grid (every size non-zero, each window side a divisor).
    #[cfg(feature = "flex")]
    pub(crate) fn tile(&self) -> bool {
        let [h, w] = self.grid;
        let [wh, ww] = self.window;
        wh > 0 && ww > 0 && h > 0 && w > 0 && h % wh == 0 && w % ww == 0
    }

    /// The grid row (within one image, row-major `h·W + w`) that feeds token `pos` of window
    /// `index` — after the roll by `-shift`, `out[i] = in[(i + shift) mod size]` per axis.
    #[cfg(feature = "flex")]
    pub(crate) fn source(&self, index: usize, pos: usize) -> usize {
        let ([h, w], [wh, ww], [sh, sw]) = (self.grid, self.window, self.shift);
        let nw = w / ww;
        let (row, col) = ((index / nw) * wh + pos / ww, (index % nw) * ww + pos % ww);
        ((row + sh) % h) * w + (col + sw) % w
    }

    /// The window row (within one image, `index·N + pos`) that grid row `cell` comes from:
    /// the inverse of [`Windows::source`].
    #[cfg(feature = "flex")]
    pub(crate) fn target(&self, cell: usize) -> usize {
        let ([h, w], [wh, ww], [sh, sw]) = (self.grid, self.window, self.shift);
        let (row, col) = (((cell / w) + h - sh % h) % h, ((cell % w) + w - sw % w) % w);
        ((row / wh) * (w / ww) + col / ww) * (wh * ww) + (row % wh) * ww + col % ww
    }
}

/// Swin's window partition: `x` rolled by `-shift` over the grid, cut into windows, window-major
/// in timm's order.
///
/// On Flex in f32 at inference: one gather pass, each output row copied from where its source
/// lies (Burn's ops copy for the roll and again for the permute); bit-identical to the generic
/// path. Generic path (every backend, autodiff, [`Kernels::Generic`]): Burn's reshape, roll and
/// permute.
///
/// # Shapes
/// `x`: `[B, H·W, C]` → `[B, nW, N, C]`, the windows tiling the grid (each window side divides
/// the grid's).
pub fn window_partition(x: Tensor<3>, windows: Windows) -> Tensor<4> {
    window_partition_with(kernels(), x, windows)
}

/// [`window_partition`] on the given kernels.
pub(crate) fn window_partition_with(kernels: Kernels, x: Tensor<3>, windows: Windows) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(y) = crate::flex::window::window_partition(&x, windows)
    {
        return y;
    }
    let _ = kernels;
    partition_generic(x, windows)
}

/// The generic path of [`window_partition`]: Burn's reshape, roll and permute.
fn partition_generic(x: Tensor<3>, windows: Windows) -> Tensor<4> {
    let [b, _, c] = x.dims();
    let ([h, w], [wh, ww], [sh, sw]) = (windows.grid, windows.window, windows.shift);
    let y = x.reshape([b, h, w, c]);
    let y = if sh > 0 || sw > 0 {
        y.roll(&[-(sh as i64), -(sw as i64)], &[1, 2])
    } else {
        y
    };
    y.reshape([b, h / wh, wh, w / ww, ww, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, windows.count(), windows.size(), c])
}

/// The inverse of [`window_partition`] added to `residual`: `residual + roll(merge(y), shift)`.
///
/// On Flex in f32 at inference: one pass (Burn's ops copy for the permute, again for the roll,
/// and allocate the sum); bit-identical to the generic path. Generic path (every backend,
/// autodiff, [`Kernels::Generic`]): Burn's reshape, permute, roll and add.
///
/// # Shapes
/// `y`: `[B, nW, N, C]`, `residual`: `[B, H·W, C]` → `[B, H·W, C]`.
pub fn window_merge_add(y: Tensor<4>, residual: Tensor<3>, windows: Windows) -> Tensor<3> {
    window_merge_add_with(kernels(), y, residual, windows)
}

/// [`window_merge_add`] on the given kernels.
pub(crate) fn window_merge_add_with(
    kernels: Kernels,
    y: Tensor<4>,
    residual: Tensor<3>,
    windows: Windows,
) -> Tensor<3> {
    #[cfg(feature = "flex")]
    if kernels == Kernels::Fused
        && let Some(out) = crate::flex::window::window_merge_add(&y, &residual, windows)
    {
        return out;
    }
    let _ = kernels;
    merge_add_generic(y, residual, windows)
}

/// The generic path of [`window_merge_add`]: Burn's reshape, permute, roll and add.
fn merge_add_generic(y: Tensor<4>, residual: Tensor<3>, windows: Windows) -> Tensor<3> {
    let [b, l, c] = residual.dims();
    let ([h, w], [wh, ww], [sh, sw]) = (windows.grid, windows.window, windows.shift);
    let y = y
        .reshape([b, h / wh, w / ww, wh, ww, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, h, w, c]);
    let y = if sh > 0 || sw > 0 {
        y.roll(&[sh as i64, sw as i64], &[1, 2])
    } else {
        y
    };
    residual + y.reshape([b, l, c])
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::flex;
    use crate::testing::{assert_paths_agree, backward, grad, leaf};

    #[test]
    fn fused_partition_and_merge_equal_the_generic_path_exactly() {
        let device = Device::flex();
        device.seed(5);
        for shift in [[0, 0], [2, 2], [3, 1]] {
            let windows = Windows {
                grid: [8, 12],
                window: [4, 4],
                shift,
            };
            let x: Tensor<3> = Tensor::random([2, 96, 5], Distribution::Normal(0.0, 1.0), &device);
            let fast = flex::window::window_partition(&x, windows).expect("the fused kernel");
            let slow = window_partition_with(Kernels::Generic, x.clone(), windows);
            assert_eq!(fast.dims(), [2, 6, 16, 5]);
            assert_eq!(fast.to_data(), slow.to_data(), "partition, shift {shift:?}");
            // The merge inverts the partition: residual + merge(partition(x)) = residual + x.
            let r: Tensor<3> = Tensor::random([2, 96, 5], Distribution::Normal(0.0, 1.0), &device);
            let y: Tensor<4> =
                Tensor::random([2, 6, 16, 5], Distribution::Normal(0.0, 1.0), &device);
            let fast = flex::window::window_merge_add(&y, &r, windows).expect("the fused kernel");
            let slow = window_merge_add_with(Kernels::Generic, y, r.clone(), windows);
            assert_eq!(fast.to_data(), slow.to_data(), "merge, shift {shift:?}");
            let parts = window_partition_with(Kernels::Fused, x.clone(), windows);
            let back = window_merge_add_with(Kernels::Fused, parts, r.clone(), windows);
            assert_eq!(back.to_data(), (r + x).to_data());
        }
        // Windows that do not tile the grid, or a wrong token count: the generic path.
        let x: Tensor<3> = Tensor::zeros([1, 96, 5], &device);
        let odd = |grid, window| Windows {
            grid,
            window,
            shift: [0, 0],
        };
        assert!(flex::window::window_partition(&x, odd([8, 12], [5, 4])).is_none());
        assert!(flex::window::window_partition(&x, odd([8, 8], [4, 4])).is_none());
        // Under autodiff too (gradients must flow through Burn's ops).
        let ad: Tensor<3> = Tensor::zeros([1, 96, 5], &device.autodiff());
        assert!(flex::window::window_partition(&ad, odd([8, 12], [4, 4])).is_none());
    }

    /// Under autodiff the window ops run the generic path whatever the kernels: the outputs and
    /// the gradients of every input equal the generic path's.
    #[test]
    fn window_gradients_equal_the_generic_path() {
        let device = Device::flex().autodiff();
        device.seed(14);
        let windows = Windows {
            grid: [4, 6],
            window: [2, 3],
            shift: [1, 2],
        };
        let x0: Tensor<3> = Tensor::random([2, 24, 3], Distribution::Normal(0.0, 1.0), &device);
        let r0: Tensor<3> = Tensor::random([2, 24, 3], Distribution::Normal(0.0, 1.0), &device);
        let run = |kernels| {
            let (x, r) = (leaf(&x0), leaf(&r0));
            let parts = window_partition_with(kernels, x.clone(), windows);
            let scaled = parts.clone() * parts;
            let out = window_merge_add_with(kernels, scaled, r.clone(), windows);
            let grads = backward(&out);
            [out, grad(&x, &grads), grad(&r, &grads)]
        };
        assert_paths_agree(run);
    }
}
