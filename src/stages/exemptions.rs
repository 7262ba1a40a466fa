//! Exemption attribution for one counted system error (SPEC §4, SLA 5).
//!
//! Takes a system error (its id, customer, instant, error code and how many counted calls its
//! customer made in that UTC second) and the exemption tables; gives the smallest clause that
//! exempts it, or `None` when it counts against availability.

use std::collections::BTreeMap;

use crate::inputs::exemptions::{ExemptionTables, Notice, Window};
use crate::policy::{Clause, Policy};

/// A counted call with `status = system_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemError {
    pub request_id: String,
    pub customer_id: i64,
    /// UTC nanoseconds.
    pub ts: i64,
    pub error_code: Option<String>,
    /// Counted calls of this customer in the same UTC epoch second, this one included.
    pub calls_in_second: u32,
}

/// The exemption tables arranged for lookups by customer.
pub struct ExemptionRules<'a> {
    tables: &'a ExemptionTables,
    windows_for_everyone: Vec<&'a Window>,
    windows_by_customer: BTreeMap<i64, Vec<&'a Window>>,
    notices_by_customer: BTreeMap<i64, Vec<&'a Notice>>,
    burst_min_calls: u32,
    burst_clause: Clause,
}

impl<'a> ExemptionRules<'a> {
    pub fn new(tables: &'a ExemptionTables, policy: &Policy) -> Self {
        let mut windows_for_everyone = Vec::new();
        let mut windows_by_customer: BTreeMap<i64, Vec<&Window>> = BTreeMap::new();
        for window in &tables.windows {
            match window.customer_id {
                None => windows_for_everyone.push(window),
                Some(id) => windows_by_customer.entry(id).or_default().push(window),
            }
        }
        let mut notices_by_customer: BTreeMap<i64, Vec<&Notice>> = BTreeMap::new();
        for notice in &tables.notices {
            notices_by_customer
                .entry(notice.customer_id)
                .or_default()
                .push(notice);
        }
        ExemptionRules {
            tables,
            windows_for_everyone,
            windows_by_customer,
            notices_by_customer,
            burst_min_calls: policy.burst_min_calls(),
            burst_clause: policy.burst_clause,
        }
    }

    /// The smallest clause exempting `error`, if any (SPEC §4 items 1–4).
    pub fn attribute(&self, error: &SystemError) -> Option<Clause> {
        self.matches(error).into_iter().map(|m| m.clause).min()
    }

    /// Every rule that exempts `error`, in SPEC §4 order (code, reviewed call, windows, burst).
    pub fn matches(&self, error: &SystemError) -> Vec<ExemptionMatch> {
        let mut found = Vec::new();
        if let Some(code) = &error.error_code {
            if let Some(&clause) = self.tables.error_codes.get(code) {
                found.push(ExemptionMatch {
                    clause,
                    source: MatchSource::ErrorCode(code.clone()),
                });
            }
        }
        if let Some(&clause) = self.tables.calls.get(&error.request_id) {
            found.push(ExemptionMatch {
                clause,
                source: MatchSource::ReviewedCall,
            });
        }
        for window in self.windows_covering(error) {
            found.push(ExemptionMatch {
                clause: window.clause,
                source: MatchSource::Window(window.window_id.clone()),
            });
        }
        if error.calls_in_second >= self.burst_min_calls && self.notice_covering(error).is_none() {
            found.push(ExemptionMatch {
                clause: self.burst_clause,
                source: MatchSource::Burst {
                    calls_in_second: error.calls_in_second,
                },
            });
        }
        found
    }

    fn windows_covering<'e>(
        &'e self,
        error: &'e SystemError,
    ) -> impl Iterator<Item = &'a Window> + 'e {
        let own = self
            .windows_by_customer
            .get(&error.customer_id)
            .into_iter()
            .flatten();
        self.windows_for_everyone
            .iter()
            .chain(own)
            .copied()
            .filter(|w| w.start <= error.ts && error.ts < w.end)
    }

    /// SLA 5.7: the counted notice of the customer covering `error`, which suspends the burst
    /// rule for it.
    pub fn notice_covering(&self, error: &SystemError) -> Option<&'a Notice> {
        self.notices_by_customer
            .get(&error.customer_id)
            .into_iter()
            .flatten()
            .copied()
            .find(|n| n.start <= error.ts && error.ts < n.end)
    }

    /// Whether `error` is in a burst second (SLA 5.7), notice or not.
    pub fn in_burst_second(&self, error: &SystemError) -> bool {
        error.calls_in_second >= self.burst_min_calls
    }

    /// Windows that would cover `error` but exempt nothing for lack of advance notice.
    pub fn unannounced_windows_covering(&self, error: &SystemError) -> Vec<&'a Window> {
        self.tables
            .unannounced_windows
            .iter()
            .filter(|w| w.customer_id.is_none_or(|id| id == error.customer_id))
            .filter(|w| w.start <= error.ts && error.ts < w.end)
            .collect()
    }

    /// Notices of the customer that would cover `error` but were given too late to count.
    pub fn late_notices_covering(&self, error: &SystemError) -> Vec<&'a Notice> {
        self.tables
            .late_notices
            .iter()
            .filter(|n| n.customer_id == error.customer_id)
            .filter(|n| n.start <= error.ts && error.ts < n.end)
            .collect()
    }
}

/// One rule that exempts a system error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExemptionMatch {
    pub clause: Clause,
    pub source: MatchSource,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchSource {
    /// `exemptions/error_codes.csv` lists the error code.
    ErrorCode(String),
    /// `exemptions/calls.csv` lists the request id.
    ReviewedCall,
    /// A window (by `window_id`) covers the call.
    Window(String),
    /// The customer made this many counted calls in the call's UTC second, with no notice.
    Burst { calls_in_second: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_instant;

    fn clause(text: &str) -> Clause {
        text.parse().unwrap()
    }

    fn at(text: &str) -> i64 {
        parse_instant(text).unwrap()
    }

    fn error(customer_id: i64, ts: &str, code: Option<&str>, calls_in_second: u32) -> SystemError {
        SystemError {
            request_id: "r-1".into(),
            customer_id,
            ts: at(ts),
            error_code: code.map(str::to_string),
            calls_in_second,
        }
    }

    fn tables() -> ExemptionTables {
        let mut tables = ExemptionTables::default();
        tables
            .error_codes
            .insert("FailedOperation.CalleeIsLimited".into(), clause("5.9"));
        tables.windows.push(Window {
            window_id: "fm".into(),
            clause: clause("5.14"),
            start: at("2026-01-14T02:00:00+08:00"),
            end: at("2026-01-14T02:30:00+08:00"),
            customer_id: None,
        });
        tables.windows.push(Window {
            window_id: "net".into(),
            clause: clause("5.13"),
            start: at("2026-01-12T02:00:00+08:00"),
            end: at("2026-01-12T03:30:00+08:00"),
            customer_id: Some(7),
        });
        tables.notices.push(Notice {
            customer_id: 8,
            start: at("2026-01-19T00:00:00+08:00"),
            end: at("2026-02-02T00:00:00+08:00"),
        });
        tables
    }

    #[test]
    fn sla_5_error_codes_exempt_their_clause() {
        let tables = tables();
        let rules = ExemptionRules::new(&tables, &Policy::ccc());
        let e = error(
            1,
            "2026-01-05T10:00:00+08:00",
            Some("FailedOperation.CalleeIsLimited"),
            1,
        );
        assert_eq!(rules.attribute(&e), Some(clause("5.9")));
        let e = error(1, "2026-01-05T10:00:00+08:00", Some("InternalError"), 1);
        assert_eq!(rules.attribute(&e), None);
    }

    #[test]
    fn sla_5_windows_are_half_open_and_per_customer() {
        let tables = tables();
        let rules = ExemptionRules::new(&tables, &Policy::ccc());
        assert_eq!(
            rules.attribute(&error(1, "2026-01-14T02:00:00+08:00", None, 1)),
            Some(clause("5.14"))
        );
        assert_eq!(
            rules.attribute(&error(1, "2026-01-14T02:30:00+08:00", None, 1)),
            None
        );
        assert_eq!(
            rules.attribute(&error(7, "2026-01-12T02:10:00+08:00", None, 1)),
            Some(clause("5.13"))
        );
        assert_eq!(
            rules.attribute(&error(6, "2026-01-12T02:10:00+08:00", None, 1)),
            None
        );
    }

    #[test]
    fn sla_5_7_bursts_of_five_exempt_unless_notified() {
        let tables = tables();
        let rules = ExemptionRules::new(&tables, &Policy::ccc());
        assert_eq!(
            rules.attribute(&error(1, "2026-01-20T10:00:00+08:00", None, 5)),
            Some(clause("5.7"))
        );
        assert_eq!(
            rules.attribute(&error(1, "2026-01-20T10:00:00+08:00", None, 4)),
            None
        );
        // Customer 8 notified the concurrency in advance: the platform owes the capacity.
        assert_eq!(
            rules.attribute(&error(8, "2026-01-20T10:00:00+08:00", None, 9)),
            None
        );
        assert_eq!(
            rules.attribute(&error(8, "2026-02-02T00:00:00+08:00", None, 9)),
            Some(clause("5.7"))
        );
    }

    #[test]
    fn sla_5_an_error_is_attributed_to_the_smallest_clause() {
        let mut tables = tables();
        tables.calls.insert("r-1".into(), clause("5.10"));
        tables.error_codes.insert("Code".into(), clause("5.2"));
        let rules = ExemptionRules::new(&tables, &Policy::ccc());
        let e = error(1, "2026-01-14T02:10:00+08:00", Some("Code"), 6);
        assert_eq!(rules.attribute(&e), Some(clause("5.2")));
        let e = error(1, "2026-01-14T02:10:00+08:00", None, 6);
        assert_eq!(rules.attribute(&e), Some(clause("5.7")));
    }
}
