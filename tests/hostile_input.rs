//! Hostile and faulty input (issue 12): what the inputs hold, how they are found and read.
//!
//! Each attack is built here, then given to both `run` and `validate`: a run either succeeds
//! with a correct ledger or fails naming file, row and column, and `validate` says the same
//! (SPEC §2, §8; the README promises `validate` exits 0 exactly when a run would succeed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use polars::prelude::*;
use sha2::{Digest, Sha256};

use crate::support::*;

const MONTHS: &str = "2026-01";
const AS_OF: &str = "2026-04-30";

/// The `sla-rules` golden data in `dir/data`.
fn golden(dir: &TempDir) -> PathBuf {
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    data
}

/// `run` into `dir/out/ledger` and `validate` with the same flags.
fn run_and_validate(dir: &TempDir, data: &Path, extra: &[&str]) -> (Output, Output) {
    let out = dir.join("out").join("ledger");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let run = run_ledger(data, &out, MONTHS, AS_OF, extra);
    let mut args = vec![
        "validate",
        "--data",
        data.to_str().unwrap(),
        "--months",
        MONTHS,
        "--as-of",
        AS_OF,
    ];
    args.extend_from_slice(extra);
    let validate = sla_ledger(&repo_root(), &args);
    (run, validate)
}

/// Both commands exit with `code`, both name `needle` (run on stderr; validate on stdout or
/// stderr), neither panics, and the run left nothing in the output's parent.
fn assert_both_fail(dir: &TempDir, data: &Path, extra: &[&str], code: i32, needle: &str) {
    let (run, validate) = run_and_validate(dir, data, extra);
    assert_exit(&run, code);
    assert_exit(&validate, code);
    let run_err = text(&run.stderr);
    let validate_all = text(&validate.stdout) + &text(&validate.stderr);
    assert!(run_err.contains(needle), "run: no `{needle}` in\n{run_err}");
    assert!(
        validate_all.contains(needle),
        "validate: no `{needle}` in\n{validate_all}"
    );
    for all in [&run_err, &validate_all] {
        assert!(!all.contains("panicked"), "{all}");
    }
    assert!(
        entries(&dir.join("out")).is_empty(),
        "left behind: {:?}",
        entries(&dir.join("out"))
    );
}

fn ledger_line(out: &Path, customer: &str) -> String {
    fs::read_to_string(out.join("ledger.csv"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{customer},")))
        .unwrap_or_else(|| panic!("no ledger row for customer {customer}"))
        .to_string()
}

#[test]
fn issue12_item5_billing_amounts_beyond_15_digits_are_bad_amounts_not_a_panic() {
    let dir = TempDir::new("hostile-amounts");
    let data = golden(&dir);
    // Two amounts that each parse as a Decimal but overflow when summed (the old panic), and
    // a 16-digit fee that used to fail only at the Parquet write.
    let max = "79228162514264337593543950335";
    let mut billing = fs::read_to_string(data.join("billing.csv")).unwrap();
    billing.push_str(&format!(
        "1,2026-01,charge,{max},CNY\n1,2026-01,charge,{max},CNY\n"
    ));
    billing.push_str("2,2026-01,charge,1000000000000000.00,CNY\n");
    fs::write(data.join("billing.csv"), billing).unwrap();

    let (run, validate) = run_and_validate(&dir, &data, &[]);
    assert_success(&run);
    assert_success(&validate);
    let out = dir.join("out/ledger");
    for customer in ["1", "2"] {
        assert!(
            ledger_line(&out, customer).ends_with(",,,,,,,,0.00,error"),
            "{}",
            ledger_line(&out, customer)
        );
    }
    let quarantine = fs::read_to_string(out.join("quarantine.csv")).unwrap();
    assert_eq!(
        quarantine.matches(",bad_amount,").count(),
        3,
        "{quarantine}"
    );
    assert!(
        text(&validate.stdout).contains("billing.csv bad_amount: 3"),
        "{}",
        text(&validate.stdout)
    );
}

#[test]
fn issue12_item5_months_beyond_what_instants_hold_are_usage_errors() {
    let dir = TempDir::new("hostile-months");
    let data = golden(&dir);
    for months in ["2300-01", "1850-01..2026-01"] {
        let out = dir.join("out/ledger");
        fs::create_dir_all(dir.join("out")).unwrap();
        let run = run_ledger(&data, &out, months, AS_OF, &[]);
        assert_exit(&run, 2);
        assert!(
            text(&run.stderr).contains("outside the years 1900..=2200"),
            "{}",
            text(&run.stderr)
        );
        let validate = sla_ledger(
            &repo_root(),
            &[
                "validate",
                "--data",
                data.to_str().unwrap(),
                "--months",
                months,
            ],
        );
        assert_exit(&validate, 2);
    }
    let run = run_ledger(&data, &dir.join("out/ledger"), MONTHS, "2301-01-01", &[]);
    assert_exit(&run, 2);
    assert!(
        text(&run.stderr).contains("--as-of"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn issue12_item5_diff_refuses_a_ledger_with_money_but_no_currency() {
    let dir = TempDir::new("hostile-diff");
    let data = golden(&dir);
    let (prior, current) = (dir.join("prior"), dir.join("current"));
    for out in [&prior, &current] {
        assert_success(&run_ledger(&data, out, MONTHS, AS_OF, &[]));
    }
    // Hand-edit the current ledger: a payout with its currency removed, and a manifest that
    // records the edited file's hash (so only the content check can catch it).
    let ledger = current.join("ledger.csv");
    let original = fs::read_to_string(&ledger).unwrap();
    let paid = original
        .lines()
        .find(|l| !l.ends_with(",0.00,ok") && l.ends_with(",ok"))
        .expect("the golden case pays something");
    let edited_line = paid.replace(",CNY,", ",,");
    fs::write(&ledger, original.replace(paid, &edited_line)).unwrap();
    let old_hash = format!("{:x}", Sha256::digest(original.as_bytes()));
    let new_hash = format!("{:x}", Sha256::digest(fs::read(&ledger).unwrap()));
    let manifest = fs::read_to_string(current.join("manifest.json")).unwrap();
    fs::write(
        current.join("manifest.json"),
        manifest.replace(&old_hash, &new_hash),
    )
    .unwrap();

    let out = dir.join("adjustments");
    let diff = sla_ledger(
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
    assert_exit(&diff, 1);
    let stderr = text(&diff.stderr);
    assert!(
        stderr.contains("column `currency`: is empty, but the payout is"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!out.exists());
}

/// `exemptions/windows.csv` rewritten as Parquet, with `start` and `end` as ms timestamps.
fn windows_parquet(data: &Path, start_ms: i64, end_ms: i64) {
    fs::remove_file(data.join("exemptions/windows.csv")).unwrap();
    let stamp = |name: &str, ms: i64| -> Column {
        Int64Chunked::from_vec(name.into(), vec![ms])
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_series()
            .into()
    };
    let mut frame = DataFrame::new(
        1,
        vec![
            Column::new("window_id".into(), ["mw-huge"]),
            Column::new("clause".into(), ["5.12"]),
            stamp("start", start_ms),
            stamp("end", end_ms),
            Column::new("customer_id".into(), [None::<i64>]),
            stamp("announced_at", start_ms - 1),
        ],
    )
    .unwrap();
    ParquetWriter::new(fs::File::create(data.join("exemptions/windows.parquet")).unwrap())
        .finish(&mut frame)
        .unwrap();
}

#[test]
fn issue12_item6_parquet_timestamps_that_overflow_name_file_row_and_column() {
    let dir = TempDir::new("hostile-windows");
    let data = golden(&dir);
    // In ms, 2.88e17 is 9 million years out; scaled to ns without a check it wrapped onto
    // January 2026 and exempted every error of the month.
    windows_parquet(&data, 288_000_000_000_000_000, 288_000_100_000_000_000);
    assert_both_fail(
        &dir,
        &data,
        &[],
        1,
        "`exemptions/windows.parquet` row 1 column `start`: holds 288000000000000000 ms",
    );
}

#[test]
fn issue12_item7_currencies_and_identifiers_cannot_become_formulas_or_escapes() {
    let dir = TempDir::new("hostile-currency");
    let data = golden(&dir);
    let billing = fs::read_to_string(data.join("billing.csv")).unwrap();
    let billing = billing
        .replace(
            "1,2026-01,charge,500.00,CNY",
            "1,2026-01,charge,500.00,\"=HYPERLINK(\"\"http://x\"\")\"",
        )
        .replace(
            "2,2026-01,charge,1000.05,CNY",
            "2,2026-01,charge,1000.05,\u{1b}]0;owned\u{7}\u{1b}[2J",
        )
        .replace("6,2026-01,charge,99.99,CNY", "6,2026-01,charge,99.99,cny");
    fs::write(data.join("billing.csv"), billing).unwrap();
    let (run, validate) = run_and_validate(&dir, &data, &[]);
    assert_success(&run);
    assert_success(&validate);
    let out = dir.join("out/ledger");
    let quarantine = fs::read_to_string(out.join("quarantine.csv")).unwrap();
    assert_eq!(
        quarantine.matches(",bad_currency,").count(),
        3,
        "{quarantine}"
    );
    for file in ["ledger.csv", "quarantine.csv", "exemptions.csv"] {
        let written = fs::read_to_string(out.join(file)).unwrap();
        assert!(!written.contains('\u{1b}'), "{file} holds a raw escape");
        for cell in written.split([',', '\n']) {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '@']),
                "{file} has a formula-like cell `{cell}`"
            );
        }
    }
    for customer in ["1", "2", "6"] {
        assert!(ledger_line(&out, customer).ends_with(",error"));
    }
    assert!(!text(&run.stdout).contains('\u{1b}'));

    // Identifiers that reach the outputs are checked at the input: fatal, naming the line.
    fs::remove_dir_all(&out).unwrap();
    let claims = fs::read_to_string(data.join("claims.csv")).unwrap();
    fs::write(data.join("claims.csv"), claims.replace("T2-ok,", "=1+2,")).unwrap();
    assert_both_fail(
        &dir,
        &data,
        &[],
        1,
        "`claims.csv` line 3 column `claim_id`: `=1+2` is not an identifier",
    );
}

#[test]
fn issue12_item7_input_strings_reach_the_terminal_escaped() {
    let dir = TempDir::new("hostile-terminal");
    let data = golden(&dir);
    let subscriptions = fs::read_to_string(data.join("subscriptions.csv")).unwrap();
    fs::write(
        data.join("subscriptions.csv"),
        subscriptions.replace("3,2025-06-01,", "\u{1b}]0;owned\u{7}\u{1b}[2J,2025-06-01,"),
    )
    .unwrap();
    let (run, validate) = run_and_validate(&dir, &data, &[]);
    assert_exit(&run, 1);
    assert_exit(&validate, 1);
    for printed in [
        text(&run.stderr),
        text(&validate.stdout),
        text(&validate.stderr),
    ] {
        assert!(
            !printed.contains('\u{1b}') && !printed.contains('\u{7}'),
            "{printed:?}"
        );
    }
    assert!(
        text(&run.stderr).contains("`\\u{1b}]0;owned\\u{7}\\u{1b}[2J` is not a customer id"),
        "{}",
        text(&run.stderr)
    );
}

#[cfg(unix)]
#[test]
fn issue12_item9_symlinks_under_calls_are_walked_once() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("hostile-loop");
    let data = golden(&dir);
    let clean = dir.join("clean");
    assert_success(&run_ledger(&data, &clean, MONTHS, AS_OF, &[]));
    // A loop back to calls/ itself, a second name for a folder, and a second name for a file.
    symlink(".", data.join("calls/loop")).unwrap();
    symlink("a", data.join("calls/again")).unwrap();
    symlink("../part-2.parquet", data.join("calls/b/twice.parquet")).unwrap();
    let looped = dir.join("looped");
    let output = run_ledger(&data, &looped, MONTHS, AS_OF, &[]);
    assert_success(&output);
    assert_same_file(&clean.join("ledger.csv"), &looped.join("ledger.csv"));
    assert_same_file(
        &clean.join("quarantine.csv"),
        &looped.join("quarantine.csv"),
    );
    let inputs = |out: &Path| {
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        manifest["inputs"].as_array().unwrap().len()
    };
    assert_eq!(inputs(&clean), inputs(&looped));
}

#[test]
fn issue12_item10_an_input_changed_during_the_run_fails_it() {
    let dir = TempDir::new("hostile-changed");
    let data = dir.join("data");
    generate(&data, 20, 400_000, 3, &[]);
    let out = dir.join("out").join("ledger");
    fs::create_dir_all(dir.join("out")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(run_args(
            &data,
            &out,
            "2026-01..2026-03",
            AS_OF,
            &["--memory-budget-mib", "1", "--quiet"],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run has read the inputs (its scratch folder beside --out appears with the heavy
    // step), a writer appends to billing.csv.
    let started = std::time::Instant::now();
    while entries(&dir.join("out")).is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the run never started its heavy step"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let mut billing = fs::OpenOptions::new()
        .append(true)
        .open(data.join("billing.csv"))
        .unwrap();
    std::io::Write::write_all(&mut billing, b"").unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    billing.set_modified(later).unwrap();
    drop(billing);
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("input `billing.csv` changed while the run read it"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// A minimal base64 codec (standard alphabet, padded): the Arrow schema in a Parquet footer is
/// stored as base64 text.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn is_char(b: u8) -> bool {
        ALPHABET.contains(&b) || b == b'='
    }

    pub fn decode(text: &[u8]) -> Vec<u8> {
        let value = |c: u8| ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        let mut out = Vec::new();
        for quad in text.chunks(4) {
            let pads = quad.iter().filter(|&&c| c == b'=').count();
            let n = quad
                .iter()
                .map(|&c| if c == b'=' { 0 } else { value(c) })
                .fold(0u32, |n, v| (n << 6) | v);
            out.extend_from_slice(&n.to_be_bytes()[1..4 - pads]);
        }
        out
    }

    pub fn encode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for triple in bytes.chunks(3) {
            let mut padded = [0u8; 3];
            padded[..triple.len()].copy_from_slice(triple);
            let n = u32::from_be_bytes([0, padded[0], padded[1], padded[2]]);
            for i in 0..4 {
                if i <= triple.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
                } else {
                    out.push(b'=');
                }
            }
        }
        out
    }
}

/// Where the base64 Arrow schema stands in a Parquet file's bytes.
fn arrow_schema_span(file: &[u8]) -> std::ops::Range<usize> {
    let key = b"ARROW:schema";
    let at = file
        .windows(key.len())
        .position(|w| w == key)
        .expect("polars writes the Arrow schema into the footer")
        + key.len();
    let start = at + file[at..].iter().position(|&b| base64::is_char(b)).unwrap();
    // The thrift length before the value may itself look like base64; the value is the run of
    // base64 characters that ends the string, whose length is a multiple of 4.
    let len = file[start..]
        .iter()
        .take_while(|&&b| base64::is_char(b))
        .count();
    start..start + len
}

#[test]
fn issue12_item12_a_timestamp_s_schema_is_read_in_the_unit_the_data_has() {
    // pyarrow writes an Arrow `timestamp[s]` column as Parquet TIMESTAMP(MILLIS) and keeps the
    // Arrow type in the footer's `ARROW:schema`. Build that file: write whole-second calls in
    // ms and in us with polars, find the one byte their Arrow schemas differ in (the unit),
    // and set it to SECOND in the ms file.
    let dir = TempDir::new("hostile-seconds");
    let data = golden(&dir);
    let mut rows = Vec::new();
    for part in [
        "calls/a/part-0.parquet",
        "calls/b/part-1.parquet",
        "calls/part-2.parquet",
    ] {
        fs::remove_file(data.join(part)).unwrap();
    }
    for row in expand_calls_csv(&repo_root().join("tests/golden/sla-rules/data/calls.csv")) {
        rows.push(CallRow {
            ts: row.ts.map(|t| t - t.rem_euclid(1_000_000_000)),
            ..row
        });
    }
    let ms_path = data.join("calls/part.parquet");
    let us_path = dir.join("us.parquet");
    write_calls_parquet(&ms_path, &rows, TimeUnit::Milliseconds, false);
    write_calls_parquet(&us_path, &rows, TimeUnit::Microseconds, false);
    let clean = dir.join("clean");
    assert_success(&run_ledger(&data, &clean, MONTHS, AS_OF, &[]));

    let (mut ms, us) = (fs::read(&ms_path).unwrap(), fs::read(&us_path).unwrap());
    let (ms_span, us_span) = (arrow_schema_span(&ms), arrow_schema_span(&us));
    let mut ms_schema = base64::decode(&ms[ms_span.clone()]);
    let us_schema = base64::decode(&us[us_span]);
    let differing: Vec<usize> = (0..ms_schema.len())
        .filter(|&i| ms_schema[i] != us_schema[i])
        .collect();
    assert_eq!(differing.len(), 1, "the schemas differ in the unit only");
    assert_eq!(
        ms_schema[differing[0]], 1,
        "MILLISECOND in the Arrow IPC enum"
    );
    ms_schema[differing[0]] = 0; // SECOND
    ms[ms_span.clone()].copy_from_slice(&base64::encode(&ms_schema));
    fs::write(&ms_path, &ms).unwrap();

    let (run, validate) = run_and_validate(&dir, &data, &[]);
    assert_success(&run);
    assert_success(&validate);
    assert_same_file(
        &clean.join("ledger.csv"),
        &dir.join("out/ledger/ledger.csv"),
    );
    assert!(
        !text(&run.stdout).contains(" 0 counted"),
        "{}",
        text(&run.stdout)
    );
}

/// A case's name, how it breaks the data folder, and what the error must say.
type BreakCase = (&'static str, fn(&Path), &'static str);

#[cfg(unix)]
#[test]
fn issue12_item12_an_optional_table_that_is_there_but_unreadable_is_an_error() {
    use std::os::unix::fs::symlink;
    let cases: [BreakCase; 3] = [
        (
            "dangling-billing",
            |data| {
                fs::remove_file(data.join("billing.csv")).unwrap();
                symlink("nowhere.csv", data.join("billing.csv")).unwrap();
            },
            "`billing.csv`: is a symlink to nothing (dangling)",
        ),
        (
            "folder-claims",
            |data| {
                fs::remove_file(data.join("claims.csv")).unwrap();
                fs::create_dir(data.join("claims.csv")).unwrap();
            },
            "`claims.csv`: is a folder; expected a file",
        ),
        (
            "dangling-calls-folder",
            |data| symlink("../gone", data.join("calls/2026-02")).unwrap(),
            "`calls/2026-02`: is a symlink to nothing (dangling)",
        ),
    ];
    for (name, break_it, needle) in cases {
        let dir = TempDir::new(name);
        let data = golden(&dir);
        break_it(&data);
        assert_both_fail(&dir, &data, &[], 1, needle);
    }
}

#[test]
fn issue12_item13_validate_and_run_agree_on_a_closed_december_and_on_flags() {
    let dir = TempDir::new("hostile-agree");
    let data = golden(&dir);
    // December 2026 is closed and owes nothing (no calls): its claim window, in 2027, is never
    // needed, so the built-in calendar (2025, 2026) is enough for a run and for validate.
    let out = dir.join("out/december");
    let run = run_ledger(&data, &out, "2026-12", "2027-01-31", &[]);
    assert_success(&run);
    let validate = sla_ledger(
        &repo_root(),
        &[
            "validate",
            "--data",
            data.to_str().unwrap(),
            "--months",
            "2026-12",
            "--as-of",
            "2027-01-31",
        ],
    );
    assert_success(&validate);
    fs::remove_dir_all(&out).unwrap();
    assert_both_fail(
        &dir,
        &data,
        &["--threads", "0"],
        2,
        "--threads must be at least 1",
    );
}

#[test]
fn issue12_item7_json_and_report_html_keep_escaping_hostile_strings() {
    let dir = TempDir::new("hostile-escapes");
    let data = golden(&dir);
    let hostile = "\u{1b}]0;owned\u{7}\"<script>x</script>";
    write_calls_parquet(
        &data.join("calls/hostile.parquet"),
        &[CallRow {
            request_id: Some(hostile.to_string()),
            customer_id: Some(1),
            ts: Some(1_767_700_800_000_000_000), // 2026-01-06T20:00:00+08:00
            api: Some(hostile.to_string()),
            status: Some("system_error".into()),
            error_code: Some(hostile.to_string()),
        }],
        TimeUnit::Milliseconds,
        true,
    );
    let policy = dir.join("policy.toml");
    let builtin = fs::read_to_string(repo_root().join("jobs/policy-ccc.toml")).unwrap();
    fs::write(
        &policy,
        builtin.replace(
            "name = \"CCC\"",
            "name = \"<script>alert(1)</script>\\u001b[2J\"",
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let run = run_ledger(
        &data,
        &out,
        MONTHS,
        AS_OF,
        &["--policy", policy.to_str().unwrap()],
    );
    assert_success(&run);
    let page = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        !page.contains("<script"),
        "report.html holds a raw <script>"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)"),
        "the policy name is shown escaped"
    );
    assert!(!page.contains('\u{1b}'));

    for format in ["json", "text"] {
        let explain = sla_ledger(
            &repo_root(),
            &[
                "explain",
                "--data",
                data.to_str().unwrap(),
                "--as-of",
                AS_OF,
                "--customer",
                "1",
                "--month",
                MONTHS,
                "--format",
                format,
            ],
        );
        assert_success(&explain);
        let printed = text(&explain.stdout);
        assert!(
            !printed.contains('\u{1b}') && !printed.contains('\u{7}'),
            "{printed}"
        );
        if format == "json" {
            let value: serde_json::Value = serde_json::from_str(&printed).unwrap();
            assert!(value.to_string().contains("\\u001b]0;owned"), "{printed}");
        } else {
            assert!(printed.contains("\\u{1b}]0;owned"), "{printed}");
        }
    }
}
