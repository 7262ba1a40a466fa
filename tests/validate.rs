//! `sla-ledger validate`: every problem of a data set reported at once, nothing computed.

use std::fs;
use std::path::Path;

use crate::support::*;

fn replace_line(path: &Path, line: usize, with: &str) {
    let text = fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[line - 1] = with.to_string();
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn append_line(path: &Path, with: &str) {
    let mut text = fs::read_to_string(path).unwrap();
    text.push_str(with);
    text.push('\n');
    fs::write(path, text).unwrap();
}

/// The golden `sla-rules` data with one defect planted in each of several files.
fn broken_data(dir: &TempDir) -> std::path::PathBuf {
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    // A call file that is not Parquet at all.
    fs::write(data.join("calls/b/broken.parquet"), b"not parquet").unwrap();
    // A subscription date that does not exist (line 3).
    replace_line(&data.join("subscriptions.csv"), 3, "2,2026-02-30,");
    // A billing month that does not exist (line 2), and a bad amount (quarantined, line 3).
    replace_line(&data.join("billing.csv"), 2, "1,2026-13,charge,500.00,CNY");
    replace_line(&data.join("billing.csv"), 3, "2,2026-01,charge,1.500,CNY");
    // A clause the SLA does not have.
    append_line(
        &data.join("exemptions/error_codes.csv"),
        "FailedOperation.Other,6.1",
    );
    // A window that ends before it starts.
    append_line(
        &data.join("exemptions/windows.csv"),
        "mw-bad,5.2,2026-01-21T05:00:00+08:00,2026-01-21T04:00:00+08:00,,",
    );
    // A claim timestamp without an offset.
    append_line(
        &data.join("claims.csv"),
        "T9,2,2026-01,2026-02-10T10:00:00,ticket",
    );
    data
}

#[test]
fn validate_reports_every_problem_of_a_broken_data_set_at_once() {
    let dir = TempDir::new("validate-broken");
    let data = broken_data(&dir);
    // A calendar that lacks 2026, which the January claim windows need.
    let calendar = dir.join("calendar-2025.csv");
    fs::write(&calendar, "date,kind\n2025-01-01,holiday\n").unwrap();
    let output = sla_ledger(
        &repo_root(),
        &[
            "validate",
            "--data",
            data.to_str().unwrap(),
            "--months",
            "2026-01",
            "--as-of",
            "2026-04-30",
            "--calendar",
            calendar.to_str().unwrap(),
        ],
    );
    assert_exit(&output, 1);
    let stdout = text(&output.stdout);
    let expected = [
        "`calls/b/broken.parquet`: is not a readable Parquet file",
        "`subscriptions.csv` line 3 column `start_date`: `2026-02-30`",
        "`billing.csv` line 2 column `period`: `2026-13`",
        "`exemptions/error_codes.csv` line 3 column `clause`: `6.1`",
        "`exemptions/windows.csv` line 4 column `end`: `end` 2026-01-20T20:00:00",
        "`claims.csv` line 6 column `submitted_at`: `2026-02-10T10:00:00` is not an RFC 3339 timestamp with an offset",
        "does not cover 2026, needed for the claim window",
    ];
    for needle in expected {
        assert!(
            stdout.contains(needle),
            "validate did not report `{needle}`\n--- stdout\n{stdout}\n--- stderr\n{}",
            text(&output.stderr)
        );
    }
    assert!(
        stdout.contains(&format!("problems: {}\n", expected.len())),
        "expected exactly {} problems\n{stdout}",
        expected.len()
    );
    // Every problem comes with what was expected or a hint.
    assert!(
        stdout.contains("hint: clauses are written `5.N`"),
        "{stdout}"
    );
    // Row defects are counted, not reported as problems.
    assert!(stdout.contains("billing.csv bad_amount: 1"), "{stdout}");
    assert!(
        text(&output.stderr).contains("7 problem(s)"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn run_on_the_same_broken_data_fails_on_the_first_problem_as_before() {
    let dir = TempDir::new("validate-run");
    let data = broken_data(&dir);
    let out = dir.join("out");
    let output = run_ledger(&data, &out, "2026-01", "2026-04-30", &[]);
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line\n{stderr}"));
    assert!(
        error.starts_with("error: `calls/b/broken.parquet`: is not a readable Parquet file"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(!out.exists());
}

#[test]
fn validate_passes_clean_data_and_writes_nothing() {
    let dir = TempDir::new("validate-clean");
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    let before = entries(&dir.path);
    let output = sla_ledger(
        &repo_root(),
        &[
            "validate",
            "--data",
            data.to_str().unwrap(),
            "--months",
            "2026-01",
            "--as-of",
            "2026-04-30",
        ],
    );
    assert_success(&output);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("no problems found"), "{stdout}");
    assert!(
        stdout.contains("would be quarantined: 2 row(s)"),
        "{stdout}"
    );
    assert_eq!(entries(&dir.path), before, "validate wrote something");

    // --strict turns the quarantined rows into a problem, as a strict run would fail.
    let strict = sla_ledger(
        &repo_root(),
        &[
            "validate",
            "--data",
            data.to_str().unwrap(),
            "--months",
            "2026-01",
            "--as-of",
            "2026-04-30",
            "--strict",
        ],
    );
    assert_exit(&strict, 1);
    assert!(
        text(&strict.stdout).contains("--strict: 2 quarantined row(s)"),
        "{}",
        text(&strict.stdout)
    );
}
