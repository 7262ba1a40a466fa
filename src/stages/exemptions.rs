//! Exemption attribution for one counted system error (SPEC §4, SLA 5); over half its length
//! is the unit tests, one per clause and notice rule.
//!
//! Takes a system error (its id, customer, instant, error code and how many counted calls its
//! customer made in that UTC second) and the exemption tables; gives the smallest clause that
//! exempts it, or `None` when it counts against availability. Windows and notices are looked
//! up through interval indexes (`intervals.rs`), so attributing E errors against W windows
//! costs O((E + W) log W), not E × W (SPEC §8).

use std::collections::BTreeMap;

use crate::inputs::exemptions::{ExemptionTables, Notice, Window};
use crate::policy::{Clause, Policy};
use crate::stages::intervals::IntervalIndex;

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

/// The exemption tables arranged for lookups by customer and instant: each lookup costs
/// O(log W), never a scan of the windows or notices (SPEC §8).
pub struct ExemptionRules<'a> {
    tables: &'a ExemptionTables,
    windows: WindowTable<'a>,
    notices_by_customer: BTreeMap<i64, NoticeGroup<'a>>,
    unannounced_windows: WindowTable<'a>,
    late_notices_by_customer: BTreeMap<i64, NoticeGroup<'a>>,
    burst_min_calls: u32,
    burst_clause: Clause,
}

impl<'a> ExemptionRules<'a> {
    pub fn new(tables: &'a ExemptionTables, policy: &Policy) -> Self {
        ExemptionRules {
            tables,
            windows: WindowTable::new(&tables.windows),
            notices_by_customer: NoticeGroup::by_customer(&tables.notices),
            unannounced_windows: WindowTable::new(&tables.unannounced_windows),
            late_notices_by_customer: NoticeGroup::by_customer(&tables.late_notices),
            burst_min_calls: policy.burst_min_calls(),
            burst_clause: policy.burst_clause,
        }
    }

    /// The smallest clause exempting `error`, if any (SPEC §4 items 1–4).
    pub fn attribute(&self, error: &SystemError) -> Option<Clause> {
        self.attribute_examining(error, &mut 0)
    }

    /// As `attribute`, adding to `examined` the index entries the lookups looked at: the
    /// measure tests use to show a lookup does not grow with the windows.
    fn attribute_examining(&self, error: &SystemError, examined: &mut usize) -> Option<Clause> {
        let code = error
            .error_code
            .as_ref()
            .and_then(|code| self.tables.error_codes.get(code))
            .copied();
        let reviewed = self.tables.calls.get(&error.request_id).copied();
        let window = self
            .windows
            .smallest_clause(error.customer_id, error.ts, examined);
        let burst = (self.in_burst_second(error)
            && self.notice_covering_examining(error, examined).is_none())
        .then_some(self.burst_clause);
        [code, reviewed, window, burst].into_iter().flatten().min()
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
        let (everyone, own) = self.windows.covering(error.customer_id, error.ts);
        for (_, window) in everyone.into_iter().chain(own) {
            found.push(ExemptionMatch {
                clause: window.clause,
                source: MatchSource::Window(window.window_id.clone()),
            });
        }
        if self.in_burst_second(error) && self.notice_covering(error).is_none() {
            found.push(ExemptionMatch {
                clause: self.burst_clause,
                source: MatchSource::Burst {
                    calls_in_second: error.calls_in_second,
                },
            });
        }
        found
    }

    /// SLA 5.7: the counted notice of the customer covering `error` (the first in table
    /// order), which suspends the burst rule for it.
    pub fn notice_covering(&self, error: &SystemError) -> Option<&'a Notice> {
        self.notice_covering_examining(error, &mut 0)
    }

    fn notice_covering_examining(
        &self,
        error: &SystemError,
        examined: &mut usize,
    ) -> Option<&'a Notice> {
        self.notices_by_customer
            .get(&error.customer_id)?
            .first_covering(error.ts, examined)
    }

    /// Whether `error` is in a burst second (SLA 5.7), notice or not.
    pub fn in_burst_second(&self, error: &SystemError) -> bool {
        error.calls_in_second >= self.burst_min_calls
    }

    /// Windows that would cover `error` but exempt nothing for lack of advance notice, in
    /// table order.
    pub fn unannounced_windows_covering(&self, error: &SystemError) -> Vec<&'a Window> {
        let (everyone, own) = self
            .unannounced_windows
            .covering(error.customer_id, error.ts);
        let mut found: Placed = everyone.into_iter().chain(own).collect();
        found.sort_unstable_by_key(|&(position, _)| position);
        found.into_iter().map(|(_, window)| window).collect()
    }

    /// Notices of the customer that would cover `error` but were given too late to count, in
    /// table order.
    pub fn late_notices_covering(&self, error: &SystemError) -> Vec<&'a Notice> {
        self.late_notices_by_customer
            .get(&error.customer_id)
            .map(|group| group.covering(error.ts))
            .unwrap_or_default()
    }
}

/// Windows with their positions in their table, ascending.
type Placed<'a> = Vec<(usize, &'a Window)>;

/// One table of windows, split into those for everyone and those of each customer.
struct WindowTable<'a> {
    everyone: WindowGroup<'a>,
    by_customer: BTreeMap<i64, WindowGroup<'a>>,
}

/// Windows of one audience, in table order, with their index keyed by clause.
struct WindowGroup<'a> {
    windows: Placed<'a>,
    index: IntervalIndex<Clause>,
}

impl<'a> WindowTable<'a> {
    fn new(windows: &'a [Window]) -> Self {
        let mut everyone = Vec::new();
        let mut by_customer: BTreeMap<i64, Vec<(usize, &Window)>> = BTreeMap::new();
        for (position, window) in windows.iter().enumerate() {
            match window.customer_id {
                None => everyone.push((position, window)),
                Some(id) => by_customer.entry(id).or_default().push((position, window)),
            }
        }
        WindowTable {
            everyone: WindowGroup::new(everyone),
            by_customer: by_customer
                .into_iter()
                .map(|(id, windows)| (id, WindowGroup::new(windows)))
                .collect(),
        }
    }

    /// The smallest clause of the windows covering `ts` for `customer_id`.
    fn smallest_clause(&self, customer_id: i64, ts: i64, examined: &mut usize) -> Option<Clause> {
        let everyone = self.everyone.index.smallest_covering_counted(ts, examined);
        let own = self
            .by_customer
            .get(&customer_id)
            .and_then(|group| group.index.smallest_covering_counted(ts, examined));
        everyone.into_iter().chain(own).min()
    }

    /// The windows covering `ts`: everyone's, then the customer's, each in table order.
    fn covering(&self, customer_id: i64, ts: i64) -> (Placed<'a>, Placed<'a>) {
        let own = self
            .by_customer
            .get(&customer_id)
            .map(|group| group.covering(ts))
            .unwrap_or_default();
        (self.everyone.covering(ts), own)
    }
}

impl<'a> WindowGroup<'a> {
    fn new(windows: Placed<'a>) -> Self {
        let index = IntervalIndex::new(windows.iter().map(|(_, w)| (w.start, w.end, w.clause)));
        WindowGroup { windows, index }
    }

    fn covering(&self, ts: i64) -> Placed<'a> {
        // The index was built from `windows`, so every position it gives is in range.
        self.index
            .covering(ts)
            .into_iter()
            .filter_map(|i| self.windows.get(i).copied())
            .collect()
    }
}

/// The notices of one customer, in table order, indexed by their rank in it so that the
/// smallest key covering an instant is the first notice covering it.
struct NoticeGroup<'a> {
    notices: Vec<&'a Notice>,
    index: IntervalIndex<usize>,
}

impl<'a> NoticeGroup<'a> {
    fn by_customer(notices: &'a [Notice]) -> BTreeMap<i64, NoticeGroup<'a>> {
        let mut grouped: BTreeMap<i64, Vec<&Notice>> = BTreeMap::new();
        for notice in notices {
            grouped.entry(notice.customer_id).or_default().push(notice);
        }
        grouped
            .into_iter()
            .map(|(id, notices)| {
                let index = IntervalIndex::new(
                    notices.iter().enumerate().map(|(i, n)| (n.start, n.end, i)),
                );
                (id, NoticeGroup { notices, index })
            })
            .collect()
    }

    fn first_covering(&self, ts: i64, examined: &mut usize) -> Option<&'a Notice> {
        let rank = self.index.smallest_covering_counted(ts, examined)?;
        self.notices.get(rank).copied()
    }

    fn covering(&self, ts: i64) -> Vec<&'a Notice> {
        self.index
            .covering(ts)
            .into_iter()
            .filter_map(|i| self.notices.get(i).copied())
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
    use proptest::prelude::*;

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

    /// The rules as a linear scan, as they were before the index: the reference model the
    /// indexed rules must equal on every input.
    struct Linear<'a> {
        tables: &'a ExemptionTables,
        burst_min_calls: u32,
        burst_clause: Clause,
    }

    impl<'a> Linear<'a> {
        fn new(tables: &'a ExemptionTables, policy: &Policy) -> Self {
            Linear {
                tables,
                burst_min_calls: policy.burst_min_calls(),
                burst_clause: policy.burst_clause,
            }
        }

        fn attribute(&self, error: &SystemError) -> Option<Clause> {
            self.matches(error).into_iter().map(|m| m.clause).min()
        }

        fn matches(&self, error: &SystemError) -> Vec<ExemptionMatch> {
            let mut found = Vec::new();
            if let Some(clause) = error
                .error_code
                .as_ref()
                .and_then(|c| self.tables.error_codes.get(c))
            {
                found.push(ExemptionMatch {
                    clause: *clause,
                    source: MatchSource::ErrorCode(error.error_code.clone().unwrap_or_default()),
                });
            }
            if let Some(&clause) = self.tables.calls.get(&error.request_id) {
                found.push(ExemptionMatch {
                    clause,
                    source: MatchSource::ReviewedCall,
                });
            }
            let everyone = self
                .tables
                .windows
                .iter()
                .filter(|w| w.customer_id.is_none());
            let own = self
                .tables
                .windows
                .iter()
                .filter(|w| w.customer_id == Some(error.customer_id));
            for window in everyone
                .chain(own)
                .filter(|w| w.start <= error.ts && error.ts < w.end)
            {
                found.push(ExemptionMatch {
                    clause: window.clause,
                    source: MatchSource::Window(window.window_id.clone()),
                });
            }
            if error.calls_in_second >= self.burst_min_calls
                && self.notice_covering(error).is_none()
            {
                found.push(ExemptionMatch {
                    clause: self.burst_clause,
                    source: MatchSource::Burst {
                        calls_in_second: error.calls_in_second,
                    },
                });
            }
            found
        }

        fn notice_covering(&self, error: &SystemError) -> Option<&'a Notice> {
            self.tables.notices.iter().find(|n| {
                n.customer_id == error.customer_id && n.start <= error.ts && error.ts < n.end
            })
        }

        fn unannounced_windows_covering(&self, error: &SystemError) -> Vec<&'a Window> {
            self.tables
                .unannounced_windows
                .iter()
                .filter(|w| w.customer_id.is_none_or(|id| id == error.customer_id))
                .filter(|w| w.start <= error.ts && error.ts < w.end)
                .collect()
        }

        fn late_notices_covering(&self, error: &SystemError) -> Vec<&'a Notice> {
            self.tables
                .late_notices
                .iter()
                .filter(|n| n.customer_id == error.customer_id)
                .filter(|n| n.start <= error.ts && error.ts < n.end)
                .collect()
        }
    }

    /// A window over a few instants, so windows overlap, nest, share boundaries and are
    /// sometimes empty (`start >= end`); for everyone or one of three customers.
    fn random_window() -> impl Strategy<Value = Window> {
        (
            0i64..30,
            0i64..30,
            1u8..=18,
            proptest::option::of(1i64..4),
            0u8..4,
        )
            .prop_map(|(start, end, number, customer_id, id)| Window {
                window_id: format!("w{id}"),
                clause: Clause::new(number).unwrap_or(Clause::new(1).unwrap()),
                start,
                end,
                customer_id,
            })
    }

    fn random_notice() -> impl Strategy<Value = Notice> {
        (1i64..4, 0i64..30, 0i64..30).prop_map(|(customer_id, start, end)| Notice {
            customer_id,
            start,
            end,
        })
    }

    fn random_tables() -> impl Strategy<Value = ExemptionTables> {
        (
            proptest::collection::vec(random_window(), 0..24),
            proptest::collection::vec(random_notice(), 0..8),
            proptest::collection::vec(random_window(), 0..6),
            proptest::collection::vec(random_notice(), 0..6),
            0u8..=18,
        )
            .prop_map(
                |(windows, notices, unannounced_windows, late_notices, code)| {
                    let mut tables = ExemptionTables {
                        windows,
                        notices,
                        unannounced_windows,
                        late_notices,
                        ..ExemptionTables::default()
                    };
                    if let Some(clause) = Clause::new(code) {
                        tables.error_codes.insert("Listed".into(), clause);
                        tables.calls.insert("r-reviewed".into(), clause);
                    }
                    tables
                },
            )
    }

    fn random_error() -> impl Strategy<Value = SystemError> {
        (1i64..5, -1i64..32, 0u8..3, 1u32..8).prop_map(
            |(customer_id, ts, kind, calls_in_second)| SystemError {
                request_id: if kind == 1 { "r-reviewed" } else { "r-1" }.into(),
                customer_id,
                ts,
                error_code: (kind == 2).then(|| "Listed".to_string()),
                calls_in_second,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn spec_4_sla_5_indexed_rules_equal_the_linear_scan(
            tables in random_tables(),
            errors in proptest::collection::vec(random_error(), 1..40),
        ) {
            let policy = Policy::ccc();
            let (rules, linear) = (ExemptionRules::new(&tables, &policy), Linear::new(&tables, &policy));
            // Every boundary, and either side of it, besides the random instants.
            let boundaries = tables.windows.iter().chain(&tables.unannounced_windows)
                .flat_map(|w| [w.start, w.end])
                .chain(tables.notices.iter().chain(&tables.late_notices).flat_map(|n| [n.start, n.end]))
                .flat_map(|t| [t - 1, t, t + 1]);
            let at_boundaries: Vec<SystemError> = errors
                .iter()
                .zip(boundaries)
                .map(|(e, ts)| SystemError { ts, ..e.clone() })
                .collect();
            for error in errors.iter().chain(&at_boundaries) {
                prop_assert_eq!(rules.attribute(error), linear.attribute(error));
                prop_assert_eq!(rules.matches(error), linear.matches(error));
                prop_assert_eq!(rules.notice_covering(error), linear.notice_covering(error));
                prop_assert_eq!(
                    rules.unannounced_windows_covering(error),
                    linear.unannounced_windows_covering(error)
                );
                prop_assert_eq!(rules.late_notices_covering(error), linear.late_notices_covering(error));
            }
        }
    }

    #[test]
    fn spec_8_sla_5_attribution_among_3000_windows_examines_log_w_entries() {
        // 3,000 overlapping windows for everyone (an hour each, one every 10 minutes, all
        // clauses), 300 of customer 7, and 300 notices of customer 7.
        let minute = 60_000_000_000i64;
        let mut tables = ExemptionTables::default();
        for i in 0..3000i64 {
            tables.windows.push(Window {
                window_id: format!("w{i}"),
                clause: Clause::new(1 + (i % 18) as u8).unwrap(),
                start: i * 10 * minute,
                end: i * 10 * minute + 60 * minute,
                customer_id: (i % 10 == 0).then_some(7),
            });
        }
        for i in 0..300i64 {
            tables.notices.push(Notice {
                customer_id: 7,
                start: i * 100 * minute,
                end: i * 100 * minute + 30 * minute,
            });
        }
        let rules = ExemptionRules::new(&tables, &Policy::ccc());
        let linear = Linear::new(&tables, &Policy::ccc());
        let mut worst = 0;
        for ts in (-minute..3001 * 10 * minute).step_by((7 * minute + 1) as usize) {
            let error = SystemError {
                request_id: "r-1".into(),
                customer_id: 7,
                ts,
                error_code: None,
                calls_in_second: 9,
            };
            let mut examined = 0;
            let clause = rules.attribute_examining(&error, &mut examined);
            assert_eq!(clause, linear.attribute(&error));
            worst = worst.max(examined);
        }
        // Three binary searches (everyone's ~2,700 windows, the customer's 300, its 300
        // notices): 12 + 10 + 10 boundaries at most. A scan would examine 3,300 windows.
        assert!(
            worst <= 12 + 10 + 10,
            "one attribution examined {worst} entries"
        );
    }
}
