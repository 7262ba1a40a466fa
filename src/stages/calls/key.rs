//! Takes one valid call row's fields; gives its fixed-width [`CallKey`] (40 bytes: what
//! de-duplication and counting need) and its place among all call rows ([`Positions`]).
//!
//! A request id is kept as its 128-bit XXH3 hash and the rest of the row as a 64-bit hash of
//! its content, so exact re-deliveries of a call have equal keys.

use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use crate::inputs::calls::Chunk;

/// One valid call row, fixed width: what de-duplication and counting need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(super) struct CallKey {
    /// XXH3-128 of `request_id`, high word first (sort order).
    pub(super) id: [u64; 2],
    /// XXH3-64 of (customer_id, ts, api, status, error_code): equal for exact re-deliveries.
    pub(super) content: u64,
    pub(super) ts: i64,
    /// The service month the row counts for, looked up from its customer and `ts` when read
    /// ([`NO_MONTH`] if none), with [`SYSTEM_ERROR_BIT`] set for a system error.
    pub(super) month_and_error: u32,
    /// The row's position among all call rows (see [`Positions`]).
    pub(super) position: u32,
}

pub(super) const KEY_BYTES: usize = std::mem::size_of::<CallKey>();
const _: () = assert!(KEY_BYTES == 40, "CallKey must have no padding");

pub(super) const SYSTEM_ERROR_BIT: u32 = 1 << 31;
/// `month_and_error` of a row outside every selected service month.
pub(super) const NO_MONTH: u32 = SYSTEM_ERROR_BIT - 1;

impl CallKey {
    /// `month_and_error` of a row counted in `month` (if any) that is or is not a system error.
    pub(super) fn pack(month: Option<u32>, is_system_error: bool) -> u32 {
        month.unwrap_or(NO_MONTH) | if is_system_error { SYSTEM_ERROR_BIT } else { 0 }
    }

    /// The service month the call counts for, if any.
    pub(super) fn month(&self) -> Option<u32> {
        Some(self.month_and_error & !SYSTEM_ERROR_BIT).filter(|&m| m != NO_MONTH)
    }

    pub(super) fn is_system_error(&self) -> bool {
        self.month_and_error & SYSTEM_ERROR_BIT != 0
    }
}

/// Numbers every call row by its position among all chunks, so that a key holds one 32-bit
/// position instead of a chunk and a row.
pub(super) struct Positions {
    /// Position of each chunk's first row.
    starts: Vec<u32>,
}

impl Positions {
    /// Fails when the chunks hold more rows than 32 bits number.
    pub(super) fn new(chunks: &[Chunk]) -> anyhow::Result<Positions> {
        let rows: u64 = chunks.iter().map(|c| c.rows).sum();
        if rows > MAX_ROWS {
            anyhow::bail!(
                "the call files hold {rows} rows; one run reads at most {MAX_ROWS} (2^32)"
            );
        }
        let starts = chunks
            .iter()
            .scan(0u64, |next, chunk| {
                let start = *next as u32;
                *next += chunk.rows;
                Some(start)
            })
            .collect();
        Ok(Positions { starts })
    }

    pub(super) fn of(&self, chunk_index: usize, row: usize) -> u32 {
        self.starts[chunk_index] + row as u32
    }

    /// The chunk index and row within it of a position (`None` before the first chunk).
    pub(super) fn locate(&self, position: u32) -> Option<(usize, u32)> {
        let chunk_index = self
            .starts
            .partition_point(|&s| s <= position)
            .checked_sub(1)?;
        Some((chunk_index, position - self.starts[chunk_index]))
    }
}

/// Call rows one run can number in a [`CallKey`].
const MAX_ROWS: u64 = 1 << 32;

pub(super) const STATUS_SUCCESS: u8 = 0;
pub(super) const STATUS_CLIENT_ERROR: u8 = 1;
pub(super) const STATUS_SYSTEM_ERROR: u8 = 2;
/// Status codes are below this.
pub(super) const STATUS_COUNT: usize = 3;

pub(super) fn status_code(status: &str) -> Option<u8> {
    match status {
        "success" => Some(STATUS_SUCCESS),
        "client_error" => Some(STATUS_CLIENT_ERROR),
        "system_error" => Some(STATUS_SYSTEM_ERROR),
        _ => None,
    }
}

/// The status a [`status_code`] stands for.
pub(super) fn status_name(code: u8) -> &'static str {
    match code {
        STATUS_SUCCESS => "success",
        STATUS_CLIENT_ERROR => "client_error",
        _ => "system_error",
    }
}

pub(super) fn id_hash(request_id: &str) -> [u64; 2] {
    let h = xxh3_128(request_id.as_bytes());
    [(h >> 64) as u64, h as u64]
}

/// Hash of a string column's value, as [`content_hash`] takes it.
pub(super) fn text_hash(text: &str) -> u64 {
    xxh3_64(text.as_bytes())
}

/// Hash of everything but the id, from the [`text_hash`] of `api` and `error_code`; nulls are
/// marked, so no two different contents serialise alike (the strings' own hashes standing in
/// for them adds a 2^-64 chance per pair, as the hash of the whole has anyway).
pub(super) fn content_hash(
    customer_id: i64,
    ts: i64,
    api: Option<u64>,
    status: u8,
    code: Option<u64>,
) -> u64 {
    let mut bytes = [0u8; 35];
    bytes[..8].copy_from_slice(&customer_id.to_le_bytes());
    bytes[8..16].copy_from_slice(&ts.to_le_bytes());
    bytes[16] = status;
    for (at, text) in [(17, api), (26, code)] {
        if let Some(hash) = text {
            bytes[at] = 1;
            bytes[at + 1..at + 9].copy_from_slice(&hash.to_le_bytes());
        }
    }
    xxh3_64(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::calls::testing::key;

    #[test]
    fn a_key_carries_its_service_month_and_system_error_flag() {
        let mut k = key([1, 2], 3, 4);
        k.month_and_error = 17 | SYSTEM_ERROR_BIT;
        assert_eq!((k.month(), k.is_system_error()), (Some(17), true));
        k.month_and_error = NO_MONTH;
        assert_eq!((k.month(), k.is_system_error()), (None, false));
        k.month_and_error = NO_MONTH | SYSTEM_ERROR_BIT;
        assert_eq!((k.month(), k.is_system_error()), (None, true));
    }

    fn chunk(file: u32, offset: u64, rows: u64) -> Chunk {
        Chunk { file, offset, rows }
    }

    #[test]
    fn positions_number_rows_across_chunks_and_locate_them_back() {
        let chunks = [
            chunk(0, 0, 5),
            chunk(0, 5, 3),
            chunk(1, 0, 1),
            chunk(2, 0, 10),
        ];
        let positions = Positions::new(&chunks).unwrap();
        let mut next = 0;
        for (index, c) in chunks.iter().enumerate() {
            for row in 0..c.rows as usize {
                assert_eq!(positions.of(index, row), next);
                assert_eq!(positions.locate(next), Some((index, row as u32)));
                next += 1;
            }
        }
    }

    #[test]
    fn positions_refuse_more_rows_than_32_bits_number() {
        let full = [chunk(0, 0, 1 << 31), chunk(1, 0, 1 << 31)];
        assert!(Positions::new(&full).is_ok());
        let over = [chunk(0, 0, 1 << 31), chunk(1, 0, (1 << 31) + 1)];
        let message = Positions::new(&over).err().unwrap().to_string();
        assert_eq!(
            message,
            "the call files hold 4294967297 rows; one run reads at most 4294967296 (2^32)"
        );
    }
}
