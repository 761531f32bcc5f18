//! The same kernels through ndarray (BLAS `dgemm`) and ndarray-linalg (LAPACK `dsyevd`).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use ndarray_linalg::{Eigh, QR, UPLO};

use crate::error::SolverFailure;
use crate::kernel::{
    Kernel, add_widened, basis_chunks, fill_augmented, for_each_block, mixed_blocks, row_chunks,
    sum_rows_f32,
};
use crate::{Error, Features, Result};

/// The BLAS/LAPACK backend (system OpenBLAS).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lapack;

fn fail(reason: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Solver {
        backend: "lapack",
        reason: SolverFailure::Backend(Box::new(reason)),
    }
}

fn view<T>(data: &[T], rows: usize, cols: usize) -> Result<ArrayView2<'_, T>> {
    ArrayView2::from_shape((rows, cols), data).map_err(fail)
}

fn into_row_major(m: Array2<f64>) -> Vec<f64> {
    if m.is_standard_layout() {
        m.into_raw_vec_and_offset().0
    } else {
        m.iter().copied().collect()
    }
}

impl Kernel for Lapack {
    fn name(&self) -> &'static str {
        "lapack"
    }

    /// Eigenvalues (ascending) and eigenvectors (columns, n×n row-major) of `XᵀX`.
    fn gram_eigh(&self, a: &Features<'_>) -> Result<(Vec<f64>, Vec<f64>)> {
        let n = a.cols + 1;
        let mut gram = Array2::<f64>::zeros((n, n));
        let mut buf = Vec::new();
        for (start, len) in row_chunks(a.rows) {
            fill_augmented(a, start, len, &mut buf);
            let x = view(&buf, len, n)?;
            general_mat_mul(1.0, &x.t(), &x, 1.0, &mut gram);
        }
        let (values, vectors) = gram.eigh(UPLO::Lower).map_err(fail)?;
        Ok((values.to_vec(), into_row_major(vectors)))
    }

    /// `U Uᵀ` for `U` (`n × r` row-major), `n × n` row-major.
    fn outer(&self, u: &[f64], n: usize, r: usize) -> Result<Vec<f64>> {
        let u = view(u, n, r)?;
        Ok(into_row_major(u.dot(&u.t())))
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
        let mut cross = Array2::<f64>::zeros((n, c_out));
        for_each_block(a, targets, |len, xbuf, bbuf| {
            let x = view(xbuf, len, n)?;
            let y = view(bbuf, len, c_out)?;
            general_mat_mul(1.0, &x.t(), &y, 1.0, &mut cross);
            Ok(())
        })?;
        let p = view(projector, n, n)?;
        Ok(into_row_major(p.dot(&cross)))
    }

    /// `Rᵀ` of the QR factorisation `Wᵀ = O R` (LAPACK `dgeqrf`), `n × r` row-major.
    fn lower_factor(&self, w: &[f64], n: usize, r: usize) -> Result<Vec<f64>> {
        if r == 0 {
            return Ok(Vec::new());
        }
        let (_, upper) = view(w, n, r)?.t().qr().map_err(fail)?;
        let mut l = vec![0.0; n * r];
        for i in 0..n {
            for j in 0..r.min(i + 1) {
                l[i * r + j] = upper[(j, i)];
            }
        }
        Ok(l)
    }

    /// `Q = X L` rounded to f32 (`dgemm`, the triangle's zeros included), `m × r` row-major.
    fn basis(&self, a: &Features<'_>, l: &[f64], r: usize) -> Result<Vec<f32>> {
        let n = a.cols + 1;
        let l = view(l, n, r)?;
        let mut out = Vec::with_capacity(a.rows * r);
        let mut xbuf = Vec::new();
        for (start, len) in basis_chunks(a.rows) {
            fill_augmented(a, start, len, &mut xbuf);
            let q = view(&xbuf, len, n)?.dot(&l);
            out.extend(q.iter().map(|&v| v as f32));
        }
        Ok(out)
    }

    /// `C = Qᵀ B` from `Q` (f32, `m × r`): f32 products (`sgemm`) over row blocks, summed in
    /// f64. `r × c_out` row-major.
    fn solve_mixed(&self, basis: &[f32], r: usize, targets: &[Features<'_>]) -> Result<Vec<f64>> {
        let (rows, c_out) = targets.first().map_or((0, 0), |b| (b.rows, b.cols));
        let mut acc = vec![0.0_f64; r * c_out];
        let mut part = vec![0.0_f32; r * c_out];
        let mut sum = Vec::new();
        for (start, len) in mixed_blocks(rows) {
            let q = view(&basis[start * r..(start + len) * r], len, r)?;
            let y = view(sum_rows_f32(targets, start, len, &mut sum), len, c_out)?;
            let mut out = ArrayViewMut2::from_shape((r, c_out), &mut part[..]).map_err(fail)?;
            general_mat_mul(1.0, &q.t(), &y, 0.0, &mut out);
            add_widened(&mut acc, &part);
        }
        Ok(acc)
    }

    /// `M = L C` (`dgemm`), `n × c_out` row-major.
    fn lift(&self, l: &[f64], n: usize, r: usize, c: &[f64], c_out: usize) -> Result<Vec<f64>> {
        Ok(into_row_major(view(l, n, r)?.dot(&view(c, r, c_out)?)))
    }
}
