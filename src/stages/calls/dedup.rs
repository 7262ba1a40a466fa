//! Takes the buckets of keys; gives one call per request id, counted at once, and the request
//! ids whose copies differ, resolved by SPEC §2's tie-break after their versions are re-read
//! exactly from their positions ([`CallVersion`] is that order).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::customer::{CustomerNotes, KeptCalls};
use super::key::{content_hash, id_hash, status_code, CallKey, Positions, STATUS_SYSTEM_ERROR};
use super::read::{
    polars_error, ChunkColumns, ChunkStrings, ErrorDetail, ErrorDetails, RunStrings,
};
use super::sort::sort_bucket;
use super::store::{BufferPool, KeyStore};
use super::tally::{Coverage, Tally, TallyContext};
use crate::inputs::calls::{CallFiles, Chunk};
use crate::quarantine::{Entry, Reason};
use crate::time::format_instant;

/// A row to re-read for the tie-break: its row in its chunk and the (id, content) hashes it had
/// when first read.
#[derive(Debug, Clone, Copy)]
struct Reread {
    row: u32,
    id: [u64; 2],
    content: u64,
}

/// A version as re-read, with the (id, content) hashes its row has now.
struct HashedVersion {
    version: SharedVersion,
    id: [u64; 2],
    content: u64,
}

/// What resolving the conflicts gives: their `conflicting_duplicate` entries, and the kept
/// versions as keys (whose position is that of no row); for the noted customer, the entries of
/// the ids its rows carry and the kept versions that are its own.
pub(super) struct Resolved {
    pub(super) entries: Vec<Entry>,
    pub(super) kept: Vec<CallKey>,
    pub(super) noted_entries: Vec<Entry>,
    pub(super) noted_kept: KeptCalls,
}

/// The (ts, customer_id, status) of the version a conflict kept, as its entry names it.
struct KeptAs<'a> {
    ts: i64,
    customer_id: i64,
    status: &'a str,
}

/// A request id whose copies disagree: the position and content hash of each distinct version.
pub(super) struct Conflict {
    id: [u64; 2],
    positions: Vec<u32>,
    contents: Vec<u64>,
}

/// What de-duplicating and counting some keys gives; partials merge.
pub(super) struct Partial {
    pub(super) tally: Tally,
    pub(super) conflicts: Vec<Conflict>,
    /// Request ids kept (conflicting ones are counted when resolved).
    pub(super) unique: u64,
    /// Of those, the noted customer's.
    pub(super) noted_kept: KeptCalls,
}

impl Partial {
    fn new(month_count: usize) -> Partial {
        Partial {
            tally: Tally::new(month_count),
            conflicts: Vec::new(),
            unique: 0,
            noted_kept: KeptCalls::default(),
        }
    }

    fn merge(mut self, other: Partial) -> Partial {
        self.tally = self.tally.merge(other.tally);
        self.conflicts.extend(other.conflicts);
        self.unique += other.unique;
        self.noted_kept = self.noted_kept.merge(other.noted_kept);
        self
    }
}

/// De-duplicates and counts every bucket of `store`, two at a time (one per thread by
/// default); each bucket's memory is freed or reused for the next, and its file removed, once
/// counted.
pub(super) fn deduplicate_buckets(
    store: KeyStore,
    context: &TallyContext,
    notes: Option<&CustomerNotes>,
) -> anyhow::Result<Partial> {
    let partials = store.for_each_bucket(|keys, bucket_bits, pool| {
        deduplicate_and_tally(keys, bucket_bits, context, notes, pool)
    });
    // Merged one by one into a single accumulator: each count is inserted once (a reduce
    // tree would re-insert the large per-second maps at every level).
    partials
        .into_iter()
        .try_fold(Partial::new(context.month_count()), |total, p| {
            Ok(total.merge(p?))
        })
}

/// Sorts one bucket's keys by id and keeps one call per request id, counting it at once (and
/// for `notes`, if it is the noted customer's); ids whose copies disagree are set aside for
/// [`resolve_conflicts`]. The key buffers go back to `pool`. Callers run many of these in
/// parallel, one bucket each.
fn deduplicate_and_tally(
    keys: Vec<CallKey>,
    bucket_bits: u32,
    context: &TallyContext,
    notes: Option<&CustomerNotes>,
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
            if let Some(notes) = notes {
                notes.kept_key(&mut partial.noted_kept, &first);
            }
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
pub(super) struct CallVersion {
    pub(super) ts: i64,
    pub(super) customer_id: i64,
    pub(super) api: Option<String>,
    pub(super) status: String,
    pub(super) error_code: Option<String>,
    pub(super) request_id: String,
}

/// SPEC §2's tie-break for the differing versions of one request id: sorts and de-duplicates
/// `versions` and gives the `conflicting_duplicate` entry and the kept (smallest) version.
/// Only the Ballista engine, which gets versions back from its cluster, calls it.
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(super) fn resolve_conflict(mut versions: Vec<CallVersion>) -> (Entry, CallVersion) {
    versions.sort();
    versions.dedup();
    let entry = conflict_entry(&versions.iter().collect::<Vec<_>>());
    let kept = versions.swap_remove(0);
    (entry, kept)
}

/// The `conflicting_duplicate` quarantine entry of one request id; `versions` sorted, distinct.
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
fn conflict_entry(versions: &[&CallVersion]) -> Entry {
    let first = versions[0];
    let kept = KeptAs {
        ts: first.ts,
        customer_id: first.customer_id,
        status: first.status.as_str(),
    };
    conflict_entry_of(&first.request_id, versions.len(), kept)
}

/// The `conflicting_duplicate` entry of `request_id`, whose `versions` distinct rows kept the
/// one `kept`.
fn conflict_entry_of(request_id: &str, versions: usize, kept: KeptAs) -> Entry {
    let KeptAs {
        ts,
        customer_id,
        status,
    } = kept;
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

/// Re-reads the versions of conflicting ids from their positions and keeps the smallest,
/// noting for `notes` the conflicts of its customer's ids and the versions it keeps.
pub(super) fn resolve_conflicts(
    files: &CallFiles,
    chunks: &[Chunk],
    positions: &Positions,
    conflicts: &[Conflict],
    coverage: &Coverage,
    errors: &mut ErrorDetails,
    notes: Option<&CustomerNotes>,
) -> anyhow::Result<Resolved> {
    let versions = reread_versions(files, chunks, positions, conflicts)?;
    let mut entries = Vec::with_capacity(conflicts.len());
    let mut kept = Vec::with_capacity(conflicts.len());
    let (mut noted_entries, mut noted_kept) = (Vec::new(), KeptCalls::default());
    for conflict in conflicts {
        let found: Option<Vec<&HashedVersion>> =
            conflict.positions.iter().map(|p| versions.get(p)).collect();
        let mut found =
            found.ok_or_else(|| anyhow::anyhow!("a conflicting call row was not re-read"))?;
        // SPEC §2's tie-break, as `resolve_conflict` does it on full versions.
        found.sort_by(|a, b| a.version.cmp(&b.version));
        found.dedup_by(|a, b| a.version == b.version);
        let &&HashedVersion {
            version: ref first,
            content,
            ..
        } = found
            .first()
            .ok_or_else(|| anyhow::anyhow!("a conflict without versions"))?;
        let kept_as = KeptAs {
            ts: first.ts,
            customer_id: first.customer_id,
            status: &first.status,
        };
        let entry = conflict_entry_of(&first.request_id, found.len(), kept_as);
        // Checked when re-read: the kept version's hashes are those its key had.
        let id = conflict.id;
        let status = status_code(&first.status)
            .ok_or_else(|| anyhow::anyhow!("a re-read call version has no valid status"))?;
        let is_error = status == STATUS_SYSTEM_ERROR;
        if is_error {
            errors.entry((id, content)).or_insert_with(|| ErrorDetail {
                request_id: first.request_id.clone(),
                error_code: first.error_code.clone(),
            });
        }
        let month = coverage.month(first.customer_id, first.ts);
        kept.push(CallKey {
            id,
            content,
            ts: first.ts,
            month_and_error: CallKey::pack(month, is_error),
            position: u32::MAX,
        });
        if let Some(notes) = notes {
            // Each distinct content has a version here, so every customer with a valid row of
            // the id has one.
            if found
                .iter()
                .any(|v| v.version.customer_id == notes.customer_id())
            {
                noted_entries.push(entry.clone());
            }
            notes.kept_version(&mut noted_kept, first.customer_id, month, first.ts, status);
        }
        entries.push(entry);
    }
    Ok(Resolved {
        entries,
        kept,
        noted_entries,
        noted_kept,
    })
}

/// The full version at every position of `conflicts` with its content hash, each checked to be
/// the row whose key was made when it was first read.
fn reread_versions(
    files: &CallFiles,
    chunks: &[Chunk],
    positions: &Positions,
    conflicts: &[Conflict],
) -> anyhow::Result<HashMap<u32, HashedVersion>> {
    // Each version's row and the (id, content) hashes it had when first read.
    let mut wanted: BTreeMap<usize, Vec<Reread>> = BTreeMap::new();
    for conflict in conflicts {
        for (&position, &content) in conflict.positions.iter().zip(&conflict.contents) {
            let (chunk, row) = positions
                .locate(position)
                .ok_or_else(|| anyhow::anyhow!("call row position {position} is of no chunk"))?;
            wanted.entry(chunk).or_default().push(Reread {
                row,
                id: conflict.id,
                content,
            });
        }
    }
    let mut versions: HashMap<u32, HashedVersion> = HashMap::new();
    let mut run = RunStrings::default();
    for (chunk_index, rows) in wanted {
        let chunk = chunks[chunk_index];
        // A few rows: read just them (one row group each); many: read the chunk once.
        let reads: Vec<(Chunk, Vec<Reread>)> = if rows.len() <= FEW_ROWS {
            rows.iter()
                .map(|&wanted| {
                    let part = Chunk {
                        file: chunk.file,
                        offset: chunk.offset + u64::from(wanted.row),
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
            for Reread { row, id, content } in rows {
                let i = (chunk.offset + u64::from(row) - part.offset) as usize;
                let version = columns
                    .shared_version(i, &mut strings, &mut run)
                    .filter(|now| (now.id, now.content) == (id, content))
                    .ok_or_else(|| reread_error(files, chunk, row))?;
                versions.insert(positions.of(chunk_index, row as usize), version);
            }
        }
    }
    Ok(versions)
}

/// A row that reads back otherwise than when it was first read: the file changed during the
/// run, or its metadata places rows differently when a part of it is read.
fn reread_error(files: &CallFiles, chunk: Chunk, row: u32) -> anyhow::Error {
    crate::error::hinted(
        format!(
            "`{}`: row {} reads back otherwise than when it was first read",
            files.files[chunk.file as usize].shown.display(),
            chunk.offset + u64::from(row) + 1
        ),
        "the file changed during the run, or its metadata does not match its data; re-export it and run again",
    )
}

/// Reading one row in full, for the tie-break (the columns are read.rs's).
impl<'a> ChunkColumns<'a> {
    /// Row `i` with its strings shared and its (id, content) hashes as its key has them, if it
    /// is a valid row (SPEC §2).
    fn shared_version(
        &self,
        i: usize,
        strings: &mut ChunkStrings<'a>,
        run: &mut RunStrings,
    ) -> Option<HashedVersion> {
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
        Some(HashedVersion {
            version,
            id: id_hash(id),
            content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::calls::testing::key;
    use crate::stages::service_months::CoverageInterval;

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
        let partial = deduplicate_and_tally(keys, 0, &context, None, &BufferPool::new(2));
        assert_eq!(partial.unique, 2);
        assert_eq!(partial.tally.totals, vec![2]);
        assert_eq!(partial.conflicts.len(), 1);
        let mut versions = partial.conflicts[0].positions.clone();
        versions.sort();
        assert!(versions == [2, 3] || versions == [3, 4], "{versions:?}");
    }
}
