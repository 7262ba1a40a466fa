//! The shared conformance cases (`../shared/conformance/`): each must reproduce `expected/`.

use crate::support::*;

#[test]
fn every_conformance_case_reproduces_its_expected_ledger() {
    let Some(cases) = conformance_cases() else {
        eprintln!(
            "conformance folder `../shared/conformance` is absent: no conformance case was run"
        );
        return;
    };
    for case in cases {
        let out = TempDir::new("conformance");
        let args = std::fs::read_to_string(case.join("args")).unwrap();
        let out_dir = out.join("out");
        let mut argv = vec!["run", "--data", "data", "--out", out_dir.to_str().unwrap()];
        argv.extend(args.split_whitespace());
        let output = sla_ledger(&case, &argv);
        assert_success(&output);
        assert_same_file(
            &case.join("expected/ledger.csv"),
            &out_dir.join("ledger.csv"),
        );
        assert_same_rows(
            &case.join("expected/exemptions.csv"),
            &out_dir.join("exemptions.csv"),
        );
        eprintln!(
            "conformance case {} reproduced",
            case.file_name().unwrap().to_string_lossy()
        );
    }
}
