//! The same kernels through ndarray (BLAS `dgemm`) and ndarray-linalg (LAPACK `dsyevd`).

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use ndarray_linalg::{Eigh, UPLO};

use crate::error::SolverFailure;
use crate::kernel::{
    Kernel, fill_augmented, for_each_block, mixed_blocks, row_chunks, sum_rows_f32,
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

    /// `pinv(X)ᵀ = X P` rounded to f32, `m × (c_in+1)` row-major.
    fn pinv_t(&self, a: &Features<'_>, projector: &[f64]) -> Result<Vec<f32>> {
        let n = a.cols + 1;
        let p = view(projector, n, n)?;
        let mut out = Vec::with_capacity(a.rows * n);
        let mut xbuf = Vec::new();
        for (start, len) in row_chunks(a.rows) {
            fill_augmented(a, start, len, &mut xbuf);
            let q = view(&xbuf, len, n)?.dot(&p);
            out.extend(q.iter().map(|&v| v as f32));
        }
        Ok(out)
    }

    /// `M = pinv(X) B` from `pinv(X)ᵀ` (f32, `m × n`): f32 products (`sgemm`) over row blocks,
    /// summed in f64. `n × c_out` row-major.
    fn solve_mixed(&self, pinv_t: &[f32], n: usize, targets: &[Features<'_>]) -> Result<Vec<f64>> {
        let (rows, c_out) = targets.first().map_or((0, 0), |b| (b.rows, b.cols));
        let mut acc = vec![0.0_f64; n * c_out];
        let mut part = Array2::<f32>::zeros((n, c_out));
        let mut sum = Vec::new();
        for (start, len) in mixed_blocks(rows) {
            let q = view(&pinv_t[start * n..(start + len) * n], len, n)?;
            let y = view(sum_rows_f32(targets, start, len, &mut sum), len, c_out)?;
            general_mat_mul(1.0, &q.t(), &y, 0.0, &mut part);
            for (a, &v) in acc.iter_mut().zip(part.iter()) {
                *a += f64::from(v);
            }
        }
        Ok(acc)
    }
}
