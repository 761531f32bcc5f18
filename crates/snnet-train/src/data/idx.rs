//! The IDX file format (LeCun's MNIST format, also Fashion-MNIST's), gzipped or not.
//!
//! A file is a magic number (two zero bytes, an element-type byte, the number of dimensions),
//! the dimensions as big-endian `u32`s, then the elements in row-major order. Only unsigned
//! bytes (type `0x08`), the type of every (Fashion-)MNIST file, are supported. Gzipped files
//! are recognised by their content (the gzip magic bytes), not their name.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// The element-type byte of unsigned bytes.
pub const TYPE_U8: u8 = 0x08;

/// The most data (elements, bytes) an IDX file may declare: 1 GiB. Checked against the header's
/// dimensions before any data is read, so a small gzipped file cannot expand into gigabytes.
/// Fashion-MNIST's largest file holds 47 MB.
pub const MAX_IDX_BYTES: usize = 1 << 30;

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major: `dims.iter().product()` of them.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gzipped or not.
///
/// # Errors
/// [`Error::Dataset`] (without a hint) when the file is missing or unreadable, is not an IDX
/// file of unsigned bytes, its gzip stream is corrupt, or it holds fewer or more elements than
/// its dimensions say.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = File::open(path).map_err(|e| {
        let reason = if e.kind() == ErrorKind::NotFound {
            "file not found".to_owned()
        } else {
            format!("cannot open: {e}")
        };
        dataset_error(path, reason)
    })?;
    from_buffered(BufReader::new(file), path)
}

/// Parses the bytes of an IDX file of unsigned bytes, gzipped or not: what [`read_idx`] does
/// with a file's contents, for data already in memory (and the `idx` fuzz target).
///
/// ```
/// use snnet_train::data::idx::parse_idx;
///
/// let array = parse_idx(&[0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])?;
/// assert_eq!((array.dims, array.data), (vec![3], vec![7, 8, 9]));
/// assert!(parse_idx(b"not idx").is_err());
/// # Ok::<(), snnet_train::Error>(())
/// ```
///
/// # Errors
/// As [`read_idx`]; the errors name the input `(memory)`.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray> {
    from_buffered(bytes, Path::new("(memory)"))
}

/// Parses a buffered IDX stream, gunzipping it when it starts with the gzip magic bytes.
fn from_buffered(mut reader: impl BufRead, path: &Path) -> Result<IdxArray> {
    let gzipped = reader
        .fill_buf()
        .map_err(|e| dataset_error(path, format!("cannot read: {e}")))?
        .starts_with(&GZIP_MAGIC);
    if gzipped {
        from_reader(GzDecoder::new(reader), path)
    } else {
        from_reader(reader, path)
    }
}

/// Parses an uncompressed IDX stream of unsigned bytes; `path` only names it in errors.
///
/// # Errors
/// As [`read_idx`].
pub fn from_reader(mut reader: impl Read, path: &Path) -> Result<IdxArray> {
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| read_error(path, "header", &e))?;
    if magic[..2] != [0, 0] {
        return Err(dataset_error(
            path,
            format!(
                "not an IDX file (magic number 0x{:08x})",
                u32::from_be_bytes(magic)
            ),
        ));
    }
    if magic[2] != TYPE_U8 {
        return Err(dataset_error(
            path,
            format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                magic[2]
            ),
        ));
    }
    let ndims = usize::from(magic[3]);
    if ndims == 0 {
        return Err(dataset_error(path, "IDX file with 0 dimensions".to_owned()));
    }
    let mut raw = vec![0u8; 4 * ndims];
    reader
        .read_exact(&mut raw)
        .map_err(|e| read_error(path, "dimensions", &e))?;
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| dataset_error(path, format!("IDX dimensions {dims:?} overflow")))?;
    if len > MAX_IDX_BYTES {
        return Err(dataset_error(
            path,
            format!(
                "IDX dimensions {dims:?} declare {len} bytes of data, over the limit of \
                 {MAX_IDX_BYTES} (MAX_IDX_BYTES)"
            ),
        ));
    }
    // Read one byte more than needed to tell trailing garbage from an exact fit; this also
    // drives a gzip stream to its end, where the decoder checks the CRC.
    let limit = u64::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(1))
        .unwrap_or(u64::MAX);
    let mut data = Vec::with_capacity(len.min(1 << 28));
    reader
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|e| read_error(path, "data", &e))?;
    if data.len() < len {
        return Err(dataset_error(
            path,
            format!(
                "truncated: dimensions {dims:?} need {len} bytes of data, the file has {}",
                data.len()
            ),
        ));
    }
    if data.len() > len {
        return Err(dataset_error(
            path,
            format!("trailing data after the {len} bytes that dimensions {dims:?} describe"),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Writes an IDX file of unsigned bytes, gzipped when `path` ends in `.gz` (for tests and
/// tools that make small datasets).
///
/// # Errors
/// [`Error::InvalidConfig`] when `data` does not fit `dims` or a dimension exceeds `u32`,
/// [`Error::Dataset`] when the file cannot be written.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let invalid = |reason: String| Error::InvalidConfig {
        what: "IDX array",
        reason,
    };
    let ndims = u8::try_from(dims.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(format!("{} dimensions (1 to 255)", dims.len())))?;
    if dims.iter().product::<usize>() != data.len() {
        return Err(invalid(format!(
            "dimensions {dims:?} do not fit {} bytes",
            data.len()
        )));
    }
    let mut bytes = vec![0, 0, TYPE_U8, ndims];
    for &d in dims {
        let d = u32::try_from(d).map_err(|_| invalid(format!("dimension {d} exceeds u32")))?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    let write_error = |e: std::io::Error| dataset_error(path, format!("cannot write: {e}"));
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&bytes).map_err(write_error)?;
        encoder.finish().map_err(write_error)?
    } else {
        bytes
    };
    snnet_fs::write_atomic(path, &bytes).map_err(|e| write_error(e.into()))
}

/// The IDX file `stem` in `dir`: `stem.gz` if it exists, else `stem`; `None` if neither does.
pub fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    candidates(dir, stem).into_iter().find(|p| p.is_file())
}

/// The paths [`find`] looks at, in order.
pub fn candidates(dir: &Path, stem: &str) -> [PathBuf; 2] {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
}

fn dataset_error(path: &Path, reason: String) -> Error {
    Error::Dataset {
        path: path.to_owned(),
        reason,
        hint: None,
    }
}

fn read_error(path: &Path, part: &str, e: &std::io::Error) -> Error {
    let reason = if e.kind() == ErrorKind::UnexpectedEof {
        format!("truncated: the file ends inside the IDX {part}")
    } else {
        format!("cannot read the IDX {part}: {e}")
    };
    dataset_error(path, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(dims: &[u32]) -> Vec<u8> {
        let mut b = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b
    }

    fn parse(bytes: &[u8]) -> Result<IdxArray> {
        from_reader(bytes, Path::new("mem"))
    }

    #[test]
    fn parses_dims_and_data() {
        let mut b = header(&[2, 3]);
        b.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let a = parse(&b).unwrap();
        assert_eq!(a.dims, [2, 3]);
        assert_eq!(a.data, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_headers_and_lengths() {
        let reason = |b: &[u8]| match parse(b) {
            Err(Error::Dataset { reason, .. }) => reason,
            other => panic!("expected a dataset error, got {other:?}"),
        };
        assert!(reason(&[0x1f, 0x8b, 8, 0]).contains("not an IDX file"));
        assert!(reason(&[0, 0, 0x0d, 1, 0, 0, 0, 1]).contains("not supported"));
        assert!(reason(&[0, 0, 8, 0]).contains("0 dimensions"));
        assert!(reason(&[0, 0]).contains("truncated"));
        assert!(reason(&[0, 0, 8, 2, 0, 0]).contains("truncated"));
        let mut b = header(&[4]);
        b.extend_from_slice(&[1, 2, 3]);
        assert!(reason(&b).contains("truncated"));
        b.extend_from_slice(&[4, 5]);
        assert!(reason(&b).contains("trailing"));
        // A huge header must not allocate its claimed size.
        let b = header(&[u32::MAX, u32::MAX, u32::MAX]);
        assert!(!reason(&b).is_empty());
    }

    #[test]
    fn parse_idx_reads_plain_and_gzipped_bytes() {
        use std::io::Write;

        let mut plain = header(&[2, 2]);
        plain.extend_from_slice(&[1, 2, 3, 4]);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&plain).unwrap();
        let gzipped = encoder.finish().unwrap();
        let array = parse_idx(&plain).unwrap();
        assert_eq!(
            (array.dims.as_slice(), array.data.as_slice()),
            (&[2, 2][..], &[1, 2, 3, 4][..])
        );
        assert_eq!(parse_idx(&gzipped).unwrap(), array);
        // A corrupt gzip stream (its CRC flipped) is an error naming the input, not a panic.
        let mut corrupt = gzipped.clone();
        if let Some(crc) = corrupt.iter_mut().rev().nth(4) {
            *crc ^= 0xff;
        }
        match parse_idx(&corrupt) {
            Err(Error::Dataset { path, .. }) => assert_eq!(path, Path::new("(memory)")),
            other => panic!("expected a dataset error, got {other:?}"),
        }
        assert!(parse_idx(&[]).is_err());
    }

    #[test]
    fn declared_sizes_over_the_limit_are_refused_before_reading() {
        // 2^16 × 2^15 = 2 GiB declared, a few bytes present (a gzip bomb would hold the rest).
        let mut bytes = header(&[1 << 16, 1 << 15]);
        bytes.extend_from_slice(&[0; 16]);
        match parse_idx(&bytes) {
            Err(Error::Dataset { reason, .. }) => {
                assert!(reason.contains("MAX_IDX_BYTES"), "{reason}")
            }
            other => panic!("expected a dataset error, got {other:?}"),
        }
    }
}
