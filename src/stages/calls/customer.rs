//! Takes one customer-month for the heavy step to note while it runs; gives every row fact
//! `explain` shows for it, found by the step's own passes, so under its own rules (row defects
//! as read, de-duplication with its tie-break, coverage, burst seconds) and without reading
//! the call logs again: the read marks the customer's valid rows (two bits per call row), the
//! de-duplication and the tie-break count the calls they keep of those rows, and the counted
//! system errors are the step's own.
//!
//! The counts themselves come from the same run of the step: `explain` checks that these
//! facts add up to them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono_tz::Tz;

use super::key::{
    status_name, CallKey, STATUS_CLIENT_ERROR, STATUS_COUNT, STATUS_SUCCESS, STATUS_SYSTEM_ERROR,
};
use crate::quarantine::Entry;
use crate::stages::exemptions::SystemError;
use crate::time::{local_date, YearMonth};

/// The customer-month whose rows the heavy step notes for `explain`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotedCustomer {
    pub customer_id: i64,
    /// With `tz`, tells a call on an uncovered date of this month from one of another month.
    pub month: YearMonth,
    pub tz: Tz,
}

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

/// One bit per call row, by position; set from many threads at once.
struct PositionBits {
    words: Vec<AtomicU64>,
}

impl PositionBits {
    fn new(rows: u64) -> PositionBits {
        PositionBits {
            words: (0..rows.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn insert(&self, position: u32) {
        let word = &self.words[position as usize / 64];
        word.fetch_or(1 << (position % 64), Ordering::Relaxed);
    }

    /// Whether `position` was inserted (a position of no row, like a resolved conflict's, was
    /// not).
    fn contains(&self, position: u32) -> bool {
        self.words
            .get(position as usize / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (position % 64)) != 0)
    }

    fn count(&self) -> u64 {
        let ones = self
            .words
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones());
        ones.map(u64::from).sum()
    }
}

/// The customer's calls as the step keeps them, counted; partials merge.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KeptCalls {
    unique: u64,
    uncovered_in_month: u64,
    other_months: u64,
    /// Counted calls by status code.
    counted: [u64; STATUS_COUNT],
}

impl KeptCalls {
    pub(super) fn merge(mut self, other: KeptCalls) -> KeptCalls {
        self.unique += other.unique;
        self.uncovered_in_month += other.uncovered_in_month;
        self.other_months += other.other_months;
        for (a, b) in self.counted.iter_mut().zip(other.counted) {
            *a += b;
        }
        self
    }
}

/// What the heavy step notes about the customer's rows as it runs: which rows are the
/// customer's valid rows and, of those, which are client errors (a key tells only a system
/// error from the rest).
pub(super) struct CustomerNotes {
    customer: NotedCustomer,
    own_rows: PositionBits,
    client_errors: PositionBits,
}

impl CustomerNotes {
    /// Notes for `rows` call rows.
    pub(super) fn new(customer: NotedCustomer, rows: u64) -> CustomerNotes {
        CustomerNotes {
            customer,
            own_rows: PositionBits::new(rows),
            client_errors: PositionBits::new(rows),
        }
    }

    pub(super) fn customer_id(&self) -> i64 {
        self.customer.customer_id
    }

    /// A valid row of the customer, as read.
    pub(super) fn own_row(&self, position: u32, status: u8) {
        self.own_rows.insert(position);
        if status == STATUS_CLIENT_ERROR {
            self.client_errors.insert(position);
        }
    }

    /// A call kept from copies that agree: the customer's when its row is.
    pub(super) fn kept_key(&self, kept: &mut KeptCalls, key: &CallKey) {
        if !self.own_rows.contains(key.position) {
            return;
        }
        let status = if key.is_system_error() {
            STATUS_SYSTEM_ERROR
        } else if self.client_errors.contains(key.position) {
            STATUS_CLIENT_ERROR
        } else {
            STATUS_SUCCESS
        };
        self.count_kept(kept, key.month(), key.ts, status);
    }

    /// The version the tie-break kept of a conflicting id, of `customer_id`.
    pub(super) fn kept_version(
        &self,
        kept: &mut KeptCalls,
        customer_id: i64,
        month: Option<u32>,
        ts: i64,
        status: u8,
    ) {
        if customer_id == self.customer.customer_id {
            self.count_kept(kept, month, ts, status);
        }
    }

    /// One kept call of the customer: counted in its service month, else on an uncovered date
    /// of the month or in another month.
    fn count_kept(&self, kept: &mut KeptCalls, month: Option<u32>, ts: i64, status: u8) {
        kept.unique += 1;
        if month.is_some() {
            kept.counted[usize::from(status)] += 1;
        } else if YearMonth::of(local_date(self.customer.tz, ts)) == self.customer.month {
            kept.uncovered_in_month += 1;
        } else {
            kept.other_months += 1;
        }
    }

    /// Everything noted, with the customer's quarantined rows and conflicts and the step's
    /// counted system errors of the customer.
    pub(super) fn customer_month(
        &self,
        mut quarantined: Vec<Entry>,
        mut conflicts: Vec<Entry>,
        kept: KeptCalls,
        mut system_errors: Vec<SystemError>,
    ) -> CustomerMonth {
        quarantined.sort();
        conflicts.sort();
        system_errors.sort_by(|a, b| (a.ts, &a.request_id).cmp(&(b.ts, &b.request_id)));
        let counted_by_status = (0..STATUS_COUNT)
            .map(|code| (status_name(code as u8), kept.counted[code]))
            .filter(|&(_, n)| n > 0)
            .collect();
        CustomerMonth {
            quarantined,
            valid_rows: self.own_rows.count(),
            conflicts,
            unique_calls: kept.unique,
            uncovered_in_month: kept.uncovered_in_month,
            other_months: kept.other_months,
            counted_by_status,
            system_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::calls::testing::key;
    use crate::time::{local_day_start, parse_date};

    const CUSTOMER: i64 = 7;

    fn notes(rows: u64) -> CustomerNotes {
        let customer = NotedCustomer {
            customer_id: CUSTOMER,
            month: "2026-01".parse().unwrap(),
            tz: "Asia/Shanghai".parse().unwrap(),
        };
        CustomerNotes::new(customer, rows)
    }

    /// A kept key at `position`: counted in month 0, or in no month at local `date`'s start.
    fn kept(position: u32, date: Option<&str>, system_error: bool) -> CallKey {
        let mut k = key([u64::from(position), 1], 9, position);
        if let Some(date) = date {
            k.ts = local_day_start("Asia/Shanghai".parse().unwrap(), parse_date(date).unwrap());
        }
        k.month_and_error = CallKey::pack(date.is_none().then_some(0), system_error);
        k
    }

    #[test]
    fn spec4_the_customers_kept_calls_are_counted_by_status_or_why_not() {
        let notes = notes(200);
        for (position, status) in [
            (0, STATUS_SUCCESS),
            (1, STATUS_CLIENT_ERROR),
            (2, STATUS_SYSTEM_ERROR),
            (3, STATUS_SUCCESS),
            (4, STATUS_SUCCESS),
            // Rows of two conflicting ids, whose kept versions are counted when resolved.
            (5, STATUS_SUCCESS),
            (6, STATUS_CLIENT_ERROR),
            (130, STATUS_CLIENT_ERROR), // a duplicate row: marked, never kept
        ] {
            notes.own_row(position, status);
        }
        let mut first = KeptCalls::default();
        notes.kept_key(&mut first, &kept(0, None, false));
        notes.kept_key(&mut first, &kept(1, None, false));
        notes.kept_key(&mut first, &kept(2, None, true));
        notes.kept_key(&mut first, &kept(99, None, false)); // another customer's row
        let mut second = KeptCalls::default();
        notes.kept_key(&mut second, &kept(3, Some("2026-01-31"), false));
        notes.kept_key(&mut second, &kept(4, Some("2026-02-01"), false));
        // A conflict's kept version, the customer's or another's.
        let ts = kept(0, Some("2026-01-01"), false).ts;
        notes.kept_version(&mut second, CUSTOMER, None, ts, STATUS_SUCCESS);
        notes.kept_version(&mut second, CUSTOMER, Some(0), ts, STATUS_CLIENT_ERROR);
        notes.kept_version(&mut second, 8, Some(0), ts, STATUS_SUCCESS);

        let month = notes.customer_month(Vec::new(), Vec::new(), first.merge(second), Vec::new());
        assert_eq!(month.valid_rows, 8);
        assert_eq!(month.unique_calls, 7);
        assert_eq!(month.duplicate_rows().unwrap(), 1);
        assert_eq!((month.uncovered_in_month, month.other_months), (2, 1));
        assert_eq!(
            month.counted_by_status,
            BTreeMap::from([("client_error", 2), ("success", 1), ("system_error", 1)])
        );
        assert_eq!(month.counted(), 4);
    }

    #[test]
    fn spec4_a_status_without_counted_calls_is_not_listed() {
        let notes = notes(1);
        notes.own_row(0, STATUS_SUCCESS);
        let mut calls = KeptCalls::default();
        notes.kept_key(&mut calls, &kept(0, None, false));
        let month = notes.customer_month(Vec::new(), Vec::new(), calls, Vec::new());
        assert_eq!(month.counted_by_status, BTreeMap::from([("success", 1)]));
    }

    #[test]
    fn a_position_of_no_row_is_not_the_customers() {
        let notes = notes(64);
        notes.own_row(63, STATUS_SUCCESS);
        assert!(notes.own_rows.contains(63));
        assert!(!notes.own_rows.contains(u32::MAX));
        assert!(!notes.own_rows.contains(64));
        assert_eq!(notes.own_rows.count(), 1);
    }
}
