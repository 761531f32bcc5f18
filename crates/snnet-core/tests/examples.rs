//! The data the examples embed matches the workspace's fixtures.

use std::path::PathBuf;

#[test]
fn quickstart_table_is_the_reference_fixture() -> std::io::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let copy = std::fs::read_to_string(dir.join("examples/deit_ti_s_b.jsonl"))?;
    let fixture = std::fs::read_to_string(dir.join("../../fixtures/reference/deit_ti_s_b.jsonl"))?;
    assert_eq!(
        copy, fixture,
        "examples/deit_ti_s_b.jsonl: copy fixtures/reference/ again"
    );
    Ok(())
}
