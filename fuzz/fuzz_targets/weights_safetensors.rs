//! timm weight files in safetensors (`snnet zoo load --weights`, anchors' `--weights`): the
//! zoo loader `ModelEntry::load` (format sniffing, `load_weights` with the family's remap,
//! dtype casts, the non-finite check) into a tiny ViT. The input is written to a scratch file
//! on /dev/shm, as the loader reads paths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: snnet_fuzz::init("weights_safetensors"), |data: &[u8]| {
    let path = snnet_fuzz::scratch_file("weights_safetensors", data);
    let entry = snnet_fuzz::tiny_vit_entry();
    snnet_fuzz::debug("load", &entry.load(&path, &snnet_fuzz::device()));
});
