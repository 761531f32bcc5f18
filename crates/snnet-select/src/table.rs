//! A validated table of stitch records, its Pareto frontier and budget selection.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::cost::{Budget, CostKind};
use crate::error::{Error, Result};
use crate::frontier::Frontier;
use crate::limits::{MAX_LINE_BYTES, MAX_TABLE_BYTES, MAX_TABLE_ROWS};
use crate::record::{RESERVED_KEYS, StitchRecord};
use snnet_space::StitchId;

/// A set of stitch records with distinct ids and finite accuracies, kept in insertion order.
///
/// Read one from the reference implementation's JSON Lines evaluation files with
/// [`read_jsonl`](StitchTable::read_jsonl), then take its [`pareto`](StitchTable::pareto)
/// frontier or [`select`](StitchTable::select) the most accurate stitch within a budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StitchTable {
    records: Vec<StitchRecord>,
    /// Position of each id in `records`.
    index: HashMap<StitchId, usize>,
}

/// Orders two finite floats; never sees NaN, which validation and budget checks rule out.
pub(crate) fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// The field to blame for a JSON Lines `line` that does not read as a record (its error at
/// 1-based `column`): a missing required one, or the first whose value alone does not read; for
/// a line that is not valid JSON (a `NaN`, a number out of range), the last field named before
/// the error. `None` when no field is at fault.
fn blame_field(line: &str, column: usize) -> Option<&'static str> {
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        let before = line.get(..column.saturating_sub(1)).unwrap_or(line);
        return RESERVED_KEYS
            .into_iter()
            .filter_map(|key| before.rfind(&format!("\"{key}\"")).map(|at| (at, key)))
            .max()
            .map(|(_, key)| key);
    };
    let Value::Object(object) = value else {
        return None;
    };
    if !object.contains_key("cfg_id") && !object.contains_key("id") {
        return Some("cfg_id");
    }
    if !object.contains_key("acc1") {
        return Some("acc1");
    }
    RESERVED_KEYS.into_iter().find(|&key| {
        object.get(key).is_some_and(|value| {
            let mut probe = Map::new();
            if key != "id" {
                probe.insert("cfg_id".to_owned(), Value::from(0));
            }
            probe.insert("acc1".to_owned(), Value::from(0.0));
            probe.insert(key.to_owned(), value.clone());
            serde_json::from_value::<StitchRecord>(Value::Object(probe)).is_err()
        })
    })
}

impl StitchTable {
    /// An empty table.
    pub fn new() -> Self {
        StitchTable::default()
    }

    /// A table of the given records, in their order.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`] when two records share an id; [`Error::LimitExceeded`] for more
    /// than [`MAX_TABLE_ROWS`] records; the errors of [`StitchRecord::validate`] when a record
    /// fails it.
    pub fn from_records(records: Vec<StitchRecord>) -> Result<Self> {
        let capacity = records.len().min(MAX_TABLE_ROWS);
        let mut table = StitchTable {
            records: Vec::with_capacity(capacity),
            index: HashMap::with_capacity(capacity),
        };
        for record in records {
            table.insert(record)?;
        }
        Ok(table)
    }

    /// Parses a JSON Lines document, one record per line; blank lines are skipped.
    ///
    /// The document is checked against the [limits](crate::limits) as it is read: at most
    /// [`MAX_TABLE_BYTES`], lines of at most [`MAX_LINE_BYTES`], at most [`MAX_TABLE_ROWS`]
    /// records. Every error about a record names its 1-based line.
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] for a document, line or table over a limit, or an id over
    /// [`MAX_STITCH_ID`](crate::limits::MAX_STITCH_ID); [`Error::Parse`], with the line, column
    /// and field, when a line is not a valid record; [`Error::NotFinite`] and
    /// [`Error::OutOfRange`] for a value outside its range (an accuracy outside [0, 100], a
    /// negative latency), [`Error::DuplicateId`] for an id already read.
    pub fn from_jsonl_str(text: &str) -> Result<Self> {
        Error::check_limit(
            "table size in bytes",
            text.len(),
            MAX_TABLE_BYTES,
            "MAX_TABLE_BYTES",
        )?;
        let mut table = StitchTable::new();
        for (i, line) in text.lines().enumerate() {
            // At most `MAX_TABLE_BYTES` lines, so this never saturates.
            let number = i.saturating_add(1);
            Error::check_limit(
                "line length in bytes",
                line.len(),
                MAX_LINE_BYTES,
                "MAX_LINE_BYTES",
            )
            .map_err(|e| e.at(number))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: StitchRecord =
                serde_json::from_str(line).map_err(|source| Error::Parse {
                    line: number,
                    field: blame_field(line, source.column()),
                    source,
                })?;
            table.insert(record).map_err(|e| e.at(number))?;
        }
        Ok(table)
    }

    /// Reads a JSON Lines file, as [`from_jsonl_str`](StitchTable::from_jsonl_str) does; at
    /// most [`MAX_TABLE_BYTES`] of it are read.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, and the errors of
    /// [`from_jsonl_str`](StitchTable::from_jsonl_str).
    pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io)?;
        let mut text = String::new();
        file.take((MAX_TABLE_BYTES as u64).saturating_add(1))
            .read_to_string(&mut text)
            .map_err(io)?;
        StitchTable::from_jsonl_str(&text)
    }

    /// The table as JSON Lines: one record per line in table order, each line ending in `\n`.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when a record cannot be serialized; this does not happen for
    /// records that passed validation.
    pub fn to_jsonl_string(&self) -> Result<String> {
        let mut out = String::new();
        for record in &self.records {
            let line = serde_json::to_string(record).map_err(|source| Error::Serialize {
                id: record.id.index(),
                source,
            })?;
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    /// Writes the table to `path` as JSON Lines, atomically: the text goes to a temporary file
    /// in the same directory, which is then renamed over `path`. Readers never see a partly
    /// written file, and on failure the previous file, if any, is left as it was.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the temporary file cannot be written or renamed, and the errors of
    /// [`to_jsonl_string`](StitchTable::to_jsonl_string).
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = self.to_jsonl_string()?;
        Ok(snnet_fs::write_atomic(path, text.as_bytes())?)
    }

    /// The records, in table order.
    pub fn records(&self) -> &[StitchRecord] {
        &self.records
    }

    /// Consumes the table and returns its records, in table order.
    pub fn into_records(self) -> Vec<StitchRecord> {
        self.records
    }

    /// The record with the given id (a [`StitchId`] or its index).
    pub fn get(&self, id: impl Into<StitchId>) -> Option<&StitchRecord> {
        self.index
            .get(&id.into())
            .and_then(|&i| self.records.get(i))
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the table holds no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends a record.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateId`] when a record with the same id is already present;
    /// [`Error::LimitExceeded`] when the table already holds [`MAX_TABLE_ROWS`] records; the
    /// errors of [`StitchRecord::validate`] when the record fails it. The table is unchanged on
    /// error.
    pub fn insert(&mut self, record: StitchRecord) -> Result<()> {
        record.validate()?;
        if self.index.contains_key(&record.id) {
            return Err(Error::DuplicateId {
                id: record.id.index(),
                line: None,
            });
        }
        Error::check_limit(
            "rows",
            self.records.len().saturating_add(1),
            MAX_TABLE_ROWS,
            "MAX_TABLE_ROWS",
        )?;
        self.index.insert(record.id, self.records.len());
        self.records.push(record);
        Ok(())
    }

    /// Iterates over the records in table order.
    pub fn iter(&self) -> std::slice::Iter<'_, StitchRecord> {
        self.records.iter()
    }

    /// Every record paired with its value of `cost`.
    fn costed(&self, cost: CostKind) -> Result<Vec<(f64, &StitchRecord)>> {
        if self.records.is_empty() {
            return Err(Error::EmptyTable);
        }
        self.records
            .iter()
            .map(|r| r.require_cost(cost).map(|c| (c, r)))
            .collect()
    }

    /// The Pareto frontier of accuracy against `cost`: the records that no other record
    /// dominates, where a record dominates another when its cost is lower or equal and its
    /// `acc1` higher or equal, one of the two strictly.
    ///
    /// The frontier is sorted by cost ascending, and both cost and `acc1` strictly increase
    /// along it. Of records with identical cost and `acc1`, only the one with the lowest id is
    /// kept.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyTable`] when the table is empty; [`Error::MissingCost`] when a record
    /// lacks `cost` (the first such record in table order is named).
    pub fn pareto(&self, cost: CostKind) -> Result<Vec<&StitchRecord>> {
        let mut costed = self.costed(cost)?;
        // CostKind ascending, then accuracy descending, then id ascending: a record is on the
        // frontier exactly when it is more accurate than everything sorted before it.
        costed.sort_by(|(ca, a), (cb, b)| {
            cmp_f64(*ca, *cb)
                .then_with(|| cmp_f64(b.acc1, a.acc1))
                .then_with(|| a.id.cmp(&b.id))
        });
        let mut frontier: Vec<&StitchRecord> = Vec::new();
        for (_, record) in costed {
            if frontier.last().is_none_or(|best| record.acc1 > best.acc1) {
                frontier.push(record);
            }
        }
        Ok(frontier)
    }

    /// A precomputed [`Frontier`] over `cost`, for fast repeated selection.
    ///
    /// # Errors
    ///
    /// The errors of [`pareto`](StitchTable::pareto).
    pub fn frontier(&self, cost: CostKind) -> Result<Frontier> {
        Frontier::new(self, cost)
    }

    /// The most accurate record whose cost is at most `budget.max`. Ties in `acc1` go to the
    /// lower cost, then to the lower id. The answer always lies on the
    /// [`pareto`](StitchTable::pareto) frontier.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBudget`] when the budget is NaN or negative; [`Error::EmptyTable`] when
    /// the table is empty; [`Error::MissingCost`] when a record lacks the budget's cost;
    /// [`Error::NothingFits`], with the cheapest cost in the table, when every record costs
    /// more than the budget.
    pub fn select(&self, budget: Budget) -> Result<&StitchRecord> {
        let budget = budget.validated()?;
        let costed = self.costed(budget.cost)?;
        let best = costed
            .iter()
            .filter(|(c, _)| *c <= budget.max)
            .min_by(|(ca, a), (cb, b)| {
                cmp_f64(b.acc1, a.acc1)
                    .then_with(|| cmp_f64(*ca, *cb))
                    .then_with(|| a.id.cmp(&b.id))
            });
        match best {
            Some((_, record)) => Ok(record),
            None => {
                let cheapest = costed
                    .iter()
                    .map(|(c, _)| *c)
                    .min_by(|a, b| cmp_f64(*a, *b))
                    .ok_or(Error::EmptyTable)?;
                Err(Error::NothingFits { budget, cheapest })
            }
        }
    }
}

impl TryFrom<Vec<StitchRecord>> for StitchTable {
    type Error = Error;

    fn try_from(records: Vec<StitchRecord>) -> Result<Self> {
        StitchTable::from_records(records)
    }
}

impl FromStr for StitchTable {
    type Err = Error;

    /// Parses JSON Lines, as [`StitchTable::from_jsonl_str`] does.
    fn from_str(text: &str) -> Result<Self> {
        StitchTable::from_jsonl_str(text)
    }
}

impl<'a> IntoIterator for &'a StitchTable {
    type Item = &'a StitchRecord;
    type IntoIter = std::slice::Iter<'a, StitchRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

impl IntoIterator for StitchTable {
    type Item = StitchRecord;
    type IntoIter = std::vec::IntoIter<StitchRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rec(id: usize, flops: u64, acc1: f64) -> StitchRecord {
        StitchRecord::new(id, acc1).with_flops(flops)
    }

    fn table(records: Vec<StitchRecord>) -> StitchTable {
        StitchTable::from_records(records).unwrap()
    }

    /// Four stitches `(id, FLOPs, top-1)`; 3 is dominated by 2.
    fn four() -> Vec<StitchRecord> {
        vec![
            rec(0, 10, 70.0),
            rec(1, 40, 80.0),
            rec(2, 20, 75.0),
            rec(3, 30, 74.0),
        ]
    }

    fn ids(records: &[&StitchRecord]) -> Vec<usize> {
        records.iter().map(|r| r.id.index()).collect()
    }

    #[test]
    fn from_records_rejects_duplicate_ids() {
        let err = StitchTable::from_records(vec![rec(0, 1, 1.0), rec(1, 2, 2.0), rec(0, 3, 3.0)])
            .unwrap_err();
        assert!(matches!(err, Error::DuplicateId { id: 0, line: None }));
        assert!(err.to_string().contains("duplicate stitch id 0"));
    }

    #[test]
    fn from_records_rejects_non_finite() {
        let err = StitchTable::from_records(vec![rec(0, 1, 1.0), rec(5, 2, f64::NAN)]).unwrap_err();
        assert!(matches!(
            err,
            Error::NotFinite {
                id: 5,
                field: "acc1",
                line: None
            }
        ));
        let err =
            StitchTable::from_records(vec![rec(3, 1, 1.0).with_acc5(f64::INFINITY)]).unwrap_err();
        assert!(matches!(
            err,
            Error::NotFinite {
                id: 3,
                field: "acc5",
                line: None
            }
        ));
        let err =
            StitchTable::from_records(vec![StitchRecord::new(4, 1.0).with_latency_ms(f64::NAN)])
                .unwrap_err();
        assert!(matches!(
            err,
            Error::NotFinite {
                id: 4,
                field: "latency_ms",
                line: None
            }
        ));
        assert!(err.to_string().contains("latency_ms"));
    }

    #[test]
    fn insert_validates_and_leaves_table_unchanged_on_error() {
        let mut t = table(vec![rec(0, 1, 1.0)]);
        assert!(matches!(
            t.insert(rec(0, 2, 2.0)),
            Err(Error::DuplicateId { id: 0, line: None })
        ));
        assert!(matches!(
            t.insert(rec(1, 2, f64::NAN)),
            Err(Error::NotFinite { id: 1, .. })
        ));
        assert_eq!(t.len(), 1);
        t.insert(rec(1, 2, 2.0)).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(1).unwrap().acc1, 2.0);
        assert!(t.get(2).is_none());
    }

    #[test]
    fn empty_table_exists_but_queries_fail() {
        let t = StitchTable::from_records(Vec::new()).unwrap();
        assert!(t.is_empty());
        assert_eq!(t.len(), 0);
        assert!(matches!(t.pareto(CostKind::Flops), Err(Error::EmptyTable)));
        assert!(matches!(
            t.select(Budget::flops(10)),
            Err(Error::EmptyTable)
        ));
        assert!(matches!(
            t.frontier(CostKind::Flops),
            Err(Error::EmptyTable)
        ));
        assert_eq!(t.to_jsonl_string().unwrap(), "");
        let blank = StitchTable::from_jsonl_str("\n  \n").unwrap();
        let err = blank.select(Budget::flops(1)).unwrap_err();
        assert_eq!(err.to_string(), "the stitch table is empty");
    }

    #[test]
    fn accessors_and_iteration_keep_table_order() {
        let t = table(vec![rec(5, 1, 1.0), rec(2, 2, 2.0), rec(9, 3, 3.0)]);
        assert_eq!(
            t.records().iter().map(|r| r.id).collect::<Vec<_>>(),
            [5, 2, 9]
        );
        assert_eq!(t.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 2, 9]);
        assert_eq!((&t).into_iter().count(), 3);
        let mut n = 0;
        for r in &t {
            n += r.id.index();
        }
        assert_eq!(n, 16);
        assert_eq!(t.get(9).unwrap().flops, Some(3));
        let copy = StitchTable::try_from(t.records().to_vec()).unwrap();
        assert_eq!(copy, t);
        assert_eq!(
            t.clone().into_iter().map(|r| r.id).collect::<Vec<_>>(),
            [5, 2, 9]
        );
        assert_eq!(t.into_records().len(), 3);
    }

    #[test]
    fn jsonl_parse_skips_blank_lines_and_reports_line_numbers() {
        let text = "\n{\"cfg_id\": 0, \"flops\": 10, \"acc1\": 1.0}\n\n   \n{\"cfg_id\": 1, \"flops\": 20, \"acc1\": 2.0}\r\n";
        let t = StitchTable::from_jsonl_str(text).unwrap();
        assert_eq!(t.len(), 2);
        let t2: StitchTable = text.parse().unwrap();
        assert_eq!(t2, t);

        let bad = "{\"cfg_id\": 0, \"acc1\": 1.0}\n\n{\"cfg_id\": 1, \"acc1\": }\n";
        let err = StitchTable::from_jsonl_str(bad).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 3, .. }), "{err}");
        assert!(err.to_string().starts_with("line 3, column "), "{err}");

        let missing_acc = "{\"cfg_id\": 0, \"flops\": 1}";
        assert!(matches!(
            StitchTable::from_jsonl_str(missing_acc),
            Err(Error::Parse { line: 1, .. })
        ));

        let dup = "{\"cfg_id\": 0, \"acc1\": 1.0}\n{\"id\": 0, \"acc1\": 2.0}";
        assert!(matches!(
            StitchTable::from_jsonl_str(dup),
            Err(Error::DuplicateId {
                id: 0,
                line: Some(2)
            })
        ));
    }

    #[test]
    fn jsonl_round_trip_keeps_everything() {
        let text = concat!(
            "{\"loss\": 0.71, \"acc1\": 82.9, \"acc5\": 96.7, \"cfg_id\": 3, \"flops\": 4608338304}\n",
            "{\"cfg_id\": 0, \"params\": 5, \"acc1\": 70.5, \"latency_ms\": 1.25, \"memory_bytes\": 77, \"note\": \"x\"}\n",
        );
        let t = StitchTable::from_jsonl_str(text).unwrap();
        let written = t.to_jsonl_string().unwrap();
        assert_eq!(
            written.lines().next().unwrap(),
            r#"{"cfg_id":3,"flops":4608338304,"acc1":82.9,"acc5":96.7,"loss":0.71}"#
        );
        assert!(written.ends_with('\n'));
        let back = StitchTable::from_jsonl_str(&written).unwrap();
        assert_eq!(back, t);
        for (a, b) in text.lines().zip(written.lines()) {
            let a: serde_json::Value = serde_json::from_str(a).unwrap();
            let b: serde_json::Value = serde_json::from_str(b).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn write_and_read_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stitches.jsonl");
        let t = table(vec![rec(0, 10, 1.0), rec(1, 20, 2.0).with_acc5(3.0)]);
        t.write_jsonl(&path).unwrap();
        assert_eq!(StitchTable::read_jsonl(&path).unwrap(), t);
        // Overwrite an existing file.
        let t2 = table(vec![rec(7, 1, 9.0)]);
        t2.write_jsonl(&path).unwrap();
        assert_eq!(StitchTable::read_jsonl(&path).unwrap(), t2);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("stitches.jsonl")]);
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.jsonl");
        let err = StitchTable::read_jsonl(&missing).unwrap_err();
        assert!(matches!(&err, Error::Io { path, .. } if path == &missing));
        assert!(err.to_string().contains("nope.jsonl"));

        // Writing into a directory that does not exist fails and leaves nothing behind.
        let t = table(vec![rec(0, 1, 1.0)]);
        let bad = dir.path().join("no-such-dir").join("out.jsonl");
        assert!(matches!(
            t.write_jsonl(&bad),
            Err(Error::Write(snnet_fs::Error::Io { .. }))
        ));

        // A directory is never replaced; nothing is left behind.
        let target = dir.path().join("a-dir");
        fs::create_dir(&target).unwrap();
        assert!(matches!(
            t.write_jsonl(&target),
            Err(Error::Write(snnet_fs::Error::NotRegular { .. }))
        ));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("a-dir")]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any finite floats and any integers survive a write/read round trip bit for bit.
        #[test]
        fn jsonl_round_trip_is_exact(
            acc1 in proptest::prop_oneof![
                0.0f64..=100.0,
                proptest::num::f64::POSITIVE | proptest::num::f64::SUBNORMAL,
                proptest::num::f64::ZERO,
            ],
            acc5 in proptest::option::of(0.0f64..=100.0),
            latency in proptest::option::of(0.0f64..1e6),
            flops in proptest::option::of(proptest::prelude::any::<u64>()),
            loss in proptest::num::f64::NORMAL,
        ) {
            let mut r = StitchRecord::new(3, acc1);
            r.flops = flops;
            r.acc5 = acc5;
            r.latency_ms = latency;
            r.extra.insert("loss".into(), serde_json::Value::from(loss));
            let t = table(vec![r]);
            let back = StitchTable::from_jsonl_str(&t.to_jsonl_string().unwrap()).unwrap();
            let (a, b) = (&t.records()[0], &back.records()[0]);
            proptest::prop_assert_eq!(a.acc1.to_bits(), b.acc1.to_bits());
            proptest::prop_assert_eq!(a.acc5.map(f64::to_bits), b.acc5.map(f64::to_bits));
            proptest::prop_assert_eq!(a.latency_ms.map(f64::to_bits), b.latency_ms.map(f64::to_bits));
            proptest::prop_assert_eq!(a.flops, b.flops);
            proptest::prop_assert_eq!(&a.extra, &b.extra);
        }
    }

    #[test]
    fn pareto_keeps_non_dominated_sorted_by_cost() {
        let mut records = four();
        // 4 is dominated by 1 (same acc, more cost).
        records.extend([rec(4, 50, 80.0), rec(5, 5, 60.0)]);
        let t = table(records);
        let f = t.pareto(CostKind::Flops).unwrap();
        assert_eq!(ids(&f), [5, 0, 2, 1]);
        for w in f.windows(2) {
            assert!(w[0].flops < w[1].flops);
            assert!(w[0].acc1 < w[1].acc1);
        }
    }

    #[test]
    fn pareto_tie_rules() {
        // Identical (cost, acc1): the lowest id is kept, whatever the table order.
        let t = table(vec![rec(9, 10, 70.0), rec(3, 10, 70.0), rec(6, 10, 70.0)]);
        assert_eq!(ids(&t.pareto(CostKind::Flops).unwrap()), [3]);
        // Same cost, different accuracy: only the more accurate one.
        let t = table(vec![rec(0, 10, 70.0), rec(1, 10, 71.0)]);
        assert_eq!(ids(&t.pareto(CostKind::Flops).unwrap()), [1]);
        // Same accuracy, different cost: only the cheaper one.
        let t = table(vec![rec(0, 11, 70.0), rec(1, 10, 70.0)]);
        assert_eq!(ids(&t.pareto(CostKind::Flops).unwrap()), [1]);
        // Signed zeros compare equal.
        let t = table(vec![rec(4, 10, 0.0), rec(2, 10, -0.0)]);
        assert_eq!(ids(&t.pareto(CostKind::Flops).unwrap()), [2]);
    }

    #[test]
    fn pareto_over_other_costs() {
        let t = table(vec![
            StitchRecord::new(0, 70.0)
                .with_params(5)
                .with_latency_ms(2.0)
                .with_memory_bytes(9),
            StitchRecord::new(1, 80.0)
                .with_params(3)
                .with_latency_ms(3.0)
                .with_memory_bytes(8),
        ]);
        assert_eq!(ids(&t.pareto(CostKind::Params).unwrap()), [1]);
        assert_eq!(ids(&t.pareto(CostKind::LatencyMs).unwrap()), [0, 1]);
        assert_eq!(ids(&t.pareto(CostKind::MemoryBytes).unwrap()), [1]);
    }

    #[test]
    fn missing_cost_is_an_error() {
        let t = table(vec![
            rec(0, 10, 70.0),
            StitchRecord::new(7, 80.0).with_params(3),
        ]);
        let err = t.pareto(CostKind::Flops).unwrap_err();
        assert!(matches!(
            err,
            Error::MissingCost {
                id: 7,
                cost: CostKind::Flops
            }
        ));
        assert_eq!(err.to_string(), "stitch 7 has no `flops` value");
        assert!(matches!(
            t.pareto(CostKind::Params),
            Err(Error::MissingCost {
                id: 0,
                cost: CostKind::Params
            })
        ));
        assert!(matches!(
            t.select(Budget::flops(1000)),
            Err(Error::MissingCost {
                id: 7,
                cost: CostKind::Flops
            })
        ));
    }

    #[test]
    fn select_most_accurate_within_budget() {
        let t = table(four());
        assert_eq!(t.select(Budget::flops(10)).unwrap().id, 0);
        assert_eq!(t.select(Budget::flops(29)).unwrap().id, 2);
        assert_eq!(t.select(Budget::flops(39)).unwrap().id, 2);
        assert_eq!(t.select(Budget::flops(40)).unwrap().id, 1);
        assert_eq!(
            t.select(Budget::new(CostKind::Flops, f64::INFINITY))
                .unwrap()
                .id,
            1
        );
    }

    #[test]
    fn select_tie_rules() {
        // Equal accuracy: the lower cost wins.
        let t = table(vec![rec(0, 20, 80.0), rec(1, 10, 80.0)]);
        assert_eq!(t.select(Budget::flops(100)).unwrap().id, 1);
        // Equal accuracy and cost: the lower id wins, whatever the table order.
        let t = table(vec![rec(8, 10, 80.0), rec(2, 10, 80.0), rec(5, 10, 80.0)]);
        assert_eq!(t.select(Budget::flops(100)).unwrap().id, 2);
    }

    #[test]
    fn select_nothing_fits_reports_cheapest() {
        let t = table(vec![rec(0, 30, 70.0), rec(1, 12, 60.0), rec(2, 50, 80.0)]);
        let err = t.select(Budget::flops(11)).unwrap_err();
        assert!(
            matches!(err, Error::NothingFits { budget, cheapest } if budget == Budget::flops(11) && cheapest == 12.0)
        );
        assert_eq!(
            err.to_string(),
            "no stitch fits the budget flops <= 11: the cheapest stitch costs 12 flops"
        );
    }

    #[test]
    fn select_rejects_invalid_budgets() {
        let t = table(vec![StitchRecord::new(0, 1.0).with_latency_ms(0.0)]);
        for max in [f64::NAN, -1.0, f64::NEG_INFINITY] {
            let err = t.select(Budget::latency_ms(max)).unwrap_err();
            assert!(matches!(err, Error::InvalidBudget { .. }), "{err}");
        }
        assert!(
            t.select(Budget::latency_ms(-1.0))
                .unwrap_err()
                .to_string()
                .contains("must be a non-negative number")
        );
        // Invalid budgets are rejected even on an empty table.
        assert!(matches!(
            StitchTable::new().select(Budget::latency_ms(f64::NAN)),
            Err(Error::InvalidBudget { .. })
        ));
        assert_eq!(t.select(Budget::latency_ms(0.0)).unwrap().id, 0);
        assert_eq!(t.select(Budget::latency_ms(-0.0)).unwrap().id, 0);
    }
}
