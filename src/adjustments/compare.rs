//! `diff` under the scope rule (issue 16): two ledgers and their scopes in, adjustments out.
//!
//! Only the customer-months both runs covered are compared; runs under different policies are
//! refused, or with `--allow-policy-change` every entry is labelled `policy`.

use super::changes::{adjustments, Adjustment};
use super::run_ledger::{LedgerLine, RunLedger};
use crate::scope::{check_policy, with_policy_reason, RunScope};

/// Two runs' adjustments over the customer-months both covered (issue 16's scope rule).
#[derive(Debug)]
pub(crate) struct Comparison {
    pub(crate) rows: Vec<Adjustment>,
    /// The scope compared, or `None` when the runs share no customer-month.
    pub(crate) common: Option<RunScope>,
    /// Ledger rows outside `common`, left out: (prior, current).
    pub(crate) left_out_rows: (usize, usize),
    pub(crate) policy_changed: bool,
}

/// `diff` under the scope rule: only the customer-months both runs cover are compared, so a
/// narrow rerun never reverses what it did not look at.
pub(crate) fn compare(
    prior: &RunLedger,
    prior_scope: &RunScope,
    current: &RunLedger,
    current_scope: &RunScope,
    allow_policy_change: bool,
) -> anyhow::Result<Comparison> {
    let policy_changed = check_policy(
        (
            prior_scope,
            &format!("`{}`", crate::paths::shown(&prior.dir)),
        ),
        (
            current_scope,
            &format!("`{}`", crate::paths::shown(&current.dir)),
        ),
        allow_policy_change,
    )?;
    let common = prior_scope.common(current_scope);
    let within = |ledger: &RunLedger| -> (RunLedger, usize) {
        let rows: Vec<LedgerLine> = ledger
            .rows
            .iter()
            .filter(|r| {
                common
                    .as_ref()
                    .is_some_and(|s| s.covers(r.customer_id, &r.service_month))
            })
            .cloned()
            .collect();
        let left_out = ledger.rows.len() - rows.len();
        let scoped = RunLedger {
            dir: ledger.dir.clone(),
            sha256: ledger.sha256.clone(),
            rows,
        };
        (scoped, left_out)
    };
    let (p, p_out) = within(prior);
    let (c, c_out) = within(current);
    let mut rows = adjustments(&p, &c)?;
    if policy_changed {
        for a in &mut rows {
            a.reason = with_policy_reason(&a.reason);
        }
    }
    Ok(Comparison {
        rows,
        common,
        left_out_rows: (p_out, c_out),
        policy_changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjustments::run_ledger::fixtures::{ledger, line, line_of};
    use crate::ledger::money;

    fn scope(first: &str, last: &str, customers: Option<&[i64]>) -> RunScope {
        RunScope {
            first_month: first.parse().unwrap(),
            last_month: last.parse().unwrap(),
            customers: customers.map(|c| c.iter().copied().collect()),
            as_of: "2026-04-30".into(),
            policy: serde_json::json!({"name": "CCC"}),
        }
    }

    #[test]
    fn issue16_scope_a_one_customer_rerun_reverses_no_other_customer() {
        let prior = ledger(
            "a",
            vec![
                line(&[("currency", "CNY"), ("payout", "10.00")]),
                line_of(2, &[("currency", "CNY"), ("payout", "5.00")]),
            ],
        );
        let current = ledger("b", vec![line(&[("currency", "CNY"), ("payout", "12.00")])]);
        let comparison = compare(
            &prior,
            &scope("2026-01", "2026-01", None),
            &current,
            &scope("2026-01", "2026-01", Some(&[1])),
            false,
        )
        .unwrap();
        let shown: Vec<_> = comparison
            .rows
            .iter()
            .map(|a| (a.customer_id, money(a.delta)))
            .collect();
        assert_eq!(shown, [(1, "2.00".to_string())]);
        assert_eq!(comparison.left_out_rows, (1, 0));
    }
}
