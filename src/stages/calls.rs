//! The heavy step (SPEC §2 quarantine and duplicates, §4 counted calls and exemptions).
//!
//! Takes the call files, the covered instant ranges of every service month, the exemption
//! tables and the policy; gives, per service month, counted calls, system errors and exempt
//! errors per clause, plus row accounting and the call rows it quarantined.
//!
//! This is the one seam between the columnar world and typed Rust: [`count_calls`] is the
//! only function that touches the call logs, and [`CallCounts`] is all it returns. Another
//! engine can replace it without the rest of the pipeline noticing.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::inputs::calls::{columns::*, CallFiles, STATUSES, SYSTEM_ERROR};
use crate::inputs::exemptions::ExemptionTables;
use crate::policy::{Clause, Policy};
use crate::quarantine::{Entry, Reason};
use crate::stages::exemptions::{ExemptionRules, SystemError};
use crate::time::{format_instant, NANOS_PER_SECOND};

const MONTH_INDEX: &str = "month_index";
const COVER_START: &str = "cover_start";
const COVER_END: &str = "cover_end";
const SECOND: &str = "second";
const CALLS_IN_SECOND: &str = "calls_in_second";
const VARIANTS: &str = "variants";

/// A run of covered local dates of one service month, as UTC instants `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverageInterval {
    /// Index of the service month this range belongs to.
    pub month_index: u32,
    pub customer_id: i64,
    pub start: i64,
    pub end: i64,
}

/// What the heavy step needs.
pub struct HeavyStepInput<'a> {
    pub files: &'a CallFiles,
    /// Number of service months; `month_index` values are below it.
    pub month_count: usize,
    pub coverage: &'a [CoverageInterval],
    pub exemptions: &'a ExemptionTables,
    pub policy: &'a Policy,
}

/// Per service month call counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthCallCounts {
    pub total_calls: u64,
    pub system_errors: u64,
    pub exempt_by_clause: BTreeMap<Clause, u64>,
}

impl MonthCallCounts {
    pub fn exempt_errors(&self) -> u64 {
        self.exempt_by_clause.values().sum()
    }
}

/// Where every call row went: `read = quarantined + duplicates + counted + not_counted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub read: u64,
    pub quarantined: u64,
    /// Rows dropped as repeats of a request id already kept.
    pub duplicates: u64,
    pub counted: u64,
    /// Unique valid calls outside every selected service month (other months, customers,
    /// or dates the customer was not subscribed).
    pub not_counted: u64,
}

impl RowCounts {
    pub fn balances(&self) -> bool {
        self.read == self.quarantined + self.duplicates + self.counted + self.not_counted
    }
}

/// What the heavy step gives back.
#[derive(Debug, Clone, Default)]
pub struct CallCounts {
    /// Indexed by `month_index`.
    pub months: Vec<MonthCallCounts>,
    pub rows: RowCounts,
    pub quarantine: Vec<Entry>,
}

fn step_error(error: PolarsError, what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {error}")
}

/// Runs the heavy step with the embedded polars engine.
pub fn count_calls(input: &HeavyStepInput) -> anyhow::Result<CallCounts> {
    let Screened {
        mut quarantine,
        quarantined,
        deduplicated,
        conflicts,
    } = screen_rows(input.files)?;
    quarantine.extend(conflicts);

    let read = input.files.rows();
    let unique_calls = deduplicated.height() as u64;

    let counted = deduplicated
        .lazy()
        .join(
            coverage_frame(input.coverage)?.lazy(),
            [col(CUSTOMER_ID)],
            [col(CUSTOMER_ID)],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col(TS)
                .gt_eq(col(COVER_START))
                .and(col(TS).lt(col(COVER_END))),
        )
        .select([
            col(REQUEST_ID),
            col(CUSTOMER_ID),
            col(MONTH_INDEX),
            col(TS),
            col(STATUS),
            col(ERROR_CODE),
            col(TS).floor_div(lit(NANOS_PER_SECOND)).alias(SECOND),
        ])
        .collect()
        .map_err(|e| step_error(e, "cannot match calls to service months"))?;

    let mut months = vec![MonthCallCounts::default(); input.month_count];
    add_totals(&counted, &mut months)?;
    add_system_errors(&counted, input, &mut months)?;

    let rows = RowCounts {
        read,
        quarantined,
        duplicates: read - quarantined - unique_calls,
        counted: counted.height() as u64,
        not_counted: unique_calls - counted.height() as u64,
    };
    assert!(rows.balances(), "call rows do not balance: {rows:?}");
    Ok(CallCounts {
        months,
        rows,
        quarantine,
    })
}

/// The call rows after quarantine and de-duplication (SPEC §2), before any service month.
struct Screened {
    /// Row defects, one entry per quarantined row.
    quarantine: Vec<Entry>,
    quarantined: u64,
    /// One row per request id.
    deduplicated: DataFrame,
    /// `conflicting_duplicate` entries, one per request id.
    conflicts: Vec<Entry>,
}

/// Quarantine, then de-duplication: the part of the heavy step `validate` also runs.
fn screen_rows(files: &CallFiles) -> anyhow::Result<Screened> {
    let all = files
        .scan()
        .map_err(|e| step_error(e, "cannot plan the scan of `calls/`"))?;
    let valid = valid_row();

    let invalid = all
        .clone()
        .filter(valid.clone().not())
        .select([
            col(FILE),
            col(ROW),
            col(REQUEST_ID),
            col(CUSTOMER_ID),
            col(TS),
            col(STATUS),
        ])
        .collect()
        .map_err(|e| step_error(e, "cannot read `calls/`"))?;
    let quarantine = quarantine_invalid_rows(&invalid, files)?;

    let distinct = all
        .filter(valid)
        .select([
            col(REQUEST_ID),
            col(CUSTOMER_ID),
            col(TS),
            col(API),
            col(STATUS),
            col(ERROR_CODE),
        ])
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(len().over([col(REQUEST_ID)])?.alias(VARIANTS))
        .collect()
        .map_err(|e| step_error(e, "cannot de-duplicate calls"))?;
    let (deduplicated, conflicts) = resolve_conflicts(distinct)?;
    Ok(Screened {
        quarantine,
        quarantined: invalid.height() as u64,
        deduplicated,
        conflicts,
    })
}

/// What `validate` reports of the call rows, found exactly as a run finds them.
#[derive(Debug, Clone)]
pub struct CallScreen {
    pub read: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    /// Row defects and `conflicting_duplicate` entries.
    pub quarantine: Vec<Entry>,
}

/// Quarantine and de-duplication of every call row, without computing the ledger.
pub fn screen_calls(files: &CallFiles) -> anyhow::Result<CallScreen> {
    let screened = screen_rows(files)?;
    let read = files.rows();
    let mut quarantine = screened.quarantine;
    quarantine.extend(screened.conflicts);
    Ok(CallScreen {
        read,
        quarantined: screened.quarantined,
        duplicates: read - screened.quarantined - screened.deduplicated.height() as u64,
        quarantine,
    })
}

/// SPEC §2 row defects: null request_id/customer_id/ts/status, or an unknown status.
fn valid_row() -> Expr {
    let known_status = STATUSES
        .iter()
        .map(|s| col(STATUS).eq(lit(*s)))
        .reduce(Expr::or)
        .expect("statuses");
    col(REQUEST_ID)
        .is_not_null()
        .and(col(CUSTOMER_ID).is_not_null())
        .and(col(TS).is_not_null())
        .and(known_status)
        .fill_null(lit(false))
}

fn quarantine_invalid_rows(invalid: &DataFrame, files: &CallFiles) -> anyhow::Result<Vec<Entry>> {
    let file = invalid.column(FILE)?.u32()?;
    let row = invalid.column(ROW)?.u64()?;
    let request_id = invalid.column(REQUEST_ID)?.str()?;
    let customer_id = invalid.column(CUSTOMER_ID)?.i64()?;
    let ts = invalid.column(TS)?.i64()?;
    let status = invalid.column(STATUS)?.str()?;
    let mut entries = Vec::with_capacity(invalid.height());
    for i in 0..invalid.height() {
        let (reason, detail) = match (
            request_id.get(i),
            customer_id.get(i),
            ts.get(i),
            status.get(i),
        ) {
            (None, ..) => (Reason::NullRequestId, "request_id is null".to_string()),
            (Some(id), None, ..) => (
                Reason::NullCustomerId,
                format!("request_id {id}: customer_id is null"),
            ),
            (Some(id), Some(_), None, _) => {
                (Reason::NullTs, format!("request_id {id}: ts is null"))
            }
            (Some(id), Some(_), Some(_), None) => (
                Reason::NullStatus,
                format!("request_id {id}: status is null"),
            ),
            (Some(id), Some(_), Some(_), Some(s)) => (
                Reason::UnknownStatus,
                format!(
                    "request_id {id}: status `{s}`; expected success, client_error or system_error"
                ),
            ),
        };
        let source = &files.files[file.get(i).expect("file index") as usize].shown;
        entries.push(entry(source, row.get(i), reason, detail));
    }
    Ok(entries)
}

fn entry(source: &Path, row: Option<u64>, reason: Reason, detail: String) -> Entry {
    Entry {
        source: source.display().to_string().replace('\\', "/"),
        row,
        reason,
        detail,
    }
}

/// One distinct version of a call, ordered as SPEC §2's tie-break: (ts, customer_id, api,
/// status, error_code), nulls first, strings by their UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallVersion {
    ts: i64,
    customer_id: i64,
    api: Option<String>,
    status: String,
    error_code: Option<String>,
}

/// Keeps one row per request id: rows that agree were merged by `unique`; where versions
/// disagree, the smallest is kept and the id is reported as `conflicting_duplicate`.
fn resolve_conflicts(distinct: DataFrame) -> anyhow::Result<(DataFrame, Vec<Entry>)> {
    let single = distinct
        .clone()
        .lazy()
        .filter(col(VARIANTS).eq(lit(1)))
        .select([
            col(REQUEST_ID),
            col(CUSTOMER_ID),
            col(TS),
            col(API),
            col(STATUS),
            col(ERROR_CODE),
        ]);
    let conflicting = distinct.lazy().filter(col(VARIANTS).gt(lit(1))).collect()?;

    let ids = conflicting.column(REQUEST_ID)?.str()?;
    let customer = conflicting.column(CUSTOMER_ID)?.i64()?;
    let ts = conflicting.column(TS)?.i64()?;
    let api = conflicting.column(API)?.str()?;
    let status = conflicting.column(STATUS)?.str()?;
    let code = conflicting.column(ERROR_CODE)?.str()?;
    let mut versions: BTreeMap<&str, Vec<CallVersion>> = BTreeMap::new();
    for i in 0..conflicting.height() {
        versions
            .entry(ids.get(i).expect("valid id"))
            .or_default()
            .push(CallVersion {
                ts: ts.get(i).expect("valid ts"),
                customer_id: customer.get(i).expect("valid customer"),
                api: api.get(i).map(str::to_string),
                status: status.get(i).expect("valid status").to_string(),
                error_code: code.get(i).map(str::to_string),
            });
    }

    let mut entries = Vec::with_capacity(versions.len());
    let mut kept: Vec<(&str, CallVersion)> = Vec::with_capacity(versions.len());
    for (id, mut list) in versions {
        list.sort();
        let first = list.swap_remove(0);
        entries.push(entry(
            Path::new("calls"),
            None,
            Reason::ConflictingDuplicate,
            format!(
                "request_id {id}: {} differing rows; kept ts={} customer_id={} status={}",
                list.len() + 1,
                format_instant(first.ts),
                first.customer_id,
                first.status
            ),
        ));
        kept.push((id, first));
    }
    let kept_frame = DataFrame::new(
        kept.len(),
        vec![
            Column::new(
                REQUEST_ID.into(),
                kept.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            ),
            Column::new(
                CUSTOMER_ID.into(),
                kept.iter().map(|(_, v)| v.customer_id).collect::<Vec<_>>(),
            ),
            Column::new(
                TS.into(),
                kept.iter().map(|(_, v)| v.ts).collect::<Vec<_>>(),
            ),
            Column::new(
                API.into(),
                kept.iter()
                    .map(|(_, v)| v.api.as_deref())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                STATUS.into(),
                kept.iter()
                    .map(|(_, v)| v.status.as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                ERROR_CODE.into(),
                kept.iter()
                    .map(|(_, v)| v.error_code.as_deref())
                    .collect::<Vec<_>>(),
            ),
        ],
    )?;
    let deduplicated = concat([single, kept_frame.lazy()], UnionArgs::default())?.collect()?;
    Ok((deduplicated, entries))
}

fn coverage_frame(coverage: &[CoverageInterval]) -> PolarsResult<DataFrame> {
    DataFrame::new(
        coverage.len(),
        vec![
            Column::new(
                CUSTOMER_ID.into(),
                coverage.iter().map(|c| c.customer_id).collect::<Vec<_>>(),
            ),
            Column::new(
                MONTH_INDEX.into(),
                coverage.iter().map(|c| c.month_index).collect::<Vec<_>>(),
            ),
            Column::new(
                COVER_START.into(),
                coverage.iter().map(|c| c.start).collect::<Vec<_>>(),
            ),
            Column::new(
                COVER_END.into(),
                coverage.iter().map(|c| c.end).collect::<Vec<_>>(),
            ),
        ],
    )
}

fn add_totals(counted: &DataFrame, months: &mut [MonthCallCounts]) -> anyhow::Result<()> {
    let totals = counted
        .clone()
        .lazy()
        .group_by([col(MONTH_INDEX)])
        .agg([len().cast(DataType::UInt64).alias("calls")])
        .collect()?;
    let index = totals.column(MONTH_INDEX)?.u32()?;
    let calls = totals.column("calls")?.u64()?;
    for (index, calls) in index.iter().zip(calls.iter()) {
        months[index.expect("month index") as usize].total_calls = calls.unwrap_or(0);
    }
    Ok(())
}

/// Counts system errors and attributes each to its exempting clause, if any (SPEC §4).
fn add_system_errors(
    counted: &DataFrame,
    input: &HeavyStepInput,
    months: &mut [MonthCallCounts],
) -> anyhow::Result<()> {
    let per_second = counted
        .clone()
        .lazy()
        .group_by([col(CUSTOMER_ID), col(SECOND)])
        .agg([len().cast(DataType::UInt32).alias(CALLS_IN_SECOND)]);
    let errors = counted
        .clone()
        .lazy()
        .filter(col(STATUS).eq(lit(SYSTEM_ERROR)))
        .join(
            per_second,
            [col(CUSTOMER_ID), col(SECOND)],
            [col(CUSTOMER_ID), col(SECOND)],
            JoinArgs::new(JoinType::Left),
        )
        .select([
            col(REQUEST_ID),
            col(CUSTOMER_ID),
            col(MONTH_INDEX),
            col(TS),
            col(ERROR_CODE),
            col(CALLS_IN_SECOND),
        ])
        .collect()?;

    let rules = ExemptionRules::new(input.exemptions, input.policy);
    let request_id = errors.column(REQUEST_ID)?.str()?;
    let customer_id = errors.column(CUSTOMER_ID)?.i64()?;
    let month_index = errors.column(MONTH_INDEX)?.u32()?;
    let ts = errors.column(TS)?.i64()?;
    let error_code = errors.column(ERROR_CODE)?.str()?;
    let calls_in_second = errors.column(CALLS_IN_SECOND)?.u32()?;
    for i in 0..errors.height() {
        let error = SystemError {
            request_id: request_id.get(i).expect("valid id").to_string(),
            customer_id: customer_id.get(i).expect("valid customer"),
            ts: ts.get(i).expect("valid ts"),
            error_code: error_code.get(i).map(str::to_string),
            calls_in_second: calls_in_second.get(i).unwrap_or(1),
        };
        let month = &mut months[month_index.get(i).expect("month index") as usize];
        month.system_errors += 1;
        if let Some(clause) = rules.attribute(&error) {
            *month.exempt_by_clause.entry(clause).or_default() += 1;
        }
    }
    Ok(())
}
