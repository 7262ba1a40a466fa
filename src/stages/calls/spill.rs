//! Takes the keys of one bucket the memory budget does not hold; writes them to a file of its
//! own in the caller's spill folder and gives them back exactly as written, or a
//! [`SpillError`] (SPEC §8).
//!
//! With store.rs, this holds all of the heavy step's `unsafe` code: here, the view of keys as
//! bytes ([`as_bytes`]) and raising the open-file limit ([`allow_open_files`]).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3Default;

use super::key::{CallKey, KEY_BYTES};

/// The bytes of `keys` as they lie in memory: what a spill file holds.
fn as_bytes(keys: &[CallKey]) -> &[u8] {
    // SAFETY: CallKey is repr(C), made only of integers, with no padding (key.rs asserts its
    // size is that of its fields), so every byte of the slice is initialised.
    unsafe { std::slice::from_raw_parts(keys.as_ptr().cast::<u8>(), std::mem::size_of_val(keys)) }
}

/// A key from the bytes [`as_bytes`] gave for it (same process, so native byte order).
fn key_from_bytes(bytes: &[u8; KEY_BYTES]) -> CallKey {
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        w
    };
    let half = |at: usize| {
        let mut h = [0u8; 4];
        h.copy_from_slice(&bytes[at..at + 4]);
        u32::from_ne_bytes(h)
    };
    CallKey {
        id: [u64::from_ne_bytes(word(0)), u64::from_ne_bytes(word(8))],
        content: u64::from_ne_bytes(word(16)),
        ts: i64::from_ne_bytes(word(24)),
        month_and_error: half(32),
        position: half(36),
    }
}

/// Raises the soft limit on open files towards the hard limit when the spill needs more files
/// than the usual default of 1024; a failure surfaces later as a clear file-creation error.
pub(super) fn allow_open_files(needed: u64) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < needed as libc::rlim_t
            {
                limit.rlim_cur = (needed as libc::rlim_t).min(limit.rlim_max);
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = needed;
}

/// A spill file that cannot be written, or does not read back exactly as it was written.
#[derive(Debug, thiserror::Error)]
pub(super) enum SpillError {
    #[error("cannot create spill file `{}`: {reason}", path.display())]
    Create {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot write spill file `{}`: {reason}", path.display())]
    Write {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot read back spill file `{}`: {reason}", path.display())]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("spill file `{}` does not read back as written: {found}", path.display())]
    Changed { path: PathBuf, found: String },
}

impl SpillError {
    /// What the user can do about it, where there is something to say.
    fn hint(&self) -> Option<&'static str> {
        match self {
            SpillError::Create { .. } | SpillError::Read { .. } => None,
            SpillError::Write { .. } => Some(
                "the spill folder (beside `--out`) needs free space for the call keys that do not fit `--memory-budget-mib`",
            ),
            SpillError::Changed { .. } => Some(
                "something else changed the run's spill folder, or the disk under it is failing; run again, with the spill folder on a healthy local disk",
            ),
        }
    }

    /// The error as the program's errors are, its hint carried for `main` to print.
    pub(super) fn into_error(self) -> anyhow::Error {
        match self.hint() {
            Some(hint) => crate::error::hinted(self.to_string(), hint),
            None => anyhow::Error::new(self),
        }
    }
}

/// Bytes read back from a spill file at a time: a whole number of keys.
const READ_BACK_BYTES: usize = KEY_BYTES * 1638;

/// One bucket spilled to disk: a file this step created (never one that was there), removed
/// when dropped. It remembers how many keys were written and a checksum of their bytes, and is
/// read back through the same open handle, so nothing but a change to the file itself can
/// make it read back differently, and that is caught.
pub(super) struct SpillFile {
    path: PathBuf,
    writer: BufWriter<File>,
    keys: u64,
    checksum: Xxh3Default,
}

impl SpillFile {
    pub(super) fn create(dir: &Path, bucket: u64) -> Result<SpillFile, SpillError> {
        let path = dir.join(format!("bucket-{bucket}.keys"));
        let mut options = OpenOptions::new();
        // create_new: O_EXCL, which also refuses a symlink planted at the name.
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(file) => Ok(SpillFile {
                path,
                writer: BufWriter::with_capacity(1 << 16, file),
                keys: 0,
                checksum: Xxh3Default::new(),
            }),
            Err(reason) => Err(SpillError::Create { path, reason }),
        }
    }

    pub(super) fn write(&mut self, keys: &[CallKey]) -> Result<(), SpillError> {
        let bytes = as_bytes(keys);
        self.checksum.update(bytes);
        self.keys += keys.len() as u64;
        self.writer
            .write_all(bytes)
            .map_err(|reason| SpillError::Write {
                path: self.path.clone(),
                reason,
            })
    }

    /// The keys written, into `keys` (emptied first; a reused buffer saves faulting in pages),
    /// or an error when the file's length or checksum is not that of what was written. The
    /// bytes are decoded, not cast, so no file content can make this read out of bounds.
    pub(super) fn read_back(mut self, mut keys: Vec<CallKey>) -> Result<Vec<CallKey>, SpillError> {
        let path = self.path.clone();
        let write_error = |reason| SpillError::Write {
            path: path.clone(),
            reason,
        };
        let read_error = |reason| SpillError::Read {
            path: path.clone(),
            reason,
        };
        self.writer.flush().map_err(write_error)?;
        let file = self.writer.get_mut();
        let expected_bytes = self.keys * KEY_BYTES as u64;
        let found_bytes = file.metadata().map_err(read_error)?.len();
        if found_bytes != expected_bytes {
            return Err(SpillError::Changed {
                path,
                found: format!(
                    "it holds {found_bytes} bytes; {} keys of {KEY_BYTES} bytes were written ({expected_bytes} bytes)",
                    self.keys
                ),
            });
        }
        file.rewind().map_err(read_error)?;
        keys.clear();
        keys.reserve(self.keys as usize);
        let mut checksum = Xxh3Default::new();
        let mut block = vec![0u8; READ_BACK_BYTES];
        let mut reader = file.take(expected_bytes);
        loop {
            let filled = read_full(&mut reader, &mut block).map_err(read_error)?;
            checksum.update(&block[..filled]);
            keys.extend(
                block[..filled]
                    .chunks_exact(KEY_BYTES)
                    .filter_map(|k| k.try_into().ok())
                    .map(key_from_bytes),
            );
            if filled < block.len() {
                break;
            }
        }
        let (found, written) = (checksum.digest(), self.checksum.digest());
        if keys.len() as u64 != self.keys || found != written {
            return Err(SpillError::Changed {
                path,
                found: format!(
                    "{} keys with checksum {found:016x} read back; {} keys with checksum {written:016x} were written",
                    keys.len(),
                    self.keys
                ),
            });
        }
        Ok(keys)
    }
}

/// Reads until `block` is full or the input ends; gives the bytes read.
fn read_full(reader: &mut impl Read, block: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The step removes the files it created, and only those; the folder is the caller's.
impl Drop for SpillFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.path).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::calls::testing::{some_keys, spill_folder};

    /// Writes `keys` to bucket 3 of `dir`, lets `tamper` change the file, and reads it back.
    fn spill_and_read(
        dir: &Path,
        keys: &[CallKey],
        tamper: impl Fn(&Path),
    ) -> Result<Vec<CallKey>, SpillError> {
        let mut file = SpillFile::create(dir, 3).unwrap();
        file.write(&keys[..keys.len() / 2]).unwrap();
        file.write(&keys[keys.len() / 2..]).unwrap();
        file.writer.flush().unwrap();
        tamper(&dir.join("bucket-3.keys"));
        file.read_back(Vec::new())
    }

    #[test]
    fn spec8_spilled_keys_read_back_as_written_and_their_file_is_removed() {
        let dir = spill_folder("round-trip");
        // More than one read-back block, and not a whole number of them.
        let keys = some_keys(5000);
        let back = spill_and_read(&dir, &keys, |_| {}).unwrap();
        assert_eq!(back, keys);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    fn assert_changed(result: Result<Vec<CallKey>, SpillError>, dir: &Path, found: &str) {
        let err = result
            .expect_err("a changed spill file is an error")
            .into_error();
        let message = err.to_string();
        let path = dir.join("bucket-3.keys");
        let start = format!(
            "spill file `{}` does not read back as written: ",
            path.display()
        );
        assert!(message.starts_with(&start), "{message}");
        assert!(message.contains(found), "{message}");
        let hints = crate::error::hints(&err);
        assert_eq!(hints.len(), 1, "{hints:?}");
        assert!(hints[0].contains("healthy local disk"), "{hints:?}");
        assert!(
            !message.contains(&hints[0]),
            "the hint is not part of the message: {message}"
        );
        assert!(
            !path.exists(),
            "the step's file is removed even when it failed"
        );
    }

    #[test]
    fn spec8_a_spill_file_cut_to_a_non_multiple_of_the_key_width_is_fatal() {
        let dir = spill_folder("truncated");
        let keys = some_keys(100);
        let cut = |path: &Path| {
            let file = OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(100 * KEY_BYTES as u64 - 13).unwrap();
        };
        let found = "it holds 3987 bytes; 100 keys of 40 bytes were written (4000 bytes)";
        assert_changed(spill_and_read(&dir, &keys, cut), &dir, found);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn spec8_a_spill_file_with_a_flipped_byte_is_fatal() {
        let dir = spill_folder("flipped");
        let keys = some_keys(100);
        let flip = |path: &Path| {
            let mut bytes = std::fs::read(path).unwrap();
            bytes[1234] ^= 0x10;
            std::fs::write(path, bytes).unwrap();
        };
        let found = "100 keys with checksum";
        assert_changed(spill_and_read(&dir, &keys, flip), &dir, found);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn spec8_a_spill_file_extended_by_whole_keys_is_fatal() {
        let dir = spill_folder("extended");
        let keys = some_keys(100);
        let extend = |path: &Path| {
            let mut file = OpenOptions::new().append(true).open(path).unwrap();
            file.write_all(as_bytes(&some_keys(2))).unwrap();
        };
        let found = "it holds 4080 bytes; 100 keys of 40 bytes were written (4000 bytes)";
        assert_changed(spill_and_read(&dir, &keys, extend), &dir, found);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn spec8_a_spill_file_name_already_taken_is_not_reused() {
        let dir = spill_folder("planted");
        #[cfg(unix)]
        std::os::unix::fs::symlink("/dev/null", dir.join("bucket-3.keys")).unwrap();
        #[cfg(not(unix))]
        std::fs::write(dir.join("bucket-3.keys"), b"").unwrap();
        let message = SpillFile::create(&dir, 3).err().unwrap().to_string();
        let path = dir.join("bucket-3.keys");
        assert!(
            message.starts_with(&format!("cannot create spill file `{}`: ", path.display())),
            "{message}"
        );
        assert!(message.contains("exists"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
