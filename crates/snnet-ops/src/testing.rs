//! What the tests of the ops share: tracked leaves, a backward pass, a comparison at 1e-5.

use burn::tensor::{Gradients, Tensor, TensorData, Tolerance};

use crate::Kernels;

/// A fresh leaf of `t` whose gradient is kept.
pub(crate) fn leaf<const D: usize>(t: &Tensor<D>) -> Tensor<D> {
    t.clone().detach().require_grad()
}

/// The gradients of `Σ out ⊙ w` for a fixed, non-constant `w` (a sum alone would give attention
/// zero gradients with respect to q and k: softmax rows sum to one).
pub(crate) fn backward<const D: usize>(out: &Tensor<D>) -> Gradients {
    let dims = out.dims();
    let len = dims.iter().product::<usize>();
    #[allow(clippy::cast_precision_loss)]
    let values: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
    let weight = Tensor::<D>::from_data(TensorData::new(values, dims.to_vec()), &out.device());
    (out.clone() * weight).sum().backward()
}

/// The gradient of `t` in `grads` (the test fails without one).
#[allow(clippy::expect_used)] // test-only: a missing gradient fails the test
pub(crate) fn grad<const D: usize>(t: &Tensor<D>, grads: &Gradients) -> Tensor<D> {
    t.grad(grads).expect("a gradient")
}

/// `a` and `b` equal to 1e-5 (absolute), as Burn's `assert_approx_eq` checks it.
pub(crate) fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>) {
    assert_eq!(a.dims(), b.dims());
    a.into_data()
        .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-5));
}

/// `run`'s outputs (a value and its gradients) on the fused kernels equal its outputs on the
/// generic path, pair by pair, with [`assert_close`].
pub(crate) fn assert_paths_agree<const D: usize, const N: usize>(
    run: impl Fn(Kernels) -> [Tensor<D>; N],
) {
    for (fused, generic) in run(Kernels::Fused).into_iter().zip(run(Kernels::Generic)) {
        assert_close(fused, generic);
    }
}
