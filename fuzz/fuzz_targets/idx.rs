//! IDX dataset files (Fashion-MNIST, `--data DIR`), gzipped or not:
//! `snnet_train::data::idx::parse_idx`, the byte-level core of `read_idx`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_train::data::idx::parse_idx;

fuzz_target!(init: snnet_fuzz::init("idx"), |data: &[u8]| {
    if let Some(array) = snnet_fuzz::parsed("parse_idx", parse_idx(data)) {
        let len: usize = array.dims.iter().product();
        assert_eq!(len, array.data.len(), "the data fills the dimensions");
    }
});
