//! [`crate::linear`] on Flex: one multi-threaded GEMM over all rows (faer), the bias and the
//! residual written into the output first, GELU applied in parallel chunks.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::parallel::{collect_rows, zeros};
use super::simd::GeluInPlace;
use super::{ROWS_PER_CHUNK, contiguous, primitive};
use crate::Epilogue;

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

pub(crate) fn linear<const D: usize>(
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
