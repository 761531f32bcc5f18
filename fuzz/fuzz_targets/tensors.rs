//! Tensor files (`snnet forward --input FILE.safetensors`, feature and output files):
//! `snnet_zoo::tensor_io::read_tensors`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::zoo::tensor_io::read_tensors;

fuzz_target!(init: snnet_fuzz::init("tensors"), |data: &[u8]| {
    let path = snnet_fuzz::scratch_file("tensors", data);
    if let Some(tensors) = snnet_fuzz::parsed("read_tensors", read_tensors(&path)) {
        for data in tensors.values() {
            let len: usize = data.shape().iter().product();
            assert_eq!(data.num_elements(), len, "a tensor's values fill its shape");
        }
    }
});
