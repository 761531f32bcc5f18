//! Limits on the stitch tables read from outside (evaluation and profile files in JSON Lines),
//! checked while reading, before anything is kept for the input. Going over one is an
//! [`Error::LimitExceeded`](crate::Error::LimitExceeded) naming the constant; a value outside
//! its range is an [`Error::OutOfRange`](crate::Error::OutOfRange) naming the line and field.
//!
//! Each limit sits far above a real table (the reference's largest, DeiT-Ti/S/B with all
//! pairing, has 732 rows of about 100 bytes) and far below what would exhaust a machine's
//! memory.

/// Largest table document, in bytes (32 MiB: 300 times the reference's largest table, which is
/// about 70 KB; a table this size parses into a few hundred MB at most).
pub const MAX_TABLE_BYTES: usize = 32 << 20;

/// Most rows (records) of one table (100,000: the most stitches a space of `snnet-space` may
/// have, `snnet_space::limits::MAX_STITCHES`; the reference's largest table has 732).
pub const MAX_TABLE_ROWS: usize = 100_000;

/// Longest line of a JSON Lines table, in bytes (64 KiB: a reference line is about 100 bytes, a
/// profile line with its extra keys a few hundred).
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// Largest stitch id (1,000,000: ten times the most stitches a space may have; ids are
/// positions in a space, `0..n`, and tools index by them).
pub const MAX_STITCH_ID: usize = 1_000_000;

/// Lowest accuracy (`acc1`, `acc5`), in percent.
pub const MIN_ACCURACY: f64 = 0.0;

/// Highest accuracy (`acc1`, `acc5`), in percent.
pub const MAX_ACCURACY: f64 = 100.0;
