//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while describing anchors or building a stitch space.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model name that is neither built in nor loaded from a spec file.
    #[error("unknown anchor `{name}`{}", suggestion_text(.suggestions))]
    UnknownAnchor {
        /// The name asked for.
        name: String,
        /// Known names close to it, best first (may be empty).
        suggestions: Vec<String>,
    },
    /// A space needs at least one anchor.
    #[error("a stitch space needs at least one anchor")]
    NoAnchors,
    /// An anchor spec that cannot describe a network.
    #[error("invalid anchor spec `{name}`: {reason}")]
    InvalidAnchor {
        /// The anchor's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two anchor specs with the same name in one spec file or one space.
    #[error("anchor `{name}` is listed twice")]
    DuplicateAnchor {
        /// The repeated name.
        name: String,
    },
    /// Anchors with different numbers of stages cannot be stitched stage by stage.
    #[error(
        "anchors `{first}` ({first_stages} stage(s)) and `{other}` ({other_stages} stage(s)) have \
         different numbers of stages; all anchors of a space must be plain (one stage) or all \
         hierarchical with the same number of stages"
    )]
    StageCountMismatch {
        /// The first anchor's name.
        first: String,
        /// Its number of stages.
        first_stages: usize,
        /// The mismatching anchor's name.
        other: String,
        /// Its number of stages.
        other_stages: usize,
    },
    /// Anchors must be listed from the smallest to the largest.
    #[error(
        "anchors must be listed from small to large: `{front}` is wider than `{end}` at stage \
         {stage} ({front_width} > {end_width}); reorder --anchors (use --direction slow-to-fast \
         to stitch large fronts into small ends)"
    )]
    AnchorOrder {
        /// The earlier (should be smaller) anchor.
        front: String,
        /// The later (should be larger) anchor.
        end: String,
        /// The stage compared.
        stage: usize,
        /// The earlier anchor's width there.
        front_width: usize,
        /// The later anchor's width there.
        end_width: usize,
    },
    /// Sliding-window kernel size or stride of zero.
    #[error("{what} must be at least 1, got {value}")]
    InvalidWindow {
        /// `"kernel size"` or `"stride"`.
        what: &'static str,
        /// The value given.
        value: usize,
    },
    /// A stage to stitch that the anchors do not have.
    #[error(
        "stage {stage} does not exist: the anchors have {num_stages} stage(s) (0..{num_stages})"
    )]
    StageOutOfRange {
        /// The stage asked for.
        stage: usize,
        /// How many stages the anchors have.
        num_stages: usize,
    },
    /// An explicitly empty set of stages to stitch.
    #[error("the set of stages to stitch is empty")]
    NoStages,
    /// A combination of options the reference rules do not define.
    #[error("unsupported stitch space: {0}")]
    Unsupported(String),
    /// A stitch id outside the space.
    #[error("stitch id {id} is out of range: the space has {count} stitches (0..{count})")]
    UnknownStitch {
        /// The id asked for.
        id: usize,
        /// The number of stitches in the space.
        count: usize,
    },
    /// A stitching-layer key that names no layer of the space.
    #[error("no stitching layer {0}")]
    UnknownLayer(String),
    /// A string that does not name a direction or pairing.
    #[error("cannot parse `{value}` as {what}; expected one of: {expected}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The input.
        value: String,
        /// The accepted spellings.
        expected: &'static str,
    },
    /// Reading a spec file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A spec file that is not valid JSON of the expected shape.
    #[error("invalid anchor spec file {path}: {source}")]
    Json {
        /// The file (empty when parsing a string).
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        "; run `snnet anchors` to list the known names".to_owned()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
