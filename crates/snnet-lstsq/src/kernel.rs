//! The kernel trait: the linear-algebra steps of the solver, implemented once per backend
//! (`faer.rs` and, with the `lapack` feature, `lapack.rs`), and the row-block helpers they share.

use rayon::prelude::*;

use crate::{Features, Result};

/// Values per rayon job of the element-wise passes (conversions, sums): a few µs of work each,
/// so that the pool's scheduling costs little against it.
const ELEMENTWISE_JOB: usize = 16 * 1024;

/// Rows converted from f32 to f64 at a time while forming `XᵀX` and `XᵀB` (bounds the extra
/// memory to a few MiB whatever the number of rows).
pub(crate) const ROW_CHUNK: usize = 256;

/// Rows per f32 product in [`Precision::MixedF32`](crate::Precision::MixedF32): the products of a block are accumulated in
/// f32, the blocks' partial sums in f64.
pub(crate) const MIXED_BLOCK: usize = 1024;

/// Rows converted from f32 to f64 at a time while forming the basis `X L` of
/// [`Precision::MixedF32`](crate::Precision::MixedF32) (larger than [`ROW_CHUNK`]: fewer,
/// larger products; a few MiB).
pub(crate) const BASIS_CHUNK: usize = 1024;

/// The linear-algebra steps of a [`SourceSystem`](crate::SourceSystem), implemented once per
/// [`Backend`](crate::Backend).
///
/// Matrices are row-major; `X = [A | 1]` is `m × n` with `n = c_in + 1`. A system takes its
/// backend's kernel once (`Backend::kernel`); which steps run for which
/// [`Precision`](crate::Precision) is decided in one place, [`SourceSystem`](crate::SourceSystem).
pub(crate) trait Kernel: Sync {
    /// The backend's name, for errors (`faer`, `lapack`).
    fn name(&self) -> &'static str;

    /// Eigenvalues (ascending) and eigenvectors (columns, `n × n` row-major) of `XᵀX`, formed in
    /// f64 over blocks of [`ROW_CHUNK`] rows.
    fn gram_eigh(&self, a: &Features<'_>) -> Result<(Vec<f64>, Vec<f64>)>;

    /// [`gram_eigh`](Self::gram_eigh) of each of `sources` in order, handing source `j`'s to
    /// `each(j, …)` before source `j + 1`'s is formed (the default) or while it is (a backend
    /// that overlaps them); stops at the first error, its own or `each`'s.
    fn gram_eigh_each(
        &self,
        sources: &[Features<'_>],
        each: &mut dyn FnMut(usize, (Vec<f64>, Vec<f64>)) -> Result<()>,
    ) -> Result<()> {
        for (j, a) in sources.iter().enumerate() {
            each(j, self.gram_eigh(a)?)?;
        }
        Ok(())
    }

    /// `U Uᵀ` for `U` (`n × r` row-major), `n × n` row-major.
    fn outer(&self, u: &[f64], n: usize, r: usize) -> Result<Vec<f64>>;

    /// `M = P (Xᵀ B)` in f64 with `B` the sum of `targets` (all `m × c_out`, at least one),
    /// `n × c_out` row-major.
    fn solve(
        &self,
        a: &Features<'_>,
        targets: &[Features<'_>],
        projector: &[f64],
    ) -> Result<Vec<f64>>;

    /// A lower-trapezoidal factor `L` (`n × r` row-major, `L[i][j] = 0` for `j > i`, `r ≤ n`)
    /// with `L Lᵀ = W Wᵀ` for `W` (`n × r` row-major): `Rᵀ` of the QR factorisation `Wᵀ = O R`.
    /// With `W = V_k Λ_k^{-1/2}`, `L Lᵀ` is the projector `P` and `X L` has orthonormal columns.
    fn lower_factor(&self, w: &[f64], n: usize, r: usize) -> Result<Vec<f64>>;

    /// `Q = X L` for the `n × r` lower-trapezoidal `L` of [`lower_factor`](Self::lower_factor),
    /// formed in f64 over blocks of [`BASIS_CHUNK`] rows (faer skips most of the triangle's
    /// zeros, LAPACK's `dgemm` none) and rounded to f32, `m × r` row-major.
    fn basis(&self, a: &Features<'_>, l: &[f64], r: usize) -> Result<Vec<f32>>;

    /// `C = Qᵀ B` from `Q` (f32, `m × r`), with `B` the sum of `targets` (all `m × c_out`, at
    /// least one; added in f32 block by block): f32 products over blocks of [`MIXED_BLOCK`]
    /// rows, summed in f64. `r × c_out` row-major.
    fn solve_mixed(&self, basis: &[f32], r: usize, targets: &[Features<'_>]) -> Result<Vec<f64>>;

    /// `M = L C` in f64 for the `n × r` lower-trapezoidal `L` and `C` (`r × c_out`), `n × c_out`
    /// row-major.
    fn lift(&self, l: &[f64], n: usize, r: usize, c: &[f64], c_out: usize) -> Result<Vec<f64>>;
}

/// Rows `start..start + len` of `a` as f64, with a 1 appended to each (`len × (cols+1)`),
/// converted on all threads of the current pool.
pub(crate) fn fill_augmented(a: &Features<'_>, start: usize, len: usize, out: &mut Vec<f64>) {
    if a.cols == 0 {
        out.clear();
        out.resize(len, 1.0);
        return;
    }
    let n = a.cols + 1;
    // Every value is written below; `resize` only initialises what the buffer did not hold.
    out.resize(len * n, 0.0);
    let rows_per_job = (ELEMENTWISE_JOB / n).max(1);
    out.par_chunks_mut(rows_per_job * n)
        .zip(block(a, start, len).par_chunks(rows_per_job * a.cols))
        .for_each(|(out, src)| {
            for (out, row) in out.chunks_exact_mut(n).zip(src.chunks_exact(a.cols)) {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = f64::from(v);
                }
                out[a.cols] = 1.0;
            }
        });
}

/// `acc += part` with `part` widened to f64, element by element on all threads of the current
/// pool (the f64 sum of the mixed-precision block products).
pub(crate) fn add_widened(acc: &mut [f64], part: &[f32]) {
    acc.par_chunks_mut(ELEMENTWISE_JOB)
        .zip(part.par_chunks(ELEMENTWISE_JOB))
        .for_each(|(acc, part)| {
            for (a, &v) in acc.iter_mut().zip(part) {
                *a += f64::from(v);
            }
        });
}

/// Calls `f(len, x, b)` for each row block of [`row_chunks`]: `x` the block's rows of `a` with a
/// 1 appended ([`fill_augmented`], `len × (a.cols+1)`), `b` those of the sum of `targets`
/// ([`fill_plain`], `len × c_out`), both row-major f64 — the blocks the cross product `Xᵀ B` is
/// accumulated over. Stops at `f`'s first error.
pub(crate) fn for_each_block(
    a: &Features<'_>,
    targets: &[Features<'_>],
    mut f: impl FnMut(usize, &[f64], &[f64]) -> Result<()>,
) -> Result<()> {
    let (mut xbuf, mut bbuf) = (Vec::new(), Vec::new());
    for (start, len) in row_chunks(a.rows) {
        fill_augmented(a, start, len, &mut xbuf);
        fill_plain(targets, start, len, &mut bbuf);
        f(len, &xbuf, &bbuf)?;
    }
    Ok(())
}

/// Rows `start..start + len` of the sum of `targets` (all with the first's columns) as f64
/// (`len × cols`): one target converted, several added in f64 in the given order.
pub(crate) fn fill_plain<'d>(
    targets: &[Features<'d>],
    start: usize,
    len: usize,
    out: &mut Vec<f64>,
) {
    out.clear();
    let Some((first, rest)) = targets.split_first() else {
        return;
    };
    let rows = |b: &Features<'d>| block(b, start, len);
    out.extend(rows(first).iter().map(|&v| f64::from(v)));
    for b in rest {
        for (acc, &v) in out.iter_mut().zip(rows(b)) {
            *acc += f64::from(v);
        }
    }
}

/// Rows `start..start + len` of the sum of `targets` (all with the first's columns) in f32
/// (`len × cols`): one target's rows borrowed as they are, several added into `buf` in the given
/// order.
pub(crate) fn sum_rows_f32<'o, 'd: 'o>(
    targets: &[Features<'d>],
    start: usize,
    len: usize,
    buf: &'o mut Vec<f32>,
) -> &'o [f32] {
    let rows = |b: &Features<'d>| block(b, start, len);
    match targets {
        [] => &[],
        [only] => rows(only),
        [first, rest @ ..] => {
            // Every value is written below; `resize` only initialises what the buffer did not
            // hold. Each value is the same sum in the same order whatever the split.
            buf.resize(len * first.cols, 0.0);
            buf.par_chunks_mut(ELEMENTWISE_JOB)
                .enumerate()
                .for_each(|(job, out)| {
                    let range = job * ELEMENTWISE_JOB..job * ELEMENTWISE_JOB + out.len();
                    out.copy_from_slice(&rows(first)[range.clone()]);
                    for b in rest {
                        for (acc, &v) in out.iter_mut().zip(&rows(b)[range.clone()]) {
                            *acc += v;
                        }
                    }
                });
            buf
        }
    }
}

/// Rows `start..start + len` of `b`, row-major.
fn block<'d>(b: &Features<'d>, start: usize, len: usize) -> &'d [f32] {
    &b.data[start * b.cols..(start + len) * b.cols]
}

/// The row blocks `(start, len)` of an `rows`-row matrix, for the f64 products.
pub(crate) fn row_chunks(rows: usize) -> impl Iterator<Item = (usize, usize)> {
    blocks(rows, ROW_CHUNK)
}

/// The row blocks `(start, len)` of an `rows`-row matrix, for the basis `X L`.
pub(crate) fn basis_chunks(rows: usize) -> impl Iterator<Item = (usize, usize)> {
    blocks(rows, BASIS_CHUNK)
}

/// The blocks `(start, len)` of `size` rows covering `0..rows`.
fn blocks(rows: usize, size: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows)
        .step_by(size)
        .map(move |start| (start, size.min(rows - start)))
}

/// The row blocks `(start, len)` of an `rows`-row matrix, for the mixed-precision products.
pub(crate) fn mixed_blocks(rows: usize) -> impl Iterator<Item = (usize, usize)> {
    blocks(rows, MIXED_BLOCK)
}
