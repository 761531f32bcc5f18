//! Custom model configs (`--model-config FILE.json` on every verb that names models):
//! `Registry::add_json_str` (what `add_json_file` reads, after the built-in models, as the CLI
//! builds its registry), then for every added model what the CLI computes from its config
//! without building it: costs per block, feature info, the anchor spec, the preprocessing, and
//! the stitch space of the added models.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::space::{SpaceConfig, StitchSpace};
use snnet_core::zoo::{ModelEntry, Registry};

fuzz_target!(init: snnet_fuzz::init("model_config"), |data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let mut registry = Registry::builtin();
    let Some(names) = snnet_fuzz::parsed("add_json_str", registry.add_json_str(json)) else {
        return;
    };
    let _ = snnet_train::fashion_mnist::add_anchors(&mut registry);
    let mut specs = Vec::new();
    for name in &names {
        let entry = registry.get(name).expect("an added model is found by name");
        let config = &entry.config;
        let cost = config.cost();
        let _ = cost.total();
        let depth = config.spec(name).depth();
        let _ = cost.blocks(0..depth);
        let _ = cost.transitions(0..depth);
        let features = config.feature_info();
        assert_eq!(features.len(), depth, "one feature entry per block");
        let _ = (config.num_classes(), config.img_size(), config.in_chans());
        let _ = config.weight_remap();
        let pretrained = entry.pretrained();
        let _ = pretrained.validate();
        let spec = config.spec(name);
        assert!(spec.validate().is_ok(), "a valid model config gives a valid spec");
        specs.push(spec);
        // The entry as a checkpoint stores it reads back as the same entry.
        let stored = serde_json::to_string(entry).expect("an entry serialises");
        let back: ModelEntry = serde_json::from_str(&stored).expect("a stored entry reads back");
        assert_eq!(&back, entry, "model entry round trip");
    }
    if specs.len() >= 2 {
        let _ = StitchSpace::new(specs, SpaceConfig::default());
    }
});
