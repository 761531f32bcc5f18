//! Safe, atomic file output for snnet-rs.
//!
//! Every file the workspace writes — weights, checkpoints, tables, plots, logs, tensors — goes
//! through [`write_atomic`] (whole contents at once) or [`AtomicFile`] (streamed): the data lands
//! in a temporary file beside the target, created exclusively (`O_CREAT | O_EXCL`, so a file or
//! symlink planted at the temporary path makes the creation fail instead of being followed) under
//! a random name, is flushed to disk (`fsync`) and renamed over the target in one step. Readers
//! see either the old file or the complete new one, never a torn write, and a failed write
//! removes its temporary file.
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

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What can go wrong writing a file.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The target exists and is not a regular file (a directory, device, FIFO, socket or
    /// symlink); it is left untouched.
    NotRegular {
        /// The target.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// An I/O error creating, writing, syncing or renaming.
    Io {
        /// The file the operation was on (the target, or the temporary file).
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRegular { path, kind } => write!(
                f,
                "{}: refusing to replace a {kind}; name a regular file (or a new path)",
                path.display()
            ),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::NotRegular { .. } => None,
        }
    }
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

/// How many names to try before giving up on finding a free temporary path.
const ATTEMPTS: usize = 64;

/// Writes `contents` to `path` atomically (see the crate docs).
///
/// # Errors
/// [`Error::NotRegular`] when `path` is a directory, device, FIFO, socket or symlink;
/// [`Error::Io`] when the folder is missing or not writable, or the disk is full.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(contents).map_err(|source| Error::Io {
        path: file.temp.clone(),
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

/// A random 64-bit value: std's per-process random hasher keys, mixed with a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A file being written atomically: write to it, then [`AtomicFile::commit`]. Dropped without a
/// commit, it removes its temporary file and leaves the target as it was.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Starts writing `path`: checks the target ([`check_target`]) and creates the temporary
    /// file exclusively, with a random name, in the same folder.
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn create(path: &Path) -> Result<Self> {
        check_target(path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".to_owned());
        // Keep the name short enough for NAME_MAX with the suffix.
        let stem: String = name.chars().take(128).collect();
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let temp = dir.join(format!(".{stem}.{:016x}.tmp", random_u64()));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o644);
            }
            match options.open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        target: path.to_owned(),
                        temp,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(source) => return Err(Error::Io { path: temp, source }),
            }
        }
        Err(Error::Io {
            path: dir,
            source: last.unwrap_or_else(|| io::Error::other("no free temporary name")),
        })
    }

    /// The target path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the data to disk and renames the temporary file over the target (checked again
    /// just before, so a target replaced by a symlink or device meanwhile is refused).
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn commit(mut self) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Error::Io { path, source }
        };
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(io(&self.temp))?;
        }
        check_target(&self.target)?;
        std::fs::rename(&self.temp, &self.target).map_err(io(&self.target))?;
        // The rename is durable once the folder is synced; best effort (not every platform can
        // open a folder).
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn uncommitted_leaves_target_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
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
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let a = AtomicFile::create(&path).unwrap();
        let b = AtomicFile::create(&path).unwrap();
        assert_ne!(a.temp, b.temp);
        assert!(
            !a.temp
                .to_string_lossy()
                .contains(&std::process::id().to_string())
        );
    }

    #[test]
    fn refuses_directories() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(dir.path(), b"x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotRegular {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = write_atomic(&link, b"x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotRegular {
                    kind: "symbolic link",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let err = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotRegular {
                    kind: "character device",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn missing_folder_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_atomic(&dir.path().join("no/such/a.bin"), b"x").unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }
}
