//! The crate's error type.

use std::path::PathBuf;

use crate::stitch::LayerKey;
use crate::untrusted::{display_safe, display_short};

/// How many characters of an outside string an error message echoes.
const SHOWN: usize = 80;

fn shown(s: &str) -> String {
    display_short(s, SHOWN)
}

/// Everything that can go wrong while describing anchors or building a stitch space.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model name that is neither built in nor loaded from a spec file.
    #[error("unknown anchor `{}`{}", shown(.name), suggestion_text(.suggestions))]
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
    #[error("invalid anchor spec `{}`: {reason}", shown(.name))]
    InvalidAnchor {
        /// The anchor's name.
        name: String,
        /// What is wrong with it.
        reason: AnchorProblem,
    },
    /// Two anchor specs with the same name in one spec file or one space.
    #[error("anchor `{}` is listed twice", shown(.name))]
    DuplicateAnchor {
        /// The repeated name.
        name: String,
    },
    /// Anchors with different numbers of stages cannot be stitched stage by stage.
    #[error(
        "anchors `{}` ({first_stages} stage(s)) and `{}` ({other_stages} stage(s)) have \
         different numbers of stages; all anchors of a space must be plain (one stage) or all \
         hierarchical with the same number of stages",
        shown(.first),
        shown(.other)
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
        "anchors must be listed from small to large: `{}` is wider than `{}` at stage \
         {stage} ({front_width} > {end_width}); list them small to large (the slow-to-fast \
         direction stitches large fronts into small ends)",
        shown(.front),
        shown(.end)
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
    Unsupported(Unsupported),
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
    UnknownLayer(LayerKey),
    /// A string that does not name a direction or pairing.
    #[error("cannot parse `{}` as {what}; expected one of: {expected}", shown(.value))]
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
    /// A spec file that is not valid JSON of the expected shape. The message names the field
    /// (an unknown or missing one, or the one whose value has the wrong type) and the line and
    /// column.
    #[error("invalid anchor spec file {}: {}", path_text(.path), display_safe(&.source.to_string()))]
    Json {
        /// The file (empty when parsing a string).
        path: PathBuf,
        /// The JSON error, with line and column.
        source: serde_json::Error,
    },
    /// An input over one of the documented limits of [`crate::limits`], refused before anything
    /// is allocated for it.
    #[error(
        "{}{what} is {value}, over the limit of {limit} (snnet_space::limits::{constant})",
        anchor_text(.anchor)
    )]
    LimitExceeded {
        /// What was measured (`"depth (blocks over all stages)"`, `"stitches"`, ...).
        what: &'static str,
        /// Its value (exact, even when it would overflow `usize`).
        value: u128,
        /// The limit.
        limit: u64,
        /// The name of the constant in [`crate::limits`] that sets the limit (`"MAX_DEPTH"`).
        constant: &'static str,
        /// The anchor the value belongs to, when it belongs to one.
        anchor: Option<String>,
    },
    /// An anchor name or label that is empty or holds characters other than letters, digits and
    /// ASCII punctuation (whitespace, control characters or invisible formatting characters).
    #[error("invalid anchor {what} `{}`: {reason}", shown(.value))]
    InvalidName {
        /// `"name"` or `"label"`.
        what: &'static str,
        /// The rejected value, raw (print it with [`crate::display_safe`]).
        value: String,
        /// What is wrong with it.
        reason: NameProblem,
    },
    /// A spec file defines a name or label that a built-in anchor, or a spec added earlier,
    /// already uses. Spec files never replace known anchors;
    /// [`AnchorRegistry::add`](crate::AnchorRegistry::add) replaces a spec explicitly.
    #[error(
        "anchor spec `{}` would redefine {} `{}`; give the spec a new name and label",
        shown(.name),
        if *.builtin { "the built-in anchor" } else { "the anchor" },
        shown(.existing)
    )]
    Redefinition {
        /// The name or label the spec file uses.
        name: String,
        /// The known anchor that already uses it (its full name).
        existing: String,
        /// Whether the known anchor is built in.
        builtin: bool,
    },
}

fn path_text(path: &std::path::Path) -> String {
    if path.as_os_str().is_empty() {
        "(string)".to_owned()
    } else {
        display_safe(&path.display().to_string()).into_owned()
    }
}

fn anchor_text(anchor: &Option<String>) -> String {
    anchor
        .as_deref()
        .map(|a| format!("anchor `{}`: ", shown(a)))
        .unwrap_or_default()
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = suggestions.iter().map(|s| shown(s)).collect();
        format!("; did you mean {}?", names.join(", "))
    }
}

/// What is wrong with an anchor spec ([`Error::InvalidAnchor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorProblem {
    /// The spec lists no stage.
    #[error("it has no stages")]
    NoStages,
    /// A stage of no blocks.
    #[error("stage {stage} has no blocks")]
    EmptyStage {
        /// The stage.
        stage: usize,
    },
    /// A stage of width 0.
    #[error("stage {stage} has width 0")]
    ZeroWidth {
        /// The stage.
        stage: usize,
    },
}

/// What is wrong with an anchor name or label ([`Error::InvalidName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    #[error("it is empty")]
    Empty,
    /// A character other than a letter, a digit or ASCII punctuation.
    #[error(
        "character `{}` (U+{:04X}) is not allowed; use letters, digits and ASCII punctuation",
        display_safe(.0.encode_utf8(&mut [0; 4])),
        u32::from(*.0)
    )]
    Character(char),
}

/// A combination of anchors and settings the reference rules do not define
/// ([`Error::Unsupported`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unsupported {
    /// Two-way stitching (SN-Netv2) of hierarchical anchors.
    #[error("two-way stitching (SN-Netv2) is defined for plain anchors only")]
    TwoWayHierarchical,
    /// Two-way stitching of a smaller anchor that is deeper than the larger one.
    #[error(
        "two-way stitching needs the smaller anchor to be no deeper than the larger: `{}` has \
         {small_depth} blocks, `{}` has {large_depth}",
        shown(.small),
        shown(.large)
    )]
    TwoWayDeeperSmall {
        /// The smaller anchor's name.
        small: String,
        /// Its depth in blocks.
        small_depth: usize,
        /// The larger anchor's name.
        large: String,
        /// Its depth in blocks.
        large_depth: usize,
    },
    /// A two-way anchor path that is not a pair (an internal guard: two-way spaces pair anchors).
    #[error("two-way anchor path {0:?} is not a pair")]
    TwoWayPathNotPair(Vec<usize>),
    /// An anchor path through a pair of anchors with no stitching rule (an internal guard).
    #[error("anchor path {0:?} uses a pair that is not stitched")]
    UnstitchedPair(Vec<usize>),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_reasons_read_as_the_messages_did() {
        let invalid = Error::InvalidAnchor {
            name: "a".to_owned(),
            reason: AnchorProblem::ZeroWidth { stage: 1 },
        };
        assert_eq!(
            invalid.to_string(),
            "invalid anchor spec `a`: stage 1 has width 0"
        );
        let deeper = Error::Unsupported(Unsupported::TwoWayDeeperSmall {
            small: "s".to_owned(),
            small_depth: 8,
            large: "l\u{1b}".to_owned(),
            large_depth: 4,
        });
        assert_eq!(
            deeper.to_string(),
            "unsupported stitch space: two-way stitching needs the smaller anchor to be no deeper \
             than the larger: `s` has 8 blocks, `l\\u{1b}` has 4"
        );
        let key = LayerKey {
            stage: Some(2),
            front: 0,
            end: 1,
            index: 3,
        };
        assert_eq!(
            Error::UnknownLayer(key).to_string(),
            format!("no stitching layer {key}")
        );
        let name = Error::InvalidName {
            what: "name",
            value: "a b".to_owned(),
            reason: NameProblem::Character(' '),
        };
        assert_eq!(
            name.to_string(),
            "invalid anchor name `a b`: character ` ` (U+0020) is not allowed; use letters, \
             digits and ASCII punctuation"
        );
    }
}
