//! The heavy step (SPEC §2 quarantine and duplicates, §4 counted calls and exemptions).
//!
//! Takes the call files, the covered instant ranges of every service month, the exemption
//! tables and the policy; gives, per service month, counted calls, system errors and exempt
//! errors per clause, plus row accounting and the call rows it quarantined.
//!
//! This is the one seam between the call logs and typed Rust: [`count_calls`] is the only
//! function that reads them, and [`CallCounts`] is all it returns. Another engine can replace
//! it without the rest of the pipeline noticing.
//!
//! How it stays fast and small (memory grows with 40 bytes per call row, not with strings):
//! 1. **Read** (parallel, polars Parquet decoding): every chunk of whole row groups is read,
//!    defective rows are quarantined, and each valid row becomes a fixed-width [`CallKey`]:
//!    a 128-bit hash of its `request_id`, a 64-bit hash of its content, `ts`, the service
//!    month it counts for (looked up here, once per row), a system-error flag and its
//!    position. Keys go straight into buckets by the top bits of the id hash. System errors
//!    also keep their detail, once per distinct (id, content), their error codes shared
//!    (memory grows with the distinct strings, not rows × length), and the (customer,
//!    second) of each is noted.
//! 2. **De-duplicate**, bucket by bucket in parallel: a counting pass on the next bits of the
//!    id hash cuts a bucket into runs that are sorted in cache; rows sharing a request id hash
//!    are one call. When their contents differ, the versions are re-read exactly from their
//!    positions and the SPEC tie-break picks the kept one. The buckets the memory budget does
//!    not hold are written to disk during the read (files created fresh in the caller's
//!    spill folder) and read back one at a time, each verified against the count and checksum
//!    of what was written (SPEC §8).
//! 3. **Count**: each kept call is counted in its service month; counted calls in seconds that
//!    hold a system error are counted for the burst rule (5.7); finally each counted system
//!    error is attributed to its smallest exempting clause.
//!
//! Request ids are compared through a 128-bit XXH3 hash: the chance that two different ids of
//! 10^9 rows collide is below 10^-20.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use polars::prelude::*;
use rayon::prelude::*;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64, Xxh3Default};

use crate::inputs::calls::{columns::*, CallFiles, Chunk};
use crate::inputs::exemptions::ExemptionTables;
use crate::policy::{Clause, Policy};
use crate::quarantine::{Entry, Reason};
use crate::stages::exemptions::{ExemptionRules, SystemError};
use crate::stages::service_months::CoverageInterval;
use crate::telemetry::{Phase, Phases};
use crate::time::{format_instant, NANOS_PER_SECOND};

/// What the heavy step needs.
pub struct HeavyStepInput<'a> {
    pub files: &'a CallFiles,
    /// Number of service months; `month_index` values are below it.
    pub month_count: usize,
    pub coverage: &'a [CoverageInterval],
    pub exemptions: &'a ExemptionTables,
    pub policy: &'a Policy,
    /// Bytes of call keys held in memory before they are spilled to disk in buckets.
    pub memory_budget: u64,
    /// Where spilled buckets go: a folder that exists, is empty and is owned (created fresh,
    /// readable only by its owner, and removed) by the caller. The step creates its files in
    /// it and removes only those.
    pub spill_dir: PathBuf,
}

/// Per service month call counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthCallCounts {
    pub total_calls: u64,
    pub system_errors: u64,
    pub exempt_by_clause: BTreeMap<Clause, u64>,
}

impl MonthCallCounts {
    pub fn exempt_errors(&self) -> u64 {
        self.exempt_by_clause.values().sum()
    }
}

/// Where every call row went: `read = quarantined + duplicates + counted + not_counted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub read: u64,
    pub quarantined: u64,
    /// Rows dropped as repeats of a request id already kept.
    pub duplicates: u64,
    pub counted: u64,
    /// Unique valid calls outside every selected service month (other months, customers,
    /// or dates the customer was not subscribed).
    pub not_counted: u64,
}

impl RowCounts {
    /// The accounting of `read` rows of which `quarantined` were set aside and `unique` calls
    /// remained, `counted` of them in a selected service month; `None` if those cannot hold.
    pub fn of_unique(read: u64, quarantined: u64, unique: u64, counted: u64) -> Option<RowCounts> {
        Some(RowCounts {
            read,
            quarantined,
            duplicates: read.checked_sub(quarantined)?.checked_sub(unique)?,
            counted,
            not_counted: unique.checked_sub(counted)?,
        })
    }
}

/// What the heavy step gives back.
#[derive(Debug, Clone, Default)]
pub struct CallCounts {
    /// Indexed by `month_index`.
    pub months: Vec<MonthCallCounts>,
    pub rows: RowCounts,
    pub quarantine: Vec<Entry>,
    /// Wall time and memory of each phase, for `--verbose` output and benchmarks.
    pub timings: Vec<Phase>,
    /// Buckets of call keys written to disk (0: everything fit the memory budget).
    pub spilled_buckets: usize,
}

/// One valid call row, fixed width: what de-duplication and counting need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct CallKey {
    /// XXH3-128 of `request_id`, high word first (sort order).
    id: [u64; 2],
    /// XXH3-64 of (customer_id, ts, api, status, error_code): equal for exact re-deliveries.
    content: u64,
    ts: i64,
    /// The service month the row counts for, looked up from its customer and `ts` when read
    /// ([`NO_MONTH`] if none), with [`SYSTEM_ERROR_BIT`] set for a system error.
    month_and_error: u32,
    /// The row's position among all call rows (see [`Positions`]).
    position: u32,
}

const KEY_BYTES: usize = std::mem::size_of::<CallKey>();
const _: () = assert!(KEY_BYTES == 40, "CallKey must have no padding");

const SYSTEM_ERROR_BIT: u32 = 1 << 31;
/// `month_and_error` of a row outside every selected service month.
const NO_MONTH: u32 = SYSTEM_ERROR_BIT - 1;

impl CallKey {
    /// `month_and_error` of a row counted in `month` (if any) that is or is not a system error.
    fn pack(month: Option<u32>, is_system_error: bool) -> u32 {
        month.unwrap_or(NO_MONTH) | if is_system_error { SYSTEM_ERROR_BIT } else { 0 }
    }

    /// The service month the call counts for, if any.
    fn month(&self) -> Option<u32> {
        Some(self.month_and_error & !SYSTEM_ERROR_BIT).filter(|&m| m != NO_MONTH)
    }

    fn is_system_error(&self) -> bool {
        self.month_and_error & SYSTEM_ERROR_BIT != 0
    }
}

/// Numbers every call row by its position among all chunks, so that a key holds one 32-bit
/// position instead of a chunk and a row.
struct Positions {
    /// Position of each chunk's first row.
    starts: Vec<u32>,
}

impl Positions {
    /// Fails when the chunks hold more rows than 32 bits number.
    fn new(chunks: &[Chunk]) -> anyhow::Result<Positions> {
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

    fn of(&self, chunk_index: usize, row: usize) -> u32 {
        self.starts[chunk_index] + row as u32
    }

    /// The chunk index and row within it of a position (`None` before the first chunk).
    fn locate(&self, position: u32) -> Option<(usize, u32)> {
        let chunk_index = self
            .starts
            .partition_point(|&s| s <= position)
            .checked_sub(1)?;
        Some((chunk_index, position - self.starts[chunk_index]))
    }
}

/// Call rows one run can number in a [`CallKey`].
const MAX_ROWS: u64 = 1 << 32;

/// A system error's full detail, kept from the read for attribution after de-duplication.
/// Strings are shared: rows repeating an id or a code hold one copy of it.
#[derive(Debug, Clone)]
struct ErrorDetail {
    request_id: Arc<str>,
    error_code: Option<Arc<str>>,
}

/// Hashes and shares the strings of one chunk's frame (`'f`), each distinct one in one copy.
/// A string decoded from a Parquet dictionary is one slice of the frame's memory for every row
/// that uses it, so its address finds it again without reading its bytes: a long string
/// repeated on every row is hashed once, not once a row.
#[derive(Default)]
struct ChunkStrings<'f> {
    hashes: foldhash::HashMap<(usize, usize), u64>,
    by_address: foldhash::HashMap<(usize, usize), Arc<str>>,
    by_content: foldhash::HashMap<&'f str, Arc<str>>,
    /// The run's copy of each of this chunk's copies, by the address of the chunk's (unique
    /// while `by_content` holds it).
    run_copies: foldhash::HashMap<usize, Arc<str>>,
}

/// Strings shorter than this are found by content only: hashing them costs no more than
/// finding their address, and short strings are stored inline, one address per row.
const SHARED_BY_ADDRESS_BYTES: usize = 64;

impl<'f> ChunkStrings<'f> {
    fn hash(&mut self, text: &'f str) -> u64 {
        if text.len() < SHARED_BY_ADDRESS_BYTES {
            return text_hash(text);
        }
        let address = (text.as_ptr() as usize, text.len());
        *self
            .hashes
            .entry(address)
            .or_insert_with(|| text_hash(text))
    }

    /// The run's one copy of `text`, found without hashing a long string twice.
    fn share_across(&mut self, text: &'f str, run: &mut RunStrings) -> Arc<str> {
        let local = self.share(text);
        let address = Arc::as_ptr(&local).cast::<u8>() as usize;
        self.run_copies
            .entry(address)
            .or_insert_with(|| run.share(local))
            .clone()
    }

    fn share(&mut self, text: &'f str) -> Arc<str> {
        if text.len() < SHARED_BY_ADDRESS_BYTES {
            return self
                .by_content
                .entry(text)
                .or_insert_with(|| text.into())
                .clone();
        }
        let address = (text.as_ptr() as usize, text.len());
        if let Some(shared) = self.by_address.get(&address) {
            return shared.clone();
        }
        let shared = self
            .by_content
            .entry(text)
            .or_insert_with(|| text.into())
            .clone();
        self.by_address.insert(address, shared.clone());
        shared
    }
}

/// One copy of each distinct string across chunks (a chunk shares its own strings).
#[derive(Default)]
struct RunStrings {
    shared: foldhash::HashSet<Arc<str>>,
}

impl RunStrings {
    /// Moves one chunk's error details into `all`, each code replaced by the run's one copy.
    fn merge_chunk(
        &mut self,
        chunk: foldhash::HashMap<([u64; 2], u64), ErrorDetail>,
        all: &mut ErrorDetails,
    ) {
        // Keyed by the address of the chunk's copy, which stays unique while any detail of the
        // chunk still holds it, so that a long code is hashed once per chunk, not per detail.
        let mut by_address: foldhash::HashMap<usize, Arc<str>> = foldhash::HashMap::default();
        for (key, mut detail) in chunk {
            if let Some(code) = detail.error_code.take() {
                let address = Arc::as_ptr(&code).cast::<u8>() as usize;
                let shared = by_address
                    .entry(address)
                    .or_insert_with(|| self.share(code))
                    .clone();
                detail.error_code = Some(shared);
            }
            all.entry(key).or_insert(detail);
        }
    }

    fn share(&mut self, code: Arc<str>) -> Arc<str> {
        if let Some(shared) = self.shared.get(&code) {
            return shared.clone();
        }
        self.shared.insert(code.clone());
        code
    }
}

/// What reading one chunk gives.
#[derive(Default)]
struct ChunkYield {
    keys: Vec<CallKey>,
    /// One entry per distinct (id hash, content hash) of the chunk's system errors.
    errors: foldhash::HashMap<([u64; 2], u64), ErrorDetail>,
    error_seconds: Vec<(i64, i64)>,
    quarantine: Vec<Entry>,
    quarantined: u64,
}

const STATUS_SUCCESS: u8 = 0;
const STATUS_CLIENT_ERROR: u8 = 1;
const STATUS_SYSTEM_ERROR: u8 = 2;

fn status_code(status: &str) -> Option<u8> {
    match status {
        "success" => Some(STATUS_SUCCESS),
        "client_error" => Some(STATUS_CLIENT_ERROR),
        "system_error" => Some(STATUS_SYSTEM_ERROR),
        _ => None,
    }
}

fn id_hash(request_id: &str) -> [u64; 2] {
    let h = xxh3_128(request_id.as_bytes());
    [(h >> 64) as u64, h as u64]
}

/// Hash of a string column's value, as [`content_hash`] takes it.
fn text_hash(text: &str) -> u64 {
    xxh3_64(text.as_bytes())
}

/// Hash of everything but the id, from the [`text_hash`] of `api` and `error_code`; nulls are
/// marked, so no two different contents serialise alike (the strings' own hashes standing in
/// for them adds a 2^-64 chance per pair, as the hash of the whole has anyway).
fn content_hash(customer_id: i64, ts: i64, api: Option<u64>, status: u8, code: Option<u64>) -> u64 {
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

/// A chunk's frame whose columns do not have the types [`CallFiles::read_chunk`] gives.
fn polars_error(error: PolarsError, files: &CallFiles, chunk: Chunk) -> anyhow::Error {
    let file = &files.files[chunk.file as usize].shown;
    anyhow::anyhow!(
        "`{}`: cannot read rows {}..{}: {error}",
        file.display(),
        chunk.offset + 1,
        chunk.offset + chunk.rows
    )
}

/// SPEC §2 row defects of a row that is not valid: null request_id/customer_id/ts/status, or
/// an unknown status (checked in that order).
fn row_defect(
    id: Option<&str>,
    c: Option<i64>,
    t: Option<i64>,
    s: Option<&str>,
) -> (Reason, String) {
    match (id, c, t, s) {
        (None, ..) => (Reason::NullRequestId, "request_id is null".to_string()),
        (Some(id), None, ..) => (
            Reason::NullCustomerId,
            format!("request_id {id}: customer_id is null"),
        ),
        (Some(id), Some(_), None, _) => (Reason::NullTs, format!("request_id {id}: ts is null")),
        (Some(id), Some(_), Some(_), None) => (
            Reason::NullStatus,
            format!("request_id {id}: status is null"),
        ),
        (Some(id), Some(_), Some(_), Some(s)) => (
            Reason::UnknownStatus,
            format!(
                "request_id {id}: status `{s}`; expected success, client_error or system_error"
            ),
        ),
    }
}

/// The six columns of one chunk, typed, as [`CallFiles::read_chunk`] gives them.
struct ChunkColumns<'a> {
    request_id: &'a StringChunked,
    customer_id: &'a Int64Chunked,
    ts: &'a Int64Chunked,
    api: &'a StringChunked,
    status: &'a StringChunked,
    error_code: &'a StringChunked,
}

impl<'a> ChunkColumns<'a> {
    fn of(frame: &'a DataFrame) -> PolarsResult<ChunkColumns<'a>> {
        Ok(ChunkColumns {
            request_id: frame.column(REQUEST_ID)?.str()?,
            customer_id: frame.column(CUSTOMER_ID)?.i64()?,
            ts: frame.column(TS)?.i64()?,
            api: frame.column(API)?.str()?,
            status: frame.column(STATUS)?.str()?,
            error_code: frame.column(ERROR_CODE)?.str()?,
        })
    }

    /// Row `i` with its strings shared and its (id, content) hashes as its key has them, if it
    /// is a valid row (SPEC §2).
    fn shared_version(
        &self,
        i: usize,
        strings: &mut ChunkStrings<'a>,
        run: &mut RunStrings,
    ) -> Option<(SharedVersion, [u64; 2], u64)> {
        let status_text = self.status.get(i)?;
        let status = status_code(status_text)?;
        let (id, customer_id, ts) = (
            self.request_id.get(i)?,
            self.customer_id.get(i)?,
            self.ts.get(i)?,
        );
        let (api, code) = (self.api.get(i), self.error_code.get(i));
        let content = content_hash(
            customer_id,
            ts,
            api.map(|a| strings.hash(a)),
            status,
            code.map(|e| strings.hash(e)),
        );
        let version = SharedVersion {
            ts,
            customer_id,
            api: api.map(|a| strings.share_across(a, run)),
            status: strings.share_across(status_text, run),
            error_code: code.map(|e| strings.share_across(e, run)),
            request_id: strings.share_across(id, run),
        };
        Some((version, id_hash(id), content))
    }

    /// Row `i` in full, if it is a valid row (SPEC §2).
    fn version(&self, i: usize) -> Option<CallVersion> {
        let status = self.status.get(i).filter(|s| status_code(s).is_some())?;
        Some(CallVersion {
            ts: self.ts.get(i)?,
            customer_id: self.customer_id.get(i)?,
            api: self.api.get(i).map(str::to_string),
            status: status.to_string(),
            error_code: self.error_code.get(i).map(str::to_string),
            request_id: self.request_id.get(i)?.to_string(),
        })
    }
}

/// Phase 1 for one chunk: quarantine, keys (each with its service month), error details.
/// `first_position` numbers the chunk's first row.
fn read_chunk(
    files: &CallFiles,
    chunk: Chunk,
    first_position: u32,
    coverage: &Coverage,
) -> anyhow::Result<ChunkYield> {
    let frame = files.read_chunk(chunk)?;
    let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, chunk))?;
    let source = &files.files[chunk.file as usize].shown;
    let mut out = ChunkYield {
        keys: Vec::with_capacity(frame.height()),
        ..ChunkYield::default()
    };
    let mut strings = ChunkStrings::default();
    let rows = columns
        .request_id
        .iter()
        .zip(columns.customer_id.iter())
        .zip(columns.ts.iter())
        .zip(columns.api.iter())
        .zip(columns.status.iter())
        .zip(columns.error_code.iter());
    for (row, (((((id, c), t), a), s), e)) in rows.enumerate() {
        let (Some(id), Some(c), Some(t), Some(status)) = (id, c, t, s.and_then(status_code)) else {
            let (reason, detail) = row_defect(id, c, t, s);
            out.quarantine.push(Entry::new(
                source,
                Some(chunk.offset + row as u64 + 1),
                reason,
                detail,
            ));
            out.quarantined += 1;
            continue;
        };
        let is_error = status == STATUS_SYSTEM_ERROR;
        let key = CallKey {
            id: id_hash(id),
            content: content_hash(
                c,
                t,
                a.map(|a| strings.hash(a)),
                status,
                e.map(|e| strings.hash(e)),
            ),
            ts: t,
            month_and_error: CallKey::pack(coverage.month(c, t), is_error),
            position: first_position + row as u32,
        };
        if is_error {
            out.errors
                .entry((key.id, key.content))
                .or_insert_with(|| ErrorDetail {
                    request_id: strings.share(id),
                    error_code: e.map(|code| strings.share(code)),
                });
            out.error_seconds.push((c, t.div_euclid(NANOS_PER_SECOND)));
        }
        out.keys.push(key);
    }
    Ok(out)
}

/// Keys are kept in at least this many buckets by the top bits of their id hash, so each bucket
/// is sorted on its own (in parallel, in cache) and freed as soon as it is counted.
const MIN_BUCKET_BITS: u32 = 8;
const MAX_BUCKETS: u64 = 1 << 10;

/// Where phase 1 puts keys: buckets by id hash, as many in memory as the budget holds, the rest
/// in files (written once, read once). Spilling only the excess keeps the disk writes small
/// enough for the page cache to absorb.
struct KeyStore {
    /// `64 - log2(bucket count)`: a key's bucket is `id[0] >> shift`.
    shift: u32,
    /// Buckets `0..memory.len()`.
    memory: Vec<Mutex<Vec<CallKey>>>,
    /// Buckets `memory.len()..`, one file each.
    disk: Vec<Mutex<SpillFile>>,
    /// Scratch buffers for grouping a chunk's keys, sorting a bucket, reading one back.
    pool: BufferPool,
}

fn as_bytes(keys: &[CallKey]) -> &[u8] {
    // SAFETY: CallKey is repr(C), made only of integers, with no padding (asserted above).
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

/// A lock whose holder panicked still guards consistent data here (a panic ends the run).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KeyStore {
    fn new(rows: u64, budget: u64, spill_dir: &Path) -> Result<KeyStore, SpillError> {
        let needed = rows * KEY_BYTES as u64;
        let budget = budget.max(1);
        // Buckets of about 64 Ki keys (a bucket, its sorted copy and its runs' counts stay a few
        // MB), and small enough that the two being de-duplicated at once are a fraction of the
        // budget; at most 1024 (more files, and the page cache, cost more than smaller buckets
        // save).
        let for_cache = rows.div_ceil(1 << 16);
        let for_budget = needed.div_ceil((budget / 8).max(1));
        let buckets = for_cache
            .max(for_budget)
            .next_power_of_two()
            .clamp(1 << MIN_BUCKET_BITS, MAX_BUCKETS);
        let bucket_rows = rows.div_ceil(buckets);
        let in_memory = (budget / (bucket_rows * KEY_BYTES as u64).max(1)).min(buckets);
        // Hashes spread evenly: a little headroom avoids regrowing (and doubling) a bucket.
        let capacity = (bucket_rows as usize) * 21 / 20 + 64;
        let memory = (0..in_memory)
            .map(|_| Mutex::new(Vec::with_capacity(capacity)))
            .collect();
        let mut disk = Vec::new();
        if in_memory < buckets {
            allow_open_files(buckets - in_memory + 64);
            for b in in_memory..buckets {
                // A file that fails to be created drops (and so removes) those made before it.
                disk.push(Mutex::new(SpillFile::create(spill_dir, b)?));
            }
        }
        Ok(KeyStore {
            shift: 64 - buckets.trailing_zeros(),
            memory,
            disk,
            pool: BufferPool::new(2 * rayon::current_num_threads() + 2),
        })
    }

    /// Buckets written to disk (0 when everything stays in memory).
    fn spilled_buckets(&self) -> usize {
        self.disk.len()
    }

    /// Adds one chunk's keys to their buckets.
    fn add(&self, keys: &[CallKey]) -> Result<(), SpillError> {
        let shift = self.shift;
        let buckets = self.memory.len() + self.disk.len();
        let mut grouped = self.pool.take();
        let ends = scatter_by_digit(keys, buckets, |k| (k.id[0] >> shift) as usize, &mut grouped);
        let mut start = 0;
        for (bucket, end) in ends.into_iter().enumerate() {
            let group = &grouped[start..end];
            start = end;
            if group.is_empty() {
                continue;
            }
            match self.memory.get(bucket) {
                Some(keys) => lock(keys).extend_from_slice(group),
                None => lock(&self.disk[bucket - self.memory.len()]).write(group)?,
            }
        }
        self.pool.give(grouped);
        Ok(())
    }

    /// De-duplicates and counts every bucket, two at a time (one per thread by default); each
    /// bucket's memory is freed or reused for the next, and its file removed, once counted.
    fn deduplicate(mut self, context: &TallyContext) -> anyhow::Result<Partial> {
        let memory = std::mem::take(&mut self.memory);
        let disk = std::mem::take(&mut self.disk);
        let bucket_bits = 64 - self.shift;
        let pool = &self.pool;
        let from_memory = memory.into_par_iter().map(|keys| {
            let keys = keys
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(deduplicate_and_tally(keys, bucket_bits, context, pool))
        });
        let from_disk = disk.into_par_iter().map(|file| {
            let file = file
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let keys = file.read_back(pool.take())?;
            Ok(deduplicate_and_tally(keys, bucket_bits, context, pool))
        });
        // Merged one by one into a single accumulator: each count is inserted once (a reduce
        // tree would re-insert the large per-second maps at every level).
        let partials: Vec<anyhow::Result<Partial>> = from_memory.chain(from_disk).collect();
        partials
            .into_iter()
            .try_fold(Partial::new(context.month_count()), |total, p| {
                Ok(total.merge(p?))
            })
    }
}

/// Raises the soft limit on open files towards the hard limit when the spill needs more files
/// than the usual default of 1024; a failure surfaces later as a clear file-creation error.
fn allow_open_files(needed: u64) {
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
pub enum SpillError {
    #[error("cannot create spill file `{}`: {reason}", path.display())]
    Create {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot write spill file `{}`: {reason}\n  hint: the spill folder (beside `--out`) needs free space for the call keys that do not fit `--memory-budget-mib`", path.display())]
    Write {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot read back spill file `{}`: {reason}", path.display())]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("spill file `{}` does not read back as written: {found}\n  hint: something else changed the run's spill folder, or the disk under it is failing; run again, with the spill folder on a healthy local disk", path.display())]
    Changed { path: PathBuf, found: String },
}

/// Bytes read back from a spill file at a time: a whole number of keys.
const READ_BACK_BYTES: usize = KEY_BYTES * 1638;

/// One bucket spilled to disk: a file this step created (never one that was there), removed
/// when dropped. It remembers how many keys were written and a checksum of their bytes, and is
/// read back through the same open handle, so nothing but a change to the file itself can
/// make it read back differently, and that is caught.
struct SpillFile {
    path: PathBuf,
    writer: BufWriter<File>,
    keys: u64,
    checksum: Xxh3Default,
}

impl SpillFile {
    fn create(dir: &Path, bucket: u64) -> Result<SpillFile, SpillError> {
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

    fn write(&mut self, keys: &[CallKey]) -> Result<(), SpillError> {
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
    fn read_back(mut self, mut keys: Vec<CallKey>) -> Result<Vec<CallKey>, SpillError> {
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

/// A row to re-read for the tie-break: its row in its chunk and the (id, content) hashes it had
/// when first read.
type Reread = (u32, [u64; 2], u64);

/// A request id whose copies disagree: the position and content hash of each distinct version.
struct Conflict {
    id: [u64; 2],
    positions: Vec<u32>,
    contents: Vec<u64>,
}

/// What de-duplicating and counting some keys gives; partials merge.
struct Partial {
    tally: Tally,
    conflicts: Vec<Conflict>,
    /// Request ids kept (conflicting ones are counted when resolved).
    unique: u64,
}

impl Partial {
    fn new(month_count: usize) -> Partial {
        Partial {
            tally: Tally::new(month_count),
            conflicts: Vec::new(),
            unique: 0,
        }
    }

    fn merge(mut self, other: Partial) -> Partial {
        self.tally = self.tally.merge(other.tally);
        self.conflicts.extend(other.conflicts);
        self.unique += other.unique;
        self
    }
}

/// Key buffers freed by de-duplication, handed out again so that sorting or reading back a
/// bucket reuses memory that is already mapped instead of faulting in fresh pages. Holds at
/// most `limit` buffers; more are freed.
struct BufferPool {
    free: Mutex<Vec<Vec<CallKey>>>,
    limit: usize,
}

impl BufferPool {
    fn new(limit: usize) -> BufferPool {
        BufferPool {
            free: Mutex::new(Vec::new()),
            limit,
        }
    }

    /// An empty buffer, with whatever capacity it had.
    fn take(&self) -> Vec<CallKey> {
        lock(&self.free).pop().unwrap_or_default()
    }

    fn give(&self, mut buffer: Vec<CallKey>) {
        buffer.clear();
        let mut free = lock(&self.free);
        if free.len() < self.limit {
            free.push(buffer);
        }
    }
}

/// Keys per run that the radix pass of [`sort_bucket`] aims for: small enough to sort in L1.
const RUN_KEYS: usize = 64;

/// Sorts one bucket's `keys` by (id, content) into `sorted`, whose contents are replaced.
///
/// The keys of a bucket share the top `bucket_bits` bits of `id[0]`, and the bits below are
/// uniformly spread (a hash). One counting pass on the next bits scatters them into runs of
/// about [`RUN_KEYS`] keys, in order of those bits; each run is then sorted on its own. The
/// cost per key so stays the same however large buckets grow (a comparison sort of a bucket
/// larger than the cache does not).
fn sort_bucket(keys: &[CallKey], bucket_bits: u32, sorted: &mut Vec<CallKey>) {
    let radix_bits = (keys.len() / RUN_KEYS)
        .max(1)
        .ilog2()
        .min(16)
        .min(64 - bucket_bits);
    // With no radix bits the mask is 0 and there is one run; the shift only has to stay legal.
    let shift = (64 - bucket_bits - radix_bits).min(63);
    let mask = (1u64 << radix_bits) - 1;
    let ends = scatter_by_digit(
        keys,
        1 << radix_bits,
        |key| ((key.id[0] >> shift) & mask) as usize,
        sorted,
    );
    let mut start = 0;
    for end in ends {
        sorted[start..end].sort_unstable_by_key(|k| (k.id, k.content));
        start = end;
    }
}

/// Copies `keys` into `out` (contents replaced) grouped by `digit(key)`, which must be below
/// `digits`: a counting sort, stable, in digit order. Gives where each digit's run ends.
fn scatter_by_digit(
    keys: &[CallKey],
    digits: usize,
    digit: impl Fn(&CallKey) -> usize,
    out: &mut Vec<CallKey>,
) -> Vec<usize> {
    let n = keys.len();
    // ends[d]: first a count, then where run d starts, and once filled where it ends.
    let mut ends = vec![0usize; digits];
    for key in keys {
        ends[digit(key)] += 1;
    }
    let mut start = 0;
    for end in ends.iter_mut() {
        let count = *end;
        *end = start;
        start += count;
    }
    out.clear();
    out.reserve(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    for key in keys {
        let d = digit(key);
        slots[ends[d]].write(*key);
        ends[d] += 1;
    }
    // SAFETY: the counts and their prefix sums make `ends` visit every slot in 0..n exactly
    // once, so all n slots were written above.
    unsafe { out.set_len(n) };
    ends
}

/// Sorts one bucket's keys by id and keeps one call per request id, counting it at once; ids
/// whose copies disagree are set aside for [`resolve_conflicts`]. The key buffers go back to
/// `pool`. Callers run many of these in parallel, one bucket each.
fn deduplicate_and_tally(
    keys: Vec<CallKey>,
    bucket_bits: u32,
    context: &TallyContext,
    pool: &BufferPool,
) -> Partial {
    let mut sorted = pool.take();
    sort_bucket(&keys, bucket_bits, &mut sorted);
    pool.give(keys);
    let mut partial = Partial::new(context.month_count());
    for group in sorted.chunk_by(|a, b| a.id == b.id) {
        let first = group[0];
        if group.iter().all(|k| k.content == first.content) {
            partial.unique += 1;
            partial.tally.add(context, &first);
        } else {
            let versions = group.chunk_by(|a, b| a.content == b.content);
            let (positions, contents) = versions.map(|v| (v[0].position, v[0].content)).unzip();
            partial.conflicts.push(Conflict {
                id: first.id,
                positions,
                contents,
            });
        }
    }
    pool.give(sorted);
    partial
}

/// One full version of a call, ordered as SPEC §2's tie-break: (ts, customer_id, api,
/// status, error_code), nulls first, strings by their UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallVersion {
    pub ts: i64,
    pub customer_id: i64,
    pub api: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
    pub request_id: String,
}

/// SPEC §2's tie-break for the differing versions of one request id: sorts and de-duplicates
/// `versions` and gives the `conflicting_duplicate` entry and the kept (smallest) version.
pub fn resolve_conflict(mut versions: Vec<CallVersion>) -> (Entry, CallVersion) {
    versions.sort();
    versions.dedup();
    let entry = conflict_entry(&versions.iter().collect::<Vec<_>>());
    let kept = versions.swap_remove(0);
    (entry, kept)
}

/// The `conflicting_duplicate` quarantine entry of one request id; `versions` sorted, distinct.
fn conflict_entry(versions: &[&CallVersion]) -> Entry {
    let first = versions[0];
    let kept = (first.ts, first.customer_id, first.status.as_str());
    conflict_entry_of(&first.request_id, versions.len(), kept)
}

/// The `conflicting_duplicate` entry of `request_id`, whose `versions` distinct rows kept the
/// one of (ts, customer_id, status) `kept`.
fn conflict_entry_of(request_id: &str, versions: usize, kept: (i64, i64, &str)) -> Entry {
    let (ts, customer_id, status) = kept;
    Entry::new(
        Path::new("calls"),
        None,
        Reason::ConflictingDuplicate,
        format!(
            "request_id {request_id}: {versions} differing rows; kept ts={} customer_id={customer_id} status={status}",
            format_instant(ts),
        ),
    )
}

/// One version of a call as re-read for the tie-break, its strings shared (a 10 KB code on
/// every version is one copy). The fields are [`CallVersion`]'s, in its order, so that it
/// sorts as SPEC §2's tie-break.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SharedVersion {
    ts: i64,
    customer_id: i64,
    api: Option<Arc<str>>,
    status: Arc<str>,
    error_code: Option<Arc<str>>,
    request_id: Arc<str>,
}

/// Conflicting rows of one chunk up to which each is read on its own.
const FEW_ROWS: usize = 4;

/// Re-reads the versions of conflicting ids from their positions and keeps the smallest; gives
/// the quarantine entries and the kept versions as keys (whose position is that of no row).
fn resolve_conflicts(
    files: &CallFiles,
    chunks: &[Chunk],
    positions: &Positions,
    conflicts: &[Conflict],
    coverage: &Coverage,
    errors: &mut ErrorDetails,
) -> anyhow::Result<(Vec<Entry>, Vec<CallKey>)> {
    let versions = reread_versions(files, chunks, positions, conflicts)?;
    let mut entries = Vec::with_capacity(conflicts.len());
    let mut kept = Vec::with_capacity(conflicts.len());
    for conflict in conflicts {
        let found: Option<Vec<&(SharedVersion, u64)>> =
            conflict.positions.iter().map(|p| versions.get(p)).collect();
        let mut found =
            found.ok_or_else(|| anyhow::anyhow!("a conflicting call row was not re-read"))?;
        // SPEC §2's tie-break, as `resolve_conflict` does it on full versions.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.dedup_by(|a, b| a.0 == b.0);
        let &&(ref first, content) = found
            .first()
            .ok_or_else(|| anyhow::anyhow!("a conflict without versions"))?;
        let kept_as = (first.ts, first.customer_id, &*first.status);
        let entry = conflict_entry_of(&first.request_id, found.len(), kept_as);
        // Checked when re-read: the kept version's hashes are those its key had.
        let id = conflict.id;
        let is_error = status_code(&first.status) == Some(STATUS_SYSTEM_ERROR);
        if is_error {
            errors.entry((id, content)).or_insert_with(|| ErrorDetail {
                request_id: first.request_id.clone(),
                error_code: first.error_code.clone(),
            });
        }
        kept.push(CallKey {
            id,
            content,
            ts: first.ts,
            month_and_error: CallKey::pack(coverage.month(first.customer_id, first.ts), is_error),
            position: u32::MAX,
        });
        entries.push(entry);
    }
    Ok((entries, kept))
}

/// The full version at every position of `conflicts` with its content hash, each checked to be
/// the row whose key was made when it was first read.
fn reread_versions(
    files: &CallFiles,
    chunks: &[Chunk],
    positions: &Positions,
    conflicts: &[Conflict],
) -> anyhow::Result<HashMap<u32, (SharedVersion, u64)>> {
    // Each version's row and the (id, content) hashes it had when first read.
    let mut wanted: BTreeMap<usize, Vec<Reread>> = BTreeMap::new();
    for conflict in conflicts {
        for (&position, &content) in conflict.positions.iter().zip(&conflict.contents) {
            let (chunk, row) = positions
                .locate(position)
                .ok_or_else(|| anyhow::anyhow!("call row position {position} is of no chunk"))?;
            wanted
                .entry(chunk)
                .or_default()
                .push((row, conflict.id, content));
        }
    }
    let mut versions: HashMap<u32, (SharedVersion, u64)> = HashMap::new();
    let mut run = RunStrings::default();
    for (chunk_index, rows) in wanted {
        let chunk = chunks[chunk_index];
        // A few rows: read just them (one row group each); many: read the chunk once.
        let reads: Vec<(Chunk, Vec<Reread>)> = if rows.len() <= FEW_ROWS {
            rows.iter()
                .map(|&wanted| {
                    let part = Chunk {
                        file: chunk.file,
                        offset: chunk.offset + u64::from(wanted.0),
                        rows: 1,
                    };
                    (part, vec![wanted])
                })
                .collect()
        } else {
            vec![(chunk, rows)]
        };
        for (part, rows) in reads {
            let frame = files.read_chunk(part)?;
            let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, part))?;
            let mut strings = ChunkStrings::default();
            for (row, id, content) in rows {
                let i = (chunk.offset + u64::from(row) - part.offset) as usize;
                let version = columns
                    .shared_version(i, &mut strings, &mut run)
                    .filter(|(_, id_now, content_now)| (*id_now, *content_now) == (id, content))
                    .ok_or_else(|| reread_error(files, chunk, row))?;
                versions.insert(
                    positions.of(chunk_index, row as usize),
                    (version.0, content),
                );
            }
        }
    }
    Ok(versions)
}

/// A row that reads back otherwise than when it was first read: the file changed during the
/// run, or its metadata places rows differently when a part of it is read.
fn reread_error(files: &CallFiles, chunk: Chunk, row: u32) -> anyhow::Error {
    anyhow::anyhow!(
        "`{}`: row {} reads back otherwise than when it was first read\n  hint: the file changed during the run, or its metadata does not match its data; re-export it and run again",
        files.files[chunk.file as usize].shown.display(),
        chunk.offset + u64::from(row) + 1
    )
}

/// Full detail of the system errors read, by (id hash, content hash).
type ErrorDetails = HashMap<([u64; 2], u64), ErrorDetail>;

/// Service-month lookup: a customer's covered instant ranges, sorted.
struct Coverage {
    by_customer: foldhash::HashMap<i64, Vec<CoverageInterval>>,
    /// The customer of each service month, by `month_index`.
    month_customers: Vec<i64>,
}

impl Coverage {
    fn new(intervals: &[CoverageInterval], month_count: usize) -> Coverage {
        let mut by_customer: foldhash::HashMap<i64, Vec<CoverageInterval>> =
            foldhash::HashMap::default();
        let mut month_customers = vec![0; month_count];
        for interval in intervals {
            by_customer
                .entry(interval.customer_id)
                .or_default()
                .push(*interval);
            month_customers[interval.month_index as usize] = interval.customer_id;
        }
        for list in by_customer.values_mut() {
            list.sort_by_key(|i| i.start);
        }
        Coverage {
            by_customer,
            month_customers,
        }
    }

    /// The service month a call at `ts` counts for, if any.
    fn month(&self, customer_id: i64, ts: i64) -> Option<u32> {
        let list = self.by_customer.get(&customer_id)?;
        let after = list.partition_point(|i| i.start <= ts);
        let candidate = list.get(after.checked_sub(1)?)?;
        (ts < candidate.end).then_some(candidate.month_index)
    }
}

/// What counting needs besides the calls: the customer of each service month, and the
/// seconds in which system errors happened (only those need burst counts).
struct TallyContext<'a> {
    month_customers: &'a [i64],
    error_seconds: &'a foldhash::HashSet<(i64, i64)>,
    /// A cache-sized pre-check for the set above: most calls are not in an error's second,
    /// and a bit test avoids a cache-missing hash probe for them.
    second_filter: BitFilter,
}

impl<'a> TallyContext<'a> {
    fn new(
        coverage: &'a Coverage,
        error_seconds: &'a foldhash::HashSet<(i64, i64)>,
    ) -> TallyContext<'a> {
        let mut second_filter = BitFilter::new(error_seconds.len());
        for &(customer, second) in error_seconds {
            second_filter.insert(second_key(customer, second));
        }
        TallyContext {
            month_customers: &coverage.month_customers,
            error_seconds,
            second_filter,
        }
    }

    fn month_count(&self) -> usize {
        self.month_customers.len()
    }

    fn is_error_second(&self, customer_id: i64, second: i64) -> bool {
        self.second_filter
            .may_contain(second_key(customer_id, second))
            && self.error_seconds.contains(&(customer_id, second))
    }
}

/// A well-mixed 64-bit key for a (customer, second) pair.
fn second_key(customer_id: i64, second: i64) -> u64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&customer_id.to_le_bytes());
    bytes[8..].copy_from_slice(&second.to_le_bytes());
    xxh3_64(&bytes)
}

/// A one-hash bit set over well-mixed 64-bit keys: `false` is certain, `true` means "look".
struct BitFilter {
    bits: Vec<u64>,
    mask: u64,
}

impl BitFilter {
    /// About 16 bits per entry (a false "look" for 1 key in 16), at least 64 KiB.
    fn new(entries: usize) -> BitFilter {
        let bits = (entries as u64 * 16).next_power_of_two().max(1 << 19);
        BitFilter {
            bits: vec![0; (bits / 64) as usize],
            mask: bits - 1,
        }
    }

    fn insert(&mut self, key: u64) {
        let bit = key & self.mask;
        self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn may_contain(&self, key: u64) -> bool {
        let bit = key & self.mask;
        self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }
}

/// Counts over kept calls, mergeable across threads and buckets.
#[derive(Default)]
struct Tally {
    totals: Vec<u64>,
    counted: u64,
    /// Counted system errors: (month, id, content, customer, ts).
    errors: Vec<(u32, [u64; 2], u64, i64, i64)>,
    /// Counted calls per (customer, UTC second), for seconds holding a system error.
    seconds: foldhash::HashMap<(i64, i64), u32>,
}

impl Tally {
    fn new(month_count: usize) -> Tally {
        Tally {
            totals: vec![0; month_count],
            ..Tally::default()
        }
    }

    /// Counts one kept call in its service month, if it has one.
    fn add(&mut self, context: &TallyContext, key: &CallKey) {
        let Some(month) = key.month() else {
            return;
        };
        let customer_id = context.month_customers[month as usize];
        self.totals[month as usize] += 1;
        self.counted += 1;
        let second = key.ts.div_euclid(NANOS_PER_SECOND);
        if context.is_error_second(customer_id, second) {
            *self.seconds.entry((customer_id, second)).or_default() += 1;
        }
        if key.is_system_error() {
            self.errors
                .push((month, key.id, key.content, customer_id, key.ts));
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        if self.totals.len() < other.totals.len() {
            self.totals.resize(other.totals.len(), 0);
        }
        for (a, b) in self.totals.iter_mut().zip(&other.totals) {
            *a += b;
        }
        self.counted += other.counted;
        self.errors.extend(other.errors);
        for (k, v) in other.seconds {
            *self.seconds.entry(k).or_default() += v;
        }
        self
    }
}

/// Runs the heavy step.
pub fn count_calls(input: &HeavyStepInput) -> anyhow::Result<CallCounts> {
    let mut phases = Phases::start();
    let files = input.files;
    let chunks = files.chunks();
    let positions = Positions::new(&chunks)?;
    let coverage = Coverage::new(input.coverage, input.month_count);
    // The rows the chunks hold, each chunk's frame checked to hold exactly its rows.
    let rows_read: u64 = chunks.iter().map(|c| c.rows).sum();
    let store = KeyStore::new(rows_read, input.memory_budget, &input.spill_dir)?;
    let spilled_buckets = store.spilled_buckets();

    // 1. Read.
    let yields: Vec<anyhow::Result<ChunkYield>> = chunks
        .par_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut y = read_chunk(files, *chunk, positions.of(index, 0), &coverage)?;
            store.add(&y.keys)?;
            y.keys = Vec::new();
            Ok(y)
        })
        .collect();
    let mut errors = ErrorDetails::new();
    let mut codes = RunStrings::default();
    let mut error_seconds = foldhash::HashSet::default();
    let mut quarantine = Vec::new();
    let mut quarantined = 0;
    for y in yields {
        let y = y?;
        codes.merge_chunk(y.errors, &mut errors);
        error_seconds.extend(y.error_seconds);
        quarantine.extend(y.quarantine);
        quarantined += y.quarantined;
    }
    phases.lap("read");

    // 2. De-duplicate and 3. count, bucket by bucket.
    let context = TallyContext::new(&coverage, &error_seconds);
    let partial = store.deduplicate(&context)?;
    phases.lap("deduplicate");

    let (entries, resolved) = resolve_conflicts(
        files,
        &chunks,
        &positions,
        &partial.conflicts,
        &coverage,
        &mut errors,
    )?;
    quarantine.extend(entries);
    let mut total = partial.tally;
    for key in &resolved {
        total.add(&context, key);
    }
    let unique_calls = partial.unique + resolved.len() as u64;
    phases.lap("resolve conflicts");

    let months = attribute(input, &total, &errors)?;
    phases.lap("attribute exemptions");

    let rows = RowCounts::of_unique(rows_read, quarantined, unique_calls, total.counted)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the call rows do not add up: {rows_read} read, {quarantined} quarantined, {unique_calls} unique, {} counted",
                total.counted
            )
        })?;
    Ok(CallCounts {
        months,
        rows,
        quarantine,
        timings: phases.done(),
        spilled_buckets,
    })
}

/// Totals per month, and each counted system error attributed to its clause (SPEC §4).
fn attribute(
    input: &HeavyStepInput,
    tally: &Tally,
    errors: &ErrorDetails,
) -> anyhow::Result<Vec<MonthCallCounts>> {
    let mut months: Vec<MonthCallCounts> = tally
        .totals
        .iter()
        .map(|&total_calls| MonthCallCounts {
            total_calls,
            ..MonthCallCounts::default()
        })
        .collect();
    let rules = ExemptionRules::new(input.exemptions, input.policy);
    let outcomes: Vec<(u32, Option<Clause>)> = tally
        .errors
        .par_iter()
        .map(|&(month, id, content, customer_id, ts)| {
            // Every counted system error's detail was kept when its row was read.
            let detail = errors
                .get(&(id, content))
                .ok_or_else(|| anyhow::anyhow!("a counted system error has no detail"))?;
            let error = SystemError {
                request_id: detail.request_id.to_string(),
                customer_id,
                ts,
                error_code: detail.error_code.as_deref().map(str::to_string),
                calls_in_second: tally
                    .seconds
                    .get(&(customer_id, ts.div_euclid(NANOS_PER_SECOND)))
                    .copied()
                    .unwrap_or(1),
            };
            Ok((month, rules.attribute(&error)))
        })
        .collect::<anyhow::Result<_>>()?;
    for (month, clause) in outcomes {
        let month = &mut months[month as usize];
        month.system_errors += 1;
        if let Some(clause) = clause {
            *month.exempt_by_clause.entry(clause).or_default() += 1;
        }
    }
    Ok(months)
}

/// One unique call of a customer, after quarantine and de-duplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerCall {
    pub request_id: String,
    /// UTC nanoseconds.
    pub ts: i64,
    pub api: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
}

/// The call rows behind one customer, for `explain`.
#[derive(Debug, Clone, Default)]
pub struct CustomerCalls {
    /// Rows of the customer quarantined as row defects (a row whose customer_id is null
    /// belongs to nobody and is not listed).
    pub quarantined: Vec<Entry>,
    /// Valid rows of the customer.
    pub valid_rows: u64,
    /// Conflicting duplicates among the request ids the customer's rows carry.
    pub conflicts: Vec<Entry>,
    /// Unique calls kept for the customer, ordered by (ts, request_id).
    pub calls: Vec<CustomerCall>,
}

/// The heavy step's quarantine and de-duplication rules, applied to every row of every request
/// id that `customer_id` ever used (so a conflicting copy under another customer is resolved
/// exactly as in [`count_calls`]); gives that customer's unique calls, in full. Two reads of the
/// call logs, row by row: meant for one customer at a time. Counting stays with the caller.
pub fn customer_calls(files: &CallFiles, customer_id: i64) -> anyhow::Result<CustomerCalls> {
    let chunks = files.chunks();
    let mut result = CustomerCalls::default();
    let mut ids: HashSet<String> = HashSet::new();
    // Read 1: the customer's defective rows and the request ids of its valid rows.
    for chunk in &chunks {
        let frame = files.read_chunk(*chunk)?;
        let source = &files.files[chunk.file as usize].shown;
        let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, *chunk))?;
        for i in 0..frame.height() {
            if columns.customer_id.get(i) != Some(customer_id) {
                continue;
            }
            let (id, t, s) = (
                columns.request_id.get(i),
                columns.ts.get(i),
                columns.status.get(i),
            );
            match (id, t, s.and_then(status_code)) {
                (Some(id), Some(_), Some(_)) => {
                    result.valid_rows += 1;
                    ids.insert(id.to_string());
                }
                _ => {
                    let (reason, detail) = row_defect(id, Some(customer_id), t, s);
                    result.quarantined.push(Entry::new(
                        source,
                        Some(chunk.offset + i as u64 + 1),
                        reason,
                        detail,
                    ));
                }
            }
        }
    }
    // Read 2: every valid version of those ids, whoever's customer it names.
    let mut versions: BTreeMap<String, Vec<CallVersion>> = BTreeMap::new();
    for chunk in &chunks {
        let frame = files.read_chunk(*chunk)?;
        let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, *chunk))?;
        for i in 0..frame.height() {
            if !columns.request_id.get(i).is_some_and(|id| ids.contains(id)) {
                continue;
            }
            if let Some(version) = columns.version(i) {
                versions
                    .entry(version.request_id.clone())
                    .or_default()
                    .push(version);
            }
        }
    }
    for (_, mut list) in versions {
        list.sort();
        list.dedup();
        if list.len() > 1 {
            result
                .conflicts
                .push(conflict_entry(&list.iter().collect::<Vec<_>>()));
        }
        let kept = list.swap_remove(0);
        if kept.customer_id == customer_id {
            result.calls.push(CustomerCall {
                request_id: kept.request_id,
                ts: kept.ts,
                api: kept.api,
                status: kept.status,
                error_code: kept.error_code,
            });
        }
    }
    result
        .calls
        .sort_by(|a, b| (a.ts, &a.request_id).cmp(&(b.ts, &b.request_id)));
    result.quarantined.sort();
    Ok(result)
}

/// The quarantine entries of the row defects (SPEC §2) in the files at `file_indices`, by file,
/// read again here to name each row. Another engine that only counts defects per file uses
/// this to report them exactly as [`count_calls`] does.
pub fn quarantine_rows(
    files: &CallFiles,
    file_indices: &[u32],
) -> anyhow::Result<BTreeMap<u32, Vec<Entry>>> {
    let chunks: Vec<(usize, Chunk)> = files
        .chunks()
        .into_iter()
        .enumerate()
        .filter(|(_, chunk)| file_indices.contains(&chunk.file))
        .collect();
    let no_coverage = Coverage::new(&[], 0);
    let entries: Vec<(u32, Vec<Entry>)> = chunks
        .par_iter()
        .map(|&(_, chunk)| {
            let quarantine = read_chunk(files, chunk, 0, &no_coverage)?.quarantine;
            Ok((chunk.file, quarantine))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut by_file: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
    for (file, quarantine) in entries {
        by_file.entry(file).or_default().extend(quarantine);
    }
    by_file.retain(|_, entries| !entries.is_empty());
    Ok(by_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A key with the given id hash words and content hash, counted in month 0.
    fn key(id: [u64; 2], content: u64, position: u32) -> CallKey {
        CallKey {
            id,
            content,
            ts: i64::from(position) * NANOS_PER_SECOND,
            month_and_error: 0,
            position,
        }
    }

    /// The top `bits` bits of `prefix` above the (spread) bits of `low`: an id hash of one bucket.
    fn in_bucket(prefix: u64, bits: u32, low: u64) -> u64 {
        let spread = low.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if bits == 0 {
            spread
        } else {
            (prefix >> (64 - bits) << (64 - bits)) | (spread >> bits)
        }
    }

    proptest! {
        #[test]
        fn spec2_sorting_a_bucket_orders_it_as_a_full_sort_would(
            rows in proptest::collection::vec((0u64..400, 0u64..3, 0u64..3), 0..4000),
            bits in 0u32..=10,
            prefix in any::<u64>(),
        ) {
            let keys: Vec<CallKey> = rows
                .iter()
                .enumerate()
                .map(|(i, &(low, id1, content))| {
                    key([in_bucket(prefix, bits, low), id1], content, i as u32)
                })
                .collect();
            let mut sorted = Vec::new();
            sort_bucket(&keys, bits, &mut sorted);
            let mut expected = keys.clone();
            expected.sort_by_key(|k| (k.id, k.content));
            let order = |v: &[CallKey]| v.iter().map(|k| (k.id, k.content)).collect::<Vec<_>>();
            prop_assert_eq!(order(&sorted), order(&expected));
            let mut all = sorted.iter().map(|k| (k.id, k.content, k.position)).collect::<Vec<_>>();
            all.sort();
            let mut want = keys.iter().map(|k| (k.id, k.content, k.position)).collect::<Vec<_>>();
            want.sort();
            prop_assert_eq!(all, want);
        }

        #[test]
        fn spec2_scattering_groups_keys_by_digit_and_keeps_their_order(
            digits in proptest::collection::vec(0usize..7, 0..500),
        ) {
            let keys: Vec<CallKey> = digits
                .iter()
                .enumerate()
                .map(|(i, &d)| key([d as u64, 0], 0, i as u32))
                .collect();
            let mut out = Vec::new();
            let ends = scatter_by_digit(&keys, 7, |k| k.id[0] as usize, &mut out);
            prop_assert_eq!(ends.len(), 7);
            prop_assert_eq!(out.len(), keys.len());
            let mut start = 0;
            for (d, &end) in ends.iter().enumerate() {
                let run = &out[start..end];
                prop_assert!(run.iter().all(|k| k.id[0] == d as u64));
                prop_assert!(run.windows(2).all(|w| w[0].position < w[1].position));
                prop_assert_eq!(run.len(), digits.iter().filter(|&&x| x == d).count());
                start = end;
            }
        }
    }

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

    #[test]
    fn spec2_exact_copies_count_once_and_differing_copies_are_set_aside_for_the_tie_break() {
        let coverage = Coverage::new(
            &[CoverageInterval {
                month_index: 0,
                customer_id: 7,
                start: 0,
                end: i64::MAX,
            }],
            1,
        );
        let error_seconds = foldhash::HashSet::default();
        let context = TallyContext::new(&coverage, &error_seconds);
        let keys = vec![
            key([1 << 60, 1], 10, 0),
            key([1 << 60, 1], 10, 1), // an exact re-delivery
            key([2 << 60, 1], 20, 2),
            key([2 << 60, 1], 21, 3), // differs from the row before
            key([2 << 60, 1], 20, 4),
            key([3 << 60, 1], 30, 5),
        ];
        let partial = deduplicate_and_tally(keys, 0, &context, &BufferPool::new(2));
        assert_eq!(partial.unique, 2);
        assert_eq!(partial.tally.totals, vec![2]);
        assert_eq!(partial.conflicts.len(), 1);
        let mut versions = partial.conflicts[0].positions.clone();
        versions.sort();
        assert!(versions == [2, 3] || versions == [3, 4], "{versions:?}");
    }

    /// A fresh folder for one test's spill files (the caller's folder, in the step's contract).
    fn spill_folder(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sla-ledger-spill-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn some_keys(n: u32) -> Vec<CallKey> {
        (0..n)
            .map(|i| {
                let mut k = key([u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15), 7], 9, i);
                k.month_and_error = (i % 3) | if i % 2 == 0 { SYSTEM_ERROR_BIT } else { 0 };
                k
            })
            .collect()
    }

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
        let message = result
            .expect_err("a changed spill file is an error")
            .to_string();
        let path = dir.join("bucket-3.keys");
        let start = format!(
            "spill file `{}` does not read back as written: ",
            path.display()
        );
        assert!(message.starts_with(&start), "{message}");
        assert!(message.contains(found), "{message}");
        assert!(message.contains("\n  hint: "), "{message}");
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

    #[test]
    fn spec8_the_key_store_spills_into_the_callers_folder_and_leaves_it_empty() {
        let dir = spill_folder("store");
        let keys = some_keys(3000);
        // A 1-byte budget: every bucket goes to disk.
        let store = KeyStore::new(keys.len() as u64, 1, &dir).unwrap();
        assert_eq!(store.spilled_buckets() as u64, MAX_BUCKETS);
        store.add(&keys).unwrap();
        let coverage = Coverage::new(
            &[CoverageInterval {
                month_index: 0,
                customer_id: 0,
                start: i64::MIN,
                end: i64::MAX,
            }],
            3,
        );
        let error_seconds = foldhash::HashSet::default();
        let context = TallyContext::new(&coverage, &error_seconds);
        let partial = store.deduplicate(&context).unwrap();
        assert_eq!(partial.unique, 3000);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
        let missing = KeyStore::new(keys.len() as u64, 1, &dir)
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("bucket-0.keys"), "{missing}");
    }
}
