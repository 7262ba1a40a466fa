//! Properties of the ledger on generated data (proptest): split runs, monotonicity, bounds.

use std::collections::BTreeMap;
use std::fs;

use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::support::scenario::{Scenario, CUSTOMERS, DAY, SECOND};
use crate::support::*;

/// Runs a scenario; returns ledger rows keyed by (customer, month) and the raw CSV.
fn run(s: &Scenario, extra: &[&str]) -> (BTreeMap<(String, String), Vec<String>>, String) {
    let dir = TempDir::new("prop");
    let data = dir.join("data");
    s.write(&data);
    let out = dir.join("out");
    assert_success(&run_ledger(&data, &out, &s.months, &s.as_of, extra));
    let csv = fs::read_to_string(out.join("ledger.csv")).unwrap();
    let rows = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<String> = l.split(',').map(str::to_string).collect();
            ((cells[0].clone(), cells[1].clone()), cells)
        })
        .collect();
    (rows, csv)
}

fn money(cell: &str) -> Decimal {
    if cell.is_empty() {
        Decimal::ZERO
    } else {
        Decimal::from_str_exact(cell).unwrap()
    }
}

const COMPENSATION: usize = 13;
const FEE: usize = 12;

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Running customers one at a time and concatenating equals one run.
    #[test]
    fn per_customer_runs_concatenate_to_the_full_run(seed in 0u64..1_000_000) {
        let s = Scenario::random(seed);
        let (_, full) = run(&s, &[]);
        let mut concatenated = full.lines().next().unwrap().to_string() + "\n";
        for c in CUSTOMERS {
            let (_, one) = run(&s, &["--customers", &c.to_string()]);
            for line in one.lines().skip(1) {
                concatenated.push_str(line);
                concatenated.push('\n');
            }
        }
        prop_assert_eq!(full, concatenated);
    }

    /// SLA 3.1: one more unavailable call (in a second of its own) never lowers compensation,
    /// and compensation stays between 0 and the fee.
    #[test]
    fn adding_a_system_error_never_lowers_compensation(seed in 0u64..1_000_000, day in 31i64..89, customer in 0usize..4) {
        let s = Scenario::random(seed);
        let (before, _) = run(&s, &[]);
        let mut worse = s.clone();
        // 00:00:00.5 local plus a day offset: a second no generated call uses.
        let ts = crate::support::scenario::BASE + day * DAY + SECOND / 2 + 7 * 3_600 * SECOND + 59 * 60 * SECOND + 59 * SECOND;
        worse.files[0].push(CallRow {
            request_id: Some(format!("added-{seed}")),
            customer_id: Some(CUSTOMERS[customer]),
            ts: Some(ts - ts % 1_000_000),
            api: Some("a".into()),
            status: Some("system_error".into()),
            error_code: Some("InternalError".into()),
        });
        let (after, _) = run(&worse, &[]);
        for (key, row) in &after {
            let fee = money(&row[FEE]);
            let compensation = money(&row[COMPENSATION]);
            prop_assert!(compensation >= Decimal::ZERO && compensation <= fee, "{:?}", row);
            if let Some(old) = before.get(key) {
                prop_assert!(compensation >= money(&old[COMPENSATION]), "{:?} fell from {:?}", row, old);
            }
        }
    }

    /// SLA 5: exempting more calls never raises compensation.
    #[test]
    fn adding_an_exemption_never_raises_compensation(seed in 0u64..1_000_000, pick in 0usize..1000) {
        let s = Scenario::random(seed);
        let (before, _) = run(&s, &[]);
        let mut better = s.clone();
        let calls = s.all_calls();
        let id = calls[pick % calls.len()].request_id.clone().unwrap_or_else(|| "none".into());
        better.exempt_calls.push((id, "5.4".into()));
        better.error_codes.push(("InternalError".into(), "5.16".into()));
        let (after, _) = run(&better, &[]);
        for (key, row) in &after {
            let old = &before[key];
            prop_assert!(money(&row[COMPENSATION]) <= money(&old[COMPENSATION]), "{:?} rose from {:?}", row, old);
        }
    }
}
