//! PyTorch weight files (`.pth`: ZIP, legacy pickle stream, TAR or plain pickle, possibly
//! wrapped as `{"model": ...}`): the zoo loader `ModelEntry::load` into a tiny ViT, the same
//! path as `weights_safetensors` seeded with `torch.save`-format checkpoints.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(init: snnet_fuzz::init("weights_pth"), |data: &[u8]| {
    let path = snnet_fuzz::scratch_file("weights_pth", data);
    let entry = snnet_fuzz::tiny_vit_entry();
    snnet_fuzz::debug("load", &entry.load(&path, &snnet_fuzz::device()));
});
