//! Golden end-to-end cases under `tests/golden/`: input folder, command, expected outputs.
//! A case's `data/calls.csv` is a compact call description turned into Parquet at test time.

use std::path::{Path, PathBuf};

use polars::prelude::TimeUnit;

use crate::support::*;

/// Copies a case's data into a temp folder, writing its calls as Parquet split over three
/// files with the three timestamp units.
pub(crate) fn materialise(case: &Path, into: &Path) {
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

fn run_case(name: &str) {
    let case: PathBuf = repo_root().join("tests/golden").join(name);
    let dir = TempDir::new(name);
    let data = dir.join("data");
    materialise(&case, &data);
    let out = dir.join("out");
    let args = std::fs::read_to_string(case.join("args")).unwrap();
    let mut argv = vec![
        "run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    argv.extend(args.split_whitespace());
    let output = sla_ledger(&repo_root(), &argv);
    assert_success(&output);
    for file in ["ledger.csv", "exemptions.csv", "quarantine.csv"] {
        let expected = case.join("expected").join(file);
        if expected.exists() {
            assert_same_file(&expected, &out.join(file));
        }
    }
}

/// SLA 1.2, 1.5, 2.1, 3.1, 3.2 and 5 in one small case; see its README for each customer.
#[test]
fn golden_sla_rules_one_customer_per_rule() {
    run_case("sla-rules");
}
