//! Tensor files (`snnet forward --input FILE.safetensors`, feature and output files):
//! `snnet_zoo::tensor_io::read_tensors`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::zoo::tensor_io::read_tensors;

fuzz_target!(init: snnet_fuzz::init("tensors"), |data: &[u8]| {
    let path = snnet_fuzz::scratch_file("tensors", data);
    let read = read_tensors(&path);
    snnet_fuzz::debug("read_tensors", &read);
    if let Ok(tensors) = read {
        for data in tensors.values() {
            let len: usize = data.shape().iter().product();
            assert_eq!(data.num_elements(), len, "a tensor's values fill its shape");
        }
    }
});
