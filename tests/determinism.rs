//! Determinism and atomicity: the same inputs give the same bytes whatever the thread count,
//! the file order or how rows are split; a run killed at any moment leaves either the
//! previous output or none.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::scenario::Scenario;
use crate::support::*;

const COMPARED: [&str; 4] = [
    "ledger.csv",
    "ledger.parquet",
    "exemptions.csv",
    "quarantine.csv",
];

fn run_with_threads(data: &Path, out: &Path, threads: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(run_args(data, out, "2026-01..2026-03", "2026-04-30", &[]))
        .env("POLARS_MAX_THREADS", threads)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .unwrap();
    assert_success(&output);
}

fn assert_same_bytes(a: &Path, b: &Path, files: &[&str]) {
    for file in files {
        let (x, y) = (
            fs::read(a.join(file)).unwrap(),
            fs::read(b.join(file)).unwrap(),
        );
        assert!(
            x == y,
            "{file} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn outputs_are_byte_identical_whatever_the_thread_count() {
    let dir = TempDir::new("threads");
    let data = repo_root().join("sample_data");
    run_with_threads(&data, &dir.join("one"), "1");
    run_with_threads(&data, &dir.join("two"), "2");
    run_with_threads(&data, &dir.join("four"), "4");
    assert_same_bytes(&dir.join("one"), &dir.join("two"), &COMPARED);
    assert_same_bytes(&dir.join("one"), &dir.join("four"), &COMPARED);
}

/// Quarantine rows without their `source,row` (which name files that a re-split renames).
fn quarantine_reasons(path: &Path) -> Vec<String> {
    let mut rows: Vec<String> = fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.splitn(3, ',').nth(2).unwrap().to_string())
        .collect();
    rows.sort();
    rows
}

#[test]
fn reshuffling_and_resplitting_the_call_files_changes_nothing() {
    for seed in [3u64, 17, 40, 77] {
        let original = Scenario::random(seed);
        let mut rows = original.all_calls();
        rows.reverse();
        // Re-split: a different number of files, rows interleaved differently.
        let mut resplit = original.clone();
        let parts = original.files.len() % 3 + 2;
        resplit.files = (0..parts)
            .map(|k| rows.iter().skip(k).step_by(parts).cloned().collect())
            .collect();

        let dir = TempDir::new("resplit");
        for (name, scenario) in [("a", &original), ("b", &resplit)] {
            scenario.write(&dir.join(name).join("data"));
            let out = dir.join(name).join("out");
            let data = dir.join(name).join("data");
            let output = run_ledger(&data, &out, &scenario.months, &scenario.as_of, &[]);
            assert_success(&output);
        }
        let (a, b) = (dir.join("a/out"), dir.join("b/out"));
        assert_same_bytes(&a, &b, &["ledger.csv", "ledger.parquet", "exemptions.csv"]);
        assert_eq!(
            quarantine_reasons(&a.join("quarantine.csv")),
            quarantine_reasons(&b.join("quarantine.csv")),
            "seed {seed}"
        );
    }
}

#[test]
fn rows_in_equal_counted_plus_quarantined_plus_duplicates_plus_not_counted() {
    for seed in [5u64, 6, 7] {
        let scenario = Scenario::random(seed);
        let dir = TempDir::new("balance");
        let data = dir.join("data");
        scenario.write(&data);
        let out = dir.join("out");
        assert_success(&run_ledger(
            &data,
            &out,
            &scenario.months,
            &scenario.as_of,
            &[],
        ));
        let manifest: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
        let calls = &manifest["rows"]["calls"];
        let n = |k: &str| calls[k].as_u64().unwrap();
        assert_eq!(n("read"), scenario.all_calls().len() as u64);
        assert_eq!(
            n("read"),
            n("counted") + n("quarantined") + n("duplicates") + n("not_counted"),
            "{calls}"
        );
        let ledger = fs::read_to_string(out.join("ledger.csv")).unwrap();
        let counted: u64 = ledger
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(5).unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(counted, n("counted"));
        let call_quarantine = fs::read_to_string(out.join("quarantine.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("calls/"))
            .count() as u64;
        assert_eq!(call_quarantine, n("quarantined"));
    }
}

#[test]
fn the_manifest_hashes_every_output_and_its_totals_equal_the_ledger() {
    let dir = TempDir::new("manifest");
    let out = dir.join("out");
    assert_success(&run_job("jobs/month-end.toml", &out, &[]));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for entry in manifest["outputs"].as_array().unwrap() {
        let file = out.join(entry["path"].as_str().unwrap());
        let bytes = fs::read(&file).unwrap();
        use sha2::Digest;
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            entry["sha256"].as_str().unwrap(),
            digest,
            "{}",
            file.display()
        );
    }
    assert!(manifest["inputs"].as_array().unwrap().len() > 10);
    let mut payout = rust_decimal::Decimal::ZERO;
    for line in fs::read_to_string(out.join("ledger.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let cells: Vec<&str> = line.split(',').collect();
        if cells[11] == "CNY" {
            payout += rust_decimal::Decimal::from_str_exact(cells[18]).unwrap();
        }
    }
    assert_eq!(
        manifest["totals"]["CNY"]["payout"].as_str().unwrap(),
        payout.to_string()
    );
}

#[test]
fn a_run_killed_at_any_moment_leaves_the_previous_output_or_none() {
    let dir = TempDir::new("kill");
    let data = dir.join("data");
    generate(&data, 60, 400_000, 3, &[]);
    let out = dir.join("out");
    let args = [
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--months",
        "2026-01..2026-03",
        "--as-of",
        "2026-04-30",
        "--force",
    ];

    // Killed before any output existed: nothing at `out`.
    for delay_ms in [50u64, 300] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
            .args(args)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().ok();
        child.wait().unwrap();
        if out.exists() {
            // The run finished before the kill; the output must be complete.
            assert!(out.join("manifest.json").is_file());
            fs::remove_dir_all(&out).unwrap();
        }
    }
    // A complete previous output, then runs killed while replacing it: it survives intact.
    assert_success(&sla_ledger(&repo_root(), &args));
    let previous = fs::read(out.join("ledger.csv")).unwrap();
    for delay_ms in [20u64, 150, 400, 800, 1500, 2500, 3300] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
            .args(args)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().ok();
        child.wait().unwrap();
        assert_eq!(
            fs::read(out.join("ledger.csv")).unwrap(),
            previous,
            "killed after {delay_ms} ms"
        );
        assert!(
            out.join("manifest.json").is_file(),
            "killed after {delay_ms} ms: incomplete output"
        );
    }
    // The next run cleans up what the killed ones left and succeeds.
    assert_success(&sla_ledger(&repo_root(), &args));
    assert_eq!(entries(&dir.path), ["data", "out"]);
}

#[test]
fn spilling_call_keys_to_disk_changes_nothing_and_leaves_nothing() {
    let dir = TempDir::new("spill");
    let data = repo_root().join("sample_data");
    for (name, budget) in [("memory", "1024"), ("spilled", "1")] {
        let out = dir.join(name);
        let output = run_ledger(
            &data,
            &out,
            "2026-01..2026-03",
            "2026-04-30",
            &["--memory-budget-mib", budget],
        );
        assert_success(&output);
    }
    assert_same_bytes(&dir.join("memory"), &dir.join("spilled"), &COMPARED);
    let manifest = fs::read_to_string(dir.join("spilled/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert!(
        manifest["rows"]["spilled_buckets"].as_u64().unwrap() > 0,
        "{manifest}"
    );
    assert_eq!(
        entries(&dir.path),
        ["memory", "spilled"],
        "a spill folder was left behind"
    );
}
