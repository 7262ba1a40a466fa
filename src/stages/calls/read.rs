//! Takes the call files' chunks (whole row groups, decoded with polars' Parquet readers); gives
//! each valid row's [`CallKey`] (added to the [`KeyStore`] as it is read), the quarantine
//! entries of defective rows (SPEC §2), and the detail and (customer, second) of each system
//! error.
//!
//! Strings are shared as they are read: each distinct `request_id` or `error_code` of a
//! system error is one copy however many rows repeat it ([`ChunkStrings`], [`RunStrings`]).

use std::collections::HashMap;
use std::sync::Arc;

use polars::prelude::*;
use rayon::prelude::*;

use super::customer::CustomerNotes;
use super::key::{
    content_hash, id_hash, status_code, text_hash, CallKey, Positions, STATUS_SYSTEM_ERROR,
};
use super::store::KeyStore;
use super::tally::{Coverage, CustomerSecond};
use crate::inputs::calls::{columns::*, CallFiles, Chunk};
use crate::quarantine::{Entry, Reason};
use crate::telemetry::ReadProgress;

/// A system error's full detail, kept from the read for attribution after de-duplication.
/// Strings are shared: rows repeating an id or a code hold one copy of it.
#[derive(Debug, Clone)]
pub(super) struct ErrorDetail {
    pub(super) request_id: Arc<str>,
    pub(super) error_code: Option<Arc<str>>,
}

/// Full detail of the system errors read, by (id hash, content hash).
pub(super) type ErrorDetails = HashMap<([u64; 2], u64), ErrorDetail>;

/// Hashes and shares the strings of one chunk's frame (`'f`), each distinct one in one copy.
/// A string decoded from a Parquet dictionary is one slice of the frame's memory for every row
/// that uses it, so its address finds it again without reading its bytes: a long string
/// repeated on every row is hashed once, not once a row.
#[derive(Default)]
pub(super) struct ChunkStrings<'f> {
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
    pub(super) fn hash(&mut self, text: &'f str) -> u64 {
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
    pub(super) fn share_across(&mut self, text: &'f str, run: &mut RunStrings) -> Arc<str> {
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
pub(super) struct RunStrings {
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
pub(super) struct ChunkYield {
    keys: Vec<CallKey>,
    /// One entry per distinct (id hash, content hash) of the chunk's system errors.
    errors: foldhash::HashMap<([u64; 2], u64), ErrorDetail>,
    error_seconds: Vec<CustomerSecond>,
    pub(super) quarantine: Vec<Entry>,
    quarantined: u64,
    /// The entries of `quarantine` whose row is the noted customer's.
    noted_quarantine: Vec<Entry>,
}

/// A chunk's frame whose columns do not have the types [`CallFiles::read_chunk`] gives.
pub(super) fn polars_error(error: PolarsError, files: &CallFiles, chunk: Chunk) -> anyhow::Error {
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
pub(super) fn row_defect(
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
pub(super) struct ChunkColumns<'a> {
    pub(super) request_id: &'a StringChunked,
    pub(super) customer_id: &'a Int64Chunked,
    pub(super) ts: &'a Int64Chunked,
    pub(super) api: &'a StringChunked,
    pub(super) status: &'a StringChunked,
    pub(super) error_code: &'a StringChunked,
}

impl<'a> ChunkColumns<'a> {
    pub(super) fn of(frame: &'a DataFrame) -> PolarsResult<ChunkColumns<'a>> {
        Ok(ChunkColumns {
            request_id: frame.column(REQUEST_ID)?.str()?,
            customer_id: frame.column(CUSTOMER_ID)?.i64()?,
            ts: frame.column(TS)?.i64()?,
            api: frame.column(API)?.str()?,
            status: frame.column(STATUS)?.str()?,
            error_code: frame.column(ERROR_CODE)?.str()?,
        })
    }
}

/// Phase 1 for one chunk: quarantine, keys (each with its service month), error details, and
/// the rows of the customer `notes` follows, if any. `first_position` numbers the chunk's first
/// row. One loop over the rows, kept whole: it is the hottest code of the run, and each row's
/// steps share its decoded values.
pub(super) fn read_chunk(
    files: &CallFiles,
    chunk: Chunk,
    first_position: u32,
    coverage: &Coverage,
    notes: Option<&CustomerNotes>,
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
            let entry = Entry::new(source, Some(chunk.offset + row as u64 + 1), reason, detail);
            if notes.is_some_and(|n| c == Some(n.customer_id())) {
                out.noted_quarantine.push(entry.clone());
            }
            out.quarantine.push(entry);
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
            out.error_seconds.push(CustomerSecond::of(c, t));
        }
        if let Some(notes) = notes.filter(|n| n.customer_id() == c) {
            notes.own_row(key.position, status);
        }
        out.keys.push(key);
    }
    Ok(out)
}

/// What reading every chunk gives besides the keys, which went into the [`KeyStore`].
pub(super) struct CallsRead {
    pub(super) errors: ErrorDetails,
    /// Every (customer, UTC second) that holds a system error.
    pub(super) error_seconds: foldhash::HashSet<CustomerSecond>,
    pub(super) quarantine: Vec<Entry>,
    pub(super) quarantined: u64,
    /// The entries of `quarantine` whose row is the noted customer's.
    pub(super) noted_quarantine: Vec<Entry>,
}

/// Phase 1 for every chunk, in parallel: each chunk's keys go into `store` as soon as it is
/// read; its error details, error seconds and quarantine are merged in chunk order.
/// The operator's bar over the bytes of every call file.
fn read_progress(files: &CallFiles, chunks: &[Chunk]) -> ReadProgress {
    let mut chunks_per_file = vec![0u64; files.files.len()];
    for chunk in chunks {
        chunks_per_file[chunk.file as usize] += 1;
    }
    let total_bytes = files.files.iter().map(|f| f.bytes()).sum();
    ReadProgress::start(total_bytes, &chunks_per_file)
}

/// A chunk's share of its file's bytes, by its share of the rows (row groups are about even).
fn chunk_bytes(files: &CallFiles, chunk: &Chunk) -> u64 {
    let file = &files.files[chunk.file as usize];
    if file.rows == 0 {
        return file.bytes();
    }
    let share = u128::from(file.bytes()) * u128::from(chunk.rows) / u128::from(file.rows);
    u64::try_from(share).unwrap_or(u64::MAX)
}

pub(super) fn read_all(
    files: &CallFiles,
    chunks: &[Chunk],
    positions: &Positions,
    coverage: &Coverage,
    store: &KeyStore,
    notes: Option<&CustomerNotes>,
) -> anyhow::Result<CallsRead> {
    let progress = read_progress(files, chunks);
    let yields: Vec<anyhow::Result<ChunkYield>> = chunks
        .par_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut y = read_chunk(files, *chunk, positions.of(index, 0), coverage, notes)?;
            store.add(&y.keys)?;
            y.keys = Vec::new();
            progress.chunk_read(chunk.file as usize, chunk.rows, chunk_bytes(files, chunk));
            Ok(y)
        })
        .collect();
    drop(progress);
    let mut read = CallsRead {
        errors: ErrorDetails::new(),
        error_seconds: foldhash::HashSet::default(),
        quarantine: Vec::new(),
        quarantined: 0,
        noted_quarantine: Vec::new(),
    };
    let mut codes = RunStrings::default();
    for y in yields {
        let y = y?;
        codes.merge_chunk(y.errors, &mut read.errors);
        read.error_seconds.extend(y.error_seconds);
        read.quarantine.extend(y.quarantine);
        read.quarantined += y.quarantined;
        read.noted_quarantine.extend(y.noted_quarantine);
    }
    Ok(read)
}
