//! Writing a new output in parallel, straight into its vector (no zero-fill first).

use rayon::prelude::*;

/// `len` zeros, written in parallel (`vec![0.0; len]` zeroes on the calling thread alone).
pub(super) fn zeros(len: usize) -> Vec<f32> {
    collect_rows(1, len, |_, _, out| out.fill(0.0))
}

/// The row-major `rows × cols` matrix filled by `f(row, col, chunk)` — `chunk` the next
/// few elements of row `row` from column `col` on — written in parallel straight into a new
/// vector: one pass where `vec![0.0; len]` and a fill take two, the first on the calling
/// thread alone.
pub(super) fn collect_rows<F>(rows: usize, cols: usize, f: F) -> Vec<f32>
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
