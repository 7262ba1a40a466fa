//! Bad input (issue: reliability): each case ends with exit 1 (2 for usage errors), a message
//! naming the file, line or column, what was found and what was expected, and nothing written:
//! no output folder and no temporary sibling.

use std::fs;
use std::path::Path;

use polars::prelude::*;

use crate::support::*;

/// A small valid data folder (the `sla-rules` golden case) to break one thing in.
fn valid_data(dir: &TempDir) -> std::path::PathBuf {
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    data
}

/// Runs on `data` into `dir/out/ledger`, asserts the exit code, that stderr contains every
/// needle, and that nothing was written.
fn assert_fails(dir: &TempDir, data: &Path, extra: &[&str], code: i32, needles: &[&str]) {
    let out_parent = dir.join("out");
    fs::create_dir_all(&out_parent).unwrap();
    let out = out_parent.join("ledger");
    let output = run_ledger(data, &out, "2026-01", "2026-04-30", extra);
    assert_exit(&output, code);
    let stderr = text(&output.stderr);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks `{needle}`:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        entries(&out_parent).is_empty(),
        "left behind: {:?}",
        entries(&out_parent)
    );
    // validate refuses whatever run refuses, with the same exit status (issue 12 item 13).
    let mut args = vec![
        "validate",
        "--data",
        data.to_str().unwrap(),
        "--months",
        "2026-01",
        "--as-of",
        "2026-04-30",
    ];
    args.extend_from_slice(extra);
    let validate = sla_ledger(&repo_root(), &args);
    assert_exit(&validate, code);
    let reported = text(&validate.stdout) + &text(&validate.stderr);
    assert!(!reported.contains("panicked"), "{reported}");
    assert!(
        !reported.contains("no problems found"),
        "validate passed what run refused:\n{reported}"
    );
}

fn write_frame(path: &Path, mut frame: DataFrame) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(fs::File::create(path).unwrap())
        .finish(&mut frame)
        .unwrap();
}

fn calls_frame(ts: Column, customer: Column) -> DataFrame {
    DataFrame::new(
        1,
        vec![
            Column::new("request_id".into(), ["x"]),
            customer,
            ts,
            Column::new("api".into(), ["a"]),
            Column::new("status".into(), ["success"]),
            Column::new("error_code".into(), [None::<&str>]),
        ],
    )
    .unwrap()
}

fn ts_column() -> Column {
    Int64Chunked::from_slice("ts".into(), &[1_767_225_600_000])
        .into_datetime(TimeUnit::Milliseconds, None)
        .into_series()
        .into()
}

#[test]
fn calls_folder_missing_or_without_parquet() {
    let dir = TempDir::new("bad-calls-missing");
    let data = valid_data(&dir);
    fs::remove_dir_all(data.join("calls")).unwrap();
    assert_fails(&dir, &data, &[], 1, &["`calls/`", "missing", "hint:"]);
    fs::create_dir_all(data.join("calls/2026-01")).unwrap();
    fs::write(data.join("calls/2026-01/calls.csv"), "request_id\n").unwrap();
    assert_fails(&dir, &data, &[], 1, &["`calls/`", "no `*.parquet`"]);
}

#[test]
fn subscriptions_missing() {
    let dir = TempDir::new("bad-subs");
    let data = valid_data(&dir);
    fs::remove_file(data.join("subscriptions.csv")).unwrap();
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &["`subscriptions.csv`", "required", "hint:"],
    );
}

#[test]
fn a_calls_file_missing_a_column() {
    let dir = TempDir::new("bad-column");
    let data = valid_data(&dir);
    let frame = calls_frame(ts_column(), Column::new("customer_id".into(), [1i64]))
        .drop("error_code")
        .unwrap();
    write_frame(&data.join("calls/late/extra.parquet"), frame);
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`calls/late/extra.parquet`",
            "column `error_code`",
            "missing",
        ],
    );
}

#[test]
fn a_calls_file_with_ts_as_text() {
    let dir = TempDir::new("bad-ts-text");
    let data = valid_data(&dir);
    let frame = calls_frame(
        Column::new("ts".into(), ["2026-01-01T00:00:00Z"]),
        Column::new("customer_id".into(), [1i64]),
    );
    write_frame(&data.join("calls/extra.parquet"), frame);
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`calls/extra.parquet`",
            "column `ts`",
            "expected a timestamp",
        ],
    );
}

#[test]
fn a_calls_file_with_customer_id_as_float() {
    let dir = TempDir::new("bad-customer-float");
    let data = valid_data(&dir);
    let frame = calls_frame(ts_column(), Column::new("customer_id".into(), [1.0f64]));
    write_frame(&data.join("calls/extra.parquet"), frame);
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`calls/extra.parquet`",
            "column `customer_id`",
            "expected int64",
        ],
    );
}

#[test]
fn a_truncated_or_corrupt_parquet_file_is_named() {
    let dir = TempDir::new("bad-truncated");
    let data = valid_data(&dir);
    let victim = data.join("calls/a/part-0.parquet");
    let bytes = fs::read(&victim).unwrap();
    fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`calls/a/part-0.parquet`",
            "not a readable Parquet file",
            "hint:",
        ],
    );
    fs::write(&victim, b"PAR1 this is not parquet at all").unwrap();
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &["`calls/a/part-0.parquet`", "not a readable Parquet file"],
    );
}

#[test]
fn billing_amount_as_a_float_parquet_column() {
    let dir = TempDir::new("bad-billing-float");
    let data = valid_data(&dir);
    fs::remove_file(data.join("billing.csv")).unwrap();
    let frame = DataFrame::new(
        1,
        vec![
            Column::new("customer_id".into(), [1i64]),
            Column::new("period".into(), ["2026-01"]),
            Column::new("kind".into(), ["charge"]),
            Column::new("amount".into(), [12.5f64]),
            Column::new("currency".into(), ["CNY"]),
        ],
    )
    .unwrap();
    write_frame(&data.join("billing.parquet"), frame);
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`billing.parquet`",
            "column `amount`",
            "floating point",
            "hint:",
        ],
    );
}

/// Replaces line `line` (1-based) of a CSV file.
fn replace_line(path: &Path, line: usize, with: &str) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[line - 1] = with.to_string();
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn a_timestamp_without_offset() {
    let dir = TempDir::new("bad-offset");
    let data = valid_data(&dir);
    replace_line(
        &data.join("exemptions/windows.csv"),
        2,
        "mw-ok,5.12,2026-01-14T02:00:00,2026-01-14T03:00:00+08:00,,2026-01-11T09:00:00+08:00",
    );
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`exemptions/windows.csv` line 2 column `start`",
            "with an offset",
        ],
    );
}

#[test]
fn an_unknown_clause() {
    let dir = TempDir::new("bad-clause");
    let data = valid_data(&dir);
    replace_line(
        &data.join("exemptions/error_codes.csv"),
        2,
        "FailedOperation.CalleeIsLimited,6.1",
    );
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &[
            "`exemptions/error_codes.csv` line 2 column `clause`",
            "`6.1`",
            "5.N",
            "hint:",
        ],
    );
}

#[test]
fn malformed_rows_in_curated_tables_name_file_and_line() {
    let cases: [(&str, usize, &str, &[&str]); 5] = [
        (
            "exemptions/notices.csv",
            2,
            "6,2026-01-09T00:00:00+08:00",
            &["`exemptions/notices.csv` line 2", "fields"],
        ),
        (
            "exemptions/calls.csv",
            3,
            ",5.6",
            &["`exemptions/calls.csv` line 3 column `request_id`", "empty"],
        ),
        (
            "claims.csv",
            4,
            "T4-email,four,2026-01,2026-02-10T09:00:00+08:00,email",
            &["`claims.csv` line 4 column `customer_id`", "`four`"],
        ),
        (
            "claims.csv",
            2,
            "T2-early,2,2026-1,2026-02-06T23:59:59+08:00,ticket",
            &["`claims.csv` line 2 column `service_month`", "YYYY-MM"],
        ),
        (
            "subscriptions.csv",
            3,
            "2,2025-06-31,",
            &[
                "`subscriptions.csv` line 3 column `start_date`",
                "not a valid date",
            ],
        ),
    ];
    for (file, line, with, needles) in cases {
        let dir = TempDir::new("bad-row");
        let data = valid_data(&dir);
        replace_line(&data.join(file), line, with);
        assert_fails(&dir, &data, &[], 1, needles);
    }
}

#[test]
fn a_billing_row_with_an_unparsable_period_is_fatal() {
    let dir = TempDir::new("bad-period");
    let data = valid_data(&dir);
    replace_line(&data.join("billing.csv"), 2, "1,January,charge,500.00,CNY");
    assert_fails(
        &dir,
        &data,
        &[],
        1,
        &["`billing.csv` line 2 column `period`", "`January`"],
    );
}

#[test]
fn a_malformed_calendar_names_file_and_line() {
    let dir = TempDir::new("bad-calendar");
    let data = valid_data(&dir);
    let calendar = dir.join("calendar.csv");
    fs::write(
        &calendar,
        "date,kind\n2026-01-01,holiday\n2026-01-04,weekday\n",
    )
    .unwrap();
    let path = calendar.to_str().unwrap().to_string();
    assert_fails(
        &dir,
        &data,
        &["--calendar", &path],
        1,
        &["calendar.csv` line 3 column `kind`", "`weekday`", "holiday"],
    );
}

#[test]
fn an_unknown_job_key_is_a_usage_error() {
    let dir = TempDir::new("bad-job");
    let data = valid_data(&dir);
    let job = dir.join("job.toml");
    fs::write(&job, "month = \"2026-01\"\n").unwrap();
    let path = job.to_str().unwrap().to_string();
    assert_fails(&dir, &data, &["--job", &path], 2, &["job.toml", "month"]);
}
