//! What changed between two ledgers: two sets of rows in, signed adjustments out.
//!
//! Gives one adjustment per customer, service month and currency whose payout, compensation,
//! tier, fee, currency, status or claim changed, with its reason and idempotency key, and the
//! totals per currency. Money in two currencies is never netted (SLA 3.1, 3.2).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::run_ledger::{LedgerLine, RunLedger};

/// The scale of every amount in an adjustment: cents.
pub(super) const MONEY_SCALE: u32 = 2;

/// One correction entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Adjustment {
    pub(crate) customer_id: i64,
    pub(crate) service_month: String,
    pub(crate) prior_payout: Decimal,
    pub(crate) current_payout: Decimal,
    pub(crate) delta: Decimal,
    /// Empty only when neither side has a currency (then every amount is 0.00).
    pub(crate) currency: String,
    pub(crate) reason: String,
    pub(crate) idempotency_key: String,
}

/// What changed between two versions of a row, in a fixed order. Each names a group of
/// ledger columns; `tier` and `compensation` appear only when nothing upstream explains them
/// (for example a different policy).
fn reasons(prior: &LedgerLine, current: &LedgerLine) -> Vec<&'static str> {
    let differs = |columns: &[&str]| columns.iter().any(|c| prior.cell(c) != current.cell(c));
    let mut found = Vec::new();
    let groups: [(&str, &[&str]); 7] = [
        ("period", &["period_start", "period_end"]),
        ("provisional", &["provisional"]),
        ("counts", &["total_calls", "system_errors"]),
        ("exemptions", &["exempt_errors"]),
        ("fee", &["monthly_fee"]),
        ("currency", &["currency"]),
        ("status", &["status"]),
    ];
    for (name, columns) in groups {
        if differs(columns) {
            found.push(name);
        }
    }
    // A claim decision that moved to or from `not_due` (or an `error` row) follows from the
    // compensation; only a change between owed states is a claim event (filed, won, lapsed).
    let owed = |r: &LedgerLine| !matches!(r.cell("claim_status"), "" | "not_due");
    if differs(&["claim_status", "claim_id"]) && owed(prior) && owed(current) {
        found.push("claim");
    }
    let upstream_of_tier = ["period", "counts", "exemptions"];
    if differs(&["tier_rate"]) && !found.iter().any(|r| upstream_of_tier.contains(r)) {
        found.push("tier");
    }
    if differs(&["compensation"]) && found.is_empty() {
        found.push("compensation");
    }
    if found.is_empty() {
        // Nothing upstream changed: name the changed columns themselves.
        found.extend(TRIGGER_COLUMNS.iter().filter(|c| differs(&[c])));
    }
    found
}

/// The columns whose change makes a row an adjustment.
const TRIGGER_COLUMNS: [&str; 8] = [
    "payout",
    "compensation",
    "tier_rate",
    "monthly_fee",
    "currency",
    "claim_status",
    "claim_id",
    "status",
];

/// `sha256("customer_id|service_month|currency|prior ledger sha256|current ledger sha256")`
/// in lowercase hex: the same pair of ledgers always gives the same key, so posting an
/// adjustment twice is detectable. The currency separates the two entries of a month whose
/// currency changed.
pub(crate) fn idempotency_key(
    customer_id: i64,
    service_month: &str,
    currency: &str,
    prior_sha256: &str,
    current_sha256: &str,
) -> String {
    let text = format!("{customer_id}|{service_month}|{currency}|{prior_sha256}|{current_sha256}");
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            write!(s, "{b:02x}").expect("write to String");
            s
        })
}

/// One currency of a customer-month's payout change: (currency, paid before, due now).
pub(crate) type CurrencyChange = (String, Decimal, Decimal);

/// A row's payout by currency; empty for no row or a row without currency (no billing, or an
/// `error` row), which pays 0.00.
pub(crate) fn payout_by_currency(
    row: Option<&LedgerLine>,
) -> anyhow::Result<BTreeMap<String, Decimal>> {
    let mut payouts = BTreeMap::new();
    if let Some(row) = row.filter(|r| !r.cell("currency").is_empty()) {
        payouts.insert(row.cell("currency").to_string(), row.payout()?);
    }
    Ok(payouts)
}

/// The change of one customer-month's payout, per currency, shared by `diff` and `post`:
/// money in two currencies is never netted, so a currency on one side only is reversed in its
/// own (paid before, nothing due) or booked in its own (nothing before, due now). The prior
/// side's currencies come first.
pub(crate) fn payout_changes(
    prior: &BTreeMap<String, Decimal>,
    current: &BTreeMap<String, Decimal>,
) -> Vec<CurrencyChange> {
    let zero = Decimal::new(0, MONEY_SCALE);
    let mut changes: Vec<CurrencyChange> = prior
        .iter()
        .map(|(c, paid)| (c.clone(), *paid, current.get(c).copied().unwrap_or(zero)))
        .collect();
    changes.extend(
        current
            .iter()
            .filter(|(c, _)| !prior.contains_key(*c))
            .map(|(c, due)| (c.clone(), zero, *due)),
    );
    changes
}

/// Every adjustment between two ledgers, ordered by (customer_id, service_month, currency).
pub(crate) fn adjustments(
    prior: &RunLedger,
    current: &RunLedger,
) -> anyhow::Result<Vec<Adjustment>> {
    let key = |r: &LedgerLine| (r.customer_id, r.service_month.clone());
    let prior_rows: BTreeMap<_, _> = prior.rows.iter().map(|r| (key(r), r)).collect();
    let current_rows: BTreeMap<_, _> = current.rows.iter().map(|r| (key(r), r)).collect();
    let mut keys: Vec<&(i64, String)> = prior_rows.keys().chain(current_rows.keys()).collect();
    keys.sort();
    keys.dedup();

    let mut out = Vec::new();
    for k in keys {
        let entry = |prior_payout: Decimal, current_payout: Decimal, currency: &str, reason| {
            let mut delta = current_payout - prior_payout;
            delta.rescale(MONEY_SCALE);
            Adjustment {
                customer_id: k.0,
                service_month: k.1.clone(),
                prior_payout,
                current_payout,
                delta,
                currency: currency.to_string(),
                reason,
                idempotency_key: idempotency_key(
                    k.0,
                    &k.1,
                    currency,
                    &prior.sha256,
                    &current.sha256,
                ),
            }
        };
        let (p, c) = (prior_rows.get(k).copied(), current_rows.get(k).copied());
        let reason = match (p, c) {
            (Some(_), None) => "only_prior".to_string(),
            (None, Some(_)) => "only_current".to_string(),
            (Some(p), Some(c)) => {
                if TRIGGER_COLUMNS.iter().all(|col| p.cell(col) == c.cell(col)) {
                    continue;
                }
                reasons(p, c).join("+")
            }
            (None, None) => unreachable!("key from one of the sides"),
        };
        let mut changes = payout_changes(&payout_by_currency(p)?, &payout_by_currency(c)?);
        if changes.is_empty() {
            // Neither side has a currency (no billing, or an `error` row): 0.00 on both.
            let zero = Decimal::new(0, MONEY_SCALE);
            changes.push((String::new(), zero, zero));
        }
        for (currency, prior_payout, current_payout) in changes {
            out.push(entry(
                prior_payout,
                current_payout,
                &currency,
                reason.clone(),
            ));
        }
    }
    for a in &out {
        assert_eq!(a.delta, a.current_payout - a.prior_payout);
        assert!(
            !a.currency.is_empty() || a.delta.is_zero(),
            "money without a currency: {a:?}"
        );
    }
    Ok(out)
}

/// Per currency: how many entries, what was paid before, what is due now, and the net delta.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct CurrencyTotals {
    pub(crate) rows: usize,
    pub(crate) prior_payout: Decimal,
    pub(crate) current_payout: Decimal,
    pub(crate) delta: Decimal,
}

/// Totals per currency over entries that carry money (a currency).
pub(crate) fn totals(adjustments: &[Adjustment]) -> BTreeMap<String, CurrencyTotals> {
    let mut sums: BTreeMap<String, CurrencyTotals> = BTreeMap::new();
    for a in adjustments.iter().filter(|a| !a.currency.is_empty()) {
        let t = sums.entry(a.currency.clone()).or_default();
        t.rows += 1;
        t.prior_payout += a.prior_payout;
        t.current_payout += a.current_payout;
        t.delta += a.delta;
    }
    for t in sums.values_mut() {
        for v in [&mut t.prior_payout, &mut t.current_payout, &mut t.delta] {
            v.rescale(MONEY_SCALE);
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjustments::run_ledger::fixtures::{ledger, line};
    use crate::ledger::money;

    #[test]
    fn sla_3_2_a_currency_change_reverses_and_rebooks_instead_of_netting() {
        let p = line(&[("currency", "CNY"), ("payout", "10.00")]);
        let c = line(&[("currency", "USD"), ("payout", "2.00")]);
        let rows = adjustments(&ledger("a", vec![p]), &ledger("b", vec![c])).unwrap();
        let shown: Vec<_> = rows
            .iter()
            .map(|a| (money(a.delta), a.currency.as_str(), a.reason.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("-10.00".to_string(), "CNY", "currency"),
                ("2.00".to_string(), "USD", "currency")
            ]
        );
        assert_ne!(rows[0].idempotency_key, rows[1].idempotency_key);
    }

    #[test]
    fn sla_3_1_an_error_row_reverses_the_prior_payout_in_its_currency() {
        let p = line(&[
            ("currency", "CNY"),
            ("payout", "7.00"),
            ("status", "ok"),
            ("claim_status", "valid"),
        ]);
        let c = line(&[("payout", "0.00"), ("status", "error")]);
        let rows = adjustments(&ledger("a", vec![p]), &ledger("b", vec![c])).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (money(rows[0].delta), rows[0].currency.as_str()),
            ("-7.00".to_string(), "CNY")
        );
        assert_eq!(rows[0].reason, "currency+status");
    }

    #[test]
    fn idempotency_key_is_sha256_of_its_parts() {
        let key = idempotency_key(1, "2026-01", "CNY", "p", "c");
        let expected = Sha256::digest(b"1|2026-01|CNY|p|c");
        assert_eq!(key.len(), 64);
        assert_eq!(
            key,
            expected
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
}
