//! Quarantine: rows that are not counted, with where they came from and why (SPEC §7).
//!
//! Takes each defect as a source, a row, a reason and a detail; gives the entries of
//! `quarantine.csv`. A detail quotes input strings, so it is bounded here, where every entry is
//! made (SPEC §8): cut to [`DETAIL_CHARS`] characters with its original length noted, and its
//! control characters escaped.

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
    /// An entry for `source` (a path relative to the data directory, shown with `/`); the
    /// detail is bounded (see [`bounded_detail`]).
    pub fn new(source: &Path, row: Option<u64>, reason: Reason, detail: String) -> Entry {
        Entry {
            source: source.display().to_string().replace('\\', "/"),
            row,
            reason,
            detail: bounded_detail(detail),
        }
    }
}

/// Characters of a detail kept: enough to name the row's id and what was wrong with it.
pub const DETAIL_CHARS: usize = 200;

/// `detail` cut to [`DETAIL_CHARS`] characters (on a character boundary) with its original
/// length in bytes noted, and with control characters escaped (`\u{1b}`, `\n`), so that a
/// 10 KB status cannot make `quarantine.csv` grow by 10 KB a row, and nothing raw reaches a
/// terminal that shows it. Short, clean details are kept as they are.
pub fn bounded_detail(detail: String) -> String {
    crate::text::inert(&detail, DETAIL_CHARS)
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
    ) -> &Entry {
        let row = position.map(|p| match p {
            Position::Line(n) | Position::Row(n) => n,
        });
        self.entries.push(Entry::new(source, row, reason, detail));
        self.entries.last().expect("just pushed")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec8_a_short_clean_detail_is_kept_as_it_is() {
        let detail = "request_id r-1: status `ok`; expected success, client_error or system_error";
        assert_eq!(bounded_detail(detail.to_string()), detail);
    }

    #[test]
    fn spec8_a_long_detail_is_cut_on_a_character_boundary_with_its_length_noted() {
        let detail = format!("status `{}`", "é".repeat(5000));
        let bounded = bounded_detail(detail.clone());
        let kept: String = detail.chars().take(DETAIL_CHARS).collect();
        assert_eq!(bounded, format!("{kept}… (10009 bytes in all)"));
        assert_eq!(detail.len(), 10009);
    }

    #[test]
    fn spec8_control_characters_in_a_detail_are_escaped() {
        let bounded = bounded_detail("status `\u{1b}]0;owned\u{7}\n`".to_string());
        assert_eq!(bounded, "status `\\u{1b}]0;owned\\u{7}\\n`");
        assert!(!bounded.chars().any(char::is_control));
    }

    #[test]
    fn spec8_every_entry_gets_a_bounded_detail() {
        let entry = Entry::new(
            Path::new("calls/a.parquet"),
            Some(3),
            Reason::UnknownStatus,
            "x".repeat(10_240),
        );
        let note = "… (10240 bytes in all)";
        assert_eq!(entry.detail, format!("{}{note}", "x".repeat(DETAIL_CHARS)));
    }
}
