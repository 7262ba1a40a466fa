//! Takes the call files, one customer and its service month's coverage; gives every row fact
//! `explain` shows for that customer-month, under the heavy step's own rules (row defects,
//! de-duplication with its tie-break, coverage, burst seconds), holding about 50 bytes per
//! call of the customer and full strings only for its counted system errors.
//!
//! The counts themselves come from the heavy step ([`super::count_calls`]): `explain` checks
//! that these facts add up to them.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use foldhash::{HashMap, HashMapExt};
use rayon::prelude::*;

use super::dedup::{conflict_entry, CallVersion};
use super::key::{content_hash, id_hash, status_code, status_name, text_hash, STATUS_SYSTEM_ERROR};
use super::read::{polars_error, row_defect, ChunkColumns};
use super::tally::Coverage;
use crate::inputs::calls::{CallFiles, Chunk};
use crate::quarantine::Entry;
use crate::stages::exemptions::SystemError;
use crate::stages::service_months::CoverageInterval;
use crate::time::{local_date, YearMonth, NANOS_PER_SECOND};

/// The rows behind one customer-month, as the heavy step treats them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomerMonth {
    /// Rows of the customer quarantined as row defects (a row whose customer_id is null
    /// belongs to nobody and is not listed).
    pub quarantined: Vec<Entry>,
    /// Valid rows of the customer.
    pub valid_rows: u64,
    /// Conflicting duplicates among the request ids the customer's rows carry.
    pub conflicts: Vec<Entry>,
    /// Unique calls kept for the customer (a request id kept in another customer's version
    /// is not one of them).
    pub unique_calls: u64,
    /// Unique calls on local dates of the month its subscriptions do not cover.
    pub uncovered_in_month: u64,
    /// Unique calls in other months.
    pub other_months: u64,
    /// Unique calls counted in the service month, by status.
    pub counted_by_status: BTreeMap<&'static str, u64>,
    /// The counted system errors, each with the counted calls of its UTC second (SLA 5.7),
    /// ordered by (ts, request_id).
    pub system_errors: Vec<SystemError>,
}

impl CustomerMonth {
    pub(crate) fn counted(&self) -> u64 {
        self.counted_by_status.values().sum()
    }

    /// Valid rows of the customer dropped as repeats of a request id: each kept call has a
    /// request id one of its valid rows carries (an internal error if there are fewer rows).
    pub(crate) fn duplicate_rows(&self) -> anyhow::Result<u64> {
        self.valid_rows
            .checked_sub(self.unique_calls)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "internal check failed: {} unique calls kept from {} valid rows",
                    self.unique_calls,
                    self.valid_rows
                )
            })
    }
}

/// The kept version of one request id, as far as counting needs it.
#[derive(Debug, Clone, Copy)]
struct Kept {
    content: u64,
    ts: i64,
    customer_id: i64,
    status: u8,
    /// Another row of the id has other content: the tie-break decides (SPEC §2).
    conflicting: bool,
}

/// The full strings of the customer's system-error versions, by id hash.
type ErrorStrings = HashMap<[u64; 2], Vec<(u64, String, Option<String>)>>;

/// The heavy step's rules over every row of every request id `customer_id` used (SPEC §2,
/// §4). `coverage` holds the service month's covered ranges (month index 0); `month` and `tz`
/// tell an uncovered date of the month from another month. Two or three parallel reads of the call
/// logs, one customer at a time.
pub(crate) fn customer_month(
    files: &CallFiles,
    customer_id: i64,
    month: YearMonth,
    coverage: &[CoverageInterval],
    tz: Tz,
) -> anyhow::Result<CustomerMonth> {
    let mut result = CustomerMonth::default();
    let mut errors = ErrorStrings::new();
    let mut kept = read_own_rows(files, customer_id, &mut result, &mut errors)?;
    mark_foreign_conflicts(files, customer_id, &mut kept)?;
    if kept.values().any(|k| k.conflicting) {
        resolve_conflicts(files, &mut kept, &mut errors, &mut result.conflicts)?;
    }
    tally(
        &kept,
        &errors,
        customer_id,
        month,
        coverage,
        tz,
        &mut result,
    )?;
    result.quarantined.sort();
    result.conflicts.sort();
    Ok(result)
}

/// What read 1 finds in one chunk.
#[derive(Default)]
struct OwnRows {
    quarantined: Vec<Entry>,
    valid_rows: u64,
    versions: Vec<([u64; 2], Kept)>,
    /// The full strings of system-error versions: (id hash, content, request id, code).
    errors: Vec<([u64; 2], u64, String, Option<String>)>,
}

/// Read 1: the customer's defective rows, and one version per request id of its valid rows.
/// Chunks are read in parallel and merged in their order.
fn read_own_rows(
    files: &CallFiles,
    customer_id: i64,
    result: &mut CustomerMonth,
    errors: &mut ErrorStrings,
) -> anyhow::Result<HashMap<[u64; 2], Kept>> {
    let chunks = files.chunks();
    let found: Vec<OwnRows> = chunks
        .par_iter()
        .map(|chunk| own_rows_of(files, *chunk, customer_id))
        .collect::<anyhow::Result<_>>()?;
    let mut kept: HashMap<[u64; 2], Kept> = HashMap::new();
    for rows in found {
        result.quarantined.extend(rows.quarantined);
        result.valid_rows += rows.valid_rows;
        for (hash, content, id, code) in rows.errors {
            let versions = errors.entry(hash).or_default();
            if !versions.iter().any(|(c, _, _)| *c == content) {
                versions.push((content, id, code));
            }
        }
        for (hash, version) in rows.versions {
            kept.entry(hash)
                .and_modify(|k| k.conflicting |= k.content != version.content)
                .or_insert(version);
        }
    }
    Ok(kept)
}

/// Read 1 over one chunk.
fn own_rows_of(files: &CallFiles, chunk: Chunk, customer_id: i64) -> anyhow::Result<OwnRows> {
    let frame = files.read_chunk(chunk)?;
    let source = &files.files[chunk.file as usize].shown;
    let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, chunk))?;
    let mut rows = OwnRows::default();
    for i in 0..frame.height() {
        if columns.customer_id.get(i) != Some(customer_id) {
            continue;
        }
        let (id, t, s) = (
            columns.request_id.get(i),
            columns.ts.get(i),
            columns.status.get(i),
        );
        let (Some(id), Some(ts), Some(status)) = (id, t, s.and_then(status_code)) else {
            let (reason, detail) = row_defect(id, Some(customer_id), t, s);
            let row = chunk.offset + i as u64 + 1;
            rows.quarantined
                .push(Entry::new(source, Some(row), reason, detail));
            continue;
        };
        rows.valid_rows += 1;
        let code = columns.error_code.get(i);
        let content = content_hash(
            customer_id,
            ts,
            columns.api.get(i).map(text_hash),
            status,
            code.map(text_hash),
        );
        let hash = id_hash(id);
        if status == STATUS_SYSTEM_ERROR {
            rows.errors
                .push((hash, content, id.to_string(), code.map(str::to_string)));
        }
        let version = Kept {
            content,
            ts,
            customer_id,
            status,
            conflicting: false,
        };
        rows.versions.push((hash, version));
    }
    Ok(rows)
}

/// Read 2: a valid row of another customer carrying one of the ids makes that id conflict.
fn mark_foreign_conflicts(
    files: &CallFiles,
    customer_id: i64,
    kept: &mut HashMap<[u64; 2], Kept>,
) -> anyhow::Result<()> {
    let shared: &HashMap<[u64; 2], Kept> = kept;
    let foreign: Vec<Vec<[u64; 2]>> = files
        .chunks()
        .par_iter()
        .map(|&chunk| {
            let frame = files.read_chunk(chunk)?;
            let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, chunk))?;
            let mut ids = Vec::new();
            for i in 0..frame.height() {
                if columns.customer_id.get(i).is_none_or(|c| c == customer_id) {
                    continue;
                }
                let valid = columns.ts.get(i).is_some()
                    && columns.status.get(i).and_then(status_code).is_some();
                let Some(id) = columns.request_id.get(i).filter(|_| valid) else {
                    continue;
                };
                let hash = id_hash(id);
                if shared.contains_key(&hash) {
                    ids.push(hash);
                }
            }
            Ok(ids)
        })
        .collect::<anyhow::Result<_>>()?;
    for hash in foreign.into_iter().flatten() {
        // Its customer differs, so its content does: the tie-break decides.
        if let Some(k) = kept.get_mut(&hash) {
            k.conflicting = true;
        }
    }
    Ok(())
}

/// Read 3, only when some id conflicts: every valid version of those ids in full, the
/// tie-break's pick kept (SPEC §2) and the `conflicting_duplicate` entry noted.
fn resolve_conflicts(
    files: &CallFiles,
    kept: &mut HashMap<[u64; 2], Kept>,
    errors: &mut ErrorStrings,
    conflicts: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let shared: &HashMap<[u64; 2], Kept> = kept;
    let found: Vec<Vec<([u64; 2], CallVersion)>> = files
        .chunks()
        .par_iter()
        .map(|&chunk| {
            let frame = files.read_chunk(chunk)?;
            let columns = ChunkColumns::of(&frame).map_err(|e| polars_error(e, files, chunk))?;
            let mut versions = Vec::new();
            for i in 0..frame.height() {
                let Some(hash) = columns.request_id.get(i).map(id_hash) else {
                    continue;
                };
                if !shared.get(&hash).is_some_and(|k| k.conflicting) {
                    continue;
                }
                if let Some(version) = columns.version(i) {
                    versions.push((hash, version));
                }
            }
            Ok(versions)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut versions: HashMap<[u64; 2], Vec<CallVersion>> = HashMap::new();
    for (hash, version) in found.into_iter().flatten() {
        versions.entry(hash).or_default().push(version);
    }
    for (hash, mut list) in versions {
        list.sort();
        list.dedup();
        if list.len() > 1 {
            conflicts.push(conflict_entry(&list.iter().collect::<Vec<_>>()));
        }
        let first = list.swap_remove(0);
        let status = status_code(&first.status).expect("a version has a valid status");
        let content = content_hash(
            first.customer_id,
            first.ts,
            first.api.as_deref().map(text_hash),
            status,
            first.error_code.as_deref().map(text_hash),
        );
        kept.insert(
            hash,
            Kept {
                content,
                ts: first.ts,
                customer_id: first.customer_id,
                status,
                conflicting: false,
            },
        );
        if status == STATUS_SYSTEM_ERROR {
            errors.insert(hash, vec![(content, first.request_id, first.error_code)]);
        }
    }
    Ok(())
}

/// Counts the kept calls of the customer as the heavy step does: counted when covered,
/// otherwise in the month's uncovered dates or another month; counted system errors in full,
/// with the counted calls of their UTC second.
fn tally(
    kept: &HashMap<[u64; 2], Kept>,
    errors: &ErrorStrings,
    customer_id: i64,
    month: YearMonth,
    coverage: &[CoverageInterval],
    tz: Tz,
    result: &mut CustomerMonth,
) -> anyhow::Result<()> {
    let coverage = Coverage::new(coverage, 1);
    let counted = |k: &Kept| coverage.month(customer_id, k.ts).is_some();
    let mut error_seconds: BTreeSet<i64> = BTreeSet::new();
    for (hash, k) in kept.iter().filter(|(_, k)| k.customer_id == customer_id) {
        result.unique_calls += 1;
        if counted(k) {
            *result
                .counted_by_status
                .entry(status_name(k.status))
                .or_default() += 1;
            if k.status == STATUS_SYSTEM_ERROR {
                let (_, request_id, error_code) = errors
                    .get(hash)
                    .and_then(|v| v.iter().find(|(c, _, _)| *c == k.content))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "internal check failed: a counted system error lost its detail"
                        )
                    })?;
                error_seconds.insert(k.ts.div_euclid(NANOS_PER_SECOND));
                result.system_errors.push(SystemError {
                    request_id: request_id.clone(),
                    customer_id,
                    ts: k.ts,
                    error_code: error_code.clone(),
                    calls_in_second: 0,
                });
            }
        } else if YearMonth::of(local_date(tz, k.ts)) == month {
            result.uncovered_in_month += 1;
        } else {
            result.other_months += 1;
        }
    }
    let mut per_second: BTreeMap<i64, u32> = BTreeMap::new();
    for k in kept
        .values()
        .filter(|k| k.customer_id == customer_id && counted(k))
    {
        let second = k.ts.div_euclid(NANOS_PER_SECOND);
        if error_seconds.contains(&second) {
            let n = per_second.entry(second).or_default();
            *n = n.saturating_add(1);
        }
    }
    for error in &mut result.system_errors {
        error.calls_in_second = per_second[&error.ts.div_euclid(NANOS_PER_SECOND)];
    }
    result
        .system_errors
        .sort_by(|a, b| (a.ts, &a.request_id).cmp(&(b.ts, &b.request_id)));
    Ok(())
}
