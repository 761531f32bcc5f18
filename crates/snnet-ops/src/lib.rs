//! Fused tensor ops for snnet-rs on Burn: each a named op with a **generic Burn implementation**
//! (every backend: Flex, NdArray, wgpu, CUDA, LibTorch; autodiff) and, behind it, a
//! **Flex-specialised CPU kernel** taken where it applies.
//!
//! | op | fused on Flex (f32) | generic path |
//! |---|---|---|
//! | [`linear`] with an [`Epilogue`] | inference: one GEMM over all rows, bias / GELU / residual in its output | [`linear_rows`] with the layer's weight and bias, [`gelu`], add |
//! | [`linear_rows`] | — | [`burn::tensor::module::linear`] on the input flattened to `[rows, C_in]`: one product over all rows, forward and backward |
//! | [`attention`] | inference and autodiff: per (item, head), q/k/v read in place; own backward | [`burn::tensor::module::attention`] |
//! | [`window_attention`] | inference: as [`attention`], plus a bias per window | [`burn::tensor::module::attention`] with the bias |
//! | [`gelu`] | autodiff: vectorised, one-pass backward | [`burn::tensor::activation::gelu`] |
//! | [`layer_norm`] | autodiff (with a bias): one pass each way | [`LayerNorm::forward`](burn::nn::LayerNorm::forward) |
//! | [`conv_bn`] | inference: GEMM per image, BN/residual/ReLU in one pass | [`Conv2d::forward`](burn::nn::conv::Conv2d::forward), [`BatchNorm::forward`](burn::nn::BatchNorm::forward), add, ReLU |
//! | [`max_pool2d`] | inference: one pass into the output | [`burn::tensor::module::max_pool2d`] |
//! | [`window_partition`], [`window_merge_add`] ([`Windows`]) | inference: one gather pass each | reshape, roll, permute (, add) |
//!
//! The caller never asks which backend it is on: every op checks its inputs itself and takes the
//! fused kernel only when all of them live on Flex in f32 (outside autodiff for the
//! inference-only kernels, and with no checkpointing strategy for the tracked ones) and the
//! shapes are ones the kernel handles; otherwise, and always under [`Kernels::Generic`]
//! ([`set_kernels`]), it runs the generic path. The fused kernels are numerically equivalent to
//! the generic path, not bit-identical: each op's value and gradient are tested against its
//! generic path at 1e-5 in this crate (the window ops and max pooling bit for bit), and the
//! zoo's timm parity tests run through them at 1e-4. docs/PERFORMANCE.md measures both.
//!
//! Where Burn has the op, the generic path is Burn's op, so every backend's own kernel runs (the
//! GPU backends' attention, convolution and pooling kernels; Flex's own fused attention).
//!
//! # Features
//!
//! `flex` (default) compiles the fused kernels and enables Burn's Flex backend with `rayon`,
//! `simd` and autodiff, plus `gemm/x86-v4` (AVX-512 matrix kernels, detected at run time) —
//! measured 1.2–1.5× faster training steps on an AVX-512 CPU. `ndarray`, `openblas-system`,
//! `wgpu`, `cuda` and `tch` enable those Burn backends (the generic path runs on them).
//!
//! # Burn internals
//!
//! The generic paths use Burn's public tensor and module API only. The fused kernels
//! (`src/flex/`, only with the `flex` feature) reach below it; this is the complete list, and
//! what a Burn upgrade has to check. Each use returns `None` (generic path) rather than fail
//! when a type does not match, so a changed behaviour shows up as a failing test here (fused vs
//! generic), not as a wrong result.
//!
//! | internal item | where | what an upgrade touches |
//! |---|---|---|
//! | `Tensor::try_into_primitive::<Flex>` / `::<Autodiff<Flex>>` | `flex/mod.rs` (`primitive`), `flex/attention.rs`, `flex/activation.rs`, `flex/norm.rs` | how a dispatch tensor is unwrapped into a backend's primitive (Burn 0.22's backend-erased `Tensor`) |
//! | `Tensor::from_primitive::<Flex>` / `::<Autodiff<Flex>>` | every `flex/*.rs` op | wrapping a result back |
//! | `burn::backend::flex::FlexTensor`: `from_data`, `as_slice::<f32>`, `to_contiguous`, `into_data`, `dtype`, `layout()` (`shape`, `strides`, `start_offset`), `storage::<f32>` | `flex/mod.rs`, `flex/linear.rs` (`weight_view`: the transposed-view layout of a `Linear` weight), `flex/norm.rs`, `flex/conv.rs`, `flex/pool.rs`, `flex/window.rs` | Flex's storage and layout model (row-major contiguous `as_slice`, strides in elements) |
//! | `<Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive::into_parts` (primitive + node) | `flex/attention.rs`, `flex/activation.rs`, `flex/norm.rs` | the autodiff tensor's layout |
//! | `burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind, unary}`: `prepare::<NoCheckpointing>`, `compute_bound`, `stateful`, `finish`; `Ops::{state, parents, node}` | `flex/mod.rs` (`record` and `Fused`: the one `Backward` implementation and the one place a tracked op is recorded), the backward passes in `flex/attention.rs` (`FusedAttention`), `flex/activation.rs` (`FusedGelu`), `flex/norm.rs` (`FusedLayerNorm`) | the custom-op API of Burn's autodiff (the three tracked ops and their backward passes) |
//! | `burn::backend::autodiff::grads::Gradients::{consume, register}` | `flex/norm.rs` (three parents: input, scale, shift), via `unary` in the other two | gradient bookkeeping |
//! | `burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::NoCheckpointing}` | `flex/mod.rs` (`Fused`, `record`) | the checkpointing API (a strategy other than none takes the generic path) |
//! | `burn::nn` module fields: `Linear::{weight, bias}`, `Conv2d::{weight, bias, stride, dilation, padding, groups}`, `BatchNorm::{gamma, beta, running_mean, running_var, epsilon}`, `LayerNorm::{gamma, beta}`, `PaddingConfig2d` | `flex/linear.rs`, `flex/conv.rs`, `flex/norm.rs` | the modules' public fields and weight layouts (`Linear`: `[C_in, C_out]`); `LayerNorm`'s epsilon is private, so [`layer_norm`] takes it as an argument |
//!
//! Outside this crate nothing in snnet-rs uses these internals.

mod activation;
mod attention;
mod conv;
#[cfg(feature = "flex")]
mod flex;
mod kernels;
mod linear;
mod norm;
mod pool;
#[cfg(all(test, feature = "flex"))]
mod testing;
mod window;

pub use activation::gelu;
pub use attention::{attention, window_attention};
pub use conv::conv_bn;
pub use kernels::{Kernels, kernels, set_kernels};
pub use linear::{Epilogue, linear, linear_rows};
pub use norm::layer_norm;
pub use pool::max_pool2d;
pub use window::{Windows, window_merge_add, window_partition};
