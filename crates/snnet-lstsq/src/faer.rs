//! The pure-Rust kernel ([faer](https://docs.rs/faer), parallel on the global rayon pool).

use std::sync::atomic::{AtomicBool, Ordering};

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::reborrow::ReborrowMut;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::error::SolverFailure;
use crate::kernel::{
    BASIS_CHUNK, Kernel, add_widened, basis_chunks, fill_augmented, for_each_block, mixed_blocks,
    row_chunks, sum_rows_f32,
};
use crate::{Error, Features, Result};

/// The pure-Rust backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faer;

/// Columns of `Q = X L` per dense product in [`Faer::basis`](Kernel::basis).
const BASIS_PANEL: usize = 64;

fn par() -> Par {
    Par::rayon(0)
}

impl Kernel for Faer {
    fn name(&self) -> &'static str {
        "faer"
    }

    /// Eigenvalues (ascending) and eigenvectors (columns, n×n row-major) of `XᵀX`.
    fn gram_eigh(&self, a: &Features<'_>) -> Result<(Vec<f64>, Vec<f64>)> {
        let mut gram = Mat::<f64>::zeros(a.cols + 1, a.cols + 1);
        add_gram_rows(a, 0, &mut gram, || true, par());
        self.eigh(&gram)
    }

    /// Source `j`'s eigendecomposition runs on one thread while the pool's other threads add
    /// the first row blocks of source `j + 1`'s `XᵀX`, one sequential block product each; the
    /// rest of that Gram is formed on all threads once the eigensolver is done, then `each(j)`
    /// runs. The blocks are added in the same order and each block product is the same
    /// sequential or split, so every Gram is [`gram_eigh`](Kernel::gram_eigh)'s bit for bit.
    fn gram_eigh_each(
        &self,
        sources: &[Features<'_>],
        each: &mut dyn FnMut(usize, (Vec<f64>, Vec<f64>)) -> Result<()>,
    ) -> Result<()> {
        let Some(first) = sources.first() else {
            return Ok(());
        };
        let mut gram = Mat::<f64>::zeros(first.cols + 1, first.cols + 1);
        add_gram_rows(first, 0, &mut gram, || true, par());
        for j in 0..sources.len() {
            let next = sources.get(j + 1);
            let solved = AtomicBool::new(false);
            let (eigh, started) = rayon::join(
                || {
                    let eigh = self.eigh(&gram);
                    solved.store(true, Ordering::Release);
                    eigh
                },
                || {
                    next.map(|b| {
                        let mut gram = Mat::<f64>::zeros(b.cols + 1, b.cols + 1);
                        let added = add_gram_rows(
                            b,
                            0,
                            &mut gram,
                            || !solved.load(Ordering::Acquire),
                            Par::Seq,
                        );
                        (gram, added)
                    })
                },
            );
            if let (Some(b), Some((mut next_gram, added))) = (next, started) {
                add_gram_rows(b, added, &mut next_gram, || true, par());
                gram = next_gram;
            }
            each(j, eigh?)?;
        }
        Ok(())
    }

    /// `U Uᵀ` for `U` (`n × r` row-major), `n × n` row-major.
    fn outer(&self, u: &[f64], n: usize, r: usize) -> Result<Vec<f64>> {
        let u = MatRef::from_row_major_slice(u, n, r);
        let mut p = Mat::<f64>::zeros(n, n);
        if r > 0 {
            matmul(p.as_mut(), Accum::Replace, u, u.transpose(), 1.0, par());
        }
        Ok(to_row_major(p.as_ref()))
    }

    /// `M = P (Xᵀ B)`, `(c_in+1) × c_out` row-major.
    fn solve(
        &self,
        a: &Features<'_>,
        targets: &[Features<'_>],
        projector: &[f64],
    ) -> Result<Vec<f64>> {
        let n = a.cols + 1;
        let c_out = targets.first().map_or(0, |b| b.cols);
        let mut cross = Mat::<f64>::zeros(n, c_out);
        for_each_block(a, targets, |len, xbuf, bbuf| {
            let x = MatRef::from_row_major_slice(xbuf, len, n);
            let y = MatRef::from_row_major_slice(bbuf, len, c_out);
            matmul(cross.as_mut(), Accum::Add, x.transpose(), y, 1.0, par());
            Ok(())
        })?;
        let p = MatRef::from_row_major_slice(projector, n, n);
        let mut m = Mat::<f64>::zeros(n, c_out);
        matmul(m.as_mut(), Accum::Replace, p, cross.as_ref(), 1.0, par());
        Ok(to_row_major(m.as_ref()))
    }

    /// `Rᵀ` of the QR factorisation `Wᵀ = O R` (`R`: `r × n` upper trapezoidal), `n × r`
    /// row-major.
    fn lower_factor(&self, w: &[f64], n: usize, r: usize) -> Result<Vec<f64>> {
        let mut l = vec![0.0; n * r];
        if r == 0 {
            return Ok(l);
        }
        let qr = MatRef::from_row_major_slice(w, n, r).transpose().qr();
        let upper = qr.thin_R();
        for i in 0..n {
            for j in 0..r.min(i + 1) {
                l[i * r + j] = upper[(j, i)];
            }
        }
        Ok(l)
    }

    /// `Q = X L` rounded to f32, `m × r` row-major: per block of rows and per panel of
    /// [`BASIS_PANEL`] columns `j0..j1`, the dense `X[:, j0..] L[j0.., j0..j1]` (the rows of `L`
    /// above `j0` are zeros and skipped; within the panel's diagonal block the zeros are
    /// multiplied): at 64 columns 1.17× the triangle's multiply-adds for `n = 385`, as a few
    /// dense products instead of faer's recursive triangular one, which splits into many small
    /// products (the 24 DeiT-Ti/S bases: 0.64 s against 0.82 s, docs/PERFORMANCE.md).
    fn basis(&self, a: &Features<'_>, l: &[f64], r: usize) -> Result<Vec<f32>> {
        let n = a.cols + 1;
        let mut out = Vec::with_capacity(a.rows * r);
        if r == 0 {
            return Ok(out);
        }
        let l = MatRef::from_row_major_slice(l, n, r);
        let mut xbuf = Vec::new();
        // Row-major, so that rounding to f32 reads it in order.
        let mut qbuf = vec![0.0_f64; BASIS_CHUNK.min(a.rows) * r];
        for (start, len) in basis_chunks(a.rows) {
            fill_augmented(a, start, len, &mut xbuf);
            let x = MatRef::from_row_major_slice(&xbuf, len, n);
            let qbuf = &mut qbuf[..len * r];
            let mut q = MatMut::from_row_major_slice_mut(qbuf, len, r);
            for j0 in (0..r).step_by(BASIS_PANEL) {
                let width = BASIS_PANEL.min(r - j0);
                matmul(
                    q.rb_mut().submatrix_mut(0, j0, len, width),
                    Accum::Replace,
                    x.submatrix(0, j0, len, n - j0),
                    l.submatrix(j0, j0, n - j0, width),
                    1.0,
                    par(),
                );
            }
            out.extend(qbuf.iter().map(|&v| v as f32));
        }
        Ok(out)
    }

    /// `C = Qᵀ B` from `Q` (f32, `m × r`): f32 products over row blocks, summed in f64.
    /// `r × c_out` row-major.
    fn solve_mixed(&self, basis: &[f32], r: usize, targets: &[Features<'_>]) -> Result<Vec<f64>> {
        let (rows, c_out) = targets.first().map_or((0, 0), |b| (b.rows, b.cols));
        let mut acc = vec![0.0_f64; r * c_out];
        // Row-major: faer's f32 kernel runs faster on this layout here, and the f64 sum reads
        // it in order.
        let mut part = vec![0.0_f32; r * c_out];
        let mut sum = Vec::new();
        for (start, len) in mixed_blocks(rows) {
            let q = MatRef::from_row_major_slice(&basis[start * r..(start + len) * r], len, r);
            let y = MatRef::from_row_major_slice(
                sum_rows_f32(targets, start, len, &mut sum),
                len,
                c_out,
            );
            matmul(
                MatMut::from_row_major_slice_mut(&mut part, r, c_out),
                Accum::Replace,
                q.transpose(),
                y,
                1.0,
                par(),
            );
            add_widened(&mut acc, &part);
        }
        Ok(acc)
    }

    /// `M = L C`, `n × c_out` row-major: `L[..r, :] C` triangular, `L[r.., :] C` dense.
    fn lift(&self, l: &[f64], n: usize, r: usize, c: &[f64], c_out: usize) -> Result<Vec<f64>> {
        let mut m = vec![0.0_f64; n * c_out];
        if r > 0 {
            let (l_top, l_rest) = MatRef::from_row_major_slice(l, n, r).split_at_row(r);
            let c = MatRef::from_row_major_slice(c, r, c_out);
            let (m_top, m_rest) =
                MatMut::from_row_major_slice_mut(&mut m, n, c_out).split_at_row_mut(r);
            triangular::matmul(
                m_top,
                BlockStructure::Rectangular,
                Accum::Replace,
                l_top,
                BlockStructure::TriangularLower,
                c,
                BlockStructure::Rectangular,
                1.0,
                par(),
            );
            matmul(m_rest, Accum::Replace, l_rest, c, 1.0, par());
        }
        Ok(m)
    }
}

impl Faer {
    /// Eigenvalues (ascending) and eigenvectors (columns, n×n row-major) of the symmetric
    /// matrix whose lower triangle `gram` holds.
    fn eigh(&self, gram: &Mat<f64>) -> Result<(Vec<f64>, Vec<f64>)> {
        let n = gram.nrows();
        let mut values = faer::diag::Diag::<f64>::zeros(n);
        let mut vectors = Mat::<f64>::zeros(n, n);
        let scratch = evd::self_adjoint_evd_scratch::<f64>(
            n,
            ComputeEigenvectors::Yes,
            par(),
            Default::default(),
        );
        evd::self_adjoint_evd(
            gram.as_ref(),
            values.as_mut(),
            Some(vectors.as_mut()),
            par(),
            MemStack::new(&mut MemBuffer::new(scratch)),
            Default::default(),
        )
        .map_err(|e| Error::Solver {
            backend: self.name(),
            reason: match e {
                evd::EvdError::NoConvergence => SolverFailure::NoConvergence,
            },
        })?;
        let values: Vec<f64> = values.column_vector().iter().copied().collect();
        let mut rows = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                rows[i * n + k] = vectors[(i, k)];
            }
        }
        Ok((values, rows))
    }
}

/// Adds the row blocks of `X = [A | 1]` from the `from`-th of [`row_chunks`] on to the lower
/// triangle of `gram` (`XᵀX`), while `more()` says so before each block; returns the index of
/// the first block not added.
fn add_gram_rows(
    a: &Features<'_>,
    from: usize,
    gram: &mut Mat<f64>,
    more: impl Fn() -> bool,
    par: Par,
) -> usize {
    let n = a.cols + 1;
    let mut buf = Vec::new();
    let mut next = from;
    for (start, len) in row_chunks(a.rows).skip(from) {
        if !more() {
            break;
        }
        fill_augmented(a, start, len, &mut buf);
        let x = MatRef::from_row_major_slice(&buf, len, n);
        triangular::matmul(
            gram.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            x.transpose(),
            BlockStructure::Rectangular,
            x,
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        next += 1;
    }
    next
}

fn to_row_major(m: MatRef<'_, f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        out.extend(m.row(i).iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::ROW_CHUNK;

    /// A Gram formed partly with sequential block products (as
    /// [`gram_eigh_each`](Kernel::gram_eigh_each) does beside an eigensolver) and the rest on
    /// all threads is the one formed on all threads, bit for bit, wherever the split falls.
    #[test]
    fn gram_split_anywhere_is_the_same() {
        let (rows, c_in) = (5 * ROW_CHUNK + 13, 70);
        let n = c_in + 1;
        let data: Vec<f32> = (0..rows * c_in)
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 97.0)
            .collect();
        let a = Features::new(&data, rows, c_in).unwrap();
        let bits = |g: &Mat<f64>| {
            (0..n)
                .flat_map(|j| (j..n).map(move |i| (i, j)))
                .map(|(i, j)| g[(i, j)].to_bits())
                .collect::<Vec<_>>()
        };
        let mut whole = Mat::<f64>::zeros(n, n);
        assert_eq!(add_gram_rows(&a, 0, &mut whole, || true, par()), 6);
        for split in 0..=6 {
            let mut gram = Mat::<f64>::zeros(n, n);
            let count = std::cell::Cell::new(0);
            let more = || {
                count.set(count.get() + 1);
                count.get() <= split
            };
            let added = add_gram_rows(&a, 0, &mut gram, more, Par::Seq);
            assert_eq!(added, split);
            assert_eq!(add_gram_rows(&a, added, &mut gram, || true, par()), 6);
            assert_eq!(bits(&gram), bits(&whole), "split after {split} blocks");
        }
    }

    /// The panelled basis is `X L` for a lower-trapezoidal `L` spanning several panels and a
    /// rank below `n`, over more rows than one block.
    #[test]
    fn basis_is_the_product_with_the_trapezoid() {
        let (rows, c_in, r) = (BASIS_CHUNK + 77, 2 * BASIS_PANEL + 21, 2 * BASIS_PANEL + 9);
        let n = c_in + 1;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let data: Vec<f32> = (0..rows * c_in).map(|_| next() as f32).collect();
        let mut l = vec![0.0; n * r];
        for i in 0..n {
            for j in 0..r.min(i + 1) {
                l[i * r + j] = next();
            }
        }
        let a = Features::new(&data, rows, c_in).unwrap();
        let q = Faer.basis(&a, &l, r).unwrap();
        assert_eq!(q.len(), rows * r);
        for row in 0..rows {
            let x = |k: usize| {
                if k < c_in {
                    f64::from(data[row * c_in + k])
                } else {
                    1.0
                }
            };
            for j in 0..r {
                let (exact, size) = (j..n).fold((0.0_f64, 0.0_f64), |(sum, size), k| {
                    let term = x(k) * l[k * r + j];
                    (sum + term, size + term.abs())
                });
                let err = (f64::from(q[row * r + j]) - exact).abs();
                assert!(
                    err <= f64::from(f32::EPSILON) * exact.abs() + 1e-12 * size,
                    "Q[{row}][{j}] = {}, X L = {exact}",
                    q[row * r + j]
                );
            }
        }
    }
}
