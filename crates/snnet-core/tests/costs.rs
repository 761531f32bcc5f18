//! Every stitch's FLOPs and params against the published tables of the reference's released
//! checkpoints (fixtures/reference/*.jsonl), with `reference_compat`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use snnet_core::{Direction, Registry, SnNetConfig, SpaceConfig, StitchId};

fn published(file: &str) -> Vec<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/reference")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn check(names: &[&str], space: SpaceConfig, file: &str, expect_rows: usize) {
    let plan = SnNetConfig::from_registry(&Registry::builtin(), names, space)
        .unwrap()
        .with_reference_compat(true)
        .plan()
        .unwrap();
    let rows = published(file);
    assert_eq!(rows.len(), expect_rows, "{file}");
    let mut params_checked = 0;
    for row in rows {
        let id = row["cfg_id"].as_u64().unwrap() as usize;
        let cost = plan.cost(StitchId(id)).unwrap();
        let flops = row["flops"].as_u64().unwrap();
        assert_eq!(
            cost.flops,
            flops,
            "{file} stitch {id} ({}) FLOPs",
            plan.space().display(StitchId(id)).unwrap()
        );
        if let Some(params) = row.get("params").and_then(serde_json::Value::as_u64) {
            assert_eq!(
                cost.params,
                params,
                "{file} stitch {id} ({}) params",
                plan.space().display(StitchId(id)).unwrap()
            );
            params_checked += 1;
        }
    }
    eprintln!("{file}: {expect_rows} FLOPs, {params_checked} params equal");
}

#[test]
fn deit_ti_s_b_all_71() {
    check(
        &[
            "deit_tiny_patch16_224",
            "deit_small_patch16_224",
            "deit_base_patch16_224",
        ],
        SpaceConfig::default(),
        "deit_ti_s_b.jsonl",
        71,
    );
}

#[test]
fn swin_ti_s_b_all_41() {
    check(
        &[
            "swin_tiny_patch4_window7_224",
            "swin_small_patch4_window7_224",
            "swin_base_patch4_window7_224",
        ],
        SpaceConfig::default(),
        "swin_ti_s_b.jsonl",
        41,
    );
}

#[test]
fn resnet18_resnet50_all_10() {
    check(
        &["resnet18", "resnet50"],
        SpaceConfig::default(),
        "resnet18_resnet50.jsonl",
        10,
    );
}

#[test]
fn resnet18_swin_ti_all_8() {
    check(
        &["resnet18", "swin_tiny_patch4_window7_224"],
        SpaceConfig::default(),
        "resnet18_swin_ti.jsonl",
        8,
    );
}

#[test]
fn snnetv2_deit3_s_l_all_134() {
    check(
        &["deit3_small_patch16_224", "deit3_large_patch16_224"],
        SpaceConfig::default().with_direction(Direction::TwoWay),
        "snnetv2_deit3_s_l.jsonl",
        134,
    );
}

#[test]
fn published_examples() {
    let plan = SnNetConfig::from_registry(
        &Registry::builtin(),
        &[
            "deit_tiny_patch16_224",
            "deit_small_patch16_224",
            "deit_base_patch16_224",
        ],
        SpaceConfig::default(),
    )
    .unwrap()
    .with_reference_compat(true)
    .plan()
    .unwrap();
    let c = plan.cost(StitchId(24)).unwrap();
    assert_eq!((c.flops, c.params), (2_758_967_808, 13_038_760));
    let c = plan.cost(StitchId(56)).unwrap();
    assert_eq!((c.flops, c.params), (10_048_040_448, 49_222_120));
}
