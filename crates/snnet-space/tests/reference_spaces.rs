//! The spaces against the reference: golden dumps made by the reference's own enumeration code
//! (`fixtures/reference/spaces`, see its README), the published result files' ids
//! (`fixtures/reference/*.jsonl`), and lists checked by hand from the spec.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use serde_json::Value;
use snnet_space::{Cut, Direction, Pairing, SpaceConfig, StitchId, StitchSpace};

const DEIT: [&str; 3] = [
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
];
const SWIN: [&str; 3] = [
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
];

fn fixture(rel: &str) -> String {
    let path = format!(
        "{}/../../fixtures/reference/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| usize::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

/// Compares every stitch of `space` with the golden dump `file`.
fn assert_matches_golden(space: &StitchSpace, file: &str) {
    let golden: Value = serde_json::from_str(&fixture(&format!("spaces/{file}"))).unwrap();
    let configs = golden["configs"].as_array().unwrap();
    assert_eq!(space.len(), configs.len(), "{file}: count");
    assert_eq!(
        golden["count"].as_u64().unwrap() as usize,
        space.len(),
        "{file}: count field"
    );
    for (stitch, config) in space.stitches().iter().zip(configs) {
        let id = config["id"].as_u64().unwrap() as usize;
        assert_eq!(stitch.id, StitchId(id), "{file}: id");
        assert_eq!(
            stitch.anchors,
            usizes(&config["comb"]),
            "{file}: anchors of {id}"
        );
        let cuts: Vec<Cut> = config["cuts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let c = usizes(c);
                Cut::new(c[0], c[1])
            })
            .collect();
        assert_eq!(stitch.cuts, cuts, "{file}: cuts of {id}");
        assert_eq!(
            stitch.layers,
            usizes(&config["layers"]),
            "{file}: layers of {id}"
        );
        let stage = config["stage"].as_u64().map(|s| s as usize);
        assert_eq!(stitch.stage, stage, "{file}: stage of {id}");
        let evaluated = config
            .get("evaluated")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        assert_eq!(stitch.evaluated, evaluated, "{file}: evaluated of {id}");
    }
    // Layers per pair, as the reference allocates them.
    let groups = space.layer_groups();
    match &golden["num_layers"] {
        Value::Number(n) => {
            for g in groups {
                assert_eq!(
                    g.num_layers() as u64,
                    n.as_u64().unwrap(),
                    "{file}: layers per pair"
                );
            }
        }
        Value::Array(per) if per.first().is_some_and(Value::is_array) => {
            // Hierarchical: per stage, [[front, end, num_layers], ...].
            let stages = usizes(&golden["num_layers_stages"]);
            let mut expected = Vec::new();
            for (stage, pairs) in stages.iter().zip(per) {
                for p in pairs.as_array().unwrap() {
                    let p = usizes(p);
                    expected.push((Some(*stage), p[0], p[1], p[2]));
                }
            }
            let ours: Vec<_> = groups
                .iter()
                .map(|g| (g.stage, g.front, g.end, g.num_layers()))
                .collect();
            assert_eq!(ours, expected, "{file}: layer groups");
        }
        Value::Array(per) => {
            // SN-Netv2: [small→large, large→small].
            let ours: Vec<_> = groups.iter().map(|g| g.num_layers() as u64).collect();
            let expected: Vec<_> = per.iter().map(|n| n.as_u64().unwrap()).collect();
            assert_eq!(ours, expected, "{file}: layer groups");
        }
        other => panic!("{file}: unexpected num_layers {other}"),
    }
}

fn space(names: &[&str], config: SpaceConfig) -> StitchSpace {
    StitchSpace::builtin(names, config).unwrap()
}

#[test]
fn deit_spaces_match_the_reference() {
    let base = SpaceConfig::default();
    assert_matches_golden(&space(&DEIT, base.clone()), "deit_nearest_k2_s1.json");
    assert_matches_golden(
        &space(&DEIT, base.clone().with_pairing(Pairing::All)),
        "deit_all_pairs_k2_s1.json",
    );
    for (k, s, file) in [
        (2, 2, "deit_nearest_k2_s2.json"),
        (3, 1, "deit_nearest_k3_s1.json"),
        (3, 2, "deit_nearest_k3_s2.json"),
        (4, 3, "deit_nearest_k4_s3.json"),
    ] {
        assert_matches_golden(
            &space(&DEIT, base.clone().with_kernel_size(k).with_stride(s)),
            file,
        );
    }
    assert_matches_golden(
        &space(&DEIT[..2], base.clone().with_pairing(Pairing::All)),
        "deit_2anchors_k2_s1.json",
    );
    // With two anchors, nearest and all pairing are the same space.
    assert_eq!(
        space(&DEIT[..2], base.clone()).stitches(),
        space(&DEIT[..2], base.with_pairing(Pairing::All)).stitches()
    );
}

#[test]
fn counts() {
    let base = SpaceConfig::default();
    assert_eq!(space(&DEIT, base.clone()).len(), 71);
    assert_eq!(
        space(&DEIT, base.clone().with_pairing(Pairing::All)).len(),
        732
    );
    assert_eq!(space(&DEIT, base.clone().with_stride(2)).len(), 51);
    assert_eq!(space(&DEIT, base.clone().with_kernel_size(3)).len(), 111);
    assert_eq!(space(&SWIN, base.clone()).len(), 41);
    assert_eq!(space(&["resnet18", "resnet50"], base.clone()).len(), 10);
    assert_eq!(
        space(&["resnet18", "swin_tiny_patch4_window7_224"], base.clone()).len(),
        8
    );
    let v2 = space(
        &["deit3_small_patch16_224", "deit3_large_patch16_224"],
        base.with_direction(Direction::TwoWay),
    );
    assert_eq!((v2.len(), v2.evaluated().count()), (135, 134));
}

#[test]
fn hierarchical_spaces_match_the_reference() {
    assert_matches_golden(&space(&SWIN, SpaceConfig::default()), "swin_ti_s_b.json");
    assert_matches_golden(
        &space(&["resnet18", "resnet50"], SpaceConfig::default()),
        "resnet18_resnet50.json",
    );
    assert_matches_golden(
        &space(
            &["resnet18", "swin_tiny_patch4_window7_224"],
            SpaceConfig::default(),
        ),
        "resnet18_swin_tiny.json",
    );
}

#[test]
fn two_way_spaces_match_snnetv2() {
    let two_way = SpaceConfig::default().with_direction(Direction::TwoWay);
    for (names, file) in [
        (
            ["deit3_small_patch16_224", "deit3_large_patch16_224"],
            "snnetv2_deit3_s_l.json",
        ),
        (
            ["deit3_small_patch16_224", "deit3_base_patch16_224"],
            "snnetv2_s_b.json",
        ),
        (
            ["deit3_base_patch16_224", "deit3_large_patch16_224"],
            "snnetv2_b_l.json",
        ),
    ] {
        assert_matches_golden(&space(&names, two_way.clone()), file);
    }
}

/// The ids of the published evaluation files are exactly the evaluated stitches.
#[test]
fn published_result_ids_are_the_evaluated_stitches() {
    let base = SpaceConfig::default();
    let cases = [
        (space(&DEIT, base.clone()), "deit_ti_s_b.jsonl"),
        (space(&SWIN, base.clone()), "swin_ti_s_b.jsonl"),
        (
            space(&["resnet18", "resnet50"], base.clone()),
            "resnet18_resnet50.jsonl",
        ),
        (
            space(&["resnet18", "swin_tiny_patch4_window7_224"], base.clone()),
            "resnet18_swin_ti.jsonl",
        ),
        (
            space(
                &["deit3_small_patch16_224", "deit3_large_patch16_224"],
                base.with_direction(Direction::TwoWay),
            ),
            "snnetv2_deit3_s_l.jsonl",
        ),
    ];
    for (space, file) in cases {
        let mut published: Vec<usize> = fixture(file)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["cfg_id"]
                    .as_u64()
                    .unwrap() as usize
            })
            .collect();
        published.sort_unstable();
        let ours: Vec<usize> = space.evaluated().map(|s| s.id.0).collect();
        assert_eq!(ours, published, "{file}");
    }
}

/// DeiT-Ti/S/B, checked by hand from the spec (§2): ids 0–2 anchors, 3–36 Ti→S, 37–70 S→B, each
/// pair's 34 cuts in window order, layer 0 = {(0,0),(0,1),(1,0),(1,1)}, layer n =
/// {(n,n+1),(n+1,n),(n+1,n+1)}.
#[test]
fn deit_order_by_hand() {
    let space = space(&DEIT, SpaceConfig::default());
    let mut expected: Vec<(usize, usize, usize)> = vec![(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)];
    for n in 1..11 {
        expected.extend([(n, n + 1, n), (n + 1, n, n), (n + 1, n + 1, n)]);
    }
    assert_eq!(expected.len(), 34);
    for (i, stitch) in space.stitches().iter().enumerate() {
        match i {
            0..=2 => assert_eq!((stitch.anchors.clone(), stitch.cuts.len()), (vec![i], 0)),
            _ => {
                let (pair, k) = if i < 37 {
                    ([0, 1], i - 3)
                } else {
                    ([1, 2], i - 37)
                };
                let (j, e, l) = expected[k];
                assert_eq!(stitch.anchors, pair, "id {i}");
                assert_eq!(
                    (stitch.cuts[0], stitch.layers[0]),
                    (Cut::new(j, e), l),
                    "id {i}"
                );
            }
        }
    }
    // Spec examples: id 3 = Ti block 0 + all of S; id 24 = Ti 0..=7, S 7.. through layer 6.
    for (id, described) in [
        (3, "deit_tiny[..=0] →L0→ deit_small[0..]"),
        (24, "deit_tiny[..=7] →L6→ deit_small[7..]"),
        (56, "deit_small[..=6] →L6→ deit_base[7..]"),
    ] {
        assert_eq!(space.describe(&space.stitches()[id]), described);
    }
}

/// `(stage, anchors, (front, end), layer)` of one expected stitch.
type Expected = (Option<usize>, [usize; 2], (usize, usize), usize);

/// Swin-T/S/B, checked by hand from the spec (§2): anchors 0–2; stage 0: T→S (0,1), S→B (0,1);
/// stage 1 the same; stage 2: T(6)→S(18) unpaired with layer ids emap[:17], then S→B paired
/// (j, j+1), layer j.
#[test]
fn swin_order_by_hand() {
    let space = space(&SWIN, SpaceConfig::default());
    let mut expected: Vec<Expected> = vec![];
    for stage in [0, 1] {
        expected.push((Some(stage), [0, 1], (0, 1), 0));
        expected.push((Some(stage), [1, 2], (0, 1), 0));
    }
    let t_to_s = [
        (0, 1),
        (0, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (2, 6),
        (2, 7),
        (2, 8),
        (3, 9),
        (3, 10),
        (3, 11),
        (4, 12),
        (4, 13),
        (4, 14),
        (5, 15),
        (5, 16),
        (5, 17),
    ];
    let layers = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5];
    for (cut, layer) in t_to_s.into_iter().zip(layers) {
        expected.push((Some(2), [0, 1], cut, layer));
    }
    for j in 0..17 {
        expected.push((Some(2), [1, 2], (j, j + 1), j));
    }
    assert_eq!(space.len(), 3 + expected.len());
    for (stitch, (stage, pair, (j, k), layer)) in space.stitches()[3..].iter().zip(expected) {
        assert_eq!(stitch.stage, stage, "id {}", stitch.id);
        assert_eq!(stitch.anchors, pair, "id {}", stitch.id);
        assert_eq!(
            (stitch.cuts[0], stitch.layers[0]),
            (Cut::new(j, k), layer),
            "id {}",
            stitch.id
        );
    }
}

/// `(stage, front block, end block, layer)` of every stitch of a two-anchor hierarchical space
/// after the anchors.
fn single_cuts(space: &StitchSpace) -> Vec<(usize, usize, usize, usize)> {
    space.stitches()[2..]
        .iter()
        .map(|s| {
            (
                s.stage.unwrap(),
                s.cuts[0].front,
                s.cuts[0].end,
                s.layers[0],
            )
        })
        .collect()
}

/// ResNet-18/50 and ResNet-18/Swin-T, checked by hand from the spec (§2): stages 1 and 2 only.
#[test]
fn resnet_order_by_hand() {
    // Stage 2 pairs ResNet-18's layer3 (2 blocks) with both partners the same way.
    let stage2 = [
        (2, 0, 1, 0),
        (2, 0, 2, 0),
        (2, 1, 3, 0),
        (2, 1, 4, 1),
        (2, 1, 5, 1),
    ];
    let r = space(&["resnet18", "resnet50"], SpaceConfig::default());
    let stage1 = [(1, 0, 1, 0), (1, 1, 2, 0), (1, 1, 3, 1)];
    assert_eq!(single_cuts(&r), [&stage1[..], &stage2[..]].concat());
    let rs = space(
        &["resnet18", "swin_tiny_patch4_window7_224"],
        SpaceConfig::default(),
    );
    assert_eq!(
        single_cuts(&rs),
        [&[(1, 0, 1, 0)][..], &stage2[..]].concat()
    );
    // CNN → ViT layers read maps and write tokens.
    let group = &rs.layer_groups()[0];
    assert_eq!((group.in_width, group.out_width), (128, 192));
    assert_eq!(
        (group.in_layout, group.out_layout),
        (snnet_space::Layout::Map, snnet_space::Layout::Tokens)
    );
}

/// SN-Netv2 DeiT3-S/L by hand: S→L (i, 2i+2) layer i; L→S (odd i < 23) → (i, i/2+1) layer i/2;
/// id 13 = S block 11 into L block 24 is generated but not evaluated.
#[test]
fn two_way_by_hand() {
    let v2 = space(
        &["deit3_small_patch16_224", "deit3_large_patch16_224"],
        SpaceConfig::default().with_direction(Direction::TwoWay),
    );
    for i in 0..12 {
        let s = &v2.stitches()[2 + i];
        assert_eq!(
            (s.anchors.as_slice(), s.cuts[0], s.layers[0]),
            (&[0, 1][..], Cut::new(i, 2 * i + 2), i)
        );
    }
    let not_evaluated: Vec<_> = v2
        .stitches()
        .iter()
        .filter(|s| !s.evaluated)
        .map(|s| s.id.0)
        .collect();
    assert_eq!(not_evaluated, [13]);
    for (n, i) in (1..23).step_by(2).enumerate() {
        let s = &v2.stitches()[14 + n];
        assert_eq!(
            (s.anchors.as_slice(), s.cuts[0], s.layers[0]),
            (&[1, 0][..], Cut::new(i, i / 2 + 1), i / 2)
        );
    }
    let chains = |pattern: &[usize]| {
        v2.stitches()
            .iter()
            .filter(|s| s.anchors == pattern)
            .count()
    };
    assert_eq!((chains(&[1, 0, 1]), chains(&[0, 1, 0])), (55, 55));
    assert_eq!(
        v2.describe(&v2.stitches()[25]),
        "deit3_large[..=1] →L0→ deit3_small[1..=1] →L1→ deit3_large[4..]"
    );
}
