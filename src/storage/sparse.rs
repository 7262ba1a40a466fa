//! An object's bytes as polars' Parquet reader wants them: one slice of the object's length in
//! which only the ranges fetched hold data.
//!
//! Takes the object's size and the ranges fetched (its footer, or the column chunks one read
//! decodes); gives [`SparseObject`], a reader whose bytes are the whole object. The slice is a
//! private anonymous mapping that is never reserved: a page never written is never backed by
//! memory, so a read costs the bytes it fetched, not the object's size. polars touches only
//! the ranges the file's metadata names for the row groups and columns asked for, which are
//! the ones fetched; any other byte reads as zero, which Parquet's own checks refuse rather
//! than decode as data. The mapping is made read-only before it is handed out.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::ptr::NonNull;

use polars::io::mmap::MmapBytesReader;

/// A read-only view of an object of which some ranges were fetched.
pub struct SparseObject {
    start: NonNull<u8>,
    /// The object's size in bytes; the mapping is at least one page even when it is 0.
    len: usize,
    mapped_len: usize,
    position: u64,
}

// SAFETY: the mapping is owned by this value alone, written only inside `new` and read-only
// afterwards, so sharing or sending it is sharing or sending an immutable byte slice.
unsafe impl Send for SparseObject {}
// SAFETY: as above; nothing writes through `start` after `new` returns.
unsafe impl Sync for SparseObject {}

impl SparseObject {
    /// An object of `len` bytes holding `fetched`: each range with its bytes, which must be as
    /// long as the range and lie inside the object.
    pub fn new(len: u64, fetched: &[(Range<u64>, &[u8])]) -> io::Result<SparseObject> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::other(format!("an object of {len} bytes cannot be mapped")))?;
        for (range, bytes) in fetched {
            let fits = range.start <= range.end && range.end <= len as u64;
            if !fits || (range.end - range.start) != bytes.len() as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the server sent {} bytes for bytes {}..{} of an object of {len}",
                        bytes.len(),
                        range.start,
                        range.end
                    ),
                ));
            }
        }
        let mapped_len = len.max(1);
        // SAFETY: a fresh private anonymous mapping; the kernel chooses the address and the
        // result is checked against MAP_FAILED before use.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = NonNull::new(address.cast::<u8>()).expect("mmap never maps page 0");
        let object = SparseObject {
            start,
            len,
            mapped_len,
            position: 0,
        };
        for (range, bytes) in fetched {
            // SAFETY: `range` lies inside the `len` bytes mapped writable above (checked
            // before mapping), `bytes` is as long as the range, and the two cannot overlap:
            // the mapping is fresh.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    start.as_ptr().add(range.start as usize),
                    bytes.len(),
                );
            }
        }
        // SAFETY: the mapping made above, whole.
        if unsafe { libc::mprotect(address, mapped_len, libc::PROT_READ) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(object)
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` bytes from `start` are mapped and readable for as long as `self`
        // lives, and nothing writes to them any more.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl Drop for SparseObject {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no slice of it outlives `self`.
        unsafe {
            libc::munmap(self.start.as_ptr().cast(), self.mapped_len);
        }
    }
}

impl Read for SparseObject {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self.as_slice();
        let from = usize::try_from(self.position)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SparseObject {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => (self.len as u64).checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the object's start",
            )
        })?;
        Ok(self.position)
    }
}

impl MmapBytesReader for SparseObject {
    fn to_bytes(&self) -> Option<&[u8]> {
        Some(self.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranges_fetched_read_back_and_the_rest_is_zero() {
        let mut object =
            SparseObject::new(10, &[(2..4, b"ab".as_slice()), (8..10, b"yz")]).unwrap();
        assert_eq!(object.as_slice(), b"\0\0ab\0\0\0\0yz");
        object.seek(SeekFrom::End(-2)).unwrap();
        let mut tail = Vec::new();
        object.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, b"yz");
        assert!(object.seek(SeekFrom::Current(-20)).is_err());
    }

    #[test]
    fn a_range_the_server_sent_short_or_outside_the_object_is_refused() {
        assert!(SparseObject::new(10, &[(2..5, b"ab".as_slice())]).is_err());
        assert!(SparseObject::new(10, &[(9..11, b"ab".as_slice())]).is_err());
        assert_eq!(SparseObject::new(0, &[]).unwrap().as_slice(), b"");
    }

    #[test]
    fn a_large_object_costs_only_what_was_fetched() {
        // 64 GiB of address space, of which two bytes are backed.
        let object =
            SparseObject::new(64 << 30, &[((64 << 30) - 2..64 << 30, b"ok".as_slice())]).unwrap();
        assert_eq!(&object.as_slice()[(64 << 30) - 2..], b"ok");
    }
}
