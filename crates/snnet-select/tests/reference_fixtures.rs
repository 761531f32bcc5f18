//! The reference implementation's evaluation files read unchanged, round-trip losslessly and
//! give the frontiers and selections worked out by hand from the files.

#![allow(clippy::unwrap_used)]

use snnet_select::{Budget, CostKind, Error, StitchTable};

macro_rules! fixture {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/reference/",
            $name
        )
    };
}

const FIXTURES: [(&str, usize); 6] = [
    (fixture!("deit_ti_s_b.jsonl"), 71),
    (fixture!("swin_ti_s_b.jsonl"), 41),
    (fixture!("resnet18_resnet50.jsonl"), 10),
    (fixture!("resnet18_swin_ti.jsonl"), 8),
    (fixture!("levit_192_256.jsonl"), 8),
    (fixture!("snnetv2_deit3_s_l.jsonl"), 134),
];

fn ids(table: &StitchTable, cost: CostKind) -> Vec<usize> {
    table
        .pareto(cost)
        .unwrap()
        .iter()
        .map(|r| r.id.index())
        .collect()
}

#[test]
fn all_fixtures_parse_with_expected_counts() {
    for (path, count) in FIXTURES {
        let table = StitchTable::read_jsonl(path).unwrap();
        assert_eq!(table.len(), count, "{path}");
        // Every record is found by its id.
        for r in &table {
            assert_eq!(table.get(r.id), Some(r), "{path}");
        }
        assert!(table.iter().all(|r| r.flops.is_some()), "{path}");
    }
}

#[test]
fn all_fixtures_round_trip_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    for (path, _) in FIXTURES {
        let original = std::fs::read_to_string(path).unwrap();
        let table = StitchTable::from_jsonl_str(&original).unwrap();
        let out = dir.path().join("copy.jsonl");
        table.write_jsonl(&out).unwrap();
        let back = StitchTable::read_jsonl(&out).unwrap();
        assert_eq!(back, table, "{path}");
        // Line by line, the written JSON is the same value as the original.
        let written = std::fs::read_to_string(&out).unwrap();
        let originals: Vec<&str> = original.lines().filter(|l| !l.trim().is_empty()).collect();
        let copies: Vec<&str> = written.lines().collect();
        assert_eq!(originals.len(), copies.len());
        for (a, b) in originals.iter().zip(copies) {
            let a: serde_json::Value = serde_json::from_str(a).unwrap();
            let b: serde_json::Value = serde_json::from_str(b).unwrap();
            assert_eq!(a, b, "{path}");
        }
    }
}

#[test]
fn optional_fields_follow_the_files() {
    let deit = StitchTable::read_jsonl(fixture!("deit_ti_s_b.jsonl")).unwrap();
    let r0 = deit.get(0).unwrap();
    assert_eq!(r0.flops, Some(1_258_411_200));
    assert_eq!(r0.params, Some(5_717_416));
    assert_eq!(r0.acc1, 70.56400227203369);
    assert_eq!(r0.acc5, None);
    assert!(r0.extra.is_empty());

    // ResNet files have acc5 and no params.
    let resnet = StitchTable::read_jsonl(fixture!("resnet18_resnet50.jsonl")).unwrap();
    assert!(
        resnet
            .iter()
            .all(|r| r.acc5.is_some() && r.params.is_none())
    );
    assert_eq!(resnet.get(0).unwrap().acc5, Some(88.106));
    assert!(matches!(
        resnet.pareto(CostKind::Params),
        Err(Error::MissingCost {
            id: 0,
            cost: CostKind::Params
        })
    ));

    // The SN-Netv2 file has a `loss` key, kept in `extra`.
    let v2 = StitchTable::read_jsonl(fixture!("snnetv2_deit3_s_l.jsonl")).unwrap();
    let r0 = v2.get(0).unwrap();
    assert_eq!(r0.extra.len(), 1);
    // Its ids run 0..=134 without 13.
    assert!(v2.get(13).is_none());
    assert!(v2.get(134).is_some());
    assert_eq!(r0.extra["loss"], serde_json::json!(0.7156664722345092));
}

#[test]
fn deit_selection_under_5_gflops() {
    let deit = StitchTable::read_jsonl(fixture!("deit_ti_s_b.jsonl")).unwrap();
    // From the file: of the stitches with at most 5e9 FLOPs, stitch 1 (DeiT-S itself,
    // 4608338304 FLOPs, 79.464 %) is the most accurate; the runners-up are stitch 6
    // (4419290112 FLOPs, 79.142 %) and stitch 5 (4798437888 FLOPs, 79.106 %).
    let best = deit.select(Budget::flops(5_000_000_000)).unwrap();
    assert_eq!(best.id, 1);
    assert_eq!(best.flops, Some(4_608_338_304));
    assert_eq!(
        deit.frontier(CostKind::Flops)
            .unwrap()
            .select(5e9)
            .unwrap()
            .id,
        1
    );

    // 10 GFLOPs: stitch 61 (9350868480 FLOPs, 80.81 %); stitch 56 (81.25 %) needs 10048040448.
    assert_eq!(deit.select(Budget::flops(10_000_000_000)).unwrap().id, 61);
    // Unlimited: stitch 39 (82.042 %) beats DeiT-B itself (stitch 2, 81.934 %).
    assert_eq!(deit.select(Budget::flops(u64::MAX)).unwrap().id, 39);
    // Below DeiT-Ti nothing fits.
    let err = deit.select(Budget::flops(1_000_000_000)).unwrap_err();
    assert!(matches!(err, Error::NothingFits { cheapest, .. } if cheapest == 1_258_411_200.0));
    // Parameters work too: at most 23M parameters picks stitch 1 as well.
    assert_eq!(deit.select(Budget::params(23_000_000)).unwrap().id, 1);
}

#[test]
fn deit_frontier_is_monotone() {
    let deit = StitchTable::read_jsonl(fixture!("deit_ti_s_b.jsonl")).unwrap();
    let frontier = deit.pareto(CostKind::Flops).unwrap();
    for w in frontier.windows(2) {
        assert!(w[0].flops < w[1].flops);
        assert!(w[0].acc1 < w[1].acc1);
    }
    assert_eq!(
        ids(&deit, CostKind::Flops),
        [
            0, 34, 36, 31, 33, 28, 30, 25, 27, 22, 24, 19, 21, 16, 18, 13, 15, 12, 14, 9, 4, 6, 1,
            62, 64, 66, 59, 61, 56, 53, 50, 52, 54, 47, 49, 44, 46, 43, 39
        ]
    );
    let fast = deit.frontier(CostKind::Flops).unwrap();
    assert_eq!(fast.len(), 39);
    assert_eq!(fast.cheapest().unwrap().id, 0);
    assert_eq!(fast.most_accurate().unwrap().id, 39);
}

#[test]
fn other_fixture_frontiers() {
    let cases: [(&str, &[usize]); 5] = [
        (
            fixture!("swin_ti_s_b.jsonl"),
            &[
                0, 23, 22, 20, 19, 17, 16, 14, 13, 10, 8, 1, 40, 39, 38, 37, 36, 35, 33, 32, 31,
                27, 25, 2,
            ],
        ),
        (fixture!("resnet18_resnet50.jsonl"), &[0, 9, 8, 6, 5, 4, 2]),
        (
            fixture!("resnet18_swin_ti.jsonl"),
            &[0, 7, 6, 5, 4, 3, 2, 1],
        ),
        (fixture!("levit_192_256.jsonl"), &[0, 7, 6, 5, 4, 3, 1]),
        (
            fixture!("snnetv2_deit3_s_l.jsonl"),
            &[0, 15, 127, 16, 123, 118, 112, 6, 5, 4, 3, 1],
        ),
    ];
    for (path, expected) in cases {
        let table = StitchTable::read_jsonl(path).unwrap();
        assert_eq!(ids(&table, CostKind::Flops), expected, "{path}");
        let frontier = table.frontier(CostKind::Flops).unwrap();
        // Frontier selection agrees with table selection at every frontier cost and between.
        for p in frontier.points() {
            for max in [p.cost, p.cost - 1.0, p.cost + 1.0] {
                let slow = table
                    .select(Budget::new(CostKind::Flops, max))
                    .map(|r| r.id);
                let fast = frontier.select(max).map(|p| p.id);
                assert_eq!(slow.ok(), fast.ok(), "{path} at {max}");
            }
        }
    }
    let swin = StitchTable::read_jsonl(fixture!("swin_ti_s_b.jsonl")).unwrap();
    assert_eq!(swin.select(Budget::flops(5_000_000_000)).unwrap().id, 23);
}
