//! The crate's error type.

use std::path::PathBuf;

use crate::cost::{Budget, CostKind};

/// Everything that can go wrong while reading, validating or querying a stitch table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two records share the same stitch id.
    #[error("duplicate stitch id {id}: every record must have a distinct `cfg_id`")]
    DuplicateId {
        /// The repeated id.
        id: usize,
    },

    /// A floating-point field holds NaN or an infinity.
    #[error("stitch {id}: field `{field}` is not a finite number")]
    NotFinite {
        /// The id of the offending record.
        id: usize,
        /// The name of the field (`acc1`, `acc5` or `latency_ms`).
        field: &'static str,
    },

    /// A record's `extra` map holds a key that names one of the record's own fields, so the
    /// record could not be written and read back unchanged.
    #[error("stitch {id}: extra key `{key}` clashes with a built-in field")]
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
    #[error("unknown cost `{name}`: expected one of flops, params, latency-ms, memory-bytes")]
    UnknownCost {
        /// The name that was given.
        name: String,
    },

    /// A line of a JSON Lines document is not a valid stitch record.
    #[error("line {line}: {source}")]
    Parse {
        /// The 1-based line number.
        line: usize,
        /// The underlying JSON error.
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

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
