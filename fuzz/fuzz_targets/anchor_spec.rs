//! Anchor spec files (`snnet space|anchors|init --anchor-spec FILE.json`): the first byte picks
//! the space rules, the rest is the JSON document given to `AnchorRegistry::add_json_str` (what
//! `add_json_file` reads). The specs it adds are then enumerated as a stitch space, as `snnet
//! space` does, and every stitch is described and cut into segments and junctions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snnet_core::space::{AnchorRegistry, Direction, Pairing, SpaceConfig, StitchSpace};

/// Stitches looked at one by one (enumeration itself covers all of them).
const INSPECTED: usize = 512;

/// The space rules of a flag byte: bits 0-1 kernel size 1-4, bit 2 stride 1-2, bit 3 all
/// pairs, bits 4-5 direction, bit 6 explicit stages `0..=bit 7`.
fn config(flags: u8) -> SpaceConfig {
    SpaceConfig {
        kernel_size: 1 + usize::from(flags & 3),
        stride: 1 + usize::from((flags >> 2) & 1),
        pairing: if flags & 8 == 0 {
            Pairing::Nearest
        } else {
            Pairing::All
        },
        direction: match (flags >> 4) & 3 {
            1 => Direction::SlowToFast,
            2 => Direction::TwoWay,
            _ => Direction::FastToSlow,
        },
        stages: (flags & 0x40 != 0).then(|| (0..=usize::from(flags >> 7)).collect()),
        ..SpaceConfig::default()
    }
}

fuzz_target!(init: snnet_fuzz::init("anchor_spec"), |data: &[u8]| {
    let Some((&flags, json)) = data.split_first() else {
        return;
    };
    let Ok(json) = std::str::from_utf8(json) else {
        return;
    };
    let mut registry = AnchorRegistry::builtin();
    let Some(names) = snnet_fuzz::parsed("add_json_str", registry.add_json_str(json)) else {
        return;
    };
    // What was added can be found again, by every name it was added under.
    let anchors = registry
        .resolve(&names)
        .expect("added specs resolve by name");
    let space = StitchSpace::new(anchors, config(flags));
    let Some(space) = snnet_fuzz::parsed("StitchSpace::new", space) else {
        return;
    };
    for stitch in space.stitches().iter().take(INSPECTED) {
        let _ = space.describe(stitch);
        let _ = space.segments_of(stitch);
        let _ = space.junctions_of(stitch);
    }
    for group in space.layer_groups() {
        for key in group.keys() {
            let _ = space.positions(key);
        }
    }
    // A stored space is its inputs, re-enumerated on reading: the round trip is exact.
    if space.len() <= INSPECTED {
        let json = serde_json::to_string(&space).expect("a space serialises");
        let back: StitchSpace = serde_json::from_str(&json).expect("a stored space reads back");
        assert_eq!(back, space, "space round trip");
    }
});
