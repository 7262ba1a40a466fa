//! Takes the stage results behind one ledger row; gives the [`Explanation`] of them, section
//! by section.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::model::*;
use crate::inputs::claims::Claim;
use crate::job::Job;
use crate::lang::Lang;
use crate::ledger::{self, money};
use crate::policy::{reaches_pct, Clause, Policy};
use crate::quarantine::Entry;
use crate::stages::availability::Availability;
use crate::stages::billing::Fee;
use crate::stages::calls::{CustomerMonth, MonthCallCounts};
use crate::stages::claims::{check_claim, ClaimContext};
use crate::stages::compensation::{CompensationSteps, ROUNDING_NAME};
use crate::stages::exemptions::{ExemptionRules, SystemError};
use crate::stages::pricing::{MonthTables, PricedMonth, PricingRules};
use crate::stages::service_months::ServiceMonth;
use crate::time::{format_instant, local_date};

/// The stage results one explanation is built from.
pub(super) struct Parts<'a> {
    pub job: &'a Job,
    pub rules: &'a PricingRules<'a>,
    pub service_month: &'a ServiceMonth,
    pub calls: &'a CustomerMonth,
    pub errors: Vec<ErrorLine>,
    pub counts: &'a MonthCallCounts,
    pub priced: &'a PricedMonth,
    pub month_tables: &'a MonthTables<'a>,
    pub billing_defects: Vec<Entry>,
}

/// Every section, from the stage results.
pub(super) fn explanation(parts: Parts) -> anyhow::Result<Explanation> {
    let Parts {
        job,
        rules,
        service_month: month,
        calls,
        errors,
        counts,
        priced,
        month_tables,
        mut billing_defects,
    } = parts;
    let row = &priced.row;
    billing_defects.sort();
    Ok(Explanation {
        customer_id: row.customer_id,
        service_month: month.month.to_string(),
        as_of: job.as_of.to_string(),
        period_start: month.period_start.to_string(),
        period_end: month.period_end.to_string(),
        provisional: month.provisional,
        covered: month
            .covered
            .iter()
            .map(|(a, b)| [a.to_string(), b.to_string()])
            .collect(),
        calls: calls_section(calls)?,
        clause_names: named_clauses(&errors, counts, &job.policy),
        system_errors: errors,
        exempt_by_clause: counts
            .exempt_by_clause
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect(),
        availability: availability_section(priced, job),
        fee: fee_section(priced, month_tables, &billing_defects),
        compensation: priced
            .compensation
            .map(|steps| compensation_section(priced, steps)),
        claims: claims_section(rules, month, priced, &month_tables.claims),
        payout: money(row.payout()),
        status: row.status().to_string(),
        ledger_csv: ledger::csv_line(row)?,
        ledger_row: ledger::COLUMNS
            .iter()
            .map(|c| c.to_string())
            .zip(ledger::csv_cells(row))
            .collect(),
    })
}

fn calls_section(calls: &CustomerMonth) -> anyhow::Result<CallsSection> {
    Ok(CallsSection {
        valid_rows: calls.valid_rows,
        quarantined: calls.quarantined.iter().map(QuarantineLine::from).collect(),
        duplicate_rows: calls.duplicate_rows()?,
        conflicting_duplicates: calls.conflicts.iter().map(QuarantineLine::from).collect(),
        unique_calls: calls.unique_calls,
        outside_coverage_in_month: calls.uncovered_in_month,
        other_months: calls.other_months,
        counted: calls.counted(),
        counted_by_status: calls
            .counted_by_status
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect(),
    })
}

fn availability_section(priced: &PricedMonth, job: &Job) -> AvailabilitySection {
    let (row, availability) = (&priced.row, &priced.availability);
    AvailabilitySection {
        total_calls: availability.total_calls,
        system_errors: row.system_errors,
        exempt_errors: row.exempt_errors,
        unavailable_calls: availability.unavailable_calls,
        availability_pct: ledger::fixed(row.availability_pct, 4),
        comparisons: tier_comparisons(availability, job),
        tier_rate: ledger::fixed(row.tier_rate, 2),
    }
}

fn fee_section(priced: &PricedMonth, tables: &MonthTables, defects: &[Entry]) -> FeeSection {
    let (currency, monthly_fee) = match &priced.fee {
        Fee::Paid { currency, amount } => (currency.clone(), Some(money(*amount))),
        Fee::Unpriceable(_) => (None, None),
    };
    FeeSection {
        billing_rows: tables
            .billing_rows
            .iter()
            .map(|r| BillingLine {
                kind: format!("{:?}", r.kind).to_lowercase(),
                amount: r.amount.to_string(),
                currency: r.currency.clone(),
            })
            .collect(),
        quarantined: defects.iter().map(QuarantineLine::from).collect(),
        currency,
        monthly_fee,
        error: priced.row.error().map(str::to_string),
    }
}

/// `5.9 监管部门和运营商管控 / regulator or carrier controls`: a clause's titles in the SLA's
/// language and in English, as the policy gives them (the number alone when it gives none).
fn clause_names(policy: &Policy, clause: Clause) -> String {
    let titles: Vec<&str> = [Lang::ZhCn, Lang::En]
        .into_iter()
        .filter_map(|lang| policy.clause_title(clause, lang))
        .collect();
    if titles.is_empty() {
        clause.to_string()
    } else {
        format!("{clause} {}", titles.join(" / "))
    }
}

/// The names of every clause an error line or the exempt counts mention.
fn named_clauses(
    errors: &[ErrorLine],
    counts: &MonthCallCounts,
    policy: &Policy,
) -> BTreeMap<String, String> {
    let mentioned = errors
        .iter()
        .flat_map(|e| {
            e.clause
                .into_iter()
                .chain(e.matched.iter().map(|m| m.clause))
        })
        .chain(counts.exempt_by_clause.keys().copied());
    mentioned
        .map(|c| (c.to_string(), clause_names(policy, c)))
        .collect()
}

/// Every counted system error with the rules that exempted it, or did not (SPEC §4, SLA 5):
/// the clause is the one the heavy step's attribution picks, the rest is for the reader.
pub(super) fn error_lines(rules: &ExemptionRules, errors: &[SystemError]) -> Vec<ErrorLine> {
    errors
        .iter()
        .map(|error| {
            let clause = rules.attribute(error);
            ErrorLine {
                request_id: error.request_id.clone(),
                ts: format_instant(error.ts),
                error_code: error.error_code.clone(),
                calls_in_second: error.calls_in_second,
                exempt_under: clause.map(|c| c.to_string()),
                clause,
                matched: rules.matches(error),
                burst_suspended_by_notice: rules
                    .in_burst_second(error)
                    .then(|| rules.notice_covering(error))
                    .flatten()
                    .map(NoticeLine::from),
                unannounced_windows: rules
                    .unannounced_windows_covering(error)
                    .iter()
                    .map(|w| format!("{} ({})", w.window_id, w.clause))
                    .collect(),
                late_notices: rules
                    .late_notices_covering(error)
                    .into_iter()
                    .map(NoticeLine::from)
                    .collect(),
            }
        })
        .collect()
}

/// `11 unavailable / 2000 counted: 1989 × 100 < 99.50 × 2000 → 99.4500 % < 99.50 %`, per tier.
fn tier_comparisons(a: &Availability, job: &Job) -> Vec<String> {
    let mut lines = Vec::new();
    for tier in &job.policy.tiers {
        let reached = reaches_pct(a.available_calls(), a.total_calls, tier.at_least_pct);
        let bound = ledger::fixed(tier.at_least_pct, 2);
        let line = if a.total_calls == 0 {
            format!(
                "no counted calls: availability is 100 % >= {bound} % → rate {}",
                ledger::fixed(tier.rate, 2)
            )
        } else {
            let exact =
                u128::from(a.available_calls()) * 1_000_000 % u128::from(a.total_calls) == 0;
            format!(
                "{} unavailable / {} counted: {} × 100 {} {bound} × {} → availability {}{} % {} {bound} %{}",
                a.unavailable_calls,
                a.total_calls,
                a.available_calls(),
                if reached { ">=" } else { "<" },
                a.total_calls,
                if exact { "" } else { "≈" },
                ledger::fixed(a.pct_rounded_down(), 4),
                if reached { ">=" } else { "<" },
                if reached {
                    format!(" → rate {}", ledger::fixed(tier.rate, 2))
                } else {
                    String::new()
                }
            )
        };
        lines.push(line);
        if reached {
            break;
        }
    }
    lines
}

/// The compensation arithmetic of a priced month, step by step (SLA 3.1).
fn compensation_section(priced: &PricedMonth, steps: CompensationSteps) -> CompensationSection {
    let fee = match &priced.fee {
        Fee::Paid { amount, .. } => *amount,
        Fee::Unpriceable(_) => unreachable!("only a month with a fee has compensation steps"),
    };
    CompensationSection {
        monthly_fee: money(fee),
        tier_rate: ledger::fixed(priced.tier_rate, 2),
        exact: steps.exact.normalize().to_string(),
        rounding: ROUNDING_NAME,
        rounded: money(steps.rounded),
        capped_at_fee: steps.capped_at_fee(),
        compensation: money(steps.owed),
    }
}

/// Every claim of the month with why it is valid or not, and the window it was judged by.
pub(super) fn claims_section(
    rules: &PricingRules,
    month: &ServiceMonth,
    priced: &PricedMonth,
    claims: &[&Claim],
) -> ClaimsSection {
    let (Some(steps), Some(decision)) = (&priced.compensation, &priced.decision) else {
        return ClaimsSection {
            claim_opens: None,
            claim_deadline: None,
            claim_status: None,
            claim_id: None,
            claims: claims
                .iter()
                .map(|c| ClaimLine {
                    claim_id: c.claim_id.clone(),
                    submitted_at: format_instant(c.submitted_at),
                    submitted_local_date: local_date(rules.policy.timezone, c.submitted_at)
                        .to_string(),
                    channel: c.channel.clone(),
                    valid: false,
                    why: "not decided: the month's billing is unusable (`error` row)".into(),
                })
                .collect(),
        };
    };
    let context = rules.claim_context(month, steps.owed);
    ClaimsSection {
        claim_opens: decision.claim_opens.map(|d| d.to_string()),
        claim_deadline: decision.claim_deadline.map(|d| d.to_string()),
        claim_status: Some(decision.status.as_str().to_string()),
        claim_id: decision.claim_id.clone(),
        claims: claims
            .iter()
            .map(|c| {
                claim_line(
                    c,
                    &context,
                    decision.claim_opens,
                    decision.claim_deadline,
                    &decision.claim_id,
                )
            })
            .collect(),
    }
}

fn claim_line(
    claim: &Claim,
    context: &ClaimContext,
    opens: Option<NaiveDate>,
    deadline: Option<NaiveDate>,
    winner: &Option<String>,
) -> ClaimLine {
    let (valid, why) = if context.compensation <= Decimal::ZERO {
        (
            false,
            "nothing is owed (compensation 0.00): no claim is needed".to_string(),
        )
    } else if context.provisional {
        (
            false,
            "the month is provisional: claims are decided once it closes".to_string(),
        )
    } else {
        match (opens, deadline) {
            (Some(opens), Some(deadline)) => match check_claim(claim, context, opens, deadline) {
                Ok(()) if winner.as_deref() == Some(claim.claim_id.as_str()) => {
                    (true, format!("valid: by ticket, {opens} <= submitted <= {deadline}, known by as-of; the earliest valid claim wins"))
                }
                Ok(()) => (true, "valid, but an earlier valid claim is the one paid".to_string()),
                Err(why) => (false, why),
            },
            _ => (false, "the claim window is unknown".to_string()),
        }
    };
    ClaimLine {
        claim_id: claim.claim_id.clone(),
        submitted_at: format_instant(claim.submitted_at),
        submitted_local_date: local_date(context.policy.timezone, claim.submitted_at).to_string(),
        channel: claim.channel.clone(),
        valid,
        why,
    }
}
