//! The command line as users call it: the shipped jobs, the README commands, exit codes.

use crate::support::*;

#[test]
fn every_shipped_job_runs_as_shipped() {
    for job in ["nightly", "month-end", "adhoc"] {
        let dir = TempDir::new(job);
        let out = dir.join("out");
        let job_path = format!("jobs/{job}.toml");
        let output = sla_ledger(
            &repo_root(),
            &["run", "--job", &job_path, "--out", out.to_str().unwrap()],
        );
        assert_success(&output);
        for file in [
            "ledger.csv",
            "ledger.parquet",
            "exemptions.csv",
            "quarantine.csv",
            "manifest.json",
        ] {
            assert!(out.join(file).is_file(), "{job}: {file} missing");
        }
        let ledger = std::fs::read_to_string(out.join("ledger.csv")).unwrap();
        assert!(ledger.lines().count() > 1, "{job}: empty ledger");
    }
}

#[test]
fn sample_data_exercises_every_claim_status_and_tier() {
    let dir = TempDir::new("coverage");
    let mut ledgers = String::new();
    for job in ["nightly", "month-end"] {
        let out = dir.join(job);
        let output = run_job(&format!("jobs/{job}.toml"), &out, &[]);
        assert_success(&output);
        ledgers.push_str(&std::fs::read_to_string(out.join("ledger.csv")).unwrap());
    }
    for needle in [
        ",pending,",
        ",valid,",
        ",open,",
        ",forfeited,",
        ",not_due,",
        ",0.10,",
        ",0.30,",
        ",0.50,",
        ",error\n",
        ",true,",
    ] {
        assert!(
            ledgers.contains(needle),
            "sample data never produces `{needle}`"
        );
    }
}

#[test]
fn a_generated_data_set_is_byte_identical_for_the_same_seed() {
    let dir = TempDir::new("generate");
    for name in ["a", "b"] {
        let out = dir.join(name);
        let output = sla_ledger(
            &repo_root(),
            &[
                "generate",
                "--out",
                out.to_str().unwrap(),
                "--customers",
                "12",
                "--calls",
                "3000",
                "--seed",
                "11",
            ],
        );
        assert_success(&output);
    }
    for file in [
        "calls/month=2026-02/part-001.parquet",
        "billing.csv",
        "claims.csv",
        "exemptions/windows.csv",
    ] {
        let a = std::fs::read(dir.join("a").join(file)).unwrap();
        let b = std::fs::read(dir.join("b").join(file)).unwrap();
        assert!(a == b, "{file} differs between two runs with the same seed");
    }
}

#[test]
fn flags_override_the_job_file() {
    let dir = TempDir::new("override");
    let out = dir.join("out");
    let output = run_job("jobs/month-end.toml", &out, &["--months", "2026-02"]);
    assert_success(&output);
    let ledger = std::fs::read_to_string(out.join("ledger.csv")).unwrap();
    assert!(
        ledger
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(1) == Some("2026-02")),
        "{ledger}"
    );
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let dir = TempDir::new("usage");
    let out = dir.join("out");
    for bad in [
        vec![
            "run",
            "--data",
            "sample_data",
            "--out",
            out.to_str().unwrap(),
            "--months",
            "2026-13",
        ],
        vec![
            "run",
            "--data",
            "sample_data",
            "--out",
            out.to_str().unwrap(),
            "--months",
            "2026-03..2026-01",
        ],
        vec![
            "run",
            "--data",
            "sample_data",
            "--out",
            out.to_str().unwrap(),
            "--as-of",
            "2026-02-30",
        ],
        vec![
            "run",
            "--data",
            "sample_data",
            "--out",
            out.to_str().unwrap(),
            "--customers",
            "12x",
        ],
        vec!["run", "--data", "sample_data"],
        vec!["run", "--bogus"],
    ] {
        let output = sla_ledger(&repo_root(), &bad);
        assert_exit(&output, 2);
        assert!(!out.exists(), "{bad:?} left an output behind");
    }
}

#[test]
fn an_existing_output_is_kept_unless_forced() {
    let dir = TempDir::new("force");
    let out = dir.join("out");
    let args = [
        "run",
        "--job",
        "jobs/adhoc.toml",
        "--out",
        out.to_str().unwrap(),
    ];
    assert_success(&sla_ledger(&repo_root(), &args));
    let previous = std::fs::read(out.join("manifest.json")).unwrap();
    let output = sla_ledger(&repo_root(), &args);
    assert_exit(&output, 1);
    assert!(
        text(&output.stderr).contains("--force"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), previous);
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_success(&sla_ledger(&repo_root(), &forced));
    assert!(out.join("ledger.csv").is_file());
    // No temporary or previous sibling is left next to the output.
    assert_eq!(entries(&dir.path), ["out"]);
}

#[test]
fn strict_refuses_quarantined_rows_and_writes_nothing() {
    let dir = TempDir::new("strict");
    let out = dir.join("out");
    let output = run_job("jobs/month-end.toml", &out, &["--strict"]);
    assert_exit(&output, 1);
    assert!(text(&output.stderr).contains("--strict"));
    assert!(!out.exists());
    assert!(
        entries(&dir.path).is_empty(),
        "left behind: {:?}",
        entries(&dir.path)
    );
}

#[test]
fn sla_3_2_a_calendar_without_the_needed_year_fails_naming_it() {
    let dir = TempDir::new("calendar");
    let calendar = dir.join("calendar-2025.csv");
    std::fs::write(&calendar, "date,kind\n2025-01-01,holiday\n").unwrap();
    let out = dir.join("out");
    let output = sla_ledger(
        &repo_root(),
        &[
            "run",
            "--job",
            "jobs/month-end.toml",
            "--calendar",
            calendar.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_exit(&output, 1);
    assert!(
        text(&output.stderr).contains("does not cover 2026"),
        "{}",
        text(&output.stderr)
    );
    assert!(!out.exists());
}

#[test]
fn the_ledger_parquet_has_decimal_money_and_matches_the_csv() {
    use polars::prelude::*;
    let dir = TempDir::new("parquet");
    let out = dir.join("out");
    assert_success(&run_job("jobs/month-end.toml", &out, &[]));
    let frame = ParquetReader::new(std::fs::File::open(out.join("ledger.parquet")).unwrap())
        .finish()
        .unwrap();
    let schema = frame.schema();
    for (name, dtype) in [
        ("customer_id", DataType::Int64),
        ("period_start", DataType::Date),
        ("provisional", DataType::Boolean),
        ("availability_pct", DataType::Decimal(7, 4)),
        ("tier_rate", DataType::Decimal(3, 2)),
        ("monthly_fee", DataType::Decimal(18, 2)),
        ("compensation", DataType::Decimal(18, 2)),
        ("payout", DataType::Decimal(18, 2)),
        ("claim_opens", DataType::Date),
    ] {
        assert_eq!(schema.get(name), Some(&dtype), "column {name}");
    }
    let csv_rows = std::fs::read_to_string(out.join("ledger.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(frame.height(), csv_rows);
}

#[test]
fn paths_are_shown_normalised_and_the_manifest_keeps_them_as_opened() {
    let dir = TempDir::new("shown-paths");
    copy_dir(&repo_root().join("sample_data"), &dir.join("data"));
    std::fs::create_dir_all(dir.join("jobs")).unwrap();
    std::fs::write(
        dir.join("jobs/month-end.toml"),
        "data = \"../data\"\nout = \"../out/./month-end\"\nmonths = \"2026-01..2026-03\"\n\
         as_of = \"2026-04-30\"\n",
    )
    .unwrap();
    let args = ["run", "--job", "./jobs/month-end.toml"];
    let output = sla_ledger(&dir.path, &args);
    assert_success(&output);
    let stdout = text(&output.stdout);
    assert!(
        stdout.lines().any(|l| l == "  written: out/month-end"),
        "{stdout}"
    );
    assert!(dir.join("out/month-end/ledger.csv").is_file());
    // Provenance: the manifest records the folder the run opened, as it opened it.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/month-end/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["job"]["data"], "./jobs/../data");

    // Messages show the same normalised path.
    let again = sla_ledger(&dir.path, &args);
    assert_exit(&again, 1);
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("output `out/month-end` exists and is not empty"),
        "{stderr}"
    );
    std::fs::remove_file(dir.join("data/subscriptions.csv")).unwrap();
    let missing = sla_ledger(&dir.path, &[&args[..], &["--force"]].concat());
    assert_exit(&missing, 1);
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("data directory `data`"), "{stderr}");
}
