//! [`crate::conv_bn`] on Flex at inference: one GEMM per image (faer), im2col where needed, the
//! batch norm, the residual and the ReLU in one pass over the output.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::parallel::zeros;
use super::{contiguous, primitive};

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

pub(crate) fn conv_bn(
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
