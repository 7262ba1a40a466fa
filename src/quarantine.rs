//! Quarantine: rows that are not counted, with where they came from and why (SPEC §7).

use std::path::Path;

use crate::error::Position;

/// Why a row was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    NullRequestId,
    NullCustomerId,
    NullTs,
    NullStatus,
    UnknownStatus,
    ConflictingDuplicate,
    StartAfterEnd,
    UnknownKind,
    BadAmount,
    EmptyCurrency,
    BadCurrency,
    UnannouncedWindow,
    LateNotice,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NullRequestId => "null_request_id",
            Reason::NullCustomerId => "null_customer_id",
            Reason::NullTs => "null_ts",
            Reason::NullStatus => "null_status",
            Reason::UnknownStatus => "unknown_status",
            Reason::ConflictingDuplicate => "conflicting_duplicate",
            Reason::StartAfterEnd => "start_after_end",
            Reason::UnknownKind => "unknown_kind",
            Reason::BadAmount => "bad_amount",
            Reason::EmptyCurrency => "empty_currency",
            Reason::BadCurrency => "bad_currency",
            Reason::UnannouncedWindow => "unannounced_window",
            Reason::LateNotice => "late_notice",
        }
    }
}

/// One line of `quarantine.csv`: `source,row,reason,detail`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The file, relative to the data directory (`calls` for a duplicate conflict, which
    /// belongs to a request id rather than a file).
    pub source: String,
    /// CSV: the line number (header = 1). Parquet: the 1-based row. Empty for conflicts.
    pub row: Option<u64>,
    pub reason: Reason,
    pub detail: String,
}

impl Entry {
    /// An entry for `source` (a path relative to the data directory, shown with `/`).
    pub fn new(source: &Path, row: Option<u64>, reason: Reason, detail: String) -> Entry {
        Entry {
            source: source.display().to_string().replace('\\', "/"),
            row,
            reason,
            detail,
        }
    }
}

/// All quarantine entries of a run, in a deterministic order once sorted.
#[derive(Debug, Default)]
pub struct Quarantine {
    entries: Vec<Entry>,
}

impl Quarantine {
    pub fn add(
        &mut self,
        source: &Path,
        position: Option<Position>,
        reason: Reason,
        detail: String,
    ) {
        let row = position.map(|p| match p {
            Position::Line(n) | Position::Row(n) => n,
        });
        self.entries.push(Entry::new(source, row, reason, detail));
    }

    pub fn extend(&mut self, entries: impl IntoIterator<Item = Entry>) {
        self.entries.extend(entries);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn count(&self, reason: Reason) -> usize {
        self.entries.iter().filter(|e| e.reason == reason).count()
    }

    /// Entries ordered by source, row, reason, detail.
    pub fn sorted(&self) -> Vec<Entry> {
        let mut entries = self.entries.clone();
        entries.sort();
        entries
    }
}
