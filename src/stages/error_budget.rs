//! Month-to-date risk of provisional rows (SLA 1.5, 3.1): the remaining error budget.
//!
//! Takes the ledger rows and the policy's tiers; gives, for each provisional row and each
//! tier bound above 0, how many unavailable calls the month could have at its current call
//! volume while still reaching that bound — the largest `u` with `(total - u) / total >= bound`,
//! in exact integers — and how many more it can take (negative: already crossed).

use std::io::Write;

use rust_decimal::Decimal;

use crate::ledger::{self, LedgerRow};
use crate::policy::{reaches_pct, Policy};
use crate::time::YearMonth;

pub const COLUMNS: [&str; 10] = [
    "customer_id",
    "service_month",
    "period_end",
    "total_calls",
    "unavailable_calls",
    "availability_pct",
    "bound_pct",
    "rate_below_bound",
    "budget_calls",
    "remaining_calls",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRisk {
    pub customer_id: i64,
    pub service_month: YearMonth,
    pub period_end: chrono::NaiveDate,
    pub total_calls: u64,
    pub unavailable_calls: u64,
    pub availability_pct: Decimal,
    pub bound_pct: Decimal,
    /// The tier rate that applies once the month falls below `bound_pct`.
    pub rate_below_bound: Decimal,
    /// The most unavailable calls that still reach `bound_pct` at `total_calls`.
    pub budget_calls: u64,
    /// `budget_calls - unavailable_calls`; negative when the bound is already crossed.
    pub remaining_calls: i64,
}

/// The largest `u <= total` with `(total - u) / total * 100 >= bound_pct`, exactly; 0 when there
/// are no calls (a single unavailable call would then be 0 %).
pub fn error_budget(total: u64, bound_pct: Decimal) -> u64 {
    if total == 0 {
        return 0;
    }
    // (total - u) * 100 * 10^s >= m * total  <=>  total - u >= ceil(m * total / (100 * 10^s)).
    let denominator = 100 * 10i128.pow(bound_pct.scale());
    let needed = bound_pct.mantissa() * i128::from(total);
    let min_available = (needed + denominator - 1).div_euclid(denominator);
    let budget = (i128::from(total) - min_available).max(0) as u64;
    debug_assert!(reaches_pct(total - budget, total, bound_pct));
    debug_assert!(budget == total || !reaches_pct(total - budget - 1, total, bound_pct));
    budget
}

/// One row per provisional ledger row and tier bound above 0, in ledger order.
pub fn at_risk_rows(rows: &[LedgerRow], policy: &Policy) -> Vec<AtRisk> {
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.provisional) {
        for pair in policy.tiers.windows(2) {
            let (tier, below) = (&pair[0], &pair[1]);
            let budget_calls = error_budget(row.total_calls, tier.at_least_pct);
            out.push(AtRisk {
                customer_id: row.customer_id,
                service_month: row.service_month,
                period_end: row.period_end,
                total_calls: row.total_calls,
                unavailable_calls: row.unavailable_calls,
                availability_pct: row.availability_pct,
                bound_pct: tier.at_least_pct,
                rate_below_bound: below.rate,
                budget_calls,
                remaining_calls: budget_calls as i64 - row.unavailable_calls as i64,
            });
        }
    }
    out
}

impl AtRisk {
    /// Below the bound already, or (with calls) within 10 % of its budget: `remaining * 10 <=
    /// budget`, in integers.
    pub fn is_watched(&self) -> bool {
        self.remaining_calls < 0
            || (self.total_calls > 0 && self.remaining_calls * 10 <= self.budget_calls as i64)
    }
}

/// The rows of the standard (the highest bound) that are below it or close to it.
pub fn watch_list<'a>(rows: &'a [AtRisk], policy: &Policy) -> Vec<&'a AtRisk> {
    let standard = policy.tiers[0].at_least_pct;
    rows.iter()
        .filter(|r| r.bound_pct == standard && r.is_watched())
        .collect()
}

pub fn write_csv(rows: &[AtRisk], out: impl Write) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(COLUMNS)?;
    for r in rows {
        writer.write_record([
            r.customer_id.to_string(),
            r.service_month.to_string(),
            r.period_end.format("%Y-%m-%d").to_string(),
            r.total_calls.to_string(),
            r.unavailable_calls.to_string(),
            ledger::fixed(r.availability_pct, 4),
            ledger::fixed(r.bound_pct, 2),
            ledger::fixed(r.rate_below_bound, 2),
            r.budget_calls.to_string(),
            r.remaining_calls.to_string(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn sla_3_1_error_budget_is_the_largest_count_still_reaching_the_bound() {
        // 2000 calls: 10 unavailable = 99.50 % exactly (reaches), 11 = 99.45 % (does not).
        assert_eq!(error_budget(2000, dec("99.50")), 10);
        assert_eq!(error_budget(2000, dec("99.00")), 20);
        assert_eq!(error_budget(2000, dec("95.00")), 100);
        // 199 calls: 1 unavailable is 99.497 % < 99.50 %, so nothing may fail.
        assert_eq!(error_budget(199, dec("99.50")), 0);
        assert_eq!(error_budget(200, dec("99.50")), 1);
        assert_eq!(error_budget(2001, dec("99.50")), 10);
        assert_eq!(error_budget(0, dec("99.50")), 0);
        assert_eq!(error_budget(7, dec("0")), 7);
    }

    #[test]
    fn sla_3_1_error_budget_agrees_with_the_tier_comparison_everywhere() {
        let policy = Policy::ccc();
        for total in 1..=1500u64 {
            for tier in &policy.tiers {
                let budget = error_budget(total, tier.at_least_pct);
                assert!(reaches_pct(total - budget, total, tier.at_least_pct));
                if budget < total {
                    assert!(!reaches_pct(total - budget - 1, total, tier.at_least_pct));
                }
            }
        }
    }
}
