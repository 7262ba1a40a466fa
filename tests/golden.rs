//! Golden end-to-end cases under `tests/golden/`: input folder, command, expected outputs.
//! A case's `data/calls.csv` is a compact call description turned into Parquet at test time.

use std::path::PathBuf;

use crate::support::*;

fn run_case(name: &str) {
    let case: PathBuf = repo_root().join("tests/golden").join(name);
    let dir = TempDir::new(name);
    let data = dir.join("data");
    materialise_golden(&case, &data);
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
