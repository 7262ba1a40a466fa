//! The exemption tables under `exemptions/` (SPEC §2, SLA 5): error codes, per-call
//! classifications, windows, and advance notices of high concurrency (5.7).
//!
//! Gives the rules that can exempt a system error. Windows that need advance notice but lack
//! it, and notices given too late, are quarantined and left out. A malformed row is fatal.

use std::collections::BTreeMap;

use super::{parse_customer_id, parse_identifier, read_optional};
use crate::error::InputError;
use crate::inputs::problems::Problems;
use crate::inputs::table::{Record, Records};
use crate::policy::{Clause, Policy};
use crate::quarantine::{Quarantine, Reason};
use crate::time::{format_instant, parse_instant};

/// A window of time in which system errors are exempt under `clause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub window_id: String,
    pub clause: Clause,
    /// `[start, end)` in UTC nanoseconds.
    pub start: i64,
    pub end: i64,
    /// `None`: every customer.
    pub customer_id: Option<i64>,
}

/// A counted advance notice of high concurrency: it suspends the burst rule (5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub customer_id: i64,
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ExemptionTables {
    /// error_code → smallest clause listed for it.
    pub error_codes: BTreeMap<String, Clause>,
    /// request_id → smallest clause listed for it.
    pub calls: BTreeMap<String, Clause>,
    /// Windows that exempt (notice rule already applied).
    pub windows: Vec<Window>,
    /// Notices that count (notified strictly before their start).
    pub notices: Vec<Notice>,
    /// Windows left out for lack of advance notice (quarantined as `unannounced_window`).
    pub unannounced_windows: Vec<Window>,
    /// Notices left out for being late (quarantined as `late_notice`).
    pub late_notices: Vec<Notice>,
}

fn keep_smallest(map: &mut BTreeMap<String, Clause>, key: String, clause: Clause) {
    map.entry(key)
        .and_modify(|c| *c = (*c).min(clause))
        .or_insert(clause);
}

fn clause(records: &Records, record: &Record) -> Result<Clause, InputError> {
    records
        .parse(record, "clause", |t| t.parse::<Clause>())
        .map_err(|e| e.hint("clauses are written `5.N`, as numbered in the SLA's section 5"))
}

fn optional_instant(
    records: &Records,
    record: &Record,
    column: &str,
) -> Result<Option<i64>, InputError> {
    records
        .cell(record, column)
        .map(|text| {
            parse_instant(text).map_err(|p| InputError::new(records.location(record, column), p))
        })
        .transpose()
}

fn check_order(records: &Records, record: &Record, start: i64, end: i64) -> Result<(), InputError> {
    if end <= start {
        return Err(InputError::new(
            records.location(record, "end"),
            format!(
                "`end` {} is not after `start` {}; expected start < end",
                format_instant(end),
                format_instant(start)
            ),
        ));
    }
    Ok(())
}

impl ExemptionTables {
    /// Loads the four exemption tables in turn. Long because it is those four reads, each
    /// with its own columns and checks, one after another.
    pub fn load(
        data_dir: &crate::inputs::source::DataSource,
        policy: &Policy,
        quarantine: &mut Quarantine,
        problems: &mut Problems,
    ) -> Result<ExemptionTables, InputError> {
        let dir = data_dir;
        let mut tables = ExemptionTables::default();

        let error_codes = read_optional(
            dir,
            "exemptions/error_codes",
            &["error_code", "clause"],
            problems,
        )?;
        for record in &error_codes.rows {
            let code = problems.check(error_codes.required(record, "error_code"))?;
            let clause = problems.check(clause(&error_codes, record))?;
            if let (Some(code), Some(clause)) = (code, clause) {
                keep_smallest(&mut tables.error_codes, code.to_string(), clause);
            }
        }

        let calls = read_optional(dir, "exemptions/calls", &["request_id", "clause"], problems)?;
        for record in &calls.rows {
            let request_id = problems.check(calls.required(record, "request_id"))?;
            let clause = problems.check(clause(&calls, record))?;
            if let (Some(request_id), Some(clause)) = (request_id, clause) {
                keep_smallest(&mut tables.calls, request_id.to_string(), clause);
            }
        }

        let windows = read_optional(
            dir,
            "exemptions/windows",
            &[
                "window_id",
                "clause",
                "start",
                "end",
                "customer_id",
                "announced_at",
            ],
            problems,
        )?;
        for record in &windows.rows {
            if let Some(window) = read_window(&windows, record, problems)? {
                let (window, announced_at) = window;
                if policy.requires_notice(window.clause)
                    && announced_at.is_none_or(|at| at >= window.start)
                {
                    let when = announced_at.map_or("never announced".to_string(), |at| {
                        format!("announced {}", format_instant(at))
                    });
                    quarantine.add(
                        &windows.file,
                        Some(record.position),
                        Reason::UnannouncedWindow,
                        format!(
                            "window {} (clause {}) starts {} but was {when}; it exempts nothing",
                            window.window_id,
                            window.clause,
                            format_instant(window.start)
                        ),
                    );
                    tables.unannounced_windows.push(window);
                    continue;
                }
                tables.windows.push(window);
            }
        }

        let notices = read_optional(
            dir,
            "exemptions/notices",
            &["customer_id", "start", "end", "notified_at"],
            problems,
        )?;
        for record in &notices.rows {
            let Some((notice, notified_at)) = read_notice(&notices, record, problems)? else {
                continue;
            };
            if notified_at.is_none_or(|at| at >= notice.start) {
                let when = notified_at.map_or("never".to_string(), format_instant);
                quarantine.add(
                    &notices.file,
                    Some(record.position),
                    Reason::LateNotice,
                    format!(
                        "customer {}: notice for {} notified {when}; it does not count",
                        notice.customer_id,
                        format_instant(notice.start)
                    ),
                );
                tables.late_notices.push(notice);
                continue;
            }
            tables.notices.push(notice);
        }
        Ok(tables)
    }
}

/// One row of `windows.csv` and its `announced_at`; `None` when a problem was kept.
fn read_window(
    windows: &Records,
    record: &Record,
    problems: &mut Problems,
) -> Result<Option<(Window, Option<i64>)>, InputError> {
    let window_id = problems.check(windows.parse(record, "window_id", parse_identifier))?;
    let clause = problems.check(clause(windows, record))?;
    let start = problems.check(windows.parse(record, "start", parse_instant))?;
    let end = problems.check(windows.parse(record, "end", parse_instant))?;
    let ordered = match (start, end) {
        (Some(start), Some(end)) => problems
            .check(check_order(windows, record, start, end))?
            .is_some(),
        _ => false,
    };
    let customer_id = windows
        .cell(record, "customer_id")
        .map(|t| {
            parse_customer_id(t)
                .map_err(|p| InputError::new(windows.location(record, "customer_id"), p))
        })
        .transpose();
    let customer_id = problems.check(customer_id)?;
    let announced_at = problems.check(optional_instant(windows, record, "announced_at"))?;
    let (
        Some(window_id),
        Some(clause),
        Some(start),
        Some(end),
        true,
        Some(customer_id),
        Some(announced_at),
    ) = (
        window_id,
        clause,
        start,
        end,
        ordered,
        customer_id,
        announced_at,
    )
    else {
        return Ok(None);
    };
    let window = Window {
        window_id: window_id.to_string(),
        clause,
        start,
        end,
        customer_id,
    };
    Ok(Some((window, announced_at)))
}

/// One row of `notices.csv` and its `notified_at`; `None` when a problem was kept.
fn read_notice(
    notices: &Records,
    record: &Record,
    problems: &mut Problems,
) -> Result<Option<(Notice, Option<i64>)>, InputError> {
    let customer_id = problems.check(notices.parse(record, "customer_id", parse_customer_id))?;
    let start = problems.check(notices.parse(record, "start", parse_instant))?;
    let end = problems.check(notices.parse(record, "end", parse_instant))?;
    let ordered = match (start, end) {
        (Some(start), Some(end)) => problems
            .check(check_order(notices, record, start, end))?
            .is_some(),
        _ => false,
    };
    let notified_at = problems.check(optional_instant(notices, record, "notified_at"))?;
    let (Some(customer_id), Some(start), Some(end), true, Some(notified_at)) =
        (customer_id, start, end, ordered, notified_at)
    else {
        return Ok(None);
    };
    Ok(Some((
        Notice {
            customer_id,
            start,
            end,
        },
        notified_at,
    )))
}
