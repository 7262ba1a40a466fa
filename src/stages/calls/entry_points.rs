//! Takes the call files; gives the quarantine entries of the defective rows in some files, for
//! the Ballista engine, which only counts them.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::read::read_chunk;
use super::tally::Coverage;
use crate::inputs::calls::{CallFiles, Chunk};
use crate::quarantine::Entry;

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
            let quarantine = read_chunk(files, chunk, 0, &no_coverage, None)?.quarantine;
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
