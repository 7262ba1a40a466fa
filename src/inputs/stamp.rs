//! Provenance of an input file (SPEC §8): what the OS says a file is, taken when the run first
//! opens it and checked again around the manifest's hashing.
//!
//! Takes a path; gives a [`FileStamp`] (device, inode, size, modification and status-change
//! times) and [`InputFile`], an input with the stamp it had when it was read. The status-change
//! time cannot be set back by a user, so a file written to, truncated or replaced after it was
//! stamped no longer matches, and the manifest never records a hash of bytes the run did not
//! count.

use std::path::{Path, PathBuf};

/// What a file is, as far as a change to it would show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    device: u64,
    inode: u64,
    pub bytes: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileStamp {
    /// The stamp of the file at `path` (a symlink is followed).
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        let meta = std::fs::metadata(path)?;
        Ok(FileStamp::from_metadata(&meta))
    }

    #[cfg(unix)]
    pub fn from_metadata(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        FileStamp {
            device: meta.dev(),
            inode: meta.ino(),
            bytes: meta.size(),
            modified_ns: ns(meta.mtime(), meta.mtime_nsec()),
            changed_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    pub fn from_metadata(meta: &std::fs::Metadata) -> FileStamp {
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        FileStamp {
            device: 0,
            inode: 0,
            bytes: meta.len(),
            modified_ns,
            changed_ns: modified_ns,
        }
    }

    /// The file's identity: two paths with the same identity are one file.
    pub fn identity(&self) -> (u64, u64) {
        (self.device, self.inode)
    }
}

/// An input as the run read it.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The name the manifest and messages use (relative to the data folder, or `calendar:…`).
    pub shown: String,
    /// What it was when first read: a file and its stamp, or an object version.
    pub read: ReadAs,
}

/// What an input was before its first byte was read.
#[derive(Debug, Clone)]
pub enum ReadAs {
    File {
        path: PathBuf,
        stamp: FileStamp,
    },
    Object {
        client: std::sync::Arc<crate::storage::S3Client>,
        version: crate::storage::ObjectVersion,
    },
}

impl InputFile {
    pub fn stamp(shown: impl Into<String>, path: &Path) -> std::io::Result<InputFile> {
        Ok(InputFile {
            shown: shown.into(),
            read: ReadAs::File {
                path: path.to_path_buf(),
                stamp: FileStamp::of(path)?,
            },
        })
    }

    /// Its size when first read.
    pub fn bytes(&self) -> u64 {
        match &self.read {
            ReadAs::File { stamp, .. } => stamp.bytes,
            ReadAs::Object { version, .. } => version.size,
        }
    }

    /// Fails, naming the file, unless it is still exactly what was read.
    pub fn check_unchanged(&self) -> anyhow::Result<()> {
        let (path, stamp) = match &self.read {
            ReadAs::File { path, stamp } => (path, stamp),
            ReadAs::Object { client, version } => {
                return client.check_unchanged(version).map_err(|err| {
                    let hint = err.hint();
                    crate::error::hinted(
                        format!(
                            "input `{}`: {err}; nothing was written",
                            crate::text::shown(&self.shown)
                        ),
                        hint,
                    )
                })
            }
        };
        let now = FileStamp::of(path);
        match now {
            Ok(now) if now == *stamp => Ok(()),
            Ok(now) => Err(crate::error::hinted(
                format!(
                    "input `{}` changed while the run read it ({}); nothing was written",
                    crate::text::shown(&self.shown),
                    what_changed(stamp, &now),
                ),
                "run again once whatever writes it has finished",
            )),
            Err(e) => Err(crate::error::hinted(
                format!(
                    "input `{}` vanished or cannot be read since the run read it: {e}; nothing was written",
                    crate::text::shown(&self.shown),
                ),
                "run again once whatever moves it has finished",
            )),
        }
    }
}

fn what_changed(was: &FileStamp, now: &FileStamp) -> String {
    if now.identity() != was.identity() {
        "it was replaced by another file".into()
    } else if now.bytes != was.bytes {
        format!("its size went from {} to {} bytes", was.bytes, now.bytes)
    } else {
        "it was written to".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_8_a_file_written_to_or_replaced_no_longer_matches() {
        let dir = std::env::temp_dir().join(format!("sla-ledger-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        std::fs::write(&path, "a\n").unwrap();
        let input = InputFile::stamp("t.csv", &path).unwrap();
        input.check_unchanged().unwrap();
        std::fs::write(&path, "b\n").unwrap();
        let err = input.check_unchanged().unwrap_err().to_string();
        assert!(
            err.contains("`t.csv` changed while the run read it"),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = input.check_unchanged().unwrap_err().to_string();
        assert!(err.contains("vanished"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
