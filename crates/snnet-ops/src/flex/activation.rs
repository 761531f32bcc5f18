//! [`crate::gelu`] on Flex under autodiff: one tracked op, vectorised and parallel, whose
//! backward is one pass too.

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::simd::{GeluGrad, GeluInPlace};
use super::{FusedBackward, Kept, contiguous, flex_tensor, record, values};

/// Elements per parallel chunk of the GELU passes.
const GELU_CHUNK: usize = 16 * 1024;

pub(crate) fn gelu_autodiff<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    let tracked = x.clone().try_into_primitive::<Autodiff<Flex>>().ok()?;
    let (primitive, node) = tracked.into_parts();
    if primitive.dtype() != DType::F32 {
        return None;
    }
    let shape = x.dims().to_vec();
    let input = contiguous(primitive);
    let mut out = input.as_slice::<f32>()?.to_vec();
    out.par_chunks_mut(GELU_CHUNK)
        .for_each(|chunk| pulp::Arch::new().dispatch(GeluInPlace(chunk)));
    let out = flex_tensor(out, shape.clone());
    record(FusedGelu, [node], |tracked| {
        let state = tracked.then(|| GeluState {
            input: Kept(input),
            shape,
        });
        Some((out, state))
    })
}

/// The tracked op of [`gelu_autodiff`].
#[derive(Debug)]
struct FusedGelu;

/// What GELU's backward pass reads: its input.
#[derive(Clone, Debug)]
struct GeluState {
    input: Kept<FlexTensor>,
    shape: Vec<usize>,
}

impl FusedBackward<1> for FusedGelu {
    type State = GeluState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients) {
        let (Kept(input), shape) = (ops.state.input, ops.state.shape);
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let mut g = values(&contiguous(grad)).into_owned();
            let x = values(&input);
            g.par_chunks_mut(GELU_CHUNK)
                .zip(x.par_chunks(GELU_CHUNK))
                .for_each(|(g, x)| pulp::Arch::new().dispatch(GeluGrad { g, x }));
            flex_tensor(g, shape)
        });
    }
}
