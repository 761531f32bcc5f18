//! The solver's result: an affine map, and the mean the reference takes over cuts that share a
//! stitching layer.

use crate::error::{Error, Result, ShapeError};
use crate::features::Features;

/// An affine map `y = W x + b`: a stitching layer's least-squares initialisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    /// `W`, `[out_features, in_features]` row-major (PyTorch's `nn.Linear.weight` layout).
    pub weight: Vec<f64>,
    /// `b`, `[out_features]`.
    pub bias: Vec<f64>,
    /// Input channels (the front anchor's width).
    pub in_features: usize,
    /// Output channels (the end anchor's width).
    pub out_features: usize,
}

impl Affine {
    /// The element-wise mean of several solutions of the same shape, as the reference initialises
    /// a stitching layer shared by several cuts (`torch.stack(...).mean(0)` of `W` and of `b`).
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `parts` is empty or the parts' shapes differ.
    pub fn mean(parts: &[Affine]) -> Result<Affine> {
        Self::mean_of_sums(parts, parts.len())
    }

    /// The mean of `count` solutions given as partial sums: `(Σ parts) / count`, where each part
    /// is one solution or the sum of several ([`SourceSystem::solve_sum`](crate::SourceSystem::solve_sum)
    /// of the cuts of a layer that share a source). With every part a single solution it is
    /// [`mean`](Self::mean).
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `parts` is empty, `count` is 0 or the parts' shapes differ.
    pub fn mean_of_sums(parts: &[Affine], count: usize) -> Result<Affine> {
        let (Some(first), 1..) = (parts.first(), count) else {
            return Err(Error::Shape(ShapeError::NoSolutions));
        };
        let mut out = Affine {
            weight: vec![0.0; first.weight.len()],
            bias: vec![0.0; first.bias.len()],
            in_features: first.in_features,
            out_features: first.out_features,
        };
        for part in parts {
            if (part.in_features, part.out_features) != (out.in_features, out.out_features)
                || part.weight.len() != out.weight.len()
                || part.bias.len() != out.bias.len()
            {
                return Err(Error::Shape(ShapeError::MeanMismatch {
                    in_features: part.in_features,
                    out_features: part.out_features,
                    first_in: out.in_features,
                    first_out: out.out_features,
                }));
            }
            for (acc, v) in out.weight.iter_mut().zip(&part.weight) {
                *acc += v;
            }
            for (acc, v) in out.bias.iter_mut().zip(&part.bias) {
                *acc += v;
            }
        }
        let count = count as f64;
        out.weight
            .iter_mut()
            .chain(out.bias.iter_mut())
            .for_each(|v| *v /= count);
        Ok(out)
    }

    /// `W` rounded to f32, `[out_features, in_features]` row-major.
    pub fn weight_f32(&self) -> Vec<f32> {
        self.weight.iter().map(|&v| v as f32).collect()
    }

    /// `b` rounded to f32, `[out_features]`.
    pub fn bias_f32(&self) -> Vec<f32> {
        self.bias.iter().map(|&v| v as f32).collect()
    }

    /// Applies the map to every row of `x`: `x Wᵀ + b` (accumulated in f64), `x.rows() ×
    /// out_features` row-major. Meant for checks, not speed.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `x` does not have `in_features` columns.
    pub fn apply(&self, x: &Features<'_>) -> Result<Vec<f32>> {
        if x.cols != self.in_features {
            return Err(Error::Shape(ShapeError::ApplyWidth {
                in_features: self.in_features,
                out_features: self.out_features,
                cols: x.cols,
            }));
        }
        let mut out = Vec::with_capacity(x.rows * self.out_features);
        for r in 0..x.rows {
            let row = &x.data[r * x.cols..(r + 1) * x.cols];
            for (o, bias) in self.bias.iter().enumerate() {
                let w = &self.weight[o * self.in_features..(o + 1) * self.in_features];
                let dot: f64 = row.iter().zip(w).map(|(&x, &w)| f64::from(x) * w).sum();
                out.push((dot + bias) as f32);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_solutions() {
        let one = Affine {
            weight: vec![1.0, 2.0],
            bias: vec![3.0],
            in_features: 2,
            out_features: 1,
        };
        let two = Affine {
            weight: vec![3.0, 0.0],
            bias: vec![-1.0],
            in_features: 2,
            out_features: 1,
        };
        let mean = Affine::mean(&[one.clone(), two]).unwrap();
        assert_eq!(mean.weight, vec![2.0, 1.0]);
        assert_eq!(mean.bias, vec![1.0]);
        assert_eq!(Affine::mean(std::slice::from_ref(&one)).unwrap(), one);
        assert!(matches!(
            Affine::mean(&[]),
            Err(Error::Shape(ShapeError::NoSolutions))
        ));
        let other = Affine {
            weight: vec![1.0],
            bias: vec![0.0],
            in_features: 1,
            out_features: 1,
        };
        assert!(matches!(
            Affine::mean(&[one, other]),
            Err(Error::Shape(ShapeError::MeanMismatch {
                in_features: 1,
                out_features: 1,
                first_in: 2,
                first_out: 1
            }))
        ));
    }
}
