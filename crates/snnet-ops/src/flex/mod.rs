//! The Flex-specialised kernels: Burn's CPU backend, f32.
//!
//! Each kernel returns `None` where it does not apply — another backend, another dtype, autodiff
//! for the inference-only kernels, a checkpointing strategy, a shape it does not handle — and the
//! op in the crate root then runs its generic path. One file per op; the vectorised maths
//! ([`simd`]) and the parallel output writer ([`parallel`]) are shared. Every Burn internal used
//! here is listed in the crate's documentation (`Burn internals`).

use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod linear;
pub(crate) mod norm;
mod parallel;
pub(crate) mod pool;
mod simd;
pub(crate) mod window;

/// Rows per parallel chunk of the element-wise passes.
const ROWS_PER_CHUNK: usize = 16;

/// A Flex f32 primitive of `t`, or `None` off Flex, under autodiff or in another dtype.
fn primitive<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let p = t.clone().try_into_primitive::<Flex>().ok()?;
    (p.dtype() == DType::F32).then_some(p)
}

/// A fused op's backward pass: Burn's [`Backward`] on Flex without the checkpointer, which the
/// fused ops never use (they run with [`NoCheckpointing`] only). [`record`] wraps the op in
/// [`Fused`], the one `Backward` implementation.
trait FusedBackward<const N: usize>: Send + std::fmt::Debug + Sized + 'static {
    /// What the backward pass reads, kept from the forward pass.
    type State: Clone + Send + std::fmt::Debug + 'static;

    /// Registers the gradients of the op's parents from the output's.
    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients);
}

/// A [`FusedBackward`] op as Burn's [`Backward`].
#[derive(Debug)]
struct Fused<Op>(Op);

impl<Op: FusedBackward<N>, const N: usize> Backward<Flex, N> for Fused<Op> {
    type State = Op::State;

    fn backward(self, ops: Ops<Op::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        self.0.backward(ops, grads);
    }
}

/// Records a fused op on Flex under autodiff: `op` over its inputs' `nodes`, its output from
/// `run(tracked)`, which also returns the state the backward pass reads when `tracked` (an
/// untracked call, e.g. under `no_grad`, computes none). `None` where `run` gives none. The one
/// place the fused ops enter Burn's autodiff graph.
fn record<Op, const N: usize, const D: usize>(
    op: Op,
    nodes: [NodeGuard; N],
    run: impl FnOnce(bool) -> Option<(FlexTensor, Option<Op::State>)>,
) -> Option<Tensor<D>>
where
    Op: FusedBackward<N>,
{
    let output = match Fused(op)
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, state) = run(true)?;
            prep.finish(state?, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(false)?.0),
    };
    Some(Tensor::from_primitive::<Autodiff<Flex>>(output))
}

/// The values of a contiguous view, or of a contiguous copy.
fn contiguous(p: FlexTensor) -> FlexTensor {
    if p.as_slice::<f32>().is_some() {
        p
    } else {
        p.to_contiguous()
    }
}

/// A Flex tensor of `values` (row-major) in `shape`.
fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The f32 values of a tensor: borrowed when contiguous f32, converted otherwise.
fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().into_data().iter::<f32>().collect()),
    }
}

/// A value kept for a backward pass; its debug output names no values (they can be
/// megabytes).
#[derive(Clone)]
struct Kept<T>(T);

impl<T> std::fmt::Debug for Kept<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kept(..)")
    }
}
