//! Finance reconciliation (`sla-ledger diff`) and the month-to-date error budget
//! (`at_risk.csv`), end to end through the binary on the `sla-rules` golden data.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::support::*;

fn sla_rules_data(dir: &TempDir, name: &str) -> PathBuf {
    let data = dir.join(name);
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    data
}

fn run(data: &Path, out: &Path, as_of: &str) -> String {
    let output = run_ledger(data, out, "2026-01", as_of, &[]);
    assert_success(&output);
    text(&output.stdout)
}

fn diff(prior: &Path, current: &Path, out: &Path) -> String {
    let output = sla_ledger(
        &repo_root(),
        &[
            "diff",
            "--prior",
            prior.to_str().unwrap(),
            "--current",
            current.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_success(&output);
    text(&output.stdout)
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The idempotency key as documented, computed independently of the program.
fn expected_key(
    customer: i64,
    month: &str,
    currency: &str,
    prior: &Path,
    current: &Path,
) -> String {
    let text = format!(
        "{customer}|{month}|{currency}|{}|{}",
        sha256_hex(&prior.join("ledger.csv")),
        sha256_hex(&current.join("ledger.csv"))
    );
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const HEADER: &str =
    "customer_id,service_month,prior_payout,current_payout,delta,currency,reason,idempotency_key\n";

/// A baseline run, a changed copy of its data, the rerun and the diff; returns the diff folder.
fn rerun_and_diff(dir: &TempDir, change: impl FnOnce(&Path)) -> (PathBuf, PathBuf, PathBuf) {
    let data = sla_rules_data(dir, "data");
    let prior = dir.join("prior");
    run(&data, &prior, "2026-04-30");
    let later = dir.join("data-later");
    copy_dir(&data, &later);
    change(&later);
    let current = dir.join("current");
    run(&later, &current, "2026-04-30");
    let adjustments = dir.join("adjustments");
    diff(&prior, &current, &adjustments);
    (prior, current, adjustments)
}

#[test]
fn diff_late_arriving_logs_give_a_counts_delta() {
    let dir = TempDir::new("diff-late-logs");
    let (prior, current, out) = rerun_and_diff(&dir, |data| {
        // Nine more InternalErrors of customer 2 in January arrive in a new partition:
        // 10 unavailable of 208 = 95.19 % → 30 % of 1000.05 = 300.015 → 300.02 (was 100.01).
        let late: Vec<CallRow> = (0..9)
            .map(|i| CallRow {
                request_id: Some(format!("c2-late-{i}")),
                customer_id: Some(2),
                ts: Some(1_767_672_000_000_000_000 + i * 1_000_000_000), // 2026-01-06T12:00+08:00
                api: Some("DescribeTelCdr".into()),
                status: Some("system_error".into()),
                error_code: Some("InternalError".into()),
            })
            .collect();
        write_calls_parquet(
            &data.join("calls/late/part-9.parquet"),
            &late,
            TimeUnit::Milliseconds,
            true,
        );
    });
    let key = expected_key(2, "2026-01", "CNY", &prior, &current);
    assert_eq!(
        fs::read_to_string(out.join("adjustments.csv")).unwrap(),
        format!("{HEADER}2,2026-01,100.01,300.02,200.01,CNY,counts,{key}\n")
    );
    assert_eq!(
        fs::read_to_string(out.join("adjustment_totals.csv")).unwrap(),
        "currency,rows,prior_payout,current_payout,delta\nCNY,1,100.01,300.02,200.01\n"
    );
    let current_ledger = fs::read_to_string(current.join("ledger.csv")).unwrap();
    assert!(
        current_ledger.contains("\n2,2026-01,2026-01-01,2026-01-31,false,208,10,0,10,95.1923,0.30,CNY,1000.05,300.02,valid,T2-ok,"),
        "{current_ledger}"
    );
}

#[test]
fn diff_a_reclassified_incident_gives_an_exemptions_delta() {
    let dir = TempDir::new("diff-reclassified");
    let (prior, current, out) = rerun_and_diff(&dir, |data| {
        // Incident review exempts customer 2's only system error: 100 % → nothing owed.
        let path = data.join("exemptions/calls.csv");
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("c2-err-0,5.10\n");
        fs::write(path, text).unwrap();
    });
    let key = expected_key(2, "2026-01", "CNY", &prior, &current);
    assert_eq!(
        fs::read_to_string(out.join("adjustments.csv")).unwrap(),
        format!("{HEADER}2,2026-01,100.01,0.00,-100.01,CNY,exemptions,{key}\n")
    );
}

#[test]
fn diff_a_late_valid_claim_pays_its_compensation() {
    let dir = TempDir::new("diff-late-claim");
    let (prior, current, out) = rerun_and_diff(&dir, |data| {
        // Customer 5 is owed 75.00 (30 % of 250.00) and had forfeited it; a ticket filed inside
        // the window (2026-02-07..2026-04-01) is found later.
        let path = data.join("claims.csv");
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("T5-late,5,2026-01,2026-03-20T10:00:00+08:00,ticket\n");
        fs::write(path, text).unwrap();
    });
    let key = expected_key(5, "2026-01", "CNY", &prior, &current);
    assert_eq!(
        fs::read_to_string(out.join("adjustments.csv")).unwrap(),
        format!("{HEADER}5,2026-01,0.00,75.00,75.00,CNY,claim,{key}\n")
    );
    let frame = ParquetReader::new(fs::File::open(out.join("adjustments.parquet")).unwrap())
        .finish()
        .unwrap();
    let delta = frame.column("delta").unwrap();
    assert_eq!(delta.dtype(), &DataType::Decimal(18, 2));
    assert_eq!(delta.get(0).unwrap().to_string(), "75.00");
}

#[test]
fn diff_of_a_ledger_against_itself_is_empty_and_keys_are_stable() {
    let dir = TempDir::new("diff-self");
    let data = sla_rules_data(&dir, "data");
    let (a, b) = (dir.join("a"), dir.join("b"));
    run(&data, &a, "2026-04-30");
    let stdout = diff(&a, &a, &dir.join("self"));
    assert_eq!(
        fs::read_to_string(dir.join("self/adjustments.csv")).unwrap(),
        HEADER
    );
    assert!(stdout.contains("0 adjustment(s)"), "{stdout}");

    // As of 2026-01-20 every month is provisional and pending; the final run pays 2 and 6.
    run(&data, &b, "2026-01-20");
    let first = diff(&b, &a, &dir.join("d1"));
    diff(&b, &a, &dir.join("d2"));
    let d1 = fs::read_to_string(dir.join("d1/adjustments.csv")).unwrap();
    assert_eq!(
        d1,
        fs::read_to_string(dir.join("d2/adjustments.csv")).unwrap()
    );
    let keys: Vec<String> = [(2, "CNY"), (4, "USD"), (5, "CNY"), (6, "CNY")]
        .iter()
        .map(|(c, cur)| expected_key(*c, "2026-01", cur, &b, &a))
        .collect();
    assert_eq!(
        d1,
        format!(
            "{HEADER}\
             2,2026-01,0.00,100.01,100.01,CNY,provisional+claim,{}\n\
             4,2026-01,0.00,0.00,0.00,USD,provisional+claim,{}\n\
             5,2026-01,0.00,0.00,0.00,CNY,provisional+claim,{}\n\
             6,2026-01,0.00,50.00,50.00,CNY,provisional+claim,{}\n",
            keys[0], keys[1], keys[2], keys[3]
        )
    );
    assert!(
        first.contains("CNY: 3 row(s), paid before 0.00, due now 150.01, delta 150.01"),
        "{first}"
    );
    assert!(
        first.contains("USD: 1 row(s), paid before 0.00, due now 0.00, delta 0.00"),
        "{first}"
    );
}

#[test]
fn diff_refuses_a_ledger_changed_after_its_run() {
    let dir = TempDir::new("diff-tampered");
    let data = sla_rules_data(&dir, "data");
    let a = dir.join("a");
    run(&data, &a, "2026-04-30");
    let ledger = a.join("ledger.csv");
    let edited = fs::read_to_string(&ledger)
        .unwrap()
        .replace(",100.01,ok", ",1000.01,ok");
    fs::write(&ledger, edited).unwrap();
    let output = sla_ledger(
        &repo_root(),
        &[
            "diff",
            "--prior",
            a.to_str().unwrap(),
            "--current",
            a.to_str().unwrap(),
            "--out",
            dir.join("d").to_str().unwrap(),
        ],
    );
    assert_exit(&output, 1);
    assert!(text(&output.stderr).contains("manifest recorded"));
    assert!(!dir.join("d").exists());
}

#[test]
fn at_risk_lists_the_error_budget_of_every_provisional_month() {
    let dir = TempDir::new("at-risk");
    let data = sla_rules_data(&dir, "data");
    let out = dir.join("out");
    // As of 2026-01-20 every January row is provisional; counts do not depend on as-of.
    let stdout = run(&data, &out, "2026-01-20");
    let expected = "\
customer_id,service_month,period_end,total_calls,unavailable_calls,availability_pct,bound_pct,rate_below_bound,budget_calls,remaining_calls
1,2026-01,2026-01-31,200,1,99.5000,99.50,0.10,1,0
1,2026-01,2026-01-31,200,1,99.5000,99.00,0.30,2,1
1,2026-01,2026-01-31,200,1,99.5000,95.00,0.50,10,9
2,2026-01,2026-01-31,199,1,99.4974,99.50,0.10,0,-1
2,2026-01,2026-01-31,199,1,99.4974,99.00,0.30,1,0
2,2026-01,2026-01-31,199,1,99.4974,95.00,0.50,9,8
3,2026-01,2026-01-31,100,2,98.0000,99.50,0.10,0,-2
3,2026-01,2026-01-31,100,2,98.0000,99.00,0.30,1,-1
3,2026-01,2026-01-31,100,2,98.0000,95.00,0.50,5,3
4,2026-01,2026-01-31,109,1,99.0825,99.50,0.10,0,-1
4,2026-01,2026-01-31,109,1,99.0825,99.00,0.30,1,0
4,2026-01,2026-01-31,109,1,99.0825,95.00,0.50,5,4
5,2026-01,2026-01-31,52,1,98.0769,99.50,0.10,0,-1
5,2026-01,2026-01-31,52,1,98.0769,99.00,0.30,0,-1
5,2026-01,2026-01-31,52,1,98.0769,95.00,0.50,2,1
6,2026-01,2026-01-31,5,1,80.0000,99.50,0.10,0,-1
6,2026-01,2026-01-31,5,1,80.0000,99.00,0.30,0,-1
6,2026-01,2026-01-31,5,1,80.0000,95.00,0.50,0,-1
7,2026-01,2026-01-31,10,0,100.0000,99.50,0.10,0,0
7,2026-01,2026-01-31,10,0,100.0000,99.00,0.30,0,0
7,2026-01,2026-01-31,10,0,100.0000,95.00,0.50,0,0
";
    assert_eq!(
        fs::read_to_string(out.join("at_risk.csv")).unwrap(),
        expected
    );
    for line in [
        "at risk (provisional, see at_risk.csv): 7 month(s) below 99.50% or within 10% of their error budget",
        "customer 1 2026-01: 1 unavailable of 200 (budget 1), 0 call(s) left before 99.50%",
        "customer 2 2026-01: 1 unavailable of 199 (budget 0), below 99.50% by 1 call(s)",
        "customer 3 2026-01: 2 unavailable of 100 (budget 0), below 99.50% by 2 call(s)",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in\n{stdout}");
    }
    let manifest = fs::read_to_string(out.join("manifest.json")).unwrap();
    let at_risk_sha = sha256_hex(&out.join("at_risk.csv"));
    assert!(manifest.contains(&at_risk_sha), "{manifest}");

    // A closed month has no at-risk rows, only the header.
    let closed = dir.join("closed");
    let stdout = run(&data, &closed, "2026-04-30");
    assert!(!stdout.contains("at risk"), "{stdout}");
    assert_eq!(
        fs::read_to_string(closed.join("at_risk.csv")).unwrap(),
        expected.lines().next().unwrap().to_string() + "\n"
    );
}
