//! [`crate::window_partition`] and [`crate::window_merge_add`] on Flex at inference: one pass
//! each, every output row read from where its source lies.

use burn::backend::Flex;
use burn::tensor::Tensor;

use super::parallel::collect_rows;
use super::{contiguous, flex_tensor, primitive};
use crate::Windows;

pub(crate) fn window_partition(x: &Tensor<3>, windows: Windows) -> Option<Tensor<4>> {
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

pub(crate) fn window_merge_add(
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
