//! Stitch tables from untrusted files: values outside their ranges, ids that repeat or are
//! absurd, documents, lines and tables over the documented limits. Each is a typed error naming
//! the line and the field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use snnet_select::limits::{MAX_LINE_BYTES, MAX_STITCH_ID, MAX_TABLE_BYTES, MAX_TABLE_ROWS};
use snnet_select::{CostKind, Error, StitchTable};

/// `err` is [`Error::LimitExceeded`] of limit `constant`, placed on `line`.
fn assert_limit(err: &Error, constant: &str, line: Option<usize>) {
    assert!(
        matches!(err, Error::LimitExceeded { constant: c, line: l, .. } if *c == constant && *l == line),
        "{err:?}"
    );
}

/// A two-line table whose second line is `row`.
fn with_row(row: &str) -> Result<StitchTable, Error> {
    StitchTable::from_jsonl_str(&format!(
        "{{\"cfg_id\": 0, \"flops\": 10, \"acc1\": 70.0}}\n{row}\n"
    ))
}

#[test]
fn accuracies_outside_0_to_100_are_refused_with_line_and_field() {
    for (row, field, bad) in [
        (r#"{"cfg_id": 1, "acc1": -5000}"#, "acc1", -5000.0),
        (r#"{"cfg_id": 1, "acc1": 1e300}"#, "acc1", 1e300),
        (r#"{"cfg_id": 1, "acc1": 100.5}"#, "acc1", 100.5),
        (r#"{"cfg_id": 1, "acc1": 50, "acc5": 250}"#, "acc5", 250.0),
        (r#"{"cfg_id": 1, "acc1": 50, "acc5": -1e-3}"#, "acc5", -1e-3),
        (
            r#"{"cfg_id": 1, "acc1": 50, "latency_ms": -2.5}"#,
            "latency_ms",
            -2.5,
        ),
    ] {
        let err = with_row(row).unwrap_err();
        match &err {
            Error::OutOfRange {
                id: 1,
                field: f,
                value,
                line: Some(2),
                ..
            } => assert_eq!((*f, *value), (field, bad)),
            other => panic!("{row}: expected OutOfRange on line 2, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("line 2: stitch 1: field `{field}` is ")),
            "{message}"
        );
    }
    // The bounds themselves are accepted.
    let table = with_row(r#"{"cfg_id": 1, "acc1": 100, "acc5": 0, "latency_ms": 0}"#).unwrap();
    assert_eq!(table.len(), 2);
}

#[test]
fn non_numbers_are_refused_with_line_and_field() {
    // JSON has no NaN or infinity: such a line does not parse, and the field is still named.
    for (row, field) in [
        (r#"{"cfg_id": 1, "acc1": NaN}"#, "acc1"),
        (
            r#"{"cfg_id": 1, "acc1": 50, "latency_ms": Infinity}"#,
            "latency_ms",
        ),
        (r#"{"cfg_id": 1, "acc1": 1e400}"#, "acc1"),
        (r#"{"cfg_id": 1, "acc1": "high"}"#, "acc1"),
        (r#"{"cfg_id": 1, "acc1": 50, "flops": -5}"#, "flops"),
        (
            r#"{"cfg_id": 1, "acc1": 50, "memory_bytes": 1.5}"#,
            "memory_bytes",
        ),
        (r#"{"cfg_id": -1, "acc1": 50}"#, "cfg_id"),
        (r#"{"id": "one", "acc1": 50}"#, "id"),
        (r#"{"cfg_id": 1, "acc5": 50}"#, "acc1"),
        (r#"{"acc1": 50}"#, "cfg_id"),
    ] {
        let err = with_row(row).unwrap_err();
        assert!(
            matches!(&err, Error::Parse { line: 2, field: Some(f), .. } if *f == field),
            "{row}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("line 2, column ") && message.contains(&format!("field `{field}`")),
            "{message}"
        );
    }
    // A line that is not an object has no field to blame.
    let err = with_row("[1, 2]").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Parse {
                line: 2,
                field: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn duplicate_and_absurd_ids_are_refused_with_line() {
    let text =
        "{\"cfg_id\": 7, \"acc1\": 1}\n\n{\"cfg_id\": 8, \"acc1\": 2}\n{\"id\": 7, \"acc1\": 3}\n";
    let err = StitchTable::from_jsonl_str(text).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateId {
                id: 7,
                line: Some(4)
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("line 4: duplicate stitch id 7"),
        "{err}"
    );

    let err = with_row(&format!(r#"{{"cfg_id": {}, "acc1": 1}}"#, u64::MAX)).unwrap_err();
    assert_limit(&err, "MAX_STITCH_ID", Some(2));
    with_row(&format!(r#"{{"cfg_id": {MAX_STITCH_ID}, "acc1": 1}}"#)).unwrap();
}

#[test]
fn oversized_tables_and_lines_are_refused() {
    // A line over the limit, on line 2.
    let long = format!(
        r#"{{"cfg_id": 1, "acc1": 1, "note": "{}"}}"#,
        "x".repeat(MAX_LINE_BYTES)
    );
    let err = with_row(&long).unwrap_err();
    assert_limit(&err, "MAX_LINE_BYTES", Some(2));

    // One row too many.
    let mut text = String::new();
    for id in 0..=MAX_TABLE_ROWS {
        text.push_str(&format!("{{\"cfg_id\":{id},\"acc1\":1}}\n"));
    }
    let err = StitchTable::from_jsonl_str(&text).unwrap_err();
    assert_limit(&err, "MAX_TABLE_ROWS", Some(MAX_TABLE_ROWS + 1));
    // At the limit the table reads.
    let at_limit: String = text
        .lines()
        .take(MAX_TABLE_ROWS)
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        StitchTable::from_jsonl_str(&at_limit).unwrap().len(),
        MAX_TABLE_ROWS
    );

    // A document over the limit, as a string and as a file (read no further than the limit).
    let huge = " ".repeat(MAX_TABLE_BYTES + 1);
    let err = StitchTable::from_jsonl_str(&huge).unwrap_err();
    assert_limit(&err, "MAX_TABLE_BYTES", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jsonl");
    std::fs::write(&path, huge.repeat(2)).unwrap();
    match StitchTable::read_jsonl(&path) {
        Err(Error::LimitExceeded {
            constant: "MAX_TABLE_BYTES",
            value,
            ..
        }) => assert_eq!(value, MAX_TABLE_BYTES as u64 + 1),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn text_from_files_is_echoed_escaped() {
    let err = with_row("{\"cfg_id\": 1, \"acc1\": \"\\u001b[2J\\u202e\"}").unwrap_err();
    let message = err.to_string();
    assert!(
        !message.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{message:?}"
    );
    let err = "\u{1b}[31mflops"
        .parse::<CostKind>()
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains('\u{1b}') && err.contains("\\u{1b}[31mflops"),
        "{err:?}"
    );
}
