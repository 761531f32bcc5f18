//! [`crate::layer_norm`] on Flex under autodiff (with a bias): one tracked op over rows whose
//! backward is one pass.

use std::sync::Arc;

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::{FusedBackward, Kept, ROWS_PER_CHUNK, contiguous, flex_tensor, record, values};

pub(crate) fn layer_norm_autodiff<const D: usize>(
    norm: &burn::nn::LayerNorm,
    epsilon: f64,
    x: &Tensor<D>,
) -> Option<Tensor<D>> {
    let beta = norm.beta.as_ref()?.val();
    let shape = x.dims().to_vec();
    let c = *shape.last()?;
    if c == 0 || norm.gamma.dims() != [c] || beta.dims() != [c] {
        return None;
    }
    let tracked = |t: Tensor<D>| t.try_into_primitive::<Autodiff<Flex>>().ok();
    let (xp, x_node) = tracked(x.clone())?.into_parts();
    let (gp, g_node) = norm
        .gamma
        .val()
        .try_into_primitive::<Autodiff<Flex>>()
        .ok()?
        .into_parts();
    let (bp, b_node) = beta
        .try_into_primitive::<Autodiff<Flex>>()
        .ok()?
        .into_parts();
    if [&xp, &gp, &bp].iter().any(|p| p.dtype() != DType::F32) {
        return None;
    }
    let (xp, gp, bp) = (contiguous(xp), contiguous(gp), contiguous(bp));
    let (xs, gamma, beta) = (
        xp.as_slice::<f32>()?,
        gp.as_slice::<f32>()?,
        bp.as_slice::<f32>()?,
    );
    let rows = xs.len() / c;
    #[allow(clippy::cast_possible_truncation)]
    let eps = epsilon as f32;
    #[allow(clippy::cast_precision_loss)]
    let inv_c = (c as f32).recip();
    let mut out = vec![0.0f32; xs.len()];
    let mut xhat = vec![0.0f32; xs.len()];
    let mut rstd = vec![0.0f32; rows];
    out.par_chunks_mut(c * ROWS_PER_CHUNK)
        .zip(xhat.par_chunks_mut(c * ROWS_PER_CHUNK))
        .zip(rstd.par_chunks_mut(ROWS_PER_CHUNK))
        .zip(xs.par_chunks(c * ROWS_PER_CHUNK))
        .for_each(|(((out, xhat), rstd), xs)| {
            let rows = out.chunks_mut(c).zip(xhat.chunks_mut(c));
            for (((o, h), r), x) in rows.zip(rstd.iter_mut()).zip(xs.chunks(c)) {
                let mean = x.iter().sum::<f32>() * inv_c;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() * inv_c;
                *r = (var + eps).sqrt().recip();
                for ((o, h), (&v, (&g, &b))) in o
                    .iter_mut()
                    .zip(h.iter_mut())
                    .zip(x.iter().zip(gamma.iter().zip(beta)))
                {
                    *h = (v - mean) * *r;
                    *o = *h * g + b;
                }
            }
        });
    let out = flex_tensor(out, shape);
    record(FusedLayerNorm, [x_node, g_node, b_node], |tracked| {
        let state = tracked.then(|| LayerNormState {
            xhat: Kept(Arc::new(xhat)),
            rstd: Kept(Arc::new(rstd)),
            gamma: Kept(Arc::new(gamma.to_vec())),
        });
        Some((out, state))
    })
}

/// The tracked op of [`layer_norm_autodiff`].
#[derive(Debug)]
struct FusedLayerNorm;

/// What LayerNorm's backward pass reads: the normalised input, each row's `1/σ`, the scale.
#[derive(Clone, Debug)]
struct LayerNormState {
    xhat: Kept<Arc<Vec<f32>>>,
    rstd: Kept<Arc<Vec<f32>>>,
    gamma: Kept<Arc<Vec<f32>>>,
}

impl FusedBackward<3> for FusedLayerNorm {
    type State = LayerNormState;

    /// With `ĝ = g·γ`: `dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))/σ`, `dγ = Σ_rows g·x̂`,
    /// `dβ = Σ_rows g` (row-chunk partial sums added in chunk order: deterministic).
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients) {
        let (Kept(xhat), Kept(rstd), Kept(gamma)) =
            (ops.state.xhat, ops.state.rstd, ops.state.gamma);
        let [x_parent, g_parent, b_parent] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let shape = grad.layout().shape().to_vec();
        let g = values(&grad);
        let c = gamma.len();
        #[allow(clippy::cast_precision_loss)]
        let inv_c = (c as f32).recip();
        let chunk = c * ROWS_PER_CHUNK;
        if let Some(node) = x_parent {
            let mut dx = vec![0.0f32; g.len()];
            dx.par_chunks_mut(chunk)
                .zip(g.par_chunks(chunk))
                .zip(xhat.par_chunks(chunk))
                .zip(rstd.par_chunks(ROWS_PER_CHUNK))
                .for_each(|(((dx, g), xhat), rstd)| {
                    let rows = dx.chunks_mut(c).zip(g.chunks(c)).zip(xhat.chunks(c));
                    for (((dx, g), h), &r) in rows.zip(rstd) {
                        let (mut m1, mut m2) = (0.0f32, 0.0f32);
                        for ((&g, &w), &h) in g.iter().zip(gamma.iter()).zip(h) {
                            m1 += g * w;
                            m2 += g * w * h;
                        }
                        let (m1, m2) = (m1 * inv_c, m2 * inv_c);
                        for ((d, (&g, &w)), &h) in
                            dx.iter_mut().zip(g.iter().zip(gamma.iter())).zip(h)
                        {
                            *d = (g * w - m1 - h * m2) * r;
                        }
                    }
                });
            grads.register::<Flex>(node.id, flex_tensor(dx, shape));
        }
        if g_parent.is_some() || b_parent.is_some() {
            let partials: Vec<(Vec<f32>, Vec<f32>)> = g
                .par_chunks(chunk)
                .zip(xhat.par_chunks(chunk))
                .map(|(g, xhat)| {
                    let (mut dg, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
                    for (g, h) in g.chunks(c).zip(xhat.chunks(c)) {
                        for (((dg, db), &g), &h) in dg.iter_mut().zip(db.iter_mut()).zip(g).zip(h) {
                            *dg += g * h;
                            *db += g;
                        }
                    }
                    (dg, db)
                })
                .collect();
            let (mut dg, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
            for (pg, pb) in &partials {
                dg.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
                db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
            }
            if let Some(node) = g_parent {
                grads.register::<Flex>(node.id, flex_tensor(dg, vec![c]));
            }
            if let Some(node) = b_parent {
                grads.register::<Flex>(node.id, flex_tensor(db, vec![c]));
            }
        }
    }
}
