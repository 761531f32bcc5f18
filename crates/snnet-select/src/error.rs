//! The crate's error type.

use std::path::PathBuf;

use crate::cost::{Budget, CostKind};

/// Everything that can go wrong while reading, validating or querying a stitch table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two records share the same stitch id.
    #[error(
        "{}duplicate stitch id {id}: every record must have a distinct `cfg_id`",
        at_line(.line)
    )]
    DuplicateId {
        /// The repeated id.
        id: usize,
        /// The 1-based line of the second record, when it was read from JSON Lines.
        line: Option<usize>,
    },

    /// A floating-point field holds NaN or an infinity.
    #[error("{}stitch {id}: field `{field}` is not a finite number", at_line(.line))]
    NotFinite {
        /// The id of the offending record.
        id: usize,
        /// The name of the field (`acc1`, `acc5` or `latency_ms`).
        field: &'static str,
        /// The 1-based line of the record, when it was read from JSON Lines.
        line: Option<usize>,
    },

    /// A field's value is outside its range: an accuracy outside
    /// [[`MIN_ACCURACY`](crate::limits::MIN_ACCURACY), [`MAX_ACCURACY`](crate::limits::MAX_ACCURACY)]
    /// percent or a negative latency.
    #[error("{}stitch {id}: field `{field}` is {value}, outside {expected}", at_line(.line))]
    OutOfRange {
        /// The id of the offending record.
        id: usize,
        /// The name of the field (`acc1`, `acc5` or `latency_ms`).
        field: &'static str,
        /// The value.
        value: f64,
        /// The accepted range, in words.
        expected: &'static str,
        /// The 1-based line of the record, when it was read from JSON Lines.
        line: Option<usize>,
    },

    /// An input over one of the documented limits of [`crate::limits`] (table size, rows, line
    /// length, stitch id), refused before it is kept.
    #[error(
        "{}{what} is {value}, over the limit of {limit} (snnet_select::limits::{constant})",
        at_line(.line)
    )]
    LimitExceeded {
        /// What was measured (`"table size in bytes"`, `"rows"`, `"line length in bytes"`,
        /// `"stitch id"`).
        what: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        limit: u64,
        /// The name of the constant in [`crate::limits`] that sets the limit.
        constant: &'static str,
        /// The 1-based line concerned, when the input was JSON Lines and one line is to blame.
        line: Option<usize>,
    },

    /// A record's `extra` map holds a key that names one of the record's own fields, so the
    /// record could not be written and read back unchanged.
    #[error("stitch {id}: extra key `{}` clashes with a built-in field", escape(.key))]
    ReservedKey {
        /// The id of the offending record.
        id: usize,
        /// The clashing key.
        key: String,
    },

    /// A query was made on a table that holds no records.
    #[error("the stitch table is empty")]
    EmptyTable,

    /// No record's cost is within the budget.
    #[error("no stitch fits the budget {budget}: the cheapest stitch costs {cheapest} {}", budget.cost)]
    NothingFits {
        /// The budget that was asked for.
        budget: Budget,
        /// The lowest cost of any record in the table.
        cheapest: f64,
    },

    /// A record lacks the cost a query ranks by.
    #[error("stitch {id} has no `{cost}` value")]
    MissingCost {
        /// The id of the record that lacks the cost.
        id: usize,
        /// The cost that was asked for.
        cost: CostKind,
    },

    /// The budget's maximum is NaN or negative.
    #[error("invalid budget {budget}: the maximum must be a non-negative number")]
    InvalidBudget {
        /// The rejected budget.
        budget: Budget,
    },

    /// A budget is over a different cost than the [`Frontier`](crate::Frontier) it was given to.
    #[error("budget is over `{found}` but the frontier is over `{expected}`")]
    CostMismatch {
        /// The frontier's cost.
        expected: CostKind,
        /// The budget's cost.
        found: CostKind,
    },

    /// A cost name was not recognised.
    #[error(
        "unknown cost `{}`: expected one of flops, params, latency-ms, memory-bytes",
        escape(.name)
    )]
    UnknownCost {
        /// The name that was given.
        name: String,
    },

    /// A line of a JSON Lines document is not a valid stitch record. The message names the
    /// line, the column and, when one is to blame, the field.
    #[error(
        "line {line}, column {}{}: {}",
        .source.column(),
        field_text(.field),
        escape(snnet_space::strip_json_position(&.source.to_string()))
    )]
    Parse {
        /// The 1-based line number.
        line: usize,
        /// The field whose value is wrong or missing, when one is to blame.
        field: Option<&'static str>,
        /// The underlying JSON error (its line and column are within the line).
        source: serde_json::Error,
    },

    /// A record could not be serialized to JSON.
    #[error("stitch {id}: cannot serialize to JSON: {source}")]
    Serialize {
        /// The id of the record.
        id: usize,
        /// The underlying JSON error.
        source: serde_json::Error,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file the operation was on.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// Writing a file safely failed (or its target is not a regular file).
    #[error(transparent)]
    Write(#[from] snnet_fs::Error),
}

impl Error {
    /// An [`Error::LimitExceeded`] of `value` over `limit` (the constant `constant` of
    /// [`crate::limits`]), not yet placed on a line (see [`Error::at`]).
    pub(crate) fn limit(
        what: &'static str,
        value: u64,
        limit: usize,
        constant: &'static str,
    ) -> Self {
        Error::LimitExceeded {
            what,
            value,
            limit: limit as u64,
            constant,
            line: None,
        }
    }

    /// `Ok` when `value` is at most `limit`, else [`limit`](Self::limit)'s error.
    pub(crate) fn check_limit(
        what: &'static str,
        value: usize,
        limit: usize,
        constant: &'static str,
    ) -> Result<()> {
        if value > limit {
            return Err(Self::limit(what, value as u64, limit, constant));
        }
        Ok(())
    }

    /// The error, placed on 1-based line `line` of a JSON Lines document.
    pub(crate) fn at(mut self, at: usize) -> Self {
        match &mut self {
            Error::DuplicateId { line, .. }
            | Error::NotFinite { line, .. }
            | Error::OutOfRange { line, .. }
            | Error::LimitExceeded { line, .. } => *line = Some(at),
            _ => {}
        }
        self
    }
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!("line {l}: ")).unwrap_or_default()
}

fn field_text(field: &Option<&'static str>) -> String {
    field.map(|f| format!(", field `{f}`")).unwrap_or_default()
}

/// `s` with control and invisible formatting characters escaped, for messages that echo text
/// read from a file (the stitch space's [`display_safe`](snnet_space::display_safe)).
pub(crate) use snnet_space::display_safe as escape;

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
