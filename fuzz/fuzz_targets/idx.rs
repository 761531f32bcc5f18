//! IDX dataset files (Fashion-MNIST, `--data DIR`), gzipped or not:
//! `snnet_train::data::idx::parse_idx`, the byte-level core of `read_idx`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_train::data::idx::parse_idx;

fuzz_target!(init: snnet_fuzz::init("idx"), |data: &[u8]| {
    let parsed = parse_idx(data);
    snnet_fuzz::debug("parse_idx", &parsed);
    if let Ok(array) = parsed {
        let len: usize = array.dims.iter().product();
        assert_eq!(len, array.data.len(), "the data fills the dimensions");
    }
});
