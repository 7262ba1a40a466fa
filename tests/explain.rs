//! `sla-ledger explain` must give the very numbers `run` writes: checked against the expected
//! ledgers of the shared conformance cases, and in full on the `sla-rules` golden case.

use std::path::Path;

use crate::support::*;

/// The case's run flags that `explain` shares (`--months`/`--customers` are replaced by
/// `--month`/`--customer`).
fn shared_flags(args: &str) -> Vec<String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let mut kept = Vec::new();
    for pair in words.chunks(2) {
        if matches!(pair[0], "--as-of" | "--calendar" | "--policy" | "--job") {
            kept.extend(pair.iter().map(|w| w.to_string()));
        }
    }
    kept
}

fn explain_json(
    cwd: &Path,
    data: &str,
    flags: &[String],
    customer: &str,
    month: &str,
) -> serde_json::Value {
    let mut argv: Vec<&str> = vec![
        "explain",
        "--data",
        data,
        "--customer",
        customer,
        "--month",
        month,
        "--format",
        "json",
    ];
    argv.extend(flags.iter().map(String::as_str));
    let output = sla_ledger(cwd, &argv);
    assert_success(&output);
    serde_json::from_slice(&output.stdout).expect("explain --format json prints JSON")
}

/// Picks rows that exercise every branch: the first, each claim status, an error row, exempt
/// errors, the 50 % tier and a partial month, at most one of each; a small ledger entirely.
fn chosen_rows(ledger: &str) -> Vec<&str> {
    let rows: Vec<&str> = ledger.lines().skip(1).collect();
    if rows.len() <= 12 {
        return rows;
    }
    let cell = |row: &str, i: usize| row.split(',').nth(i).unwrap().to_string();
    type Pick = Box<dyn Fn(&str) -> bool>;
    let wanted: [Pick; 9] = [
        Box::new(|_| true),
        Box::new(|r| r.ends_with(",error")),
        Box::new(|r| r.contains(",pending,")),
        Box::new(|r| r.contains(",valid,")),
        Box::new(|r| r.contains(",open,")),
        Box::new(|r| r.contains(",forfeited,")),
        Box::new(move |r| cell(r, 7) != "0"),
        Box::new(move |r| cell(r, 10) == "0.50"),
        Box::new(move |r| !cell(r, 2).ends_with("-01")),
    ];
    let mut chosen: Vec<&str> = wanted
        .iter()
        .filter_map(|f| rows.iter().copied().find(|r| f(r)))
        .collect();
    chosen.sort();
    chosen.dedup();
    chosen
}

#[test]
fn explain_gives_the_expected_ledger_line_on_every_conformance_case() {
    let Some(cases) = conformance_cases() else {
        eprintln!(
            "conformance folder `../shared/conformance` is absent: explain was not checked against it"
        );
        return;
    };
    let (mut errors, mut pending, mut valid) = (0, 0, 0);
    for case in cases {
        let flags = shared_flags(&std::fs::read_to_string(case.join("args")).unwrap());
        let expected = std::fs::read_to_string(case.join("expected/ledger.csv")).unwrap();
        let rows = chosen_rows(&expected);
        assert!(rows.len() >= 4, "{}: too few distinct rows", case.display());
        for row in rows {
            let cells: Vec<&str> = row.split(',').collect();
            let json = explain_json(&case, "data", &flags, cells[0], cells[1]);
            assert_eq!(
                json["ledger_csv"].as_str().unwrap(),
                row,
                "{}: explain disagrees with the expected ledger",
                case.display()
            );
            // The sections carry the same numbers as the line.
            assert_eq!(json["availability"]["total_calls"].to_string(), cells[5]);
            assert_eq!(
                json["availability"]["unavailable_calls"].to_string(),
                cells[8]
            );
            assert_eq!(json["payout"].as_str().unwrap(), cells[18]);
            let listed = json["system_errors"].as_array().unwrap().len().to_string();
            assert_eq!(listed, cells[6], "one system error line per system error");
            errors += usize::from(row.ends_with(",error"));
            pending += usize::from(row.contains(",pending,"));
            valid += usize::from(row.contains(",valid,"));
        }
        eprintln!(
            "explain agrees with conformance case {}",
            case.file_name().unwrap().to_string_lossy()
        );
    }
    assert!(
        errors > 0 && pending > 0 && valid > 0,
        "{errors} error, {pending} pending, {valid} valid rows explained"
    );
}

#[test]
fn explain_shows_why_on_the_sla_rules_case() {
    let dir = TempDir::new("explain-golden");
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    let data = data.to_str().unwrap().to_string();
    let flags = vec!["--as-of".to_string(), "2026-04-30".to_string()];
    let expected =
        std::fs::read_to_string(repo_root().join("tests/golden/sla-rules/expected/ledger.csv"))
            .unwrap();

    // Customer 3: every exemption source, and an unannounced window that exempts nothing.
    let json = explain_json(&repo_root(), &data, &flags, "3", "2026-01");
    assert_eq!(
        json["ledger_csv"].as_str().unwrap(),
        expected.lines().nth(3).unwrap()
    );
    assert_eq!(
        json["exempt_by_clause"],
        serde_json::json!({"5.12": 1, "5.6": 1, "5.9": 1})
    );
    let errors = json["system_errors"].as_array().unwrap();
    let unannounced: Vec<_> = errors
        .iter()
        .filter(|e| !e["unannounced_windows"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(unannounced.len(), 1);
    assert!(unannounced[0]["exempt_under"].is_null());

    // Customer 2: the exact tier comparison, the rounding, and the claims one by one.
    let output = sla_ledger(
        &repo_root(),
        &[
            "explain",
            "--data",
            &data,
            "--customer",
            "2",
            "--month",
            "2026-01",
            "--as-of",
            "2026-04-30",
        ],
    );
    assert_success(&output);
    let shown = text(&output.stdout);
    for line in [
        "  1 unavailable / 199 counted: 198 × 100 < 99.50 × 199 → availability ≈99.4974 % < 99.50 %",
        "  1 unavailable / 199 counted: 198 × 100 >= 99.00 × 199 → availability ≈99.4974 % >= 99.00 % → rate 0.10",
        "compensation (SLA 3.1): 1000.05 × 0.10 = 100.005 → rounded half away from zero, to 2 decimals → 100.01",
        "  T2-early by ticket submitted 2026-02-06T15:59:59Z (local 2026-02-06): submitted 2026-02-06, before the window opens on 2026-02-07",
        "payout: 100.01 (ok)",
    ] {
        assert!(shown.contains(line), "missing `{line}` in\n{shown}");
    }

    // Customer 6: a burst the customer had announced does not exempt.
    let json = explain_json(&repo_root(), &data, &flags, "6", "2026-01");
    let error = &json["system_errors"][0];
    assert_eq!(error["calls_in_second"], 5);
    assert!(error["exempt_under"].is_null());
    assert!(!error["burst_suspended_by_notice"].is_null());

    // Customer 5: calls before and between its subscriptions are not counted.
    let json = explain_json(&repo_root(), &data, &flags, "5", "2026-01");
    assert_eq!(json["calls"]["outside_coverage_in_month"], 2);
    assert_eq!(
        json["calls"]["conflicting_duplicates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json["ledger_csv"].as_str().unwrap(),
        expected.lines().nth(5).unwrap()
    );

    let missing = sla_ledger(
        &repo_root(),
        &[
            "explain",
            "--data",
            &data,
            "--customer",
            "99",
            "--month",
            "2026-01",
            "--as-of",
            "2026-04-30",
        ],
    );
    assert_exit(&missing, 1);
    assert!(text(&missing.stderr).contains("customer 99 has no service month 2026-01"));
}

/// `explain` with a run's command line plus `--customer` and `--month`.
fn explain_run_line(extra: &[&str]) -> std::process::Output {
    let dir = TempDir::new("explain-run-line");
    let out = dir.join("out");
    let mut argv = vec![
        "explain",
        "--job",
        "jobs/month-end.toml",
        "--out",
        out.to_str().unwrap(),
        "--force",
        "--threads",
        "2",
        "--customer",
        "100000000",
        "--month",
        "2026-02",
    ];
    argv.extend(extra);
    let output = sla_ledger(&repo_root(), &argv);
    assert!(!out.exists(), "explain wrote its --out");
    output
}

#[test]
fn a_run_command_line_with_customer_and_month_added_is_explained() {
    let plain = sla_ledger(
        &repo_root(),
        &[
            "explain",
            "--job",
            "jobs/month-end.toml",
            "--customer",
            "100000000",
            "--month",
            "2026-02",
        ],
    );
    assert_success(&plain);
    // SLA 5: each clause is shown with its titles from the policy, in Chinese and English.
    assert!(
        text(&plain.stdout).contains(
            "exempt under 5.12 预先通知的系统维护 / system maintenance notified in advance"
        ),
        "{}",
        text(&plain.stdout)
    );
    let copied = explain_run_line(&[
        "--months",
        "2026-01..2026-03",
        "--customers",
        "100000000,100007919",
    ]);
    assert_success(&copied);
    assert_eq!(text(&copied.stdout), text(&plain.stdout));
    assert!(
        text(&copied.stderr).contains("--out is ignored"),
        "{}",
        text(&copied.stderr)
    );
}

#[test]
fn a_copied_months_or_customers_flag_must_contain_what_is_explained() {
    let outside = explain_run_line(&["--months", "2026-03"]);
    assert_exit(&outside, 2);
    let stderr = text(&outside.stderr);
    assert!(
        stderr.contains("--month 2026-02 is outside --months `2026-03`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    let other = explain_run_line(&["--customers", "100007919"]);
    assert_exit(&other, 2);
    let stderr = text(&other.stderr);
    assert!(
        stderr.contains("--customer 100000000 is not among --customers 100007919"),
        "{stderr}"
    );
}

#[test]
fn spec2_explain_lists_a_request_id_shared_with_another_customer_and_counts_it_where_kept() {
    let dir = TempDir::new("explain-shared-ids");
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    let data_arg = data.to_str().unwrap().to_string();
    let flags = vec!["--as-of".to_string(), "2026-04-30".to_string()];
    let before = explain_json(&repo_root(), &data_arg, &flags, "1", "2026-01");

    // 2026-01-12T10:00:00+08:00, and a month later.
    let (t, later) = (1_768_183_200_000_000_000, 1_770_861_600_000_000_000);
    let row = |id: &str, customer: i64, ts: i64, status: &str| CallRow {
        request_id: Some(id.to_string()),
        customer_id: Some(customer),
        ts: Some(ts),
        api: Some("DescribeTelCdr".to_string()),
        status: Some(status.to_string()),
        error_code: None,
    };
    let second = 1_000_000_000;
    let rows = [
        // Customer 2's earlier copy is kept; customer 1's copy is not one of its calls.
        row("shared-kept-by-2", 2, t, "success"),
        row("shared-kept-by-2", 1, t + second, "success"),
        // Customer 1's earlier copy is kept.
        row("shared-kept-by-1", 1, t, "client_error"),
        row("shared-kept-by-1", 2, t + second, "success"),
        // An exact re-delivery, a defective row, a call of another month.
        row("own-twice", 1, t, "success"),
        row("own-twice", 1, t, "success"),
        row("defective", 1, t, "timeout"),
        row("next-month", 1, later, "success"),
    ];
    write_calls_parquet(
        &data.join("calls/shared.parquet"),
        &rows,
        polars::prelude::TimeUnit::Nanoseconds,
        true,
    );
    let after = explain_json(&repo_root(), &data_arg, &flags, "1", "2026-01");
    let (was, now) = (&before["calls"], &after["calls"]);
    let grew = |field: &str| now[field].as_u64().unwrap() - was[field].as_u64().unwrap();
    assert_eq!(grew("valid_rows"), 5);
    assert_eq!(grew("unique_calls"), 3);
    assert_eq!(grew("duplicate_rows"), 2);
    assert_eq!(grew("other_months"), 1);
    assert_eq!(grew("counted"), 2);
    let by_status = |calls: &serde_json::Value, status: &str| {
        calls["counted_by_status"][status].as_u64().unwrap_or(0)
    };
    assert_eq!(
        by_status(now, "client_error") - by_status(was, "client_error"),
        1
    );
    assert_eq!(by_status(now, "success") - by_status(was, "success"), 1);
    let details = |calls: &serde_json::Value, list: &str| -> Vec<String> {
        let lines = calls[list].as_array().unwrap();
        lines
            .iter()
            .map(|l| l["detail"].as_str().unwrap().to_string())
            .collect()
    };
    let conflicts = details(now, "conflicting_duplicates");
    assert_eq!(
        conflicts.len(),
        details(was, "conflicting_duplicates").len() + 2
    );
    for (id, kept_by) in [("shared-kept-by-2", 2), ("shared-kept-by-1", 1)] {
        assert!(
            conflicts.iter().any(
                |d| d.starts_with(&format!("request_id {id}: 2 differing rows"))
                    && d.contains(&format!("customer_id={kept_by} "))
            ),
            "{conflicts:?}"
        );
    }
    let quarantined = details(now, "quarantined");
    assert_eq!(quarantined.len(), details(was, "quarantined").len() + 1);
    assert!(quarantined
        .iter()
        .any(|d| d.starts_with("request_id defective: status `timeout`")));

    // The line explained is the line `run` writes.
    let out = dir.join("out");
    assert_success(&run_ledger(&data, &out, "2026-01", "2026-04-30", &[]));
    let ledger = std::fs::read_to_string(out.join("ledger.csv")).unwrap();
    let line = ledger
        .lines()
        .find(|l| l.starts_with("1,2026-01,"))
        .unwrap();
    assert_eq!(after["ledger_csv"].as_str().unwrap(), line);
}
