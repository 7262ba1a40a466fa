//! Takes the call files; gives what other callers need of the heavy step's rules without its
//! counting: one customer's unique calls in full (for `explain`), and the quarantine entries of
//! the defective rows in some files (for the Ballista engine, which only counts them).

use std::collections::{BTreeMap, HashSet};

use rayon::prelude::*;

use super::dedup::{conflict_entry, CallVersion};
use super::key::status_code;
use super::read::{polars_error, read_chunk, row_defect, ChunkColumns};
use super::tally::Coverage;
use crate::inputs::calls::{CallFiles, Chunk};
use crate::quarantine::Entry;

/// One unique call of a customer, after quarantine and de-duplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CustomerCall {
    pub request_id: String,
    /// UTC nanoseconds.
    pub ts: i64,
    pub api: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
}

/// The call rows behind one customer, for `explain`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomerCalls {
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

impl CustomerCalls {
    /// Valid rows of the customer dropped as repeats of a request id. Each call kept for the
    /// customer has a request id of its own that one of its valid rows carries, so there are
    /// never fewer valid rows than calls (an internal error if there are).
    pub(crate) fn duplicate_rows(&self) -> anyhow::Result<u64> {
        self.valid_rows
            .checked_sub(self.calls.len() as u64)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "internal check failed: {} unique calls kept from {} valid rows",
                    self.calls.len(),
                    self.valid_rows
                )
            })
    }
}

/// The heavy step's quarantine and de-duplication rules, applied to every row of every request
/// id that `customer_id` ever used (so a conflicting copy under another customer is resolved
/// exactly as in [`count_calls`]); gives that customer's unique calls, in full. Two reads of the
/// call logs, row by row: meant for one customer at a time. Counting stays with the caller.
pub(crate) fn customer_calls(files: &CallFiles, customer_id: i64) -> anyhow::Result<CustomerCalls> {
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
#[cfg_attr(not(feature = "distributed"), allow(dead_code))]
pub(super) fn quarantine_rows(
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
