//! Inference fast paths on Burn's Flex backend (the default CPU device).
//!
//! A linear layer runs as **one multi-threaded GEMM over all rows** (faer's f32 kernels, runtime
//! AVX2/AVX-512 dispatch) with the bias — and, where the caller has one, the residual — written
//! into the output before the product accumulates onto it, and GELU applied to the result in
//! parallel chunks with a vectorisable erf (Abramowitz & Stegun 7.1.26, the approximation
//! PyTorch's vectorised CPU `erf` uses: |error| ≤ 1.5e-7 in exact arithmetic, ≤ 6e-7 measured in
//! f32 — GELU's output then differs from the exact one by at most 3e-7·|x|). Burn's Flex path instead zero-fills
//! the output, splits batched products into one single-threaded GEMM per item, adds the bias and
//! the residual in separate passes and applies GELU element by element on one thread
//! (docs/PERFORMANCE.md measures both). Swin's shifted-window partition and its inverse plus the
//! shortcut are one pass each ([`window_partition`], [`window_merge_add`]) where Burn's path copies
//! for the roll, again for the permute, and allocates the sum.
//!
//! The fast path is taken when every input lives on Flex, in f32, outside autodiff — that is, at
//! inference. Under autodiff on Flex in f32 (training) three ops take it too, as **tracked ops
//! with a backward pass of their own**: attention without a bias (ViT; the forward above, the
//! softmax probabilities kept, the gradient of q, k and v computed per (item, head) in one task),
//! the exact GELU (vectorised, its derivative in one pass) and ViT's LayerNorm with a bias (one
//! pass over rows each way) — in place of Burn's decomposition, whose
//! every reshape, permute, copy, product and softmax step is recorded and differentiated
//! separately. Their outputs and gradients equal Burn's to 1e-5 (tests below). Everything else
//! (the other training ops, Swin's biased attention under autodiff, wgpu, LibTorch, NdArray,
//! f16, a checkpointing strategy) runs Burn's own ops, unchanged, so results agree with the
//! plain path to float rounding (the timm parity tests run through here at 1e-4). Setting the
//! environment variable `SNNET_PLAIN_OPS` (to anything) turns the fast path off for the whole
//! process, training included, to compare the two.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, relu};

/// What is applied to a linear layer's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Epilogue {
    /// Nothing: `x·W + b`.
    None,
    /// Exact GELU: `gelu(x·W + b)`.
    Gelu,
}

/// `layer(x)`, then the epilogue, then `+ residual` when given.
///
/// # Shapes
/// `x`: `[..., C_in]`; `residual`: the output's shape `[..., C_out]`.
pub(crate) fn linear<const D: usize>(
    x: Tensor<D>,
    layer: &Linear,
    epilogue: Epilogue,
    residual: Option<Tensor<D>>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(y) = flex::linear(&x, layer, epilogue, residual.as_ref())
    {
        return y;
    }
    let y = layer.forward(x);
    let y = match epilogue {
        Epilogue::None => y,
        Epilogue::Gelu => exact_gelu(y),
    };
    match residual {
        Some(r) => r + y,
        None => y,
    }
}

/// Exact GELU (`0.5·x·(1 + erf(x/√2))`) off the inference fast path: under autodiff on Flex in
/// f32 (training) one tracked op, vectorised and parallel, whose backward is one pass
/// (`gelu'(x) = Φ(x) + x·φ(x)`) — Burn's Flex GELU and its backward run `erf` element by element
/// on one thread. Elsewhere Burn's `gelu`.
///
/// # Shapes
/// Any; the output has the input's shape.
pub(crate) fn exact_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(y) = flex::gelu_autodiff(&x)
    {
        return y;
    }
    gelu(x)
}

/// `norm(x)` — LayerNorm over the last axis with `epsilon` (Burn keeps a `LayerNorm`'s epsilon
/// private, so the caller passes the one it was built with). Under autodiff on Flex in f32 with
/// a bias (training) one tracked op over rows whose backward is one pass too; Burn's autodiff
/// records its decomposition (two means, a subtraction, a product, a square root, a division, the
/// scale and the shift) and differentiates each. Elsewhere `norm.forward(x)` (Flex's inference
/// layer norm is already one fused pass).
///
/// # Shapes
/// `[..., C]` → `[..., C]`.
pub(crate) fn layer_norm<const D: usize>(
    norm: &burn::nn::LayerNorm,
    epsilon: f64,
    x: Tensor<D>,
) -> Tensor<D> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(y) = flex::layer_norm_autodiff(norm, epsilon, &x)
    {
        return y;
    }
    let _ = epsilon;
    norm.forward(x)
}

/// Multi-head self-attention of a fused qkv projection, `softmax(q·kᵀ/√d + bias)·v` per head,
/// heads concatenated: `None` off the fast path (the caller then runs Burn's ops). Reads q, k
/// and v in place from the projection's output (no permuted copies), one task per (item, head),
/// the bias added and the softmax taken in one pass with the vectorisable `exp`, each head
/// written straight into its columns of the output.
///
/// The optional additive `bias` is Swin's relative position bias (plus its shift mask): item
/// `i` uses `bias[i mod W]`, so a `[B·W, N, 3C]` batch of windows takes the `[W, heads, N, N]`
/// bias of one image's windows (`W` = 1: the same bias for every item).
///
/// # Shapes
/// `qkv`: `[B, N, 3C]`, ordered q | k | v with heads contiguous (timm); `bias`:
/// `[W, heads, N, N]` with `B` a multiple of `W` → `[B, N, C]`.
pub(crate) fn attention(
    qkv: &Tensor<3>,
    heads: usize,
    bias: Option<&Tensor<4>>,
) -> Option<Tensor<3>> {
    #[cfg(feature = "flex")]
    if enabled() {
        return flex::attention(qkv, heads, bias);
    }
    let _ = (qkv, heads, bias);
    None
}

/// ResNet's unit `bn(conv(x))`, then `+ residual` when given, then ReLU when `relu` — at
/// inference (batch statistics are never used here: off the fast path Burn's `BatchNorm` picks
/// its running statistics outside autodiff too, and under autodiff the plain ops run).
///
/// On Flex the convolution runs as one multi-threaded GEMM per image (faer): a 1×1 stride-1
/// unpadded convolution reads the image in place (`[C_in, H·W]` is already the GEMM's right
/// operand), any other lays out its patches first (im2col, in parallel); the batch norm's affine
/// map `x·γ/√(σ²+ε) + (β − μ·γ/√(σ²+ε))`, the residual and the ReLU are one pass over the
/// output. Burn's Flex path runs the convolution, the batch norm, the add and the ReLU as four
/// passes with an output each (docs/PERFORMANCE.md measures both). Grouped convolutions and
/// `Same` padding run Burn's ops.
///
/// # Shapes
/// `x`: `[B, C_in, H, W]`; `residual`: the output's shape `[B, C_out, H_out, W_out]`.
pub(crate) fn conv_bn(
    x: Tensor<4>,
    conv: &Conv2d,
    bn: &BatchNorm,
    residual: Option<Tensor<4>>,
    relu_after: bool,
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(y) = flex::conv_bn(&x, conv, bn, residual.as_ref(), relu_after)
    {
        return y;
    }
    let y = bn.forward(conv.forward(x));
    let y = match residual {
        Some(r) => y + r,
        None => y,
    };
    if relu_after { relu(y) } else { y }
}

/// 2-D max pooling, `kernel`, `stride` and `padding` per axis (no dilation, floor mode; the
/// padding counts as −∞), as `burn::tensor::module::max_pool2d` computes it. On Flex in f32
/// outside autodiff one parallel pass straight into the output, each window's maximum read from
/// the input in place; Flex's own pooling runs the general (3-D, with-indices) kernel and
/// zero-fills its output first. Elsewhere Burn's op.
///
/// # Shapes
/// `[B, C, H, W]` → `[B, C, (H + 2·pad − k)/stride + 1, (W + 2·pad − k)/stride + 1]`.
pub(crate) fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(y) = flex::max_pool2d(&x, kernel, stride, padding)
    {
        return y;
    }
    burn::tensor::module::max_pool2d(
        x,
        burn::tensor::ops::MaxPoolOptions::new(kernel)
            .with_stride(stride)
            .with_padding(padding),
    )
}

/// Swin's windows: a `grid` of tokens, cyclically shifted by `-shift`, cut into `window`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    /// Tokens per column and per row, `[H, W]`.
    pub(crate) grid: [usize; 2],
    /// Window size `[wh, ww]`; both divide the grid.
    pub(crate) window: [usize; 2],
    /// The cyclic shift `[sh, sw]` (`[0, 0]` for a block without one).
    pub(crate) shift: [usize; 2],
}

impl Windows {
    /// Windows per image, `nW`.
    pub(crate) fn count(&self) -> usize {
        (self.grid[0] / self.window[0]) * (self.grid[1] / self.window[1])
    }

    /// Tokens per window, `N`.
    pub(crate) fn size(&self) -> usize {
        self.window[0] * self.window[1]
    }

    /// Whether the windows tile the grid (every size non-zero, each window side a divisor).
    #[cfg(feature = "flex")]
    fn tile(&self) -> bool {
        let [h, w] = self.grid;
        let [wh, ww] = self.window;
        wh > 0 && ww > 0 && h > 0 && w > 0 && h % wh == 0 && w % ww == 0
    }

    /// The grid row (within one image, row-major `h·W + w`) that feeds token `pos` of window
    /// `index` — after the roll by `-shift`, `out[i] = in[(i + shift) mod size]` per axis.
    #[cfg(feature = "flex")]
    fn source(&self, index: usize, pos: usize) -> usize {
        let ([h, w], [wh, ww], [sh, sw]) = (self.grid, self.window, self.shift);
        let nw = w / ww;
        let (row, col) = ((index / nw) * wh + pos / ww, (index % nw) * ww + pos % ww);
        ((row + sh) % h) * w + (col + sw) % w
    }

    /// The window row (within one image, `index·N + pos`) that grid row `cell` comes from:
    /// the inverse of [`Windows::source`].
    #[cfg(feature = "flex")]
    fn target(&self, cell: usize) -> usize {
        let ([h, w], [wh, ww], [sh, sw]) = (self.grid, self.window, self.shift);
        let (row, col) = (((cell / w) + h - sh % h) % h, ((cell % w) + w - sw % w) % w);
        ((row / wh) * (w / ww) + col / ww) * (wh * ww) + (row % wh) * ww + col % ww
    }
}

/// Swin's window partition: `x` rolled by `-shift` over the grid, cut into windows, window-major
/// in timm's order. On Flex at inference one gather pass (Burn's path copies for the roll and
/// again for the permute).
///
/// # Shapes
/// `x`: `[B, H·W, C]` → `[B, nW, N, C]`.
pub(crate) fn window_partition(x: Tensor<3>, windows: Windows) -> Tensor<4> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(y) = flex::window_partition(&x, windows)
    {
        return y;
    }
    window_partition_plain(x, windows)
}

/// [`window_partition`] in Burn's ops.
fn window_partition_plain(x: Tensor<3>, windows: Windows) -> Tensor<4> {
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
/// On Flex at inference one pass (Burn's path copies for the permute, again for the roll, and
/// allocates the sum).
///
/// # Shapes
/// `y`: `[B, nW, N, C]`, `residual`: `[B, H·W, C]` → `[B, H·W, C]`.
pub(crate) fn window_merge_add(y: Tensor<4>, residual: Tensor<3>, windows: Windows) -> Tensor<3> {
    #[cfg(feature = "flex")]
    if enabled()
        && let Some(out) = flex::window_merge_add(&y, &residual, windows)
    {
        return out;
    }
    window_merge_add_plain(y, residual, windows)
}

/// [`window_merge_add`] in Burn's ops.
fn window_merge_add_plain(y: Tensor<4>, residual: Tensor<3>, windows: Windows) -> Tensor<3> {
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

/// Whether the fast path may be taken: unless `SNNET_PLAIN_OPS` is set (read once).
#[cfg(feature = "flex")]
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("SNNET_PLAIN_OPS").is_none())
}

#[cfg(feature = "flex")]
mod flex {
    use std::borrow::Cow;
    use std::sync::Arc;

    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
    use burn::backend::flex::FlexTensor;
    use burn::backend::{Autodiff, BackendTypes, Flex};
    use burn::nn::conv::Conv2d;
    use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
    use burn::tensor::{DType, Tensor, TensorData};
    use faer::{Accum, MatMut, MatRef, Par};
    use rayon::prelude::*;

    use super::{Epilogue, Windows};

    /// Rows per parallel chunk of the element-wise passes.
    const ROWS_PER_CHUNK: usize = 16;

    /// A Flex f32 primitive of `t`, or `None` off Flex, under autodiff or in another dtype.
    fn primitive<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
        let p = t.clone().try_into_primitive::<Flex>().ok()?;
        (p.dtype() == DType::F32).then_some(p)
    }

    /// The values of a contiguous view, or of a contiguous copy.
    fn contiguous(p: FlexTensor) -> FlexTensor {
        if p.as_slice::<f32>().is_some() {
            p
        } else {
            p.to_contiguous()
        }
    }

    /// The weight `[k, n]` as a faer view: row-major as stored, or column-major when it is a
    /// transposed view of a contiguous `[n, k]` tensor (no copy in either case).
    fn weight_view(w: &FlexTensor, k: usize, n: usize) -> Option<MatRef<'_, f32>> {
        let len = k.checked_mul(n)?;
        if let Some(s) = w.as_slice::<f32>() {
            return (s.len() == len).then(|| MatRef::from_row_major_slice(s, k, n));
        }
        let layout = w.layout();
        let k_stride = isize::try_from(k).ok()?;
        if layout.strides() == [1, k_stride] {
            let start = layout.start_offset();
            let s = w.storage::<f32>().get(start..start.checked_add(len)?)?;
            return Some(MatRef::from_column_major_slice(s, k, n));
        }
        None
    }

    pub(super) fn linear<const D: usize>(
        x: &Tensor<D>,
        layer: &Linear,
        epilogue: Epilogue,
        residual: Option<&Tensor<D>>,
    ) -> Option<Tensor<D>> {
        let xp = contiguous(primitive(x)?);
        let wp = primitive(&layer.weight.val())?;
        let bias = match &layer.bias {
            Some(b) => Some(contiguous(primitive(&b.val())?)),
            None => None,
        };
        let residual = match residual {
            Some(r) => Some(contiguous(primitive(r)?)),
            None => None,
        };

        let dims = x.dims();
        let (&k, batch) = dims.split_last()?;
        let [wk, n] = layer.weight.dims();
        if wk != k || k == 0 || n == 0 {
            return None;
        }
        let m = batch.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        let xs = xp.as_slice::<f32>()?;
        let copy;
        let w = match weight_view(&wp, k, n) {
            Some(w) => w,
            None => {
                // An unusual layout: one contiguous copy (loaded timm weights never need it).
                copy = wp.to_contiguous();
                let s = copy
                    .as_slice::<f32>()
                    .filter(|s| Some(s.len()) == k.checked_mul(n))?;
                MatRef::from_row_major_slice(s, k, n)
            }
        };
        let out = gemm(m, n, k, xs, w, bias.as_ref(), residual.as_ref(), epilogue)?;
        Some(tensor(out, &dims, n))
    }

    fn tensor<const D: usize>(out: Vec<f32>, dims: &[usize; D], n: usize) -> Tensor<D> {
        let mut shape = *dims;
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(out, shape.to_vec())))
    }

    /// `epilogue(x·W + bias) + residual`, `x` `[m, k]` row-major, out `[m, n]` row-major.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        n: usize,
        k: usize,
        xs: &[f32],
        w: MatRef<'_, f32>,
        bias: Option<&FlexTensor>,
        residual: Option<&FlexTensor>,
        epilogue: Epilogue,
    ) -> Option<Vec<f32>> {
        let len = m.checked_mul(n)?;
        if xs.len() != m.checked_mul(k)? {
            return None;
        }
        let bias = match bias {
            Some(b) => Some(b.as_slice::<f32>().filter(|s| s.len() == n)?),
            None => None,
        };
        let residual = match residual {
            Some(r) => Some(r.as_slice::<f32>().filter(|s| s.len() == len)?),
            None => None,
        };
        // The output starts as the bias on every row — plus the residual when it is added
        // after a plain linear (GELU comes before the residual, so it is added at the end then),
        // written in one parallel pass (no zero-fill first).
        let pre_residual = residual.filter(|_| epilogue == Epilogue::None);
        let mut out = match (bias, pre_residual) {
            (Some(b), Some(r)) => collect_rows(m, n, |row, col, out| {
                let (b, r) = (&b[col..col + out.len()], &r[row * n + col..]);
                out.iter_mut()
                    .zip(b.iter().zip(r))
                    .for_each(|(o, (b, r))| *o = b + r);
            }),
            (Some(b), None) => collect_rows(m, n, |_, col, out| {
                out.copy_from_slice(&b[col..col + out.len()]);
            }),
            (None, Some(r)) => collect_rows(m, n, |row, col, out| {
                let start = row * n + col;
                out.copy_from_slice(&r[start..start + out.len()]);
            }),
            (None, None) => zeros(len),
        };
        let x = MatRef::from_row_major_slice(xs, m, k);
        let dst = MatMut::from_row_major_slice_mut(&mut out, m, n);
        faer::linalg::matmul::matmul(dst, Accum::Add, x, w, 1.0f32, Par::rayon(0));
        if epilogue == Epilogue::Gelu {
            out.par_chunks_mut(n * ROWS_PER_CHUNK)
                .enumerate()
                .for_each(|(c, chunk)| {
                    pulp::Arch::new().dispatch(GeluInPlace(chunk));
                    if let Some(res) = residual {
                        let start = c * n * ROWS_PER_CHUNK;
                        if let Some(r) = res.get(start..start + chunk.len()) {
                            chunk.iter_mut().zip(r).for_each(|(o, v)| *o += v);
                        }
                    }
                });
        }
        Some(out)
    }

    /// `len` zeros, written in parallel (`vec![0.0; len]` zeroes on the calling thread alone).
    fn zeros(len: usize) -> Vec<f32> {
        collect_rows(1, len, |_, _, out| out.fill(0.0))
    }

    /// The row-major `rows × cols` matrix filled by `f(row, col, chunk)` — `chunk` the next
    /// few elements of row `row` from column `col` on — written in parallel straight into a new
    /// vector: one pass where `vec![0.0; len]` and a fill take two, the first on the calling
    /// thread alone.
    fn collect_rows<F>(rows: usize, cols: usize, f: F) -> Vec<f32>
    where
        F: Fn(usize, usize, &mut [f32]) + Sync,
    {
        match cols {
            c if c % 16 == 0 => chunked::<16, F>(rows, cols, f),
            c if c % 8 == 0 => chunked::<8, F>(rows, cols, f),
            c if c % 4 == 0 => chunked::<4, F>(rows, cols, f),
            _ => chunked::<1, F>(rows, cols, f),
        }
    }

    /// [`collect_rows`] for `cols` a multiple of `W`: `[f32; W]` chunks collected in parallel
    /// (rayon writes each split's items in place; one item per element would cost a bounds
    /// check and a store per float), then flattened without a copy.
    fn chunked<const W: usize, F>(rows: usize, cols: usize, f: F) -> Vec<f32>
    where
        F: Fn(usize, usize, &mut [f32]) + Sync,
    {
        let chunks = rows.saturating_mul(cols) / W;
        let mut out: Vec<[f32; W]> = Vec::with_capacity(chunks);
        (0..chunks)
            .into_par_iter()
            .with_min_len((ELEMENTS_PER_TASK / W).max(1))
            .map(|chunk| {
                let start = chunk * W;
                let mut values = [0.0f32; W];
                f(start / cols, start % cols, &mut values);
                values
            })
            .collect_into_vec(&mut out);
        out.into_flattened()
    }

    /// Elements per parallel task of [`collect_rows`].
    const ELEMENTS_PER_TASK: usize = 1 << 14;

    pub(super) fn attention(
        qkv: &Tensor<3>,
        heads: usize,
        bias: Option<&Tensor<4>>,
    ) -> Option<Tensor<3>> {
        let dims = AttentionDims::new(qkv.dims().to_vec(), heads)?;
        if bias.is_none()
            && let Ok(tracked) = qkv.clone().try_into_primitive::<Autodiff<Flex>>()
        {
            return attention_autodiff(tracked, dims);
        }
        let p = contiguous(primitive(qkv)?);
        let s = p.as_slice::<f32>()?;
        let bias = match bias {
            Some(t) => {
                let [w, bh, bn, bm] = t.dims();
                if w == 0 || dims.b % w != 0 || bh != heads || bn != dims.n || bm != dims.n {
                    return None;
                }
                Some((contiguous(primitive(t)?), w))
            }
            None => None,
        };
        let bias = match &bias {
            Some((p, w)) => Some((p.as_slice::<f32>()?, *w)),
            None => None,
        };
        let out = attention_forward(s, dims, bias, None);
        Some(Tensor::from_primitive::<Flex>(FlexTensor::from_data(
            TensorData::new(out, dims.out_shape()),
        )))
    }

    /// The sizes of one attention call: `[b, n, 3c]` in, `heads` heads of `d = c / heads`.
    #[derive(Debug, Clone, Copy)]
    struct AttentionDims {
        b: usize,
        n: usize,
        c: usize,
        heads: usize,
    }

    impl AttentionDims {
        /// `None` unless `shape` is `[b, n, 3c]` with `c` a multiple of `heads` and no empty axis.
        fn new(shape: Vec<usize>, heads: usize) -> Option<Self> {
            let [b, n, c3] = <[usize; 3]>::try_from(shape).ok()?;
            if heads == 0 || c3 % (3 * heads) != 0 || n == 0 || b == 0 {
                return None;
            }
            b.checked_mul(n)?.checked_mul(c3)?.checked_mul(heads)?;
            Some(Self {
                b,
                n,
                c: c3 / 3,
                heads,
            })
        }

        fn d(self) -> usize {
            self.c / self.heads
        }

        #[allow(clippy::cast_precision_loss)]
        fn scale(self) -> f32 {
            (self.d() as f32).sqrt().recip()
        }

        fn out_shape(self) -> Vec<usize> {
            vec![self.b, self.n, self.c]
        }
    }

    /// `softmax(q·kᵀ/√d + bias)·v` of every (item, head), one parallel task each, q, k and v
    /// read in place from `qkv` (`[b, n, 3c]`, row-major); each head written straight into its
    /// columns of the `[b, n, c]` output. With `probs` (`[b, heads, n, n]`) the softmax
    /// probabilities are kept there for the backward pass.
    fn attention_forward(
        s: &[f32],
        dims: AttentionDims,
        bias: Option<(&[f32], usize)>,
        probs: Option<&mut [f32]>,
    ) -> Vec<f32> {
        let AttentionDims { b, n, c, heads } = dims;
        let (d, c3, scale) = (dims.d(), 3 * c, dims.scale());
        let mut out = zeros(b * n * c);
        let mut prob_chunks = probs.map(|p| p.chunks_mut(n * n));
        // One output view per (item, head): the head's d columns of the item's [N, C].
        let mut tasks = Vec::with_capacity(b * heads);
        for (item, chunk) in out.chunks_mut(n * c).enumerate() {
            let mut rest = MatMut::from_row_major_slice_mut(chunk, n, c);
            for h in 0..heads {
                let (head, tail) = rest.split_at_col_mut(d);
                let kept = prob_chunks.as_mut().and_then(Iterator::next);
                tasks.push((item, h, head, kept));
                rest = tail;
            }
        }
        tasks.into_par_iter().for_each(|(item, h, o, kept)| {
            let x = MatRef::from_row_major_slice(&s[item * n * c3..(item + 1) * n * c3], n, c3);
            let q = x.subcols(h * d, d);
            let k = x.subcols(c + h * d, d);
            let v = x.subcols(2 * c + h * d, d);
            let mut local = Vec::new();
            let scores = match kept {
                Some(p) => p,
                None => {
                    local.resize(n * n, 0.0f32);
                    &mut local[..]
                }
            };
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(scores, n, n),
                Accum::Replace,
                q,
                k.transpose(),
                scale,
                Par::Seq,
            );
            let bias = bias.and_then(|(values, w)| {
                let start = ((item % w) * heads + h) * n * n;
                values.get(start..start + n * n)
            });
            pulp::Arch::new().dispatch(SoftmaxRows { scores, bias, n });
            let probs = MatRef::from_row_major_slice(scores, n, n);
            faer::linalg::matmul::matmul(o, Accum::Replace, probs, v, 1.0f32, Par::Seq);
        });
        out
    }

    /// The gradient of [`attention_forward`] (no bias) with respect to `qkv`, from the kept
    /// probabilities `P` and the output's gradient `G`, per (item, head): `dV = Pᵀ·G`,
    /// `dS = P ⊙ (G·Vᵀ − rowsum(P ⊙ G·Vᵀ))`, `dQ = dS·K/√d`, `dK = dSᵀ·Q/√d`, each written
    /// into its columns of the `[b, n, 3c]` gradient.
    fn attention_backward(s: &[f32], probs: &[f32], grad: &[f32], dims: AttentionDims) -> Vec<f32> {
        let AttentionDims { b, n, c, heads } = dims;
        let (d, c3, scale) = (dims.d(), 3 * c, dims.scale());
        let mut dqkv = vec![0.0f32; b * n * c3];
        let mut tasks = Vec::with_capacity(b * heads);
        for (item, chunk) in dqkv.chunks_mut(n * c3).enumerate() {
            let all = MatMut::from_row_major_slice_mut(chunk, n, c3);
            let (mut dq, rest) = all.split_at_col_mut(c);
            let (mut dk, mut dv) = rest.split_at_col_mut(c);
            for h in 0..heads {
                let (q_head, q_rest) = dq.split_at_col_mut(d);
                let (k_head, k_rest) = dk.split_at_col_mut(d);
                let (v_head, v_rest) = dv.split_at_col_mut(d);
                tasks.push((item, h, q_head, k_head, v_head));
                (dq, dk, dv) = (q_rest, k_rest, v_rest);
            }
        }
        tasks.into_par_iter().for_each(|(item, h, dq, dk, dv)| {
            let x = MatRef::from_row_major_slice(&s[item * n * c3..(item + 1) * n * c3], n, c3);
            let q = x.subcols(h * d, d);
            let k = x.subcols(c + h * d, d);
            let v = x.subcols(2 * c + h * d, d);
            let g = MatRef::from_row_major_slice(&grad[item * n * c..(item + 1) * n * c], n, c)
                .subcols(h * d, d);
            let kept = &probs[(item * heads + h) * n * n..(item * heads + h + 1) * n * n];
            let p = MatRef::from_row_major_slice(kept, n, n);
            mp(dv, p.transpose(), g, 1.0f32);
            let mut ds = vec![0.0f32; n * n];
            mp(
                MatMut::from_row_major_slice_mut(&mut ds, n, n),
                g,
                v.transpose(),
                1.0f32,
            );
            for (row, p_row) in ds.chunks_mut(n).zip(kept.chunks(n)) {
                let dot = dot(row, p_row);
                row.iter_mut()
                    .zip(p_row)
                    .for_each(|(v, &p)| *v = p * (*v - dot));
            }
            let ds = MatRef::from_row_major_slice(&ds, n, n);
            mp(dq, ds, k, scale);
            mp(dk, ds.transpose(), q, scale);
        });
        dqkv
    }

    /// `dst = alpha·lhs·rhs` on the calling thread.
    fn mp(dst: MatMut<'_, f32>, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>, alpha: f32) {
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, alpha, Par::Seq);
    }

    /// `Σ aᵢ·bᵢ` in `LANES` independent partial sums (vectorisable).
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0.0f32; LANES];
        let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ac
            .remainder()
            .iter()
            .zip(bc.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in ac.zip(bc) {
            lanes
                .iter_mut()
                .zip(x.iter().zip(y))
                .for_each(|(l, (x, y))| *l += x * y);
        }
        tail + lanes.iter().sum::<f32>()
    }

    /// Attention under autodiff on Flex (training): the forward above as one tracked op whose
    /// backward is [`attention_backward`], in place of Burn's decomposition (reshape, permute,
    /// three narrowed copies, two batched products, a five-op softmax — each recorded and
    /// differentiated separately). `None` (Burn's ops run) outside f32 or with a checkpointing
    /// strategy other than none.
    fn attention_autodiff(
        qkv: <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive,
        dims: AttentionDims,
    ) -> Option<Tensor<3>> {
        let (primitive, node) = qkv.into_parts();
        if primitive.dtype() != DType::F32 {
            return None;
        }
        let p = contiguous(primitive);
        let output = match FusedAttention
            .prepare::<NoCheckpointing>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let mut probs = vec![0.0f32; dims.b * dims.heads * dims.n * dims.n];
                let out = attention_forward(p.as_slice::<f32>()?, dims, None, Some(&mut probs));
                let state = AttentionState {
                    qkv: Kept(p),
                    probs: Kept(Arc::new(probs)),
                    dims,
                };
                prep.finish(state, flex_tensor(out, dims.out_shape()))
            }
            OpsKind::UnTracked(prep) => {
                let out = attention_forward(p.as_slice::<f32>()?, dims, None, None);
                prep.finish(flex_tensor(out, dims.out_shape()))
            }
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
    }

    fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
        FlexTensor::from_data(TensorData::new(values, shape))
    }

    /// The f32 values of a tensor: borrowed when contiguous f32, converted otherwise.
    fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
        match t.as_slice::<f32>() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(t.to_contiguous().into_data().iter::<f32>().collect()),
        }
    }

    /// The tracked op of [`attention_autodiff`].
    #[derive(Debug)]
    struct FusedAttention;

    /// A value kept for a backward pass; its debug output names no values (they can be
    /// megabytes).
    #[derive(Clone)]
    struct Kept<T>(T);

    impl<T> std::fmt::Debug for Kept<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Kept(..)")
        }
    }

    /// What the backward pass reads: the input and the softmax probabilities.
    #[derive(Clone, Debug)]
    struct AttentionState {
        qkv: Kept<FlexTensor>,
        probs: Kept<Arc<Vec<f32>>>,
        dims: AttentionDims,
    }

    impl Backward<Flex, 1> for FusedAttention {
        type State = AttentionState;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let AttentionState {
                qkv: Kept(qkv),
                probs: Kept(probs),
                dims,
            } = ops.state;
            unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
                let grad = contiguous(grad);
                let dqkv = attention_backward(&values(&qkv), &probs, &values(&grad), dims);
                flex_tensor(dqkv, vec![dims.b, dims.n, 3 * dims.c])
            });
        }
    }

    /// Elements per parallel chunk of the GELU passes.
    const GELU_CHUNK: usize = 16 * 1024;

    pub(super) fn gelu_autodiff<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
        let tracked = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
        let (primitive, node) = tracked.into_parts();
        if primitive.dtype() != DType::F32 {
            return None;
        }
        let shape = x.dims().to_vec();
        let input = contiguous(primitive);
        let mut out = input.as_slice::<f32>()?.to_vec();
        out.par_chunks_mut(GELU_CHUNK)
            .for_each(|chunk| pulp::Arch::new().dispatch(GeluInPlace(chunk)));
        let out = flex_tensor(out, shape.clone());
        let output = match FusedGelu
            .prepare::<NoCheckpointing>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                GeluState {
                    input: Kept(input),
                    shape,
                },
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
    }

    /// The tracked op of [`gelu_autodiff`].
    #[derive(Debug)]
    struct FusedGelu;

    /// What GELU's backward pass reads: its input.
    #[derive(Clone, Debug)]
    struct GeluState {
        input: Kept<FlexTensor>,
        shape: Vec<usize>,
    }

    impl Backward<Flex, 1> for FusedGelu {
        type State = GeluState;

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let GeluState {
                input: Kept(input),
                shape,
            } = ops.state;
            unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
                let mut g = values(&contiguous(grad)).into_owned();
                let x = values(&input);
                g.par_chunks_mut(GELU_CHUNK)
                    .zip(x.par_chunks(GELU_CHUNK))
                    .for_each(|(g, x)| pulp::Arch::new().dispatch(GeluGrad { g, x }));
                flex_tensor(g, shape)
            });
        }
    }

    pub(super) fn layer_norm_autodiff<const D: usize>(
        norm: &burn::nn::LayerNorm,
        epsilon: f64,
        x: &Tensor<D>,
    ) -> Option<Tensor<D>> {
        let beta = norm.beta.as_ref()?.val();
        let shape = x.dims().to_vec();
        let c = *shape.last()?;
        if c == 0 || norm.gamma.dims() != [c] || beta.dims() != [c] {
            return None;
        }
        let tracked = |t: Tensor<D>| t.try_into_primitive::<Autodiff<Flex>>().ok();
        let (xp, x_node) = tracked(x.clone())?.into_parts();
        let (gp, g_node) = norm
            .gamma
            .val()
            .try_into_primitive::<Autodiff<Flex>>()
            .ok()?
            .into_parts();
        let (bp, b_node) = beta
            .try_into_primitive::<Autodiff<Flex>>()
            .ok()?
            .into_parts();
        if [&xp, &gp, &bp].iter().any(|p| p.dtype() != DType::F32) {
            return None;
        }
        let (xp, gp, bp) = (contiguous(xp), contiguous(gp), contiguous(bp));
        let (xs, gamma, beta) = (
            xp.as_slice::<f32>()?,
            gp.as_slice::<f32>()?,
            bp.as_slice::<f32>()?,
        );
        let rows = xs.len() / c;
        #[allow(clippy::cast_possible_truncation)]
        let eps = epsilon as f32;
        #[allow(clippy::cast_precision_loss)]
        let inv_c = (c as f32).recip();
        let mut out = vec![0.0f32; xs.len()];
        let mut xhat = vec![0.0f32; xs.len()];
        let mut rstd = vec![0.0f32; rows];
        out.par_chunks_mut(c * ROWS_PER_CHUNK)
            .zip(xhat.par_chunks_mut(c * ROWS_PER_CHUNK))
            .zip(rstd.par_chunks_mut(ROWS_PER_CHUNK))
            .zip(xs.par_chunks(c * ROWS_PER_CHUNK))
            .for_each(|(((out, xhat), rstd), xs)| {
                let rows = out.chunks_mut(c).zip(xhat.chunks_mut(c));
                for (((o, h), r), x) in rows.zip(rstd.iter_mut()).zip(xs.chunks(c)) {
                    let mean = x.iter().sum::<f32>() * inv_c;
                    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() * inv_c;
                    *r = (var + eps).sqrt().recip();
                    for ((o, h), (&v, (&g, &b))) in o
                        .iter_mut()
                        .zip(h.iter_mut())
                        .zip(x.iter().zip(gamma.iter().zip(beta)))
                    {
                        *h = (v - mean) * *r;
                        *o = *h * g + b;
                    }
                }
            });
        let out = flex_tensor(out, shape);
        let output = match FusedLayerNorm
            .prepare::<NoCheckpointing>([x_node, g_node, b_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = LayerNormState {
                    xhat: Kept(Arc::new(xhat)),
                    rstd: Kept(Arc::new(rstd)),
                    gamma: Kept(Arc::new(gamma.to_vec())),
                };
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
    }

    /// The tracked op of [`layer_norm_autodiff`].
    #[derive(Debug)]
    struct FusedLayerNorm;

    /// What LayerNorm's backward pass reads: the normalised input, each row's `1/σ`, the scale.
    #[derive(Clone, Debug)]
    struct LayerNormState {
        xhat: Kept<Arc<Vec<f32>>>,
        rstd: Kept<Arc<Vec<f32>>>,
        gamma: Kept<Arc<Vec<f32>>>,
    }

    impl Backward<Flex, 3> for FusedLayerNorm {
        type State = LayerNormState;

        /// With `ĝ = g·γ`: `dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/σ`, `dγ = Σ_rows g·x̂`,
        /// `dβ = Σ_rows g` (row-chunk partial sums added in chunk order: deterministic).
        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            _checkpointer: &mut Checkpointer,
        ) {
            let LayerNormState {
                xhat: Kept(xhat),
                rstd: Kept(rstd),
                gamma: Kept(gamma),
            } = ops.state;
            let [x_parent, g_parent, b_parent] = ops.parents;
            let grad = contiguous(grads.consume::<Flex>(&ops.node));
            let shape = grad.layout().shape().to_vec();
            let g = values(&grad);
            let c = gamma.len();
            #[allow(clippy::cast_precision_loss)]
            let inv_c = (c as f32).recip();
            let chunk = c * ROWS_PER_CHUNK;
            if let Some(node) = x_parent {
                let mut dx = vec![0.0f32; g.len()];
                dx.par_chunks_mut(chunk)
                    .zip(g.par_chunks(chunk))
                    .zip(xhat.par_chunks(chunk))
                    .zip(rstd.par_chunks(ROWS_PER_CHUNK))
                    .for_each(|(((dx, g), xhat), rstd)| {
                        let rows = dx.chunks_mut(c).zip(g.chunks(c)).zip(xhat.chunks(c));
                        for (((dx, g), h), &r) in rows.zip(rstd) {
                            let (mut m1, mut m2) = (0.0f32, 0.0f32);
                            for ((&g, &w), &h) in g.iter().zip(gamma.iter()).zip(h) {
                                m1 += g * w;
                                m2 += g * w * h;
                            }
                            let (m1, m2) = (m1 * inv_c, m2 * inv_c);
                            for ((d, (&g, &w)), &h) in
                                dx.iter_mut().zip(g.iter().zip(gamma.iter())).zip(h)
                            {
                                *d = (g * w - m1 - h * m2) * r;
                            }
                        }
                    });
                grads.register::<Flex>(node.id, flex_tensor(dx, shape));
            }
            if g_parent.is_some() || b_parent.is_some() {
                let partials: Vec<(Vec<f32>, Vec<f32>)> = g
                    .par_chunks(chunk)
                    .zip(xhat.par_chunks(chunk))
                    .map(|(g, xhat)| {
                        let (mut dg, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
                        for (g, h) in g.chunks(c).zip(xhat.chunks(c)) {
                            for (((dg, db), &g), &h) in
                                dg.iter_mut().zip(db.iter_mut()).zip(g).zip(h)
                            {
                                *dg += g * h;
                                *db += g;
                            }
                        }
                        (dg, db)
                    })
                    .collect();
                let (mut dg, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
                for (pg, pb) in &partials {
                    dg.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
                    db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
                }
                if let Some(node) = g_parent {
                    grads.register::<Flex>(node.id, flex_tensor(dg, vec![c]));
                }
                if let Some(node) = b_parent {
                    grads.register::<Flex>(node.id, flex_tensor(db, vec![c]));
                }
            }
        }
    }

    /// The contiguous f32 values of a per-channel vector of `len` entries.
    fn channel_values(t: &Tensor<1>, len: usize) -> Option<Vec<f32>> {
        let p = contiguous(primitive(t)?);
        let s = p.as_slice::<f32>()?;
        (s.len() == len).then(|| s.to_vec())
    }

    /// Output side of a convolution: `(size + pads − span) / stride + 1`.
    fn conv_side(
        size: usize,
        pads: usize,
        kernel: usize,
        dilation: usize,
        stride: usize,
    ) -> Option<usize> {
        let span = dilation
            .checked_mul(kernel.checked_sub(1)?)?
            .checked_add(1)?;
        let padded = size.checked_add(pads)?;
        Some(padded.checked_sub(span)? / stride + 1)
    }

    pub(super) fn window_partition(x: &Tensor<3>, windows: Windows) -> Option<Tensor<4>> {
        let [b, l, c] = x.dims();
        if !windows.tile() || windows.grid[0].checked_mul(windows.grid[1])? != l || c == 0 {
            return None;
        }
        let xp = contiguous(primitive(x)?);
        let xs = xp.as_slice::<f32>()?;
        let n = windows.size();
        let out = collect_rows(b * l, c, |r, col, out| {
            let (item, within) = (r / l, r % l);
            let src = (item * l + windows.source(within / n, within % n)) * c + col;
            out.copy_from_slice(&xs[src..src + out.len()]);
        });
        Some(Tensor::from_primitive::<Flex>(flex_tensor(
            out,
            vec![b, windows.count(), n, c],
        )))
    }

    pub(super) fn window_merge_add(
        y: &Tensor<4>,
        residual: &Tensor<3>,
        windows: Windows,
    ) -> Option<Tensor<3>> {
        let [b, l, c] = residual.dims();
        if !windows.tile()
            || windows.grid[0].checked_mul(windows.grid[1])? != l
            || y.dims() != [b, windows.count(), windows.size(), c]
            || c == 0
        {
            return None;
        }
        let yp = contiguous(primitive(y)?);
        let rp = contiguous(primitive(residual)?);
        let (ys, rs) = (yp.as_slice::<f32>()?, rp.as_slice::<f32>()?);
        let out = collect_rows(b * l, c, |g, col, out| {
            let (item, cell) = (g / l, g % l);
            let src = (item * l + windows.target(cell)) * c + col;
            let (v, r) = (&ys[src..src + out.len()], &rs[g * c + col..]);
            out.iter_mut()
                .zip(r.iter().zip(v))
                .for_each(|(o, (r, v))| *o = r + v);
        });
        Some(Tensor::from_primitive::<Flex>(flex_tensor(
            out,
            vec![b, l, c],
        )))
    }

    pub(super) fn conv_bn(
        x: &Tensor<4>,
        conv: &Conv2d,
        bn: &BatchNorm,
        residual: Option<&Tensor<4>>,
        relu: bool,
    ) -> Option<Tensor<4>> {
        let [b, cin, h, w] = x.dims();
        let [cout, wcin, kh, kw] = conv.weight.dims();
        let ([sh, sw], [dh, dw]) = (conv.stride, conv.dilation);
        if conv.groups != 1 || wcin != cin || cout == 0 || kh == 0 || kw == 0 {
            return None;
        }
        if sh == 0 || sw == 0 || dh == 0 || dw == 0 || b == 0 || cin == 0 {
            return None;
        }
        let (top, left, bottom, right) = match conv.padding {
            PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
            PaddingConfig2d::Valid => (0, 0, 0, 0),
            PaddingConfig2d::Same => return None,
        };
        let oh = conv_side(h, top.checked_add(bottom)?, kh, dh, sh)?;
        let ow = conv_side(w, left.checked_add(right)?, kw, dw, sw)?;
        let (k, n, hw) = (
            cin.checked_mul(kh * kw)?,
            oh.checked_mul(ow)?,
            h.checked_mul(w)?,
        );
        if n == 0 {
            return None;
        }
        let xp = contiguous(primitive(x)?);
        let xs = xp.as_slice::<f32>()?;
        let wp = contiguous(primitive(&conv.weight.val())?);
        let ws = wp.as_slice::<f32>()?;
        if xs.len() != b.checked_mul(cin)?.checked_mul(hw)? || ws.len() != cout.checked_mul(k)? {
            return None;
        }
        // The batch norm (and the conv's bias) as one affine map per output channel.
        let gamma = channel_values(&bn.gamma.val(), cout)?;
        let beta = channel_values(&bn.beta.val(), cout)?;
        let mean = channel_values(&bn.running_mean.value(), cout)?;
        let var = channel_values(&bn.running_var.value(), cout)?;
        let conv_bias = match &conv.bias {
            Some(bias) => Some(channel_values(&bias.val(), cout)?),
            None => None,
        };
        #[allow(clippy::cast_possible_truncation)]
        let eps = bn.epsilon as f32;
        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..cout)
            .map(|c| {
                let bias = conv_bias.as_ref().map_or(0.0, |cb| cb[c]);
                beta[c] + (bias - mean[c]) * scale[c]
            })
            .collect();
        let out_len = b.checked_mul(cout)?.checked_mul(n)?;
        let residual = match residual {
            Some(r) => {
                let p = contiguous(primitive(r)?);
                if p.as_slice::<f32>()?.len() != out_len {
                    return None;
                }
                Some(p)
            }
            None => None,
        };

        let direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && top + left + bottom + right == 0;
        let mut out = zeros(out_len);
        let weight = MatRef::from_row_major_slice(ws, cout, k);
        // Row (ci, ky, kx) of an image's patches: the input pixel under that kernel tap for
        // every output position, 0 in the padding.
        let fill = |image: &[f32], row: usize, dst: &mut [f32]| {
            let (ci, ky, kx) = (row / (kh * kw), (row / kw) % kh, row % kw);
            let src = &image[ci * hw..(ci + 1) * hw];
            // Output columns `lo..hi` read the input at `ox·sw + kx·dw − left`, inside
            // the row; the others are padding.
            let off = kx * dw;
            let lo = left.saturating_sub(off).div_ceil(sw).min(ow);
            let hi = if w + left > off {
                ((w - 1 + left - off) / sw + 1).clamp(lo, ow)
            } else {
                lo
            };
            for (oy, line) in dst.chunks_mut(ow).enumerate() {
                let iy = (oy * sh + ky * dh).checked_sub(top).filter(|&iy| iy < h);
                let Some(iy) = iy else {
                    line.fill(0.0);
                    continue;
                };
                line[..lo].fill(0.0);
                line[hi..].fill(0.0);
                let src_row = &src[iy * w..(iy + 1) * w];
                let first = lo * sw + off - left;
                if sw == 1 {
                    line[lo..hi].copy_from_slice(&src_row[first..first + (hi - lo)]);
                } else {
                    let taps = src_row[first..].iter().step_by(sw);
                    line[lo..hi].iter_mut().zip(taps).for_each(|(v, s)| *v = *s);
                }
            }
        };
        // Image `item`'s product into `dst`, its patches laid out in `col` first (unless the
        // image is the right operand itself); `parallel`: the patches and the product split
        // across the threads, else both on the calling one.
        let convolve = |item: usize, col: &mut Vec<f32>, dst: &mut [f32], parallel: bool| {
            let image = &xs[item * cin * hw..(item + 1) * cin * hw];
            let rhs = if direct {
                MatRef::from_row_major_slice(image, k, n)
            } else {
                col.resize(k * n, 0.0);
                if parallel {
                    col.par_chunks_mut(n)
                        .enumerate()
                        .for_each(|(row, d)| fill(image, row, d));
                } else {
                    for (row, d) in col.chunks_mut(n).enumerate() {
                        fill(image, row, d);
                    }
                }
                MatRef::from_row_major_slice(col, k, n)
            };
            let dst = MatMut::from_row_major_slice_mut(dst, cout, n);
            let par = if parallel { Par::rayon(0) } else { Par::Seq };
            faer::linalg::matmul::matmul(dst, Accum::Replace, weight, rhs, 1.0f32, par);
        };
        if b >= rayon::current_num_threads().max(2) {
            // Enough images for every thread: one image per task, its patches and its product
            // on that thread (no fork and join inside each product).
            out.par_chunks_mut(cout * n)
                .enumerate()
                .for_each_init(Vec::new, |col, (item, dst)| convolve(item, col, dst, false));
        } else {
            let mut col = if direct { Vec::new() } else { zeros(k * n) };
            for (item, dst) in out.chunks_mut(cout * n).enumerate() {
                convolve(item, &mut col, dst, true);
            }
        }
        let res = residual.as_ref().and_then(|r| r.as_slice::<f32>());
        out.par_chunks_mut(n).enumerate().for_each(|(row, line)| {
            let c = row % cout;
            let (s, t) = (scale[c], shift[c]);
            line.iter_mut().for_each(|v| *v = *v * s + t);
            if let Some(r) = res.and_then(|r| r.get(row * n..(row + 1) * n)) {
                line.iter_mut().zip(r).for_each(|(v, r)| *v += r);
            }
            if relu {
                line.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        });
        Some(Tensor::from_primitive::<Flex>(FlexTensor::from_data(
            TensorData::new(out, [b, cout, oh, ow].to_vec()),
        )))
    }

    /// Input columns a chunk of [`max_pool2d`]'s output row may span for its column maxima
    /// (wider windows take the maximum window by window).
    const POOL_COLUMNS: usize = 64;

    pub(super) fn max_pool2d(
        x: &Tensor<4>,
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        [ph, pw]: [usize; 2],
    ) -> Option<Tensor<4>> {
        let [b, c, h, w] = x.dims();
        // Every window then overlaps the input (PyTorch requires padding ≤ kernel / 2).
        if sh == 0 || sw == 0 || ph >= kh || pw >= kw {
            return None;
        }
        let oh = (h + 2 * ph).checked_sub(kh)? / sh + 1;
        let ow = (w + 2 * pw).checked_sub(kw)? / sw + 1;
        let xp = contiguous(primitive(x)?);
        let xs = xp.as_slice::<f32>()?;
        let planes = b.checked_mul(c)?;
        if xs.len() != planes.checked_mul(h)?.checked_mul(w)? || xs.is_empty() {
            return None;
        }
        // The larger of `m` and `v`, NaN propagating as in PyTorch (branch-free: vectorises).
        let larger = |m: f32, v: f32| if v > m || v.is_nan() { v } else { m };
        let out = collect_rows(planes * oh, ow, |row, col, out| {
            let (plane, oy) = (row / oh, row % oh);
            let src = &xs[plane * h * w..(plane + 1) * h * w];
            let lines = src[(oy * sh).saturating_sub(ph) * w..(oy * sh + kh - ph).min(h) * w]
                .chunks_exact(w);
            let window = |ox: usize| ((ox * sw).saturating_sub(pw), (ox * sw + kw - pw).min(w));
            let (first, last) = (window(col).0, window(col + out.len() - 1).1);
            // The column maxima over the window's rows first (contiguous, vectorised), then
            // each output the maximum of its columns.
            let mut columns = [f32::NEG_INFINITY; POOL_COLUMNS];
            if let Some(columns) = columns.get_mut(..last - first) {
                for line in lines {
                    for (m, &v) in columns.iter_mut().zip(&line[first..last]) {
                        *m = larger(*m, v);
                    }
                }
                for (ox, o) in (col..).zip(out.iter_mut()) {
                    let (x0, x1) = window(ox);
                    *o = columns[x0 - first..x1 - first]
                        .iter()
                        .fold(f32::NEG_INFINITY, |m, &v| larger(m, v));
                }
            } else {
                for (ox, o) in (col..).zip(out.iter_mut()) {
                    let (x0, x1) = window(ox);
                    *o = lines.clone().fold(f32::NEG_INFINITY, |m, line| {
                        line[x0..x1].iter().fold(m, |m, &v| larger(m, v))
                    });
                }
            }
        });
        Some(Tensor::from_primitive::<Flex>(FlexTensor::from_data(
            TensorData::new(out, [b, c, oh, ow].to_vec()),
        )))
    }

    /// Lanes of the manual reductions: independent accumulators let the compiler vectorise them
    /// (a single float accumulator must keep its order and stays scalar).
    const LANES: usize = 16;

    /// Exact GELU over a slice, compiled for the best instruction set found at run time
    /// (`pulp` dispatch: AVX2+FMA on x86-64, otherwise the baseline).
    struct GeluInPlace<'a>(&'a mut [f32]);

    impl pulp::WithSimd for GeluInPlace<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            self.0.iter_mut().for_each(|v| *v = gelu(*v));
        }
    }

    /// `g ← g·gelu'(x)`, `gelu'(x) = ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π)`, vectorised as
    /// [`GeluInPlace`].
    struct GeluGrad<'a> {
        g: &'a mut [f32],
        x: &'a [f32],
    }

    impl pulp::WithSimd for GeluGrad<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            self.g
                .iter_mut()
                .zip(self.x)
                .for_each(|(g, &x)| *g *= gelu_derivative(x));
        }
    }

    /// Row-wise softmax of an `[rows, n]` score block plus an optional bias of the same shape,
    /// in place.
    struct SoftmaxRows<'a> {
        scores: &'a mut [f32],
        bias: Option<&'a [f32]>,
        n: usize,
    }

    impl pulp::WithSimd for SoftmaxRows<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) {
            if let Some(bias) = self.bias {
                self.scores.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            }
            for row in self.scores.chunks_mut(self.n) {
                let mut lanes = [f32::NEG_INFINITY; LANES];
                let mut chunks = row.chunks_exact(LANES);
                for chunk in &mut chunks {
                    lanes
                        .iter_mut()
                        .zip(chunk)
                        .for_each(|(m, &v)| *m = m.max(v));
                }
                let max = chunks
                    .remainder()
                    .iter()
                    .chain(&lanes)
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max);
                row.iter_mut().for_each(|v| *v = exp_nonpositive(*v - max));
                let mut lanes = [0.0f32; LANES];
                let mut chunks = row.chunks_exact(LANES);
                for chunk in &mut chunks {
                    lanes.iter_mut().zip(chunk).for_each(|(s, &v)| *s += v);
                }
                let sum: f32 = chunks.remainder().iter().sum::<f32>() + lanes.iter().sum::<f32>();
                let inv = sum.recip();
                row.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }

    /// `e^x` for `x ≤ 0` (inputs below −87 give ~0): Cephes' `expf` polynomial after a
    /// branch-free range reduction, so that loops over it vectorise.
    #[inline(always)]
    fn exp_nonpositive(x: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to nearest
        const ROUND_BITS: u32 = 0x4B40_0000; // ROUND's bits: t's low mantissa bits hold n
        let x = x.max(-87.0);
        let t = x * LOG2E + ROUND;
        let n = t - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        let p = 1.987_569_1e-4;
        let p = p * r + 1.398_199_9e-3;
        let p = p * r + 8.333_452e-3;
        let p = p * r + 4.166_579_6e-2;
        let p = p * r + 1.666_666_5e-1;
        let p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        // 2ⁿ from its exponent bits: n ∈ [−126, 0] here, so n + 127 ∈ [1, 127]. Read from t's
        // bits (t = 1.5·2²³ + n exactly) with integer arithmetic only: a float-to-int `as` cast
        // saturates and checks for NaN, which compiles to scalar code and keeps the loops over
        // this function from vectorising (AVX2, 1.23 M GELUs: 5.6 → 3.4 ms).
        let scale = f32::from_bits(t.to_bits().wrapping_sub(ROUND_BITS - 127) << 23);
        e * scale
    }

    /// `erf(x)`, Abramowitz & Stegun 7.1.26 (|error| ≤ 6e-7 in f32, measured by the test).
    #[inline(always)]
    fn erf(x: f32) -> f32 {
        let a = x.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
            + 0.254_829_6)
            * t;
        (1.0 - poly * exp_nonpositive(-a * a)).copysign(x)
    }

    /// `d/dx gelu(x) = ½(1 + erf(x/√2)) + x·e^(−x²/2)/√(2π)`.
    #[inline(always)]
    fn gelu_derivative(x: f32) -> f32 {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
            + x * exp_nonpositive(-0.5 * x * x) * INV_SQRT_2PI
    }

    /// Exact GELU, `0.5·x·(1 + erf(x/√2))`, as timm's `nn.GELU()`.
    #[inline(always)]
    pub(super) fn gelu(x: f32) -> f32 {
        0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use burn::nn::LinearConfig;
        use burn::tensor::{Device, Distribution, Tolerance};

        fn plain(x: Tensor<3>, l: &Linear, e: Epilogue, r: Option<Tensor<3>>) -> Tensor<3> {
            let y = l.forward(x);
            let y = match e {
                Epilogue::None => y,
                Epilogue::Gelu => burn::tensor::activation::gelu(y),
            };
            r.map_or(y.clone(), |r| r + y)
        }

        #[test]
        fn fast_linear_equals_burns_ops_and_is_taken_only_at_inference() {
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
                let x: Tensor<3> =
                    Tensor::random([b, n, k], Distribution::Normal(0.0, 2.0), &device);
                let r: Tensor<3> =
                    Tensor::random([b, n, 40], Distribution::Normal(0.0, 1.0), &device);
                for e in [Epilogue::None, Epilogue::Gelu] {
                    for res in [None, Some(r.clone())] {
                        let fast = linear(&x, &layer, e, res.as_ref()).expect("fast path on Flex");
                        let slow = plain(x.clone(), &layer, e, res);
                        fast.into_data()
                            .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::absolute(1e-5));
                    }
                }
                // A non-contiguous input (a transposed view) gives the same.
                let xt: Tensor<3> = x.clone().swap_dims(0, 1);
                let fast = linear(&xt, &layer, Epilogue::Gelu, None).expect("fast path");
                plain(xt, &layer, Epilogue::Gelu, None)
                    .into_data()
                    .assert_approx_eq::<f32>(&fast.into_data(), Tolerance::absolute(1e-5));
            }
            // Under autodiff the plain path runs (gradients must flow).
            let ad = device.clone().autodiff();
            let layer = LinearConfig::new(4, 6).init(&ad);
            let x: Tensor<3> = Tensor::ones([1, 2, 4], &ad);
            assert!(linear(&x, &layer, Epilogue::None, None).is_none());
        }

        #[test]
        fn window_partition_and_merge_equal_burns_roll_and_permutes() {
            let device = Device::flex();
            device.seed(5);
            for shift in [[0, 0], [2, 2], [3, 1]] {
                let windows = Windows {
                    grid: [8, 12],
                    window: [4, 4],
                    shift,
                };
                let x: Tensor<3> =
                    Tensor::random([2, 96, 5], Distribution::Normal(0.0, 1.0), &device);
                let fast = window_partition(&x, windows).expect("fast path on Flex");
                let plain = super::super::window_partition_plain(x.clone(), windows);
                assert_eq!(fast.dims(), [2, 6, 16, 5]);
                assert_eq!(
                    fast.to_data(),
                    plain.to_data(),
                    "partition, shift {shift:?}"
                );
                // The merge inverts the partition: residual + merge(partition(x)) = residual + x.
                let r: Tensor<3> =
                    Tensor::random([2, 96, 5], Distribution::Normal(0.0, 1.0), &device);
                let y: Tensor<4> =
                    Tensor::random([2, 6, 16, 5], Distribution::Normal(0.0, 1.0), &device);
                let fast = window_merge_add(&y, &r, windows).expect("fast path on Flex");
                let plain = super::super::window_merge_add_plain(y, r.clone(), windows);
                assert_eq!(fast.to_data(), plain.to_data(), "merge, shift {shift:?}");
                let back = window_merge_add(&window_partition(&x, windows).unwrap(), &r, windows);
                assert_eq!(back.unwrap().to_data(), (r + x).to_data());
            }
            // Windows that do not tile the grid, or a wrong token count: Burn's path.
            let x: Tensor<3> = Tensor::zeros([1, 96, 5], &device);
            let odd = |grid, window| Windows {
                grid,
                window,
                shift: [0, 0],
            };
            assert!(window_partition(&x, odd([8, 12], [5, 4])).is_none());
            assert!(window_partition(&x, odd([8, 8], [4, 4])).is_none());
            // Under autodiff too (gradients must flow through Burn's ops).
            let ad: Tensor<3> = Tensor::zeros([1, 96, 5], &device.clone().autodiff());
            assert!(window_partition(&ad, odd([8, 12], [4, 4])).is_none());
        }

        #[test]
        fn fast_conv_bn_equals_burns_ops() {
            use burn::module::{Param, RunningState};
            use burn::nn::BatchNormConfig;
            use burn::nn::conv::Conv2dConfig;
            use burn::tensor::activation::relu;
            let device = Device::flex();
            device.seed(11);
            let normal = |shape: Vec<usize>, std: f64| {
                Tensor::<1>::random(
                    [shape.iter().product::<usize>()],
                    Distribution::Normal(0.0, std),
                    &device,
                )
            };
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
                let mut bn = BatchNormConfig::new(cout).with_epsilon(1e-5).init(&device);
                bn.gamma = Param::from_tensor(normal(vec![cout], 1.0));
                bn.beta = Param::from_tensor(normal(vec![cout], 1.0));
                bn.running_mean = RunningState::new(normal(vec![cout], 1.0));
                bn.running_var = RunningState::new(normal(vec![cout], 1.0).abs() + 0.1);
                // One image (patches in parallel, one parallel product) and one per thread (one
                // image per task), whatever the machine's thread count.
                for batch in [1, rayon::current_num_threads().max(2)] {
                    let x: Tensor<4> = Tensor::random(
                        [batch, cin, 11, 9],
                        Distribution::Normal(0.0, 1.0),
                        &device,
                    );
                    let plain = bn.forward(conv.forward(x.clone()));
                    let r: Tensor<4> =
                        Tensor::random(plain.dims(), Distribution::Normal(0.0, 1.0), &device);
                    for (res, relu_after) in [(None, false), (None, true), (Some(r.clone()), true)]
                    {
                        let fast = conv_bn(&x, &conv, &bn, res.as_ref(), relu_after)
                            .expect("fast path on Flex");
                        let slow = match res {
                            Some(r) => plain.clone() + r,
                            None => plain.clone(),
                        };
                        let slow = if relu_after { relu(slow) } else { slow };
                        fast.into_data()
                            .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::absolute(1e-5));
                    }
                }
            }
            // Same padding and grouped convolutions are left to Burn's ops.
            let same = Conv2dConfig::new([2, 2], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            let bn = BatchNormConfig::new(2).init(&device);
            let x: Tensor<4> = Tensor::ones([1, 2, 5, 5], &device);
            assert!(conv_bn(&x, &same, &bn, None, true).is_none());
            let grouped = Conv2dConfig::new([2, 2], [1, 1])
                .with_groups(2)
                .init(&device);
            assert!(conv_bn(&x, &grouped, &bn, None, true).is_none());
            // Under autodiff the plain path runs (gradients and batch statistics).
            let ad = device.clone().autodiff();
            let conv = Conv2dConfig::new([2, 2], [1, 1]).init(&ad);
            let bn = BatchNormConfig::new(2).init(&ad);
            assert!(conv_bn(&Tensor::ones([1, 2, 3, 3], &ad), &conv, &bn, None, true).is_none());
        }

        #[test]
        fn fast_attention_equals_burns_attention() {
            use burn::tensor::module::attention as burn_attention;
            use burn::tensor::ops::AttentionModuleOptions;
            let device = Device::flex();
            device.seed(5);
            let (b, n, heads, d) = (2, 7, 3, 4);
            let c = heads * d;
            let qkv: Tensor<3> =
                Tensor::random([b, n, 3 * c], Distribution::Normal(0.0, 2.0), &device);
            let fast = attention(&qkv, heads, None).expect("fast path on Flex");
            let p = qkv
                .clone()
                .reshape([b, n, 3, heads, d])
                .permute([2, 0, 3, 1, 4]);
            let take = |i: usize| p.clone().narrow(0, i, 1).reshape([b, heads, n, d]);
            let options = AttentionModuleOptions::default();
            let slow = burn_attention(take(0), take(1), take(2), None, None, options)
                .swap_dims(1, 2)
                .reshape([b, n, c]);
            fast.into_data()
                .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::absolute(1e-5));
            assert!(attention(&Tensor::ones([1, 2, 7], &device), 2, None).is_none());
            // An additive bias per (item mod W, head), as Swin's windows use it.
            let bias: Tensor<4> =
                Tensor::random([1, heads, n, n], Distribution::Normal(0.0, 1.0), &device);
            let bias = Tensor::cat(vec![bias.clone(), bias * 5.0], 0);
            let fast = attention(&qkv, heads, Some(&bias)).expect("fast path on Flex");
            let slow = burn_attention(take(0), take(1), take(2), None, Some(bias.clone()), options)
                .swap_dims(1, 2)
                .reshape([b, n, c]);
            fast.into_data()
                .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::absolute(1e-5));
            let wrong: Tensor<4> = Tensor::zeros([1, heads, n + 1, n + 1], &device);
            assert!(attention(&qkv, heads, Some(&wrong)).is_none());
        }

        /// Under autodiff the fused attention op's output and its gradient with respect to
        /// qkv equal Burn's decomposition (reshape, permute, narrow, products, softmax), for a
        /// contiguous input and a transposed view; without a tracked input it is the forward.
        #[test]
        fn fused_attention_gradient_equals_burns() {
            use burn::tensor::module::attention as burn_attention;
            use burn::tensor::ops::AttentionModuleOptions;
            let device = Device::flex().autodiff();
            device.seed(6);
            let (b, n, heads, d) = (3, 9, 2, 5);
            let c = heads * d;
            let burns = |qkv: &Tensor<3>| {
                let p = qkv
                    .clone()
                    .reshape([b, n, 3, heads, d])
                    .permute([2, 0, 3, 1, 4]);
                let take = |i: usize| p.clone().narrow(0, i, 1).reshape([b, heads, n, d]);
                let options = AttentionModuleOptions::default();
                burn_attention(take(0), take(1), take(2), None, None, options)
                    .swap_dims(1, 2)
                    .reshape([b, n, c])
            };
            let weight: Tensor<3> =
                Tensor::random([b, n, c], Distribution::Normal(0.0, 1.0), &device);
            let contiguous: Tensor<3> =
                Tensor::random([b, n, 3 * c], Distribution::Normal(0.0, 2.0), &device);
            let transposed: Tensor<3> =
                Tensor::random([b, 3 * c, n], Distribution::Normal(0.0, 2.0), &device);
            for (leaf, view) in [
                (contiguous.clone(), None),
                (transposed, Some(|t: Tensor<3>| t.swap_dims(1, 2))),
            ] {
                let run = |fused: bool| {
                    let x = leaf.clone().detach().require_grad();
                    let input = view.map_or(x.clone(), |f| f(x.clone()));
                    let out = if fused {
                        attention(&input, heads, None).expect("the fused op on Flex autodiff")
                    } else {
                        burns(&input)
                    };
                    let grads = (out.clone() * weight.clone()).sum().backward();
                    (out, x.grad(&grads).expect("a gradient for qkv"))
                };
                let ((fast, fast_grad), (slow, slow_grad)) = (run(true), run(false));
                assert_eq!(fast_grad.dims(), leaf.dims());
                fast.into_data()
                    .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::absolute(1e-5));
                fast_grad
                    .into_data()
                    .assert_approx_eq::<f32>(&slow_grad.into_data(), Tolerance::absolute(1e-5));
            }
            // Untracked autodiff input: the same forward.
            let untracked = attention(&contiguous, heads, None).expect("the fused op");
            untracked.into_data().assert_approx_eq::<f32>(
                &burns(&contiguous).into_data(),
                Tolerance::absolute(1e-5),
            );
        }

        /// Under autodiff the fused GELU's output and gradient equal Burn's `gelu` (Flex's
        /// exact-erf forward and backward), including a transposed view and large |x|.
        #[test]
        fn fused_gelu_gradient_equals_burns() {
            let device = Device::flex().autodiff();
            device.seed(8);
            let leaf: Tensor<3> =
                Tensor::random([4, 33, 7], Distribution::Normal(0.0, 3.0), &device);
            let leaf = Tensor::cat(vec![leaf, Tensor::full([4, 1, 7], -12.0, &device)], 1);
            let weight: Tensor<3> =
                Tensor::random([4, 7, 34], Distribution::Normal(0.0, 1.0), &device);
            let run = |fused: bool| {
                let x = leaf.clone().detach().require_grad();
                let input = x.clone().swap_dims(1, 2);
                let out = if fused {
                    gelu_autodiff(&input).expect("the fused op on Flex autodiff")
                } else {
                    burn::tensor::activation::gelu(input)
                };
                let grads = (out.clone() * weight.clone()).sum().backward();
                (out, x.grad(&grads).expect("a gradient"))
            };
            let ((fast, fast_grad), (slow, slow_grad)) = (run(true), run(false));
            fast.into_data()
                .assert_approx_eq::<f32>(&slow.into_data(), Tolerance::absolute(1e-5));
            fast_grad
                .into_data()
                .assert_approx_eq::<f32>(&slow_grad.into_data(), Tolerance::absolute(1e-5));
            assert!(gelu_autodiff(&Tensor::<2>::ones([2, 2], &Device::flex())).is_none());
        }

        /// Under autodiff the fused LayerNorm's output and gradients (input, scale, shift) equal
        /// Burn's `LayerNorm`, for a transposed input view; without a bias Burn's op runs.
        #[test]
        fn fused_layer_norm_gradients_equal_burns() {
            use burn::module::Param;
            use burn::nn::LayerNormConfig;
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
            let leaf: Tensor<3> =
                Tensor::random([3, c, 37], Distribution::Normal(0.5, 2.0), &device);
            let weight: Tensor<3> =
                Tensor::random([3, 37, c], Distribution::Normal(0.0, 1.0), &device);
            let run = |fused: bool| {
                let x = leaf.clone().detach().require_grad();
                let input = x.clone().swap_dims(1, 2);
                let out = if fused {
                    layer_norm_autodiff(&norm, 1e-6, &input).expect("the fused op")
                } else {
                    norm.forward(input)
                };
                let grads = (out.clone() * weight.clone()).sum().backward();
                let gamma = norm.gamma.val().grad(&grads).expect("a scale gradient");
                let beta = norm.beta.as_ref().map(|b| b.val().grad(&grads));
                (out, x.grad(&grads).expect("an input gradient"), gamma, beta)
            };
            let (fast, slow) = (run(true), run(false));
            let close = |a: TensorData, b: TensorData| {
                a.assert_approx_eq::<f32>(&b, Tolerance::absolute(1e-5));
            };
            close(fast.0.into_data(), slow.0.into_data());
            close(fast.1.into_data(), slow.1.into_data());
            close(fast.2.into_data(), slow.2.into_data());
            let (fb, sb) = (fast.3.flatten().expect("b"), slow.3.flatten().expect("b"));
            close(fb.into_data(), sb.into_data());
            let mut no_bias = norm.clone();
            no_bias.beta = None;
            assert!(layer_norm_autodiff(&no_bias, 1e-6, &leaf).is_none());
        }

        #[test]
        fn fast_max_pool_equals_burns() {
            use burn::tensor::module::max_pool2d as burn_max_pool2d;
            use burn::tensor::ops::MaxPoolOptions;
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
                let fast = max_pool2d(&x, kernel, stride, padding).expect("fast path on Flex");
                let options = MaxPoolOptions::new(kernel)
                    .with_stride(stride)
                    .with_padding(padding);
                let slow = burn_max_pool2d(x, options);
                assert_eq!(fast.dims(), slow.dims());
                fast.into_data().assert_eq(&slow.into_data(), true);
            }
            let x: Tensor<4> = Tensor::zeros([1, 1, 4, 4], &device);
            assert!(
                max_pool2d(&x, [3, 3], [1, 1], [3, 3]).is_none(),
                "padding ≥ kernel"
            );
            assert!(
                max_pool2d(&x, [5, 5], [1, 1], [0, 0]).is_none(),
                "kernel > input"
            );
        }

        #[test]
        fn erf_and_exp_are_accurate_to_float_rounding() {
            let mut worst_erf = 0.0f64;
            let mut worst_exp = 0.0f64;
            for i in -80_000..=80_000 {
                let x = i as f32 * 1e-4;
                let exact = libm::erf(f64::from(x));
                worst_erf = worst_erf.max((f64::from(erf(x)) - exact).abs());
                if x <= 0.0 {
                    let e = f64::from(x * 10.0).exp();
                    let rel = (f64::from(exp_nonpositive(x * 10.0)) - e).abs() / e.max(1e-30);
                    worst_exp = worst_exp.max(rel);
                }
            }
            assert!(worst_erf < 6e-7, "erf max abs error {worst_erf}");
            assert!(worst_exp < 1e-6, "exp max rel error {worst_exp}");
            assert_eq!(gelu(0.0), 0.0);
            assert!((gelu(3.0) - 2.995_95).abs() < 1e-5);
            assert!(exp_nonpositive(-200.0) < 1e-37);
        }

        /// `2ⁿ` read from the rounding constant's bits equals the float-to-int cast it replaced,
        /// bit for bit, so the vectorised `exp` changed no output.
        #[test]
        fn exp_scale_from_bits_equals_the_cast() {
            let cast = |x: f32| {
                let x = x.max(-87.0);
                let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
                let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
                let p = 1.987_569_1e-4;
                let p = p * r + 1.398_199_9e-3;
                let p = p * r + 8.333_452e-3;
                let p = p * r + 4.166_579_6e-2;
                let p = p * r + 1.666_666_5e-1;
                let p = p * r + 0.5;
                let e = p * r * r + r + 1.0;
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
                e * scale
            };
            let special = [0.0, -0.0, -87.0, -87.5, -1e30, f32::MIN, f32::NEG_INFINITY];
            let sweep = (0..=2_000_000).map(|i| i as f32 * -5e-5);
            for x in sweep.chain(special) {
                assert_eq!(exp_nonpositive(x).to_bits(), cast(x).to_bits(), "x = {x}");
            }
        }
    }
}
