//! The finiteness check of weights loaded through Burn's stores (burnpack files from `snnet
//! quantize`, exported stitch files): a tensor holding NaN or infinite values is refused, as
//! [`SnNet::load`](crate::SnNet::load) refuses it in a checkpoint.

use std::path::Path;

use burn::module::Module;

use crate::error::{Error, Result};

/// The first float parameter of a module holding NaN or infinite values (the zoo's check, the
/// one `finite_f32` runs on every loaded weight).
pub use snnet_zoo::weights::first_non_finite;

/// `Ok` when every loaded float parameter of `module` is finite.
///
/// # Errors
/// [`Error::NonFinite`] naming the first tensor (module path) that is not, and `path`.
pub(crate) fn refuse_non_finite<M: Module>(module: &M, path: &Path) -> Result<()> {
    match first_non_finite(module) {
        Some(bad) => Err(Error::non_finite(path, bad)),
        None => Ok(()),
    }
}
