//! Test harness: temporary folders, running the binary, comparing files with a readable diff,
//! and turning compact call descriptions into Parquet.

#![allow(dead_code)]

pub mod scenario;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;

/// A temporary folder removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir()
            .join("sla-ledger-tests")
            .join(format!("{name}-{}-{n}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn join(&self, part: impl AsRef<Path>) -> PathBuf {
        self.path.join(part)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.path).ok();
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `sla-ledger` with `args` from `cwd`.
pub fn sla_ledger(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(args)
        .current_dir(cwd)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success, printing stdout and stderr in full otherwise.
pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "expected success, got {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Asserts the exit code, printing both streams otherwise.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// A line diff good enough to read a ledger mismatch: lines only in one side, with numbers.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let mut out = String::new();
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                out.push_str(&format!(
                    "line {}:\n  - expected: {}\n  + actual:   {}\n",
                    i + 1,
                    x.unwrap_or(&"<none>"),
                    y.unwrap_or(&"<none>")
                ));
            }
        }
    }
    out
}

/// Byte-for-byte comparison with the full diff on mismatch.
pub fn assert_same_file(expected: &Path, actual: &Path) {
    let e = fs::read_to_string(expected)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", expected.display()));
    let a = fs::read_to_string(actual)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", actual.display()));
    if e != a {
        panic!(
            "{} differs from {}\n{}\n--- expected (full)\n{e}\n--- actual (full)\n{a}",
            actual.display(),
            expected.display(),
            line_diff(&e, &a)
        );
    }
}

/// Compares two CSV files as sets of data rows (same header).
pub fn assert_same_rows(expected: &Path, actual: &Path) {
    let read = |p: &Path| {
        let t = fs::read_to_string(p)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", p.display()));
        let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
        let header = if lines.is_empty() {
            String::new()
        } else {
            lines.remove(0)
        };
        lines.sort();
        (header, lines)
    };
    let (eh, er) = read(expected);
    let (ah, ar) = read(actual);
    assert_eq!(eh, ah, "header of {}", actual.display());
    if er != ar {
        panic!(
            "{} rows differ from {}\n{}",
            actual.display(),
            expected.display(),
            line_diff(&er.join("\n"), &ar.join("\n"))
        );
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One call row of a test data set; `ts` in UTC nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow {
    pub request_id: Option<String>,
    pub customer_id: Option<i64>,
    pub ts: Option<i64>,
    pub api: Option<String>,
    pub status: Option<String>,
    pub error_code: Option<String>,
}

/// Expands a compact calls CSV (`request_id,customer_id,ts,api,status,error_code,count`).
pub fn expand_calls_csv(path: &Path) -> Vec<CallRow> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut rows = Vec::new();
    for record in reader.records() {
        let r = record.unwrap();
        let cell = |i: usize| Some(r[i].to_string()).filter(|s| !s.is_empty());
        let ts = chrono::DateTime::parse_from_rfc3339(&r[2])
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let count: i64 = r[6].parse().unwrap();
        for i in 0..count {
            rows.push(CallRow {
                request_id: Some(format!("{}-{i}", &r[0])),
                customer_id: Some(r[1].parse().unwrap()),
                ts: Some(ts + i * 1_000_000),
                api: cell(3),
                status: cell(4),
                error_code: cell(5),
            });
        }
    }
    rows
}

/// Writes call rows as a Parquet file with `ts` in the given unit (UTC zone or naive).
pub fn write_calls_parquet(path: &Path, rows: &[CallRow], unit: TimeUnit, utc: bool) {
    let per_unit = match unit {
        TimeUnit::Milliseconds => 1_000_000,
        TimeUnit::Microseconds => 1_000,
        TimeUnit::Nanoseconds => 1,
    };
    let ts = Int64Chunked::from_iter_options(
        "ts".into(),
        rows.iter().map(|r| r.ts.map(|t| t / per_unit)),
    )
    .into_datetime(unit, utc.then_some(TimeZone::UTC));
    let mut frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "request_id".into(),
                rows.iter()
                    .map(|r| r.request_id.clone())
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "customer_id".into(),
                rows.iter().map(|r| r.customer_id).collect::<Vec<_>>(),
            ),
            ts.into_series().into(),
            Column::new(
                "api".into(),
                rows.iter().map(|r| r.api.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "status".into(),
                rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>(),
            ),
            Column::new(
                "error_code".into(),
                rows.iter()
                    .map(|r| r.error_code.clone())
                    .collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(fs::File::create(path).unwrap())
        .finish(&mut frame)
        .unwrap();
}

/// Lists the entries of a folder (names only), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Copies a case's data into a temp folder, writing its calls as Parquet split over three
/// files with the three timestamp units.
pub fn materialise_golden(case: &Path, into: &Path) {
    copy_dir(&case.join("data"), into);
    let compact = into.join("calls.csv");
    let rows = expand_calls_csv(&compact);
    std::fs::remove_file(&compact).unwrap();
    let thirds: Vec<Vec<CallRow>> = (0..3)
        .map(|k| rows.iter().skip(k).step_by(3).cloned().collect())
        .collect();
    write_calls_parquet(
        &into.join("calls/a/part-0.parquet"),
        &thirds[0],
        TimeUnit::Milliseconds,
        true,
    );
    write_calls_parquet(
        &into.join("calls/b/part-1.parquet"),
        &thirds[1],
        TimeUnit::Microseconds,
        true,
    );
    write_calls_parquet(
        &into.join("calls/part-2.parquet"),
        &thirds[2],
        TimeUnit::Nanoseconds,
        false,
    );
}

/// The arguments `run --data DATA --out OUT --months MONTHS --as-of AS_OF EXTRA...`.
pub fn run_args<'a>(
    data: &'a Path,
    out: &'a Path,
    months: &'a str,
    as_of: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--months",
        months,
        "--as-of",
        as_of,
    ];
    args.extend_from_slice(extra);
    args
}

/// `sla-ledger run --data DATA --out OUT --months MONTHS --as-of AS_OF EXTRA...`, from the
/// repository root.
pub fn run_ledger(data: &Path, out: &Path, months: &str, as_of: &str, extra: &[&str]) -> Output {
    sla_ledger(&repo_root(), &run_args(data, out, months, as_of, extra))
}

/// `sla-ledger generate --out DATA --customers N --calls N --seed N EXTRA...`; asserts success.
pub fn generate(data: &Path, customers: u32, calls: u64, seed: u64, extra: &[&str]) {
    let (customers, calls, seed) = (customers.to_string(), calls.to_string(), seed.to_string());
    let mut args = vec![
        "generate",
        "--out",
        data.to_str().unwrap(),
        "--customers",
        &customers,
        "--calls",
        &calls,
        "--seed",
        &seed,
    ];
    args.extend_from_slice(extra);
    assert_success(&sla_ledger(&repo_root(), &args));
}

/// `sla-ledger run --job JOB --out OUT EXTRA...`, from the repository root.
pub fn run_job(job: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--job", job, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    sla_ledger(&repo_root(), &args)
}

/// The shared conformance cases (folders holding `args`), sorted; `None` when
/// `../shared/conformance` is absent.
pub fn conformance_cases() -> Option<Vec<PathBuf>> {
    let root = repo_root().join("../shared/conformance");
    if !root.is_dir() {
        return None;
    }
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("args").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case under {}", root.display());
    Some(cases)
}
