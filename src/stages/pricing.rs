//! Pricing one service month (SPEC §4–§7, SLA 1.5, 3.1, 3.2): its counts → availability and
//! tier → the fee actually paid → compensation → the claim decision → its ledger row.
//!
//! Takes a service month, the heavy step's counts for it, its billing rows and claims, and the
//! rules that do not vary by month ([`PricingRules`]); gives the ledger row and every
//! intermediate value ([`PricedMonth`]). `run` prices every month with [`price_month`];
//! `explain` prices its one month with it too and only presents the steps.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::NaiveDate;

use crate::inputs::billing::{Billing, BillingRow};
use crate::inputs::calendar::Calendar;
use crate::inputs::claims::Claim;
use crate::ledger::{LedgerRow, Priced, Pricing};
use crate::policy::Policy;
use crate::stages::availability::Availability;
use crate::stages::billing::{monthly_fee, Fee};
use crate::stages::calls::MonthCallCounts;
use crate::stages::claims::{decide, ClaimContext, ClaimDecision};
use crate::stages::compensation::{compensation_steps, CompensationSteps};
use crate::stages::service_months::ServiceMonth;
use crate::time::YearMonth;

/// What pricing needs that is the same for every month of a run.
#[derive(Clone, Copy)]
pub struct PricingRules<'a> {
    pub policy: &'a Policy,
    pub as_of: NaiveDate,
    pub calendar: &'a Calendar,
    /// How the calendar is named in errors (its file, or the built-in one).
    pub calendar_name: &'a str,
}

impl<'a> PricingRules<'a> {
    /// The facts the claim decision of `month` needs, once `compensation` is known.
    pub fn claim_context(
        &self,
        month: &ServiceMonth,
        compensation: rust_decimal::Decimal,
    ) -> ClaimContext<'a> {
        ClaimContext {
            customer_id: month.customer_id,
            month: month.month,
            period_end: month.period_end,
            provisional: month.provisional,
            compensation,
            as_of: self.as_of,
            policy: self.policy,
            calendar: self.calendar,
            calendar_name: self.calendar_name,
        }
    }
}

/// The billing rows and claims of one service month.
#[derive(Debug, Default)]
pub struct MonthTables<'a> {
    pub billing_rows: Vec<&'a BillingRow>,
    /// A billing row of this month was quarantined: the month cannot be priced (SPEC §5).
    pub billing_defective: bool,
    pub claims: Vec<&'a Claim>,
}

/// The billing and claims tables filed by (customer, service month), built once per run.
pub struct TablesByMonth<'a> {
    months: BTreeMap<(i64, YearMonth), MonthTables<'a>>,
    billing: &'a Billing,
}

impl<'a> TablesByMonth<'a> {
    pub fn new(billing: &'a Billing, claims: &'a [Claim]) -> Self {
        let mut months: BTreeMap<(i64, YearMonth), MonthTables<'a>> = BTreeMap::new();
        for row in &billing.rows {
            months
                .entry((row.customer_id, row.period))
                .or_default()
                .billing_rows
                .push(row);
        }
        for claim in claims {
            months
                .entry((claim.customer_id, claim.service_month))
                .or_default()
                .claims
                .push(claim);
        }
        TablesByMonth { months, billing }
    }

    /// The rows of `customer_id`'s `month` (none when it has none).
    pub fn of(&self, customer_id: i64, month: YearMonth) -> MonthTables<'a> {
        let key = (customer_id, month);
        let mut tables = match self.months.get(&key) {
            Some(found) => MonthTables {
                billing_rows: found.billing_rows.clone(),
                billing_defective: false,
                claims: found.claims.clone(),
            },
            None => MonthTables::default(),
        };
        tables.billing_defective = self.billing.defective.contains_key(&key);
        tables
    }
}

/// One service month priced, with every step on the way.
#[derive(Debug)]
pub struct PricedMonth {
    pub availability: Availability,
    pub tier_rate: rust_decimal::Decimal,
    pub fee: Fee,
    /// Present when the fee is known.
    pub compensation: Option<CompensationSteps>,
    /// Present when the fee is known.
    pub decision: Option<ClaimDecision>,
    pub row: LedgerRow,
}

/// Prices `month` from its `counts` and `tables` (SPEC §4–§7).
pub fn price_month(
    rules: &PricingRules,
    month: &ServiceMonth,
    counts: &MonthCallCounts,
    tables: &MonthTables,
) -> anyhow::Result<PricedMonth> {
    let exempt_errors = counts.exempt_errors();
    let availability = Availability::of(counts.total_calls, counts.system_errors, exempt_errors)
        .with_context(|| format!("customer {} {}", month.customer_id, month.month))?;
    let unavailable_calls = availability.unavailable_calls;
    let tier_rate = availability.tier_rate(rules.policy);
    let fee = monthly_fee(
        tables.billing_rows.iter().copied(),
        tables.billing_defective,
    );
    let (pricing, steps, decision) = match &fee {
        Fee::Unpriceable(why) => (Pricing::Unpriceable { error: why.clone() }, None, None),
        Fee::Paid { currency, amount } => {
            let steps = compensation_steps(*amount, tier_rate);
            let context = rules.claim_context(month, steps.owed);
            let decision = decide(&context, &tables.claims)
                .map_err(|gap| crate::error::hinted(gap.to_string(), gap.hint()))?;
            let priced = Priced {
                currency: currency.clone(),
                monthly_fee: *amount,
                compensation: steps.owed,
                claim_status: decision.status,
                claim_id: decision.claim_id.clone(),
                claim_opens: decision.claim_opens,
                claim_deadline: decision.claim_deadline,
                payout: decision.payout,
            };
            // SLA 3.1: never more than was paid; a payout is what is owed or nothing.
            assert!(priced.compensation >= rust_decimal::Decimal::ZERO);
            assert!(priced.compensation <= priced.monthly_fee);
            assert!(priced.payout.is_zero() || priced.payout == priced.compensation);
            (Pricing::Priced(priced), Some(steps), Some(decision))
        }
    };
    let row = LedgerRow {
        customer_id: month.customer_id,
        service_month: month.month,
        period_start: month.period_start,
        period_end: month.period_end,
        provisional: month.provisional,
        total_calls: counts.total_calls,
        system_errors: counts.system_errors,
        exempt_errors,
        unavailable_calls,
        availability_pct: availability.pct_rounded_down(),
        tier_rate,
        pricing,
    };
    Ok(PricedMonth {
        availability,
        tier_rate,
        fee,
        compensation: steps,
        decision,
        row,
    })
}
