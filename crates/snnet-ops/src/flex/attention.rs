//! [`crate::attention`] and [`crate::window_attention`] on Flex: one task per (item, head),
//! q, k and v read in place; under autodiff (no bias) one tracked op with its own backward.

use std::sync::Arc;

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, BackendTypes, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::parallel::zeros;
use super::simd::{SoftmaxRows, dot};
use super::{FusedBackward, Kept, contiguous, flex_tensor, primitive, record, values};

pub(crate) fn attention(
    qkv: &Tensor<3>,
    heads: usize,
    bias: Option<&Tensor<4>>,
) -> Option<Tensor<3>> {
    let dims = AttentionDims::new(qkv.dims().to_vec(), heads)?;
    if bias.is_none()
        && let Ok(tracked) = qkv.clone().try_into_primitive::<Autodiff<Flex>>()
    {
        return attention_autodiff(tracked, dims);
    }
    let p = contiguous(primitive(qkv)?);
    let s = p.as_slice::<f32>()?;
    let bias = match bias {
        Some(t) => {
            let [w, bh, bn, bm] = t.dims();
            if w == 0 || dims.b % w != 0 || bh != heads || bn != dims.n || bm != dims.n {
                return None;
            }
            Some((contiguous(primitive(t)?), w))
        }
        None => None,
    };
    let bias = match &bias {
        Some((p, w)) => Some((p.as_slice::<f32>()?, *w)),
        None => None,
    };
    let out = attention_forward(s, dims, bias, None);
    Some(Tensor::from_primitive::<Flex>(FlexTensor::from_data(
        TensorData::new(out, dims.out_shape()),
    )))
}

/// The sizes of one attention call: `[b, n, 3c]` in, `heads` heads of `d = c / heads`.
#[derive(Debug, Clone, Copy)]
struct AttentionDims {
    b: usize,
    n: usize,
    c: usize,
    heads: usize,
}

impl AttentionDims {
    /// `None` unless `shape` is `[b, n, 3c]` with `c` a multiple of `heads` and no empty axis.
    fn new(shape: Vec<usize>, heads: usize) -> Option<Self> {
        let [b, n, c3] = <[usize; 3]>::try_from(shape).ok()?;
        if heads == 0 || c3 % (3 * heads) != 0 || n == 0 || b == 0 {
            return None;
        }
        b.checked_mul(n)?.checked_mul(c3)?.checked_mul(heads)?;
        Some(Self {
            b,
            n,
            c: c3 / 3,
            heads,
        })
    }

    fn d(self) -> usize {
        self.c / self.heads
    }

    #[allow(clippy::cast_precision_loss)]
    fn scale(self) -> f32 {
        (self.d() as f32).sqrt().recip()
    }

    fn out_shape(self) -> Vec<usize> {
        vec![self.b, self.n, self.c]
    }
}

/// `softmax(q·kᵀ/√d + bias)·v` of every (item, head), one parallel task each, q, k and v
/// read in place from `qkv` (`[b, n, 3c]`, row-major); each head written straight into its
/// columns of the `[b, n, c]` output. With `probs` (`[b, heads, n, n]`) the softmax
/// probabilities are kept there for the backward pass.
fn attention_forward(
    s: &[f32],
    dims: AttentionDims,
    bias: Option<(&[f32], usize)>,
    probs: Option<&mut [f32]>,
) -> Vec<f32> {
    let AttentionDims { b, n, c, heads } = dims;
    let (d, c3, scale) = (dims.d(), 3 * c, dims.scale());
    let mut out = zeros(b * n * c);
    let mut prob_chunks = probs.map(|p| p.chunks_mut(n * n));
    // One output view per (item, head): the head's d columns of the item's [N, C].
    let mut tasks = Vec::with_capacity(b * heads);
    for (item, chunk) in out.chunks_mut(n * c).enumerate() {
        let mut rest = MatMut::from_row_major_slice_mut(chunk, n, c);
        for h in 0..heads {
            let (head, tail) = rest.split_at_col_mut(d);
            let kept = prob_chunks.as_mut().and_then(Iterator::next);
            tasks.push((item, h, head, kept));
            rest = tail;
        }
    }
    tasks.into_par_iter().for_each(|(item, h, o, kept)| {
        let x = MatRef::from_row_major_slice(&s[item * n * c3..(item + 1) * n * c3], n, c3);
        let q = x.subcols(h * d, d);
        let k = x.subcols(c + h * d, d);
        let v = x.subcols(2 * c + h * d, d);
        let mut local = Vec::new();
        let scores = match kept {
            Some(p) => p,
            None => {
                local.resize(n * n, 0.0f32);
                &mut local[..]
            }
        };
        faer::linalg::matmul::matmul(
            MatMut::from_row_major_slice_mut(scores, n, n),
            Accum::Replace,
            q,
            k.transpose(),
            scale,
            Par::Seq,
        );
        let bias = bias.and_then(|(values, w)| {
            let start = ((item % w) * heads + h) * n * n;
            values.get(start..start + n * n)
        });
        pulp::Arch::new().dispatch(SoftmaxRows { scores, bias, n });
        let probs = MatRef::from_row_major_slice(scores, n, n);
        faer::linalg::matmul::matmul(o, Accum::Replace, probs, v, 1.0f32, Par::Seq);
    });
    out
}

/// The gradient of [`attention_forward`] (no bias) with respect to `qkv`, from the kept
/// probabilities `P` and the output's gradient `G`, per (item, head): `dV = Pᵀ·G`,
/// `dS = P ⊙ (G·Vᵀ − rowsum(P ⊙ G·Vᵀ))`, `dQ = dS·K/√d`, `dK = dSᵀ·Q/√d`, each written
/// into its columns of the `[b, n, 3c]` gradient.
fn attention_backward(s: &[f32], probs: &[f32], grad: &[f32], dims: AttentionDims) -> Vec<f32> {
    let AttentionDims { b, n, c, heads } = dims;
    let (d, c3, scale) = (dims.d(), 3 * c, dims.scale());
    let mut dqkv = vec![0.0f32; b * n * c3];
    let mut tasks = Vec::with_capacity(b * heads);
    for (item, chunk) in dqkv.chunks_mut(n * c3).enumerate() {
        let all = MatMut::from_row_major_slice_mut(chunk, n, c3);
        let (mut dq, rest) = all.split_at_col_mut(c);
        let (mut dk, mut dv) = rest.split_at_col_mut(c);
        for h in 0..heads {
            let (q_head, q_rest) = dq.split_at_col_mut(d);
            let (k_head, k_rest) = dk.split_at_col_mut(d);
            let (v_head, v_rest) = dv.split_at_col_mut(d);
            tasks.push((item, h, q_head, k_head, v_head));
            (dq, dk, dv) = (q_rest, k_rest, v_rest);
        }
    }
    tasks.into_par_iter().for_each(|(item, h, dq, dk, dv)| {
        let x = MatRef::from_row_major_slice(&s[item * n * c3..(item + 1) * n * c3], n, c3);
        let q = x.subcols(h * d, d);
        let k = x.subcols(c + h * d, d);
        let v = x.subcols(2 * c + h * d, d);
        let g = MatRef::from_row_major_slice(&grad[item * n * c..(item + 1) * n * c], n, c)
            .subcols(h * d, d);
        let kept = &probs[(item * heads + h) * n * n..(item * heads + h + 1) * n * n];
        let p = MatRef::from_row_major_slice(kept, n, n);
        mp(dv, p.transpose(), g, 1.0f32);
        let mut ds = vec![0.0f32; n * n];
        mp(
            MatMut::from_row_major_slice_mut(&mut ds, n, n),
            g,
            v.transpose(),
            1.0f32,
        );
        for (row, p_row) in ds.chunks_mut(n).zip(kept.chunks(n)) {
            let dot = dot(row, p_row);
            row.iter_mut()
                .zip(p_row)
                .for_each(|(v, &p)| *v = p * (*v - dot));
        }
        let ds = MatRef::from_row_major_slice(&ds, n, n);
        mp(dq, ds, k, scale);
        mp(dk, ds.transpose(), q, scale);
    });
    dqkv
}

/// `dst = alpha·lhs·rhs` on the calling thread.
fn mp(dst: MatMut<'_, f32>, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>, alpha: f32) {
    faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, alpha, Par::Seq);
}

/// Attention under autodiff on Flex (training): the forward above as one tracked op whose
/// backward is [`attention_backward`], in place of Burn's decomposition (reshape, permute,
/// three narrowed copies, two batched products, a five-op softmax — each recorded and
/// differentiated separately). `None` (Burn's ops run) outside f32 or with a checkpointing
/// strategy other than none.
fn attention_autodiff(
    qkv: <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive,
    dims: AttentionDims,
) -> Option<Tensor<3>> {
    let (primitive, node) = qkv.into_parts();
    if primitive.dtype() != DType::F32 {
        return None;
    }
    let p = contiguous(primitive);
    record(FusedAttention, [node], move |tracked| {
        let mut probs = tracked.then(|| vec![0.0f32; dims.b * dims.heads * dims.n * dims.n]);
        let out = attention_forward(p.as_slice::<f32>()?, dims, None, probs.as_deref_mut());
        let state = probs.map(|probs| AttentionState {
            qkv: Kept(p),
            probs: Kept(Arc::new(probs)),
            dims,
        });
        Some((flex_tensor(out, dims.out_shape()), state))
    })
}

/// The tracked op of [`attention_autodiff`].
#[derive(Debug)]
struct FusedAttention;

/// What the backward pass reads: the input and the softmax probabilities.
#[derive(Clone, Debug)]
struct AttentionState {
    qkv: Kept<FlexTensor>,
    probs: Kept<Arc<Vec<f32>>>,
    dims: AttentionDims,
}

impl FusedBackward<1> for FusedAttention {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients) {
        let (Kept(qkv), Kept(probs), dims) = (ops.state.qkv, ops.state.probs, ops.state.dims);
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let grad = contiguous(grad);
            let dqkv = attention_backward(&values(&qkv), &probs, &values(&grad), dims);
            flex_tensor(dqkv, vec![dims.b, dims.n, 3 * dims.c])
        });
    }
}
