//! Gives the heavy step's unit tests their fixtures: keys of chosen hashes, and fresh spill
//! folders.

use std::path::PathBuf;

use super::key::{CallKey, SYSTEM_ERROR_BIT};
use crate::time::NANOS_PER_SECOND;

/// A key with the given id hash words and content hash, counted in month 0.
pub(super) fn key(id: [u64; 2], content: u64, position: u32) -> CallKey {
    CallKey {
        id,
        content,
        ts: i64::from(position) * NANOS_PER_SECOND,
        month_and_error: 0,
        position,
    }
}

/// The top `bits` bits of `prefix` above the (spread) bits of `low`: an id hash of one bucket.
pub(super) fn in_bucket(prefix: u64, bits: u32, low: u64) -> u64 {
    let spread = low.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    if bits == 0 {
        spread
    } else {
        (prefix >> (64 - bits) << (64 - bits)) | (spread >> bits)
    }
}

/// A fresh folder for one test's spill files (the caller's folder, in the step's contract).
pub(super) fn spill_folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sla-ledger-spill-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(super) fn some_keys(n: u32) -> Vec<CallKey> {
    (0..n)
        .map(|i| {
            let mut k = key([u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15), 7], 9, i);
            k.month_and_error = (i % 3) | if i % 2 == 0 { SYSTEM_ERROR_BIT } else { 0 };
            k
        })
        .collect()
}
