//! The feature matrices the solver reads: row-major f32 views, checked once.

use std::fmt;

use crate::error::{Error, Result, ShapeError};

/// A row-major f32 matrix view: `rows × cols`, one row per token (or pixel).
#[derive(Clone, Copy)]
pub struct Features<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rows: usize,
    pub(crate) cols: usize,
}

impl<'a> Features<'a> {
    /// Views `data` as a row-major `rows × cols` matrix.
    ///
    /// # Errors
    ///
    /// [`Error::Shape`] when `data.len() != rows · cols`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        match rows.checked_mul(cols) {
            Some(len) if len == data.len() => Ok(Self { data, rows, cols }),
            _ => Err(Error::Shape(ShapeError::Features {
                values: data.len(),
                rows,
                cols,
            })),
        }
    }

    /// Number of rows (tokens).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (channels).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The values, row-major.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The first non-finite value, as [`Error::NonFinite`] naming `which` side.
    pub(crate) fn check_finite(&self, which: &'static str) -> Result<()> {
        // Blocks scanned branch-free (vectorised), then the bad block searched.
        const BLOCK: usize = 4096;
        let first_bad = self
            .data
            .chunks(BLOCK)
            .enumerate()
            .find_map(|(block, values)| {
                if values.iter().fold(false, |bad, v| bad | !v.is_finite()) {
                    values
                        .iter()
                        .position(|v| !v.is_finite())
                        .map(|i| block * BLOCK + i)
                } else {
                    None
                }
            });
        match first_bad {
            None => Ok(()),
            Some(index) => Err(Error::NonFinite {
                which,
                // `cols > 0` whenever there is a value.
                row: index / self.cols.max(1),
                col: index % self.cols.max(1),
            }),
        }
    }
}

impl fmt::Debug for Features<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Features")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}
