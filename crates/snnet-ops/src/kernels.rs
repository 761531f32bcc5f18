//! The process-wide choice between the fused kernels and the generic path.

use std::sync::atomic::{AtomicBool, Ordering};

/// Which implementation the ops of this crate run.
///
/// An A/B switch for benchmarks and comparisons: [`Kernels::Generic`] runs Burn's ops alone
/// (what a GPU backend runs anyway), so timing a workload under each shows what the fused kernels
/// buy. Results agree to float rounding (each fused op is tested against its generic path at
/// 1e-5), not bit for bit. Set it with [`set_kernels`] before the work starts; the `snnet` binary
/// sets [`Kernels::Generic`] when the environment variable `SNNET_PLAIN_OPS` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// The Flex-specialised kernels wherever they apply (every input on Flex in f32; at inference,
    /// or under autodiff for attention without a bias, GELU and LayerNorm with a bias), the
    /// generic path elsewhere. The default.
    #[default]
    Fused,
    /// The generic path everywhere: Burn's own ops, on every backend.
    Generic,
}

/// Whether [`Kernels::Generic`] is set (false: [`Kernels::Fused`], the default).
static GENERIC: AtomicBool = AtomicBool::new(false);

/// Sets which implementation the ops run, for the whole process, from the next op on.
///
/// An atomic flag: safe to call from any thread, but meant to be set once before the work starts
/// (an op that is running finishes on the implementation it began with; a model whose forward
/// straddles the change mixes the two, which is harmless — both compute the same function — but
/// makes a timing meaningless).
///
/// ```
/// use snnet_ops::{Kernels, kernels, set_kernels};
///
/// set_kernels(Kernels::Generic);
/// assert_eq!(kernels(), Kernels::Generic);
/// set_kernels(Kernels::Fused);
/// assert_eq!(kernels(), Kernels::Fused);
/// ```
pub fn set_kernels(kernels: Kernels) {
    GENERIC.store(kernels == Kernels::Generic, Ordering::Relaxed);
}

/// Which implementation the ops run now ([`Kernels::Fused`] unless [`set_kernels`] said
/// otherwise).
pub fn kernels() -> Kernels {
    if GENERIC.load(Ordering::Relaxed) {
        Kernels::Generic
    } else {
        Kernels::Fused
    }
}
