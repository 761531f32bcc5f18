//! The finiteness check of weights loaded through Burn's stores (burnpack files from `snnet
//! quantize`, exported stitch files): a tensor holding NaN or infinite values is refused, as
//! [`SnNet::load`](crate::SnNet::load) refuses it in a checkpoint.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor};

use crate::error::{Error, Result};

/// The first float parameter of `module` (in visiting order) holding NaN or infinite values:
/// its module path and how many. Quantized parameters are checked dequantized (their scales
/// included); parameters never materialised (the parts of an anchor a stitch skips) are not
/// read.
pub fn first_non_finite<M: Module>(module: &M) -> Option<(String, usize)> {
    #[derive(Default)]
    struct Scan {
        path: Vec<String>,
        found: Option<(String, usize)>,
    }
    impl ModuleVisitor for Scan {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_owned());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.found.is_some() || !param.is_initialized() {
                return;
            }
            let value = param.val();
            let value = match value.dtype() {
                DType::QFloat(_) => value.dequantize(),
                _ => value,
            };
            let count: i64 = value.is_finite().bool_not().int().sum().into_scalar();
            if count > 0 {
                self.found = Some((
                    self.path.join("."),
                    usize::try_from(count).unwrap_or(usize::MAX),
                ));
            }
        }
    }
    let mut scan = Scan::default();
    module.visit(&mut scan);
    scan.found
}

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
