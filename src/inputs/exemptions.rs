//! The exemption tables under `exemptions/` (SPEC §2, SLA 5): error codes, per-call
//! classifications, windows, and advance notices of high concurrency (5.7).
//!
//! Gives the rules that can exempt a system error. Windows that need advance notice but lack
//! it, and notices given too late, are quarantined and left out. A malformed row is fatal.

use std::collections::BTreeMap;
use std::path::Path;

use super::{parse_customer_id, read_optional};
use crate::error::InputError;
use crate::inputs::table::Records;
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

fn clause(records: &Records, record: &crate::inputs::table::Record) -> Result<Clause, InputError> {
    records
        .parse(record, "clause", |t| t.parse::<Clause>())
        .map_err(|e| e.hint("clauses are written `5.N`, as numbered in the SLA's section 5"))
}

fn optional_instant(
    records: &Records,
    record: &crate::inputs::table::Record,
    column: &str,
) -> Result<Option<i64>, InputError> {
    records
        .cell(record, column)
        .map(|text| {
            parse_instant(text).map_err(|p| InputError::new(records.location(record, column), p))
        })
        .transpose()
}

fn check_order(
    records: &Records,
    record: &crate::inputs::table::Record,
    start: i64,
    end: i64,
) -> Result<(), InputError> {
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
    pub fn load(
        data_dir: &Path,
        policy: &Policy,
        quarantine: &mut Quarantine,
    ) -> Result<ExemptionTables, InputError> {
        let dir = data_dir;
        let mut tables = ExemptionTables::default();

        let error_codes = read_optional(dir, "exemptions/error_codes", &["error_code", "clause"])?;
        for record in &error_codes.rows {
            let code = error_codes.required(record, "error_code")?.to_string();
            keep_smallest(&mut tables.error_codes, code, clause(&error_codes, record)?);
        }

        let calls = read_optional(dir, "exemptions/calls", &["request_id", "clause"])?;
        for record in &calls.rows {
            let request_id = calls.required(record, "request_id")?.to_string();
            keep_smallest(&mut tables.calls, request_id, clause(&calls, record)?);
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
        )?;
        for record in &windows.rows {
            let window_id = windows.required(record, "window_id")?.to_string();
            let clause = clause(&windows, record)?;
            let start = windows.parse(record, "start", parse_instant)?;
            let end = windows.parse(record, "end", parse_instant)?;
            check_order(&windows, record, start, end)?;
            let customer_id = windows
                .cell(record, "customer_id")
                .map(|t| {
                    parse_customer_id(t)
                        .map_err(|p| InputError::new(windows.location(record, "customer_id"), p))
                })
                .transpose()?;
            let announced_at = optional_instant(&windows, record, "announced_at")?;
            if policy.requires_notice(clause) && announced_at.is_none_or(|at| at >= start) {
                let when = announced_at.map_or("never announced".to_string(), |at| {
                    format!("announced {}", format_instant(at))
                });
                quarantine.add(
                    &windows.file,
                    Some(record.position),
                    Reason::UnannouncedWindow,
                    format!("window {window_id} (clause {clause}) starts {} but was {when}; it exempts nothing", format_instant(start)),
                );
                tables.unannounced_windows.push(Window {
                    window_id,
                    clause,
                    start,
                    end,
                    customer_id,
                });
                continue;
            }
            tables.windows.push(Window {
                window_id,
                clause,
                start,
                end,
                customer_id,
            });
        }

        let notices = read_optional(
            dir,
            "exemptions/notices",
            &["customer_id", "start", "end", "notified_at"],
        )?;
        for record in &notices.rows {
            let customer_id = notices.parse(record, "customer_id", parse_customer_id)?;
            let start = notices.parse(record, "start", parse_instant)?;
            let end = notices.parse(record, "end", parse_instant)?;
            check_order(&notices, record, start, end)?;
            let notified_at = optional_instant(&notices, record, "notified_at")?;
            if notified_at.is_none_or(|at| at >= start) {
                let when = notified_at.map_or("never".to_string(), format_instant);
                quarantine.add(
                    &notices.file,
                    Some(record.position),
                    Reason::LateNotice,
                    format!(
                        "customer {customer_id}: notice for {} notified {when}; it does not count",
                        format_instant(start)
                    ),
                );
                tables.late_notices.push(Notice {
                    customer_id,
                    start,
                    end,
                });
                continue;
            }
            tables.notices.push(Notice {
                customer_id,
                start,
                end,
            });
        }
        Ok(tables)
    }
}
