//! The payout journal (issue 16): `post`, `journal balance|history|verify|export`, and the
//! scope rule of `diff` and `post`, end to end through the binary on real SQLite files in
//! temporary folders. Amounts are worked by hand from the `sla-rules` golden case:
//! customer 2 is owed 10 % of 1000.05 = 100.005 → 100.01, customer 6 50 % of 99.99 = 49.995 →
//! 50.00; every other customer is paid 0.00.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use polars::prelude::*;

use crate::support::*;

/// The golden data, a full run of it as of 2026-04-30, and the journal path beside them.
struct Case {
    dir: TempDir,
    data: PathBuf,
    journal: PathBuf,
}

impl Case {
    fn new(name: &str) -> Case {
        let dir = TempDir::new(name);
        let data = dir.join("data");
        materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
        let journal = dir.join("payouts.db");
        Case { dir, data, journal }
    }

    /// `run` of `data` for January as of `as_of`, into `dir/NAME`.
    fn run(&self, data: &Path, name: &str, as_of: &str, extra: &[&str]) -> PathBuf {
        let out = self.dir.join(name);
        assert_success(&run_ledger(data, &out, "2026-01", as_of, extra));
        out
    }

    /// A copy of the data with late logs for customer 2 and customer 6's incident reviewed.
    fn later_data(&self) -> PathBuf {
        let later = self.dir.join("data-later");
        copy_dir(&self.data, &later);
        // Nine more InternalErrors of customer 2 in January: 10 unavailable of 208 = 95.19 %
        // → 30 % of 1000.05 = 300.015 → 300.02.
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
            &later.join("calls/late/part-9.parquet"),
            &late,
            TimeUnit::Milliseconds,
            true,
        );
        // Incident review exempts customer 6's only system error (SLA 5.10): 100 % → 0.00.
        let path = later.join("exemptions/calls.csv");
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("c6-burst-err-0,5.10\n");
        fs::write(path, text).unwrap();
        later
    }

    fn post(&self, run: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "post",
            "--journal",
            self.journal.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sla_ledger(&repo_root(), &args)
    }

    fn posted(&self, run: &Path, extra: &[&str]) -> String {
        let output = self.post(run, extra);
        assert_success(&output);
        text(&output.stdout)
    }

    fn journal(&self, command: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "journal",
            command,
            "--journal",
            self.journal.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sla_ledger(&repo_root(), &args)
    }

    /// `journal balance` as CSV, without its header.
    fn balances(&self) -> String {
        let output = self.journal("balance", &[]);
        assert_success(&output);
        let stdout = text(&output.stdout);
        let (header, rows) = stdout.split_once('\n').unwrap();
        assert_eq!(header, "customer_id,service_month,currency,balance");
        rows.to_string()
    }

    fn batches(&self) -> usize {
        let output = self.journal("history", &[]);
        assert_success(&output);
        text(&output.stdout).lines().count() - 1
    }

    fn assert_verifies(&self) {
        let output = self.journal("verify", &[]);
        assert_success(&output);
        assert!(
            text(&output.stdout).contains("the hash chain and every balance match"),
            "{}",
            text(&output.stdout)
        );
    }

    /// Entries of batch `since` and later: `customer,month,currency,amount,reason,key` lines.
    fn exported(&self, since: u64, name: &str) -> Vec<String> {
        let out = self.dir.join(name);
        let since = since.to_string();
        let output = self.journal(
            "export",
            &["--since", &since, "--out", out.to_str().unwrap()],
        );
        assert_success(&output);
        let csv = fs::read_to_string(out.join("entries.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("batch,customer_id,service_month,currency,amount,balance_after,reason,idempotency_key")
        );
        lines
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                [c[1], c[2], c[3], c[4], c[6], c[7]].join(",")
            })
            .collect()
    }

    fn diff(&self, prior: &Path, current: &Path, name: &str, extra: &[&str]) -> Output {
        let out = self.dir.join(name);
        let mut args = vec![
            "diff",
            "--prior",
            prior.to_str().unwrap(),
            "--current",
            current.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        sla_ledger(&repo_root(), &args)
    }
}

/// `diff`'s adjustments with money: `customer,month,currency,delta,key` lines.
fn diff_deltas(out: &Path) -> Vec<String> {
    let csv = fs::read_to_string(out.join("adjustments.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|c| c[4] != "0.00")
        .map(|c| [c[0], c[1], c[5], c[4], c[7]].join(","))
        .collect()
}

/// Drops the `reason` column of `exported` lines, to compare them with `diff_deltas`.
fn without_reason(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let mut c: Vec<&str> = l.split(',').collect();
            c.remove(4);
            c.join(",")
        })
        .collect()
}

/// Every ledger row with a currency: `customer,month,currency,payout`.
fn ledger_payouts(run: &Path) -> Vec<String> {
    let csv = fs::read_to_string(run.join("ledger.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|c| !c[11].is_empty())
        .map(|c| [c[0], c[1], c[11], c[18]].join(","))
        .collect()
}

/// A balance CSV line's value for a cell, 0.00 when the journal never booked it.
fn balance_of(balances: &str, cell: &str) -> String {
    balances
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{cell},")).map(str::to_string))
        .unwrap_or_else(|| "0.00".to_string())
}

fn stderr_has(output: &Output, needles: &[&str]) {
    let stderr = text(&output.stderr);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks `{needle}`:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn issue16_test1_a_posted_rerun_books_diffs_deltas_and_leaves_the_reruns_payouts() {
    let case = Case::new("journal-rerun");
    let prior = case.run(&case.data, "month-end", "2026-04-30", &[]);
    let first = case.posted(&prior, &["--note", "April month end"]);
    assert!(first.contains("batch 1 of"), "{first}");
    assert!(first.contains("CNY: 2 entries, net 150.01"), "{first}");

    let current = case.run(&case.later_data(), "rerun", "2026-05-31", &[]);
    let second = case.posted(&current, &[]);
    assert!(second.contains("batch 2 of"), "{second}");
    assert!(second.contains("CNY: 2 entries, net 150.01"), "{second}");

    // Customer 2: 300.02 - 100.01 = +200.01; customer 6: 0.00 - 50.00 = -50.00.
    let booked = case.exported(2, "export");
    let amounts: Vec<String> = booked
        .iter()
        .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        amounts,
        [
            "2,2026-01,CNY,200.01,correction",
            "6,2026-01,CNY,-50.00,correction"
        ]
    );
    assert_success(&case.diff(&prior, &current, "adjustments", &[]));
    assert_eq!(
        without_reason(&booked),
        diff_deltas(&case.dir.join("adjustments"))
    );

    let balances = case.balances();
    assert_eq!(balances, "2,2026-01,CNY,300.02\n6,2026-01,CNY,0.00\n");
    for row in ledger_payouts(&current) {
        let (cell, payout) = row.rsplit_once(',').unwrap();
        assert_eq!(balance_of(&balances, cell), payout, "balance of {cell}");
    }
    case.assert_verifies();
}

#[test]
fn issue16_test2_the_same_run_posted_twice_is_one_batch_with_unchanged_balances() {
    let case = Case::new("journal-twice");
    let run = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&run, &[]);
    let before = case.balances();
    assert_eq!(before, "2,2026-01,CNY,100.01\n6,2026-01,CNY,50.00\n");

    let again = case.post(&run, &[]);
    assert_exit(&again, 0);
    let stdout = text(&again.stdout);
    assert!(
        stdout.contains("is already booked in batch 1 of"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing booked"), "{stdout}");
    assert_eq!(case.batches(), 1);
    assert_eq!(case.balances(), before);
    case.assert_verifies();
}

#[test]
fn issue16_test3_a_backdated_run_is_refused_then_accepted_with_the_flag() {
    let case = Case::new("journal-backdated");
    let early = case.run(&case.data, "april", "2026-04-30", &[]);
    let late = case.run(&case.later_data(), "may", "2026-05-31", &[]);
    case.posted(&late, &[]);

    let refused = case.post(&early, &[]);
    assert_exit(&refused, 1);
    stderr_has(
        &refused,
        &[
            "is as of 2026-04-30, earlier than batch 1 (as of 2026-05-31), which booked overlapping months",
            "would undo later corrections",
            "hint: post a run as of 2026-05-31 or later, or pass `--allow-backdated`",
        ],
    );
    assert_eq!(case.batches(), 1);
    assert_eq!(case.balances(), "2,2026-01,CNY,300.02\n");

    let accepted = case.posted(&early, &["--allow-backdated"]);
    assert!(accepted.contains("batch 2 of"), "{accepted}");
    // Back to April's payouts: 300.02 - 200.01 = 100.01, and 50.00 booked for customer 6.
    assert_eq!(
        case.balances(),
        "2,2026-01,CNY,100.01\n6,2026-01,CNY,50.00\n"
    );
    case.assert_verifies();
}

/// Runs one SQL statement on the journal from outside the program, as an operator with an
/// SQLite tool would. Done through `rusqlite` rather than the `sqlite3` command-line tool,
/// which a fresh machine may lack; the file is changed all the same.
fn tamper(journal: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(journal).unwrap();
    assert_eq!(conn.execute(sql, []).unwrap(), 1, "{sql}");
}

#[test]
fn issue16_test4_a_row_changed_with_an_sqlite_tool_is_named_by_verify() {
    let case = Case::new("journal-tampered");
    let prior = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&prior, &[]);
    case.posted(
        &case.run(&case.later_data(), "rerun", "2026-05-31", &[]),
        &[],
    );
    case.assert_verifies();
    let pristine = case.dir.join("pristine.db");
    fs::copy(&case.journal, &pristine).unwrap();

    tamper(
        &case.journal,
        "UPDATE entries SET amount_minor = amount_minor + 100000 WHERE batch = 2 AND customer_id = 2",
    );
    let output = case.journal("verify", &[]);
    assert_exit(&output, 1);
    stderr_has(
        &output,
        &[
            "batch 2 entry 1 (customer 2, 2026-01, CNY) does not match its recorded SHA-256",
            "it was changed after it was posted",
            "hint: restore the journal from a backup",
        ],
    );
    // Nothing is booked onto, or leaves, a journal that does not verify.
    let post = case.post(
        &case.run(&case.data, "third", "2026-06-30", &["--customers", "1"]),
        &[],
    );
    assert_exit(&post, 1);
    stderr_has(&post, &["nothing was booked"]);
    let export = case.journal(
        "export",
        &[
            "--since",
            "1",
            "--out",
            case.dir.join("x").to_str().unwrap(),
        ],
    );
    assert_exit(&export, 1);
    assert!(!case.dir.join("x").exists());

    // A batch's own field (its note) changed: the batch is named.
    fs::copy(&pristine, &case.journal).unwrap();
    tamper(
        &case.journal,
        "UPDATE batches SET note = 'paid' WHERE number = 1",
    );
    let output = case.journal("verify", &[]);
    assert_exit(&output, 1);
    stderr_has(&output, &["batch 1 does not match its recorded SHA-256"]);

    // A balance edited without an entry.
    fs::copy(&pristine, &case.journal).unwrap();
    tamper(
        &case.journal,
        "UPDATE balances SET amount_minor = 1 WHERE customer_id = 6",
    );
    let output = case.journal("verify", &[]);
    assert_exit(&output, 1);
    stderr_has(
        &output,
        &["the balance of customer 6, 2026-01, CNY is 0.01; its entries add up to 0.00"],
    );
}

#[test]
fn issue16_test5_a_post_killed_at_any_moment_leaves_a_journal_that_verifies() {
    let case = Case::new("journal-killed");
    let prior = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&prior, &[]);
    let current = case.run(&case.later_data(), "rerun", "2026-05-31", &[]);
    let base = case.dir.join("base.db");
    fs::copy(&case.journal, &base).unwrap();

    for delay_ms in [0, 1, 2, 4, 7, 10, 15, 20, 30, 45, 70, 100] {
        for suffix in ["-wal", "-shm"] {
            fs::remove_file(format!("{}{suffix}", case.journal.display())).ok();
        }
        fs::copy(&base, &case.journal).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
            .args(["post", "--journal", case.journal.to_str().unwrap()])
            .args(["--run", current.to_str().unwrap()])
            .current_dir(repo_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().ok(); // SIGKILL: no destructor, no rollback in the program runs
        child.wait().unwrap();

        case.assert_verifies();
        let batches = case.batches();
        assert!(
            (1..=2).contains(&batches),
            "after {delay_ms} ms: {batches} batches"
        );
        let expected = if batches == 1 {
            "2,2026-01,CNY,100.01\n6,2026-01,CNY,50.00\n"
        } else {
            "2,2026-01,CNY,300.02\n6,2026-01,CNY,0.00\n"
        };
        assert_eq!(case.balances(), expected, "after {delay_ms} ms");
        // The journal stays usable: the run can be posted (or is already there).
        case.posted(&current, &[]);
        assert_eq!(case.batches(), 2);
    }
}

#[test]
fn issue16_test6_two_concurrent_posts_of_different_runs_both_land() {
    let case = Case::new("journal-concurrent");
    let a = case.run(
        &case.data,
        "customers-1-2",
        "2026-04-30",
        &["--customers", "1,2"],
    );
    let b = case.run(
        &case.data,
        "customers-5-6",
        "2026-04-30",
        &["--customers", "5,6"],
    );
    for round in 0..3 {
        fs::remove_file(&case.journal).ok();
        let spawn = |run: &Path| {
            Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
                .args(["post", "--journal", case.journal.to_str().unwrap()])
                .args(["--run", run.to_str().unwrap()])
                .current_dir(repo_root())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) = (spawn(&a), spawn(&b));
        for child in [first, second] {
            assert_success(&child.wait_with_output().unwrap());
        }
        assert_eq!(case.batches(), 2, "round {round}");
        assert_eq!(
            case.balances(),
            "2,2026-01,CNY,100.01\n6,2026-01,CNY,50.00\n",
            "round {round}"
        );
        case.assert_verifies();
    }
}

#[test]
fn issue16_test7_a_one_customer_rerun_leaves_every_other_customer_alone() {
    let case = Case::new("journal-one-customer");
    let full = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&full, &[]);
    // The later data changed customers 2 and 6; the rerun looks at customer 2 only.
    let rerun = case.run(
        &case.later_data(),
        "rerun-2",
        "2026-05-31",
        &["--customers", "2"],
    );

    let output = case.diff(&full, &rerun, "adjustments", &[]);
    assert_success(&output);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("compared: months 2026-01..2026-01, customers 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("left out (not covered by both runs): 6 prior row(s), 0 current row(s)"),
        "{stdout}"
    );
    let adjustments = fs::read_to_string(case.dir.join("adjustments/adjustments.csv")).unwrap();
    let customers: Vec<&str> = adjustments
        .lines()
        .skip(1)
        .map(|l| &l[..l.find(',').unwrap()])
        .collect();
    assert_eq!(customers, ["2"], "{adjustments}");
    assert!(
        adjustments.contains("\n2,2026-01,100.01,300.02,200.01,CNY,counts,"),
        "{adjustments}"
    );

    let stdout = case.posted(&rerun, &[]);
    assert!(
        stdout.contains(
            "left out (outside the run's scope): 1 booked customer-month(s), balances unchanged"
        ),
        "{stdout}"
    );
    let booked = case.exported(2, "export");
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert!(
        booked[0].starts_with("2,2026-01,CNY,200.01,correction,"),
        "{booked:?}"
    );
    assert_eq!(
        without_reason(&booked),
        diff_deltas(&case.dir.join("adjustments"))
    );
    // Customer 6's booked 50.00 stays, though the later data would pay it 0.00.
    assert_eq!(
        case.balances(),
        "2,2026-01,CNY,300.02\n6,2026-01,CNY,50.00\n"
    );
    case.assert_verifies();
}

#[test]
fn issue16_scope_runs_under_different_policies_are_refused_unless_allowed() {
    let case = Case::new("journal-policy");
    let prior = case.run(&case.data, "month-end", "2026-04-30", &[]);
    let policy = case.dir.join("policy.toml");
    let text_ccc = fs::read_to_string(repo_root().join("jobs/policy-ccc.toml")).unwrap();
    fs::write(
        &policy,
        text_ccc.replace("rate = \"0.10\"", "rate = \"0.20\""),
    )
    .unwrap();
    // Customer 2 under the new tier: 20 % of 1000.05 = 200.01.
    let current = case.run(
        &case.data,
        "new-policy",
        "2026-04-30",
        &["--policy", policy.to_str().unwrap()],
    );

    let refused = case.diff(&prior, &current, "adjustments", &[]);
    assert_exit(&refused, 1);
    stderr_has(
        &refused,
        &[
            "was run under policy `CCC`",
            "hint: rerun under the same `--policy`, or pass `--allow-policy-change`",
        ],
    );
    assert!(!case.dir.join("adjustments").exists());
    assert_success(&case.diff(&prior, &current, "adjustments", &["--allow-policy-change"]));
    let adjustments = fs::read_to_string(case.dir.join("adjustments/adjustments.csv")).unwrap();
    assert!(
        adjustments.contains("\n2,2026-01,100.01,200.01,100.00,CNY,policy+tier,"),
        "{adjustments}"
    );

    case.posted(&prior, &[]);
    let refused = case.post(&current, &[]);
    assert_exit(&refused, 1);
    stderr_has(
        &refused,
        &[
            "batch 1 was run under policy `CCC`",
            "`--allow-policy-change`",
        ],
    );
    assert_eq!(case.batches(), 1);
    case.posted(&current, &["--allow-policy-change"]);
    let booked = case.exported(2, "export");
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert!(
        booked[0].starts_with("2,2026-01,CNY,100.00,policy+correction,"),
        "{booked:?}"
    );
}

#[test]
fn issue16_post_never_books_a_provisional_row_and_says_so() {
    let case = Case::new("journal-provisional");
    // As of 2026-01-20 January is provisional: every row pays 0.00 and is left unbooked.
    let interim = case.run(&case.data, "interim", "2026-01-20", &[]);
    let stdout = case.posted(&interim, &[]);
    assert!(stdout.contains("books 0 entries"), "{stdout}");
    assert!(
        stdout.contains("provisional rows not booked: 7"),
        "{stdout}"
    );
    assert_eq!(case.balances(), "");
    let final_run = case.run(&case.data, "month-end", "2026-04-30", &[]);
    let stdout = case.posted(&final_run, &[]);
    assert!(stdout.contains("CNY: 2 entries, net 150.01"), "{stdout}");
    let booked = case.exported(1, "export");
    assert!(booked.iter().all(|l| l.contains(",first,")), "{booked:?}");
}

#[test]
fn issue16_export_writes_csv_and_decimal128_parquet_with_each_idempotency_key() {
    let case = Case::new("journal-export");
    let run = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&run, &[]);
    let booked = case.exported(1, "export");
    assert_eq!(booked.len(), 2);
    let out = case.dir.join("export");
    let frame = ParquetReader::new(fs::File::open(out.join("entries.parquet")).unwrap())
        .finish()
        .unwrap();
    let amount = frame.column("amount").unwrap();
    assert_eq!(amount.dtype(), &DataType::Decimal(18, 2));
    assert_eq!(amount.get(0).unwrap().to_string(), "100.01");
    let keys = frame.column("idempotency_key").unwrap();
    assert_eq!(keys.get(1).unwrap().get_str(), booked[1].rsplit(',').next());
    assert_eq!(
        entries(&out),
        ["entries.csv", "entries.parquet", "manifest.json"]
    );

    let output = case.journal(
        "export",
        &[
            "--since",
            "2",
            "--out",
            case.dir.join("later").to_str().unwrap(),
        ],
    );
    assert_exit(&output, 1);
    stderr_has(
        &output,
        &[
            "--since 2 is after the last batch, 1",
            "hint: `sla-ledger journal history",
        ],
    );
    let output = case.journal(
        "export",
        &[
            "--since",
            "0",
            "--out",
            case.dir.join("zero").to_str().unwrap(),
        ],
    );
    assert_exit(&output, 2);
}

#[test]
fn issue16_balance_and_history_answer_in_csv_and_json() {
    let case = Case::new("journal-read");
    let run = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&run, &["--note", "April month end"]);

    let output = case.journal(
        "balance",
        &["--customer", "6", "--month", "2026-01", "--format", "json"],
    );
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"customer_id": 6, "service_month": "2026-01", "currency": "CNY", "balance": "50.00"}])
    );
    let output = case.journal("balance", &["--month", "2026-13"]);
    assert_exit(&output, 2);

    let output = case.journal("history", &["--format", "json"]);
    assert_success(&output);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let batch = &json[0];
    assert_eq!(batch["batch"], 1);
    assert_eq!(batch["as_of"], "2026-04-30");
    assert_eq!(batch["months"], "2026-01");
    assert_eq!(batch["entries"], 2);
    assert_eq!(batch["totals"], serde_json::json!({"CNY": "150.01"}));
    assert_eq!(batch["note"], "April month end");
    assert_eq!(batch["ledger_sha256"].as_str().unwrap().len(), 64);

    let missing = case.dir.join("missing.db");
    let output = sla_ledger(
        &repo_root(),
        &["journal", "verify", "--journal", missing.to_str().unwrap()],
    );
    assert_exit(&output, 1);
    stderr_has(
        &output,
        &["does not exist", "hint: `sla-ledger post --journal"],
    );
    assert!(!missing.exists());
}

#[test]
fn issue16_storage_keeps_money_as_integers_and_refuses_a_double_booking_itself() {
    let case = Case::new("journal-storage");
    let run = case.run(&case.data, "month-end", "2026-04-30", &[]);
    case.posted(&run, &[]);
    let conn = rusqlite::Connection::open(&case.journal).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let money_types: Vec<String> = conn
        .prepare("SELECT type FROM pragma_table_info('entries') WHERE name LIKE '%minor'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(money_types, ["INTEGER", "INTEGER"]);
    let amount: i64 = conn
        .query_row(
            "SELECT amount_minor FROM entries WHERE customer_id = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(amount, 10001);
    // The same idempotency key again: the database itself refuses it.
    let copy = conn.execute(
        "INSERT INTO entries SELECT batch, seq + 10, customer_id, service_month, currency,
             amount_minor, balance_after_minor, reason, idempotency_key, entry_sha256
         FROM entries WHERE customer_id = 2",
        [],
    );
    assert!(copy.unwrap_err().to_string().contains("UNIQUE"));
}

#[test]
fn issue16_storage_a_post_waits_a_bounded_time_for_another_writer_then_fails_clearly() {
    let case = Case::new("journal-busy");
    let run = case.run(&case.data, "month-end", "2026-04-30", &[]);
    let other = case.run(
        &case.data,
        "customer-2",
        "2026-04-30",
        &["--customers", "2"],
    );
    case.posted(&other, &[]);
    // Another writer holds the journal's write lock, as a `post` in its transaction does.
    let holder = rusqlite::Connection::open(&case.journal).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let output = case.post(&run, &["--wait-secs", "1"]);
    let waited = started.elapsed();
    assert_exit(&output, 1);
    stderr_has(
        &output,
        &[
            "is busy: another `post` held it for more than 1 s; nothing was booked",
            "hint: wait until the other `post` has finished",
        ],
    );
    assert!(
        waited >= Duration::from_millis(900),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    case.posted(&run, &[]);
    assert_eq!(case.batches(), 2);
}
