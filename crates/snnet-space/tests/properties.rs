//! Property tests of the general rules on random families and settings: every stitch is one
//! connected path, every stitching layer is shared by exactly the cuts of its window, and the
//! space's parts agree with each other.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::collections::BTreeSet;

use proptest::prelude::*;
use snnet_space::{
    AnchorSpec, Cut, Direction, Layout, Pairing, SpaceConfig, StitchKind, StitchLayers, StitchSpace,
};

/// A random family listed small → large: `n` anchors, `stages` stages each, widths
/// non-decreasing along the list at every stage, random depths.
fn family() -> impl Strategy<Value = Vec<AnchorSpec>> {
    (1usize..=4, prop_oneof![Just(1usize), 2usize..=4]).prop_flat_map(|(n, stages)| {
        (
            prop::collection::vec(prop::collection::vec(1usize..=8, stages), n),
            prop::collection::vec(prop::collection::vec(1usize..=64, stages), n),
            prop::collection::vec(any::<bool>(), n),
        )
            .prop_map(move |(depths, mut widths, maps)| {
                // Sort widths per stage along the anchors so the list is small → large.
                for s in 0..stages {
                    let mut column: Vec<usize> = widths.iter().map(|w| w[s]).collect();
                    column.sort_unstable();
                    for (w, c) in widths.iter_mut().zip(column) {
                        w[s] = c;
                    }
                }
                (0..n)
                    .map(|a| {
                        let layout = if stages > 1 && maps[a] {
                            Layout::Map
                        } else {
                            Layout::Tokens
                        };
                        let stages: Vec<(usize, usize)> = depths[a]
                            .iter()
                            .copied()
                            .zip(widths[a].iter().copied())
                            .collect();
                        AnchorSpec::hierarchical(format!("anchor{a}"), layout, &stages)
                    })
                    .collect()
            })
    })
}

fn config() -> impl Strategy<Value = SpaceConfig> {
    (
        1usize..=4,
        1usize..=4,
        prop_oneof![Just(Pairing::Nearest), Just(Pairing::All)],
        prop_oneof![
            Just(Direction::FastToSlow),
            Just(Direction::SlowToFast),
            Just(Direction::TwoWay)
        ],
        prop_oneof![Just(StitchLayers::Shared), Just(StitchLayers::PerCut)],
    )
        .prop_map(|(kernel, stride, pairing, direction, layers)| SpaceConfig {
            kernel_size: kernel,
            stride,
            pairing,
            direction,
            stages: None,
            layers,
        })
}

/// Builds the space, skipping the combinations the rules do not define (two-way stitching of
/// hierarchical anchors or of a deeper anchor into a shallower one).
fn build(anchors: Vec<AnchorSpec>, config: SpaceConfig) -> Option<StitchSpace> {
    match StitchSpace::new(anchors, config) {
        Ok(space) => Some(space),
        Err(snnet_space::Error::Unsupported(_)) => None,
        // A family whose only stitchable stage is excluded by default (a two-stage CNN family).
        Err(snnet_space::Error::NoStages) => None,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ids_are_contiguous_with_anchors_first(anchors in family(), config in config()) {
        let n = anchors.len();
        let Some(space) = build(anchors, config) else { return Ok(()) };
        for (i, stitch) in space.stitches().iter().enumerate() {
            prop_assert_eq!(stitch.id.0, i);
            prop_assert_eq!(stitch.is_anchor(), i < n);
            if i < n {
                prop_assert_eq!(&stitch.anchors, &vec![i]);
            }
            prop_assert_eq!(stitch.cuts.len() + 1, stitch.anchors.len());
            prop_assert_eq!(stitch.layers.len(), stitch.cuts.len());
        }
    }

    #[test]
    fn every_stitch_is_one_path(anchors in family(), config in config()) {
        let Some(space) = build(anchors, config) else { return Ok(()) };
        let specs = space.anchors();
        for stitch in space.stitches() {
            let segments = space.segments_of(stitch).unwrap();
            prop_assert_eq!(segments.len(), stitch.anchors.len());
            let first = segments[0];
            let last = segments[segments.len() - 1];
            prop_assert!(first.stem && first.start == 0);
            prop_assert!(last.head && last.end == specs[last.anchor].depth());
            for (i, seg) in segments.iter().enumerate() {
                prop_assert_eq!(seg.anchor, stitch.anchors[i]);
                prop_assert_eq!(seg.stem, i == 0);
                prop_assert_eq!(seg.head, i == segments.len() - 1);
                // Only the reference's excluded S→L stitch has an empty (final) segment.
                if seg.is_empty() {
                    prop_assert!(!stitch.evaluated && seg.head);
                }
            }
            for (i, key) in stitch.layer_keys().enumerate() {
                let (from, to) = (segments[i], segments[i + 1]);
                let group = space.group(key.stage, key.front, key.end);
                prop_assert!(group.is_some(), "stitch {} uses a missing group", stitch.id);
                let group = group.unwrap();
                prop_assert!(key.index < group.num_layers());
                // The hand-over happens inside the stitched stage, where the widths match.
                let stage = stitch.stage.unwrap_or(0);
                let (f, e) = (&specs[from.anchor], &specs[to.anchor]);
                prop_assert_eq!(f.block_location(from.end - 1).map(|l| l.0), Some(stage));
                if to.start < e.depth() {
                    prop_assert_eq!(e.block_location(to.start).map(|l| l.0), Some(stage));
                }
                prop_assert_eq!(group.in_width, f.stages[stage].width);
                prop_assert_eq!(group.out_width, e.stages[stage].width);
                prop_assert_eq!((group.in_layout, group.out_layout), (f.layout, e.layout));
            }
            if stitch.kind() == StitchKind::Chain {
                // The middle anchor runs at least one block.
                for seg in &segments[1..segments.len() - 1] {
                    prop_assert!(!seg.is_empty());
                }
            }
        }
    }

    #[test]
    fn layer_positions_are_exactly_the_stitches_cuts(anchors in family(), config in config()) {
        let Some(space) = build(anchors, config) else { return Ok(()) };
        let from_stitches: BTreeSet<_> = space
            .stitches()
            .iter()
            .flat_map(|s| s.layer_keys().zip(s.cuts.iter().copied()).collect::<Vec<_>>())
            .collect();
        let from_groups: BTreeSet<_> = space
            .layer_groups()
            .iter()
            .flat_map(|g| {
                g.positions
                    .iter()
                    .enumerate()
                    .flat_map(move |(i, cuts)| cuts.iter().map(move |&c| (g.key(i), c)))
            })
            .collect();
        prop_assert_eq!(from_stitches, from_groups);
    }

    /// For equal-depth pairs, layer `l` holds exactly the ordered pairs of the `l`-th sliding
    /// window that produced new pairs, minus those earlier windows produced.
    #[test]
    fn equal_depth_layers_are_windows(depth in 1usize..=14, kernel in 1usize..=5, stride in 1usize..=5, plain in any::<bool>()) {
        let anchors = if plain {
            vec![AnchorSpec::plain("a", depth, 8), AnchorSpec::plain("b", depth, 16)]
        } else {
            vec![
                AnchorSpec::hierarchical("a", Layout::Tokens, &[(depth, 8), (1, 8)]),
                AnchorSpec::hierarchical("b", Layout::Tokens, &[(depth, 16), (1, 16)]),
            ]
        };
        let config = SpaceConfig::default().with_kernel_size(kernel).with_stride(stride);
        let space = StitchSpace::new(anchors, config).unwrap();
        let group = &space.layer_groups()[0];
        let mut seen = BTreeSet::new();
        let mut layer = 0;
        let mut start = 0;
        while start < depth {
            let window: Vec<usize> = (start..(start + kernel).min(depth)).collect();
            let new: BTreeSet<Cut> = window
                .iter()
                .flat_map(|&j| window.iter().map(move |&k| Cut::new(j, k)))
                .filter(|c| plain || c.front < c.end)
                .filter(|c| !seen.contains(c))
                .collect();
            if !new.is_empty() {
                let positions: BTreeSet<Cut> = group.positions[layer].iter().copied().collect();
                prop_assert_eq!(&positions, &new, "layer {}", layer);
                seen.extend(new);
                layer += 1;
            }
            start += stride;
        }
        prop_assert_eq!(group.num_layers(), layer);
        // One stitch per cut: the anchors plus the pair's cuts.
        prop_assert_eq!(space.len(), 2 + seen.len());
    }

    /// Unequal depths (front shallower): every cut maps the end block onto the front block by
    /// nearest interpolation, and every such cut is present.
    #[test]
    fn unequal_depth_cuts_follow_nearest_mapping(d_f in 1usize..=12, extra in 1usize..=24) {
        let d_e = d_f + extra;
        let anchors = vec![AnchorSpec::plain("a", d_f, 8), AnchorSpec::plain("b", d_e, 16)];
        let space = StitchSpace::new(anchors, SpaceConfig::default()).unwrap();
        let emap = snnet_space::rules::nearest_map(d_f, d_e);
        let ours: BTreeSet<Cut> = space.stitches()[2..].iter().map(|s| s.cuts[0]).collect();
        let expected: BTreeSet<Cut> = (0..d_e)
            .filter(|&m| emap[m] < m)
            .map(|m| Cut::new(emap[m], m))
            .collect();
        prop_assert_eq!(ours, expected);
        prop_assert_eq!(space.layer_groups()[0].num_layers(), d_f);
    }

    #[test]
    fn serde_round_trip(anchors in family(), config in config()) {
        let Some(space) = build(anchors, config) else { return Ok(()) };
        let json = serde_json::to_string(&space).unwrap();
        let back: StitchSpace = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, space);
    }

    /// With equal depths, Slow-to-Fast is Fast-to-Slow with every pair reversed.
    #[test]
    fn slow_to_fast_mirrors_equal_depths(depth in 1usize..=12, n in 2usize..=4) {
        let anchors: Vec<_> =
            (0..n).map(|a| AnchorSpec::plain(format!("a{a}"), depth, 8 << a)).collect();
        let f2s = StitchSpace::new(anchors.clone(), SpaceConfig::default()).unwrap();
        let s2f = StitchSpace::new(
            anchors,
            SpaceConfig::default().with_direction(Direction::SlowToFast),
        )
        .unwrap();
        prop_assert_eq!(f2s.len(), s2f.len());
        for (a, b) in f2s.stitches().iter().zip(s2f.stitches()) {
            let mut reversed = a.anchors.clone();
            reversed.reverse();
            prop_assert_eq!(&b.anchors, &reversed);
            prop_assert_eq!(&b.cuts, &a.cuts);
        }
    }
}
