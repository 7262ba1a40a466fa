//! Takes the call files (as registered table names with their `ts` unit), the covered instant
//! ranges, the exemption tables and the policy; gives the heavy step's rules (SPEC §2, §4) as
//! the text of the DataFusion SQL queries that [`super::count_calls`] sends to the cluster.
//!
//! The small tables travel inside the query as `VALUES` lists and the driver's sets of keys as
//! Bloom filters in binary literals ([`MAY_CONTAIN`]), so executors need nothing but the call
//! files.
//!
//! Every query reads the same normalised call rows: strings as `VARCHAR`, `ts` as `BIGINT`
//! UTC nanoseconds (saturating like the polars engine), `customer_id` as `BIGINT`.

use std::fmt::Write;

use crate::inputs::calls::{STATUSES, SYSTEM_ERROR};
use crate::inputs::exemptions::ExemptionTables;
use crate::policy::Policy;
use crate::stages::service_months::CoverageInterval;
use crate::time::NANOS_PER_SECOND;

use super::key_filter::{KeyFilter, MAY_CONTAIN};
use super::udf::ID_HASH;

/// One registered call file: its table name and nanoseconds per unit of its `ts`.
pub(super) struct CallTable {
    pub(super) name: String,
    pub(super) ts_nanos_per_unit: i64,
}

/// The version SPEC §2's tie-break keeps of a request id whose copies differ, as the driver
/// chose it.
pub(super) struct ResolvedCall<'a> {
    pub(super) request_id: &'a str,
    pub(super) customer_id: i64,
    pub(super) ts: i64,
    pub(super) status: &'a str,
    pub(super) error_code: Option<&'a str>,
}

/// A string literal: single quotes doubled, nothing else is special in DataFusion SQL.
pub(super) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn optional_literal(text: Option<&str>) -> String {
    text.map_or_else(|| "CAST(NULL AS VARCHAR)".to_string(), literal)
}

/// `i64::MIN` cannot be written as a literal (its magnitude overflows before negation).
fn int(value: i64) -> String {
    if value == i64::MIN {
        "(-9223372036854775807 - 1)".to_string()
    } else {
        value.to_string()
    }
}

/// `ts` as UTC nanoseconds, saturating at the `i64` range like `CallFiles::read_chunk`.
fn ts_nanos(factor: i64) -> String {
    let raw = "CAST(\"ts\" AS BIGINT)";
    if factor == 1 {
        return raw.to_string();
    }
    format!(
        "CASE WHEN {raw} > {hi} THEN {max} WHEN {raw} < {lo} THEN {min} ELSE {raw} * {factor} END",
        hi = i64::MAX / factor,
        lo = i64::MIN / factor,
        max = int(i64::MAX),
        min = int(i64::MIN),
    )
}

/// Every call row of every file, normalised; `file` is the file's index.
fn all_rows(tables: &[CallTable]) -> String {
    let selects: Vec<String> = tables
        .iter()
        .enumerate()
        .map(|(index, table)| {
            format!(
                "SELECT {index} AS file, CAST(\"request_id\" AS VARCHAR) AS request_id, \
                 CAST(\"customer_id\" AS BIGINT) AS customer_id, {ts} AS ts, \
                 CAST(\"api\" AS VARCHAR) AS api, CAST(\"status\" AS VARCHAR) AS status, \
                 CAST(\"error_code\" AS VARCHAR) AS error_code FROM \"{name}\"",
                ts = ts_nanos(table.ts_nanos_per_unit),
                name = table.name,
            )
        })
        .collect();
    selects.join("\nUNION ALL\n")
}

fn statuses() -> String {
    STATUSES.map(literal).join(", ")
}

/// SPEC §2 row defects: null request_id, customer_id, ts or status, or an unknown status.
fn is_defect() -> String {
    format!(
        "request_id IS NULL OR customer_id IS NULL OR ts IS NULL OR status IS NULL \
         OR status NOT IN ({})",
        statuses()
    )
}

/// The rows that survive quarantine.
fn valid_rows(tables: &[CallTable]) -> String {
    format!(
        "valid AS (SELECT request_id, customer_id, ts, api, status, error_code \
         FROM ({rows}) AS calls \
         WHERE request_id IS NOT NULL AND customer_id IS NOT NULL AND ts IS NOT NULL \
         AND status IN ({statuses}))",
        rows = all_rows(tables),
        statuses = statuses()
    )
}

/// Query 1: defective rows per file (`file`, `rows`).
pub(super) fn defects_per_file(tables: &[CallTable]) -> String {
    format!(
        "SELECT file, COUNT(*) AS rows FROM ({rows}) AS calls WHERE {defect} GROUP BY file",
        rows = all_rows(tables),
        defect = is_defect()
    )
}

/// The valid rows with the 128-bit hash of their request id ([`ID_HASH`]), as `hashed`.
fn hashed_rows() -> String {
    format!(
        "hashed AS (SELECT {ID_HASH}(request_id) AS id_hash, request_id, customer_id, ts, api, \
         status, error_code FROM valid)"
    )
}

/// Query 2: the id hashes that more than one valid row carries (`id_hash`), with how many rows
/// carry each (`copies`). A count per fixed-width hash: nothing else is kept per id.
pub(super) fn repeated_ids(tables: &[CallTable]) -> String {
    format!(
        "WITH {valid}, {hashed} \
         SELECT id_hash, COUNT(*) AS copies FROM hashed GROUP BY id_hash HAVING COUNT(*) > 1",
        valid = valid_rows(tables),
        hashed = hashed_rows(),
    )
}

/// Query 3: the (customer, UTC second) pairs of the rows with a system error (`customer_id`,
/// `second`), read from three columns alone. Defective rows may add pairs: the burst rule only
/// looks closer at these seconds, so more of them changes no count.
pub(super) fn error_seconds(tables: &[CallTable]) -> String {
    format!(
        "SELECT DISTINCT customer_id, {second} AS second FROM ({rows}) AS calls \
         WHERE status = {system_error} AND customer_id IS NOT NULL AND ts IS NOT NULL",
        second = utc_second("ts"),
        rows = all_rows(tables),
        system_error = literal(SYSTEM_ERROR),
    )
}

/// Query 4: the distinct versions (all six columns) of the request ids whose hashes query 2
/// found, picked out of the scan by [`MAY_CONTAIN`]: no join, so no call row is shuffled. The
/// filter's rare false yes adds an id seen once, whose one version the driver passes over.
pub(super) fn repeated_versions(tables: &[CallTable], repeated: &KeyFilter) -> String {
    format!(
        "WITH {valid}, {hashed} \
         SELECT DISTINCT request_id, customer_id, ts, api, status, error_code \
         FROM (SELECT *, {MAY_CONTAIN}({filter}, id_hash) AS picked FROM hashed) AS h \
         WHERE picked",
        valid = valid_rows(tables),
        hashed = hashed_rows(),
        filter = repeated.literal(),
    )
}

/// A small table as a query: `VALUES` rows, or an empty typed row set when there are none.
fn values_table(columns: &[(&str, &str)], rows: &[String]) -> String {
    if rows.is_empty() {
        let nulls: Vec<String> = columns
            .iter()
            .map(|(name, ty)| format!("CAST(NULL AS {ty}) AS {name}"))
            .collect();
        return format!("SELECT {} WHERE false", nulls.join(", "));
    }
    let casts: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, ty))| format!("CAST(column{} AS {ty}) AS {name}", i + 1))
        .collect();
    format!(
        "SELECT {} FROM (VALUES {})",
        casts.join(", "),
        rows.join(", ")
    )
}

/// The inputs of query 5 beside the call files.
pub(super) struct CountInputs<'a> {
    pub(super) coverage: &'a [CoverageInterval],
    pub(super) exemptions: &'a ExemptionTables,
    pub(super) policy: &'a Policy,
    /// Query 2's id hashes.
    pub(super) repeated: &'a KeyFilter,
    /// The driver's kept version of each id whose versions differ (query 4, resolved).
    pub(super) resolved: &'a [ResolvedCall<'a>],
    /// Query 3's (customer, second) pairs, packed ([`super::key_filter::pack`]).
    pub(super) error_seconds: &'a KeyFilter,
}

/// Query 5: the counts. One row per (`month_index`, `is_error`, `clause`) with `calls`;
/// `month_index` null holds the unique calls that no selected service month counts.
///
/// SPEC §4 in order: every row judged on its own (its service month, and for a counted system
/// error the smallest clause among the error code, the reviewed call and the windows, and
/// whether a counted notice covers it), with the rows of an id with differing versions giving
/// way to the driver's kept version (`resolved`, judged the same way); then one call per
/// request id and, per (customer, UTC second), the counted calls, and the burst clause (5.7)
/// where they reach the threshold and no counted notice covers the call.
///
/// What it costs: one pass over the call rows, and no grouping by request id. A row keeps its
/// (customer, second) only in a second that holds a system error, and its id hash only if the
/// id is repeated (both told by [`MAY_CONTAIN`] from query 3's and 2's filters); the first
/// grouping then makes the rows of one repeated id one group (its rows judge alike: exact
/// copies, or the one resolved version) and every other row falls into a group per judgement.
/// The second counts such a group as one call, any other as its rows. A false yes of a filter
/// changes no count: an id seen once that keeps its hash is a group of one row, one call; a
/// (customer, second) kept without a system error in it has no error for the burst rule.
/// It is one long function because it writes one query, whose steps name each other in order.
pub(super) fn counts(tables: &[CallTable], inputs: &CountInputs) -> String {
    let mut sql = String::new();
    let resolved: Vec<String> = inputs
        .resolved
        .iter()
        .map(|r| {
            format!(
                "({}, {}, {}, {}, {})",
                literal(r.request_id),
                int(r.customer_id),
                int(r.ts),
                literal(r.status),
                optional_literal(r.error_code)
            )
        })
        .collect();
    let coverage: Vec<String> = inputs
        .coverage
        .iter()
        .map(|c| {
            format!(
                "({}, {}, {}, {})",
                c.month_index,
                int(c.customer_id),
                int(c.start),
                int(c.end)
            )
        })
        .collect();
    let error_codes: Vec<String> = inputs
        .exemptions
        .error_codes
        .iter()
        .map(|(code, clause)| format!("({}, {})", literal(code), clause.number()))
        .collect();
    let reviewed: Vec<String> = inputs
        .exemptions
        .calls
        .iter()
        .map(|(id, clause)| format!("({}, {})", literal(id), clause.number()))
        .collect();
    write!(
        sql,
        "WITH {valid}, {hashed},\n\
         resolved AS (SELECT {ID_HASH}(request_id) AS id_hash, * FROM ({resolved})),\n\
         kept AS (SELECT v.id_hash, v.request_id, v.customer_id, v.ts, v.status, v.error_code \
           FROM resolved r RIGHT ANTI JOIN hashed v ON r.id_hash = v.id_hash \
           UNION ALL SELECT id_hash, request_id, customer_id, ts, status, error_code \
           FROM resolved),\n\
         coverage AS ({coverage}),\n\
         error_codes AS ({error_codes}),\n\
         reviewed AS ({reviewed}),\n",
        hashed = hashed_rows(),
        valid = valid_rows(tables),
        resolved = values_table(
            &[
                ("request_id", "VARCHAR"),
                ("customer_id", "BIGINT"),
                ("ts", "BIGINT"),
                ("status", "VARCHAR"),
                ("error_code", "VARCHAR"),
            ],
            &resolved
        ),
        coverage = values_table(
            &[
                ("month_index", "BIGINT"),
                ("customer_id", "BIGINT"),
                ("start_ns", "BIGINT"),
                ("end_ns", "BIGINT"),
            ],
            &coverage
        ),
        error_codes = values_table(
            &[("error_code", "VARCHAR"), ("clause", "BIGINT")],
            &error_codes
        ),
        reviewed = values_table(
            &[("request_id", "VARCHAR"), ("clause", "BIGINT")],
            &reviewed
        ),
    )
    .expect("writing to a String");
    let counted_error = format!(
        "(p.month_index IS NOT NULL AND p.status = {})",
        literal(SYSTEM_ERROR)
    );
    write!(
        sql,
        "placed AS (SELECT k.id_hash, k.request_id, k.customer_id, k.ts, k.status, k.error_code, \
           c.month_index FROM kept k LEFT JOIN coverage c ON k.customer_id = c.customer_id \
           AND k.ts >= c.start_ns AND k.ts < c.end_ns),\n\
         judged AS (SELECT p.id_hash, p.month_index, p.customer_id, \
           CASE WHEN p.month_index IS NULL THEN NULL ELSE {second} END AS second, \
           {counted_error} AS is_error, \
           CASE WHEN {counted_error} THEN least(e.clause, r.clause, {window}) END AS clause, \
           ({counted_error} AND {noticed}) AS noticed \
           FROM placed p LEFT JOIN error_codes e ON p.error_code = e.error_code \
           LEFT JOIN reviewed r ON p.request_id = r.request_id),\n\
         keyed AS (SELECT month_index, is_error, clause, noticed, id_hash, customer_id, second, \
           coalesce({MAY_CONTAIN}({error_seconds}, customer_id, second), false) \
             AS in_error_second, \
           {MAY_CONTAIN}({repeated}, id_hash) AS repeated FROM judged),\n\
         marked AS (SELECT month_index, is_error, clause, noticed, \
           CASE WHEN in_error_second THEN customer_id END AS customer_id, \
           CASE WHEN in_error_second THEN second END AS second, \
           CASE WHEN repeated THEN id_hash END AS repeated_id FROM keyed),\n\
         grouped AS (SELECT month_index, customer_id, second, is_error, clause, noticed, \
           repeated_id, COUNT(*) AS rows FROM marked \
           GROUP BY month_index, customer_id, second, is_error, clause, noticed, repeated_id),\n\
         seconds AS (SELECT month_index, customer_id, second, is_error, clause, noticed, \
           SUM(CASE WHEN repeated_id IS NULL THEN rows ELSE 1 END) AS calls FROM grouped \
           GROUP BY month_index, customer_id, second, is_error, clause, noticed),\n\
         bursts AS (SELECT month_index, second, is_error, clause, noticed, calls, \
           SUM(calls) OVER (PARTITION BY customer_id, second) AS second_calls FROM seconds),\n\
         attributed AS (SELECT month_index, is_error, \
           CASE WHEN is_error AND second IS NOT NULL AND second_calls >= {burst_min} \
             AND NOT noticed THEN least(clause, {burst_clause}) ELSE clause END AS clause, \
           calls FROM bursts)\n\
         SELECT month_index, is_error, clause, CAST(SUM(calls) AS BIGINT) AS calls \
         FROM attributed GROUP BY month_index, is_error, clause",
        second = utc_second("p.ts"),
        window = window_clause(inputs.exemptions),
        noticed = noticed(inputs.exemptions),
        error_seconds = inputs.error_seconds.literal(),
        repeated = inputs.repeated.literal(),
        burst_min = inputs.policy.burst_min_calls(),
        burst_clause = inputs.policy.burst_clause.number(),
    )
    .expect("writing to a String");
    sql
}

/// `floor(ts / 1 s)` without overflow: truncating division, one less for negative remainders.
fn utc_second(ts: &str) -> String {
    let n = NANOS_PER_SECOND;
    format!("({ts} / {n} - CASE WHEN {ts} % {n} < 0 THEN 1 ELSE 0 END)")
}

/// The smallest clause of the exempting windows covering `p` (SPEC §2 windows; the notice
/// rule is already applied): a `CASE` over the windows in clause order, so the first match is
/// the smallest.
fn window_clause(exemptions: &ExemptionTables) -> String {
    let mut windows: Vec<_> = exemptions.windows.iter().collect();
    windows.sort_by_key(|w| w.clause);
    if windows.is_empty() {
        return "CAST(NULL AS BIGINT)".to_string();
    }
    let mut case = String::from("CASE");
    for w in windows {
        let customer = w
            .customer_id
            .map(|id| format!("p.customer_id = {} AND ", int(id)))
            .unwrap_or_default();
        write!(
            case,
            " WHEN {customer}p.ts >= {} AND p.ts < {} THEN {}",
            int(w.start),
            int(w.end),
            w.clause.number()
        )
        .expect("writing to a String");
    }
    case.push_str(" END");
    case
}

/// Whether a counted notice of the customer covers `p` (SLA 5.7).
fn noticed(exemptions: &ExemptionTables) -> String {
    if exemptions.notices.is_empty() {
        return "false".to_string();
    }
    let mut case = String::from("CASE");
    for n in &exemptions.notices {
        write!(
            case,
            " WHEN p.customer_id = {} AND p.ts >= {} AND p.ts < {} THEN true",
            int(n.customer_id),
            int(n.start),
            int(n.end)
        )
        .expect("writing to a String");
    }
    case.push_str(" ELSE false END");
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(optional_literal(None), "CAST(NULL AS VARCHAR)");
    }

    #[test]
    fn the_smallest_integer_is_written_without_overflow() {
        assert_eq!(int(i64::MIN), "(-9223372036854775807 - 1)");
        assert_eq!(int(-5), "-5");
    }

    #[test]
    fn ts_in_nanoseconds_needs_no_scaling() {
        assert_eq!(ts_nanos(1), "CAST(\"ts\" AS BIGINT)");
        assert!(ts_nanos(1000).contains("* 1000 END"));
    }

    #[test]
    fn an_empty_small_table_keeps_its_types() {
        assert_eq!(
            values_table(&[("a", "BIGINT")], &[]),
            "SELECT CAST(NULL AS BIGINT) AS a WHERE false"
        );
    }
}
