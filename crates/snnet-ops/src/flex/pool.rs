//! [`crate::max_pool2d`] on Flex at inference: one parallel pass straight into the output.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Tensor, TensorData};

use super::parallel::collect_rows;
use super::{contiguous, primitive};

/// (wider windows take the maximum window by window).
const POOL_COLUMNS: usize = 64;

pub(crate) fn max_pool2d(
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
        let lines =
            src[(oy * sh).saturating_sub(ph) * w..(oy * sh + kh - ph).min(h) * w].chunks_exact(w);
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
