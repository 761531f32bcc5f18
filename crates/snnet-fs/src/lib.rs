//! Safe, atomic file output for snnet-rs.
//!
//! Every file the workspace writes — weights, checkpoints, tables, plots, logs, tensors — goes
//! through [`write_atomic`] (whole contents at once) or [`AtomicFile`] (streamed): the data lands
//! in a temporary file beside the target, created exclusively by [`tempfile`] (`O_CREAT |
//! O_EXCL`, so a file or symlink planted at the temporary path makes the creation fail instead of
//! being followed) under a random name, is flushed to disk (`fsync`) and renamed over the target
//! in one step ([`tempfile::NamedTempFile::persist`]). Readers see either the old file or the
//! complete new one, never a torn write, and a failed write removes its temporary file.
//!
//! The target itself must be absent or a regular file: a directory, a device node, a FIFO, a
//! socket or a symlink at the target is refused with [`Error::NotRegular`] (renaming over
//! `/dev/null` would replace the node, and renaming over a symlink would silently replace the
//! link rather than the file it names).
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("table.jsonl");
//! snnet_fs::write_atomic(&path, b"{\"cfg_id\": 0}\n")?;
//! assert_eq!(std::fs::read(&path)?, b"{\"cfg_id\": 0}\n");
//!
//! let mut file = snnet_fs::AtomicFile::create(&path)?;
//! std::io::Write::write_all(&mut file, b"replaced\n")?;
//! file.commit()?;
//! assert_eq!(std::fs::read_to_string(&path)?, "replaced\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(
    not(test),
    warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// What can go wrong writing a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target exists and is not a regular file (a directory, device, FIFO, socket or
    /// symlink); it is left untouched.
    #[error("{}: refusing to replace a {kind}; name a regular file (or a new path)", path.display())]
    NotRegular {
        /// The target.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// An I/O error creating, writing, syncing or renaming.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file the operation was on (the target, or the temporary file).
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::NotRegular { .. } => io::ErrorKind::InvalidInput,
            Error::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Characters of the target's name kept in the temporary file's name (short enough for
/// `NAME_MAX` with the prefix dot, the random part and the suffix).
const STEM_CHARS: usize = 128;

/// Random characters in a temporary file's name.
const RANDOM_CHARS: usize = 16;

/// Writes `contents` to `path` atomically (see the crate docs).
///
/// # Errors
/// [`Error::NotRegular`] when `path` is a directory, device, FIFO, socket or symlink;
/// [`Error::Io`] when the folder is missing or not writable, or the disk is full.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(|source| Error::Io {
        path: file.temp_path().to_owned(),
        source,
    })?;
    file.commit()
}

/// Checks that `path` may be replaced: it is absent or a regular file (not followed if a
/// symlink).
///
/// # Errors
/// [`Error::NotRegular`] naming what is there; [`Error::Io`] when it cannot be inspected.
pub fn check_target(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            if t.is_file() {
                return Ok(());
            }
            let kind = if t.is_dir() {
                "directory"
            } else if t.is_symlink() {
                "symbolic link"
            } else {
                special_kind(&t)
            };
            Err(Error::NotRegular {
                path: path.to_owned(),
                kind,
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "special file"
}

/// A file being written atomically: write to it, then [`AtomicFile::commit`]. Dropped without a
/// commit, it removes its temporary file and leaves the target as it was.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    /// Created exclusively beside the target; removed when dropped, renamed over the target by
    /// [`AtomicFile::commit`].
    temp: NamedTempFile,
}

impl AtomicFile {
    /// Starts writing `path`: checks the target ([`check_target`]) and creates the temporary
    /// file exclusively (`tempfile`'s `O_CREAT | O_EXCL`, retried under new random names), named
    /// `.<name>.<random>.tmp`, in the same folder, with mode `0o644` (less the umask) on Unix.
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn create(path: &Path) -> Result<Self> {
        check_target(path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".to_owned());
        let prefix = format!(".{}.", name.chars().take(STEM_CHARS).collect::<String>());
        let mut builder = tempfile::Builder::new();
        builder
            .prefix(&prefix)
            .suffix(".tmp")
            .rand_bytes(RANDOM_CHARS);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o644));
        }
        let temp = builder.tempfile_in(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            target: path.to_owned(),
            temp,
        })
    }

    /// The target path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary file's path.
    fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Flushes the data to disk and renames the temporary file over the target (checked again
    /// just before, so a target replaced by a symlink or device meanwhile is refused).
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn commit(self) -> Result<()> {
        let Self { target, temp } = self;
        temp.as_file().sync_all().map_err(|source| Error::Io {
            path: temp.path().to_owned(),
            source,
        })?;
        check_target(&target)?;
        // On failure the returned temporary file is dropped, which removes it.
        temp.persist(&target).map_err(|e| Error::Io {
            path: target.clone(),
            source: e.error,
        })?;
        // The rename is durable once the folder is synced; best effort (not every platform can
        // open a folder).
        if let Some(dir) = target.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `result` is [`Error::NotRegular`] of `kind`.
    fn assert_not_regular(result: Result<()>, kind: &str) {
        match result {
            Err(Error::NotRegular { kind: k, .. }) if k == kind => {}
            other => panic!("expected a refused {kind}, got {other:?}"),
        }
    }

    /// A fresh temporary folder and the path `a.bin` in it (not yet written).
    fn target() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        (dir, path)
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn writes_and_replaces() {
        let (dir, path) = target();
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn uncommitted_leaves_target_and_no_temp() {
        let (dir, path) = target();
        write_atomic(&path, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn temp_names_are_unpredictable_and_distinct() {
        let (dir, path) = target();
        let a = AtomicFile::create(&path).unwrap();
        let b = AtomicFile::create(&path).unwrap();
        assert_ne!(a.temp_path(), b.temp_path());
        assert!(a.temp_path().starts_with(dir.path()));
        let name = a.temp_path().file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with(".a.bin.") && name.ends_with(".tmp"),
            "{name}"
        );
        assert!(
            !a.temp_path()
                .to_string_lossy()
                .contains(&std::process::id().to_string())
        );
    }

    #[test]
    fn refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        assert_not_regular(write_atomic(dir.path(), b"x"), "directory");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert_not_regular(write_atomic(&link, b"x"), "symbolic link");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_not_regular(
            write_atomic(Path::new("/dev/null"), b"x"),
            "character device",
        );
    }

    /// Written files get mode `0o644` less the umask, as `File::create` (`0o666` less the umask)
    /// would give less the write bits for group and others, not `tempfile`'s private `0o600`.
    #[cfg(unix)]
    #[test]
    fn written_files_keep_the_usual_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let umasked = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, umasked & 0o644, "{mode:o}");
    }

    #[test]
    fn missing_folder_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("no/such/a.bin"), b"x").unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }
}
