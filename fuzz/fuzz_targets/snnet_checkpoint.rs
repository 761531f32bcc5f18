//! SN-Net checkpoints (`snnet eval|serve|train --snnet FILE`). Our own files: `read_config`
//! (the `SnNetConfig` JSON in the safetensors metadata), then `SnNet::load` (the config's anchors
//! and stitch space built, every anchor and stitching-layer tensor loaded and checked). A file
//! without a config is read as a reference (ziplab) checkpoint, `.pth` or safetensors in the
//! reference's key layout, with `SnNet::load_with_config` and the tiny SN-Net's config, as
//! `snnet ... --snnet FILE --anchors a,b` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::{SnNet, read_config};

fuzz_target!(init: snnet_fuzz::init("snnet_checkpoint"), |data: &[u8]| {
    let path = snnet_fuzz::scratch_file("snnet_checkpoint", data);
    let device = snnet_fuzz::device();
    let config = read_config(&path);
    snnet_fuzz::debug("read_config", &config);
    let loaded = if config.is_ok() {
        SnNet::load(&path, &device)
    } else {
        SnNet::load_with_config(&path, &snnet_fuzz::tiny_snnet_config(), &device)
    };
    snnet_fuzz::debug("load", &loaded);
    if let Ok((net, _report)) = loaded {
        let _ = net.num_stitches();
    }
});
