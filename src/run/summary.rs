//! Takes the job and what the run computed; gives the short summary printed on stdout.

use std::collections::BTreeMap;

use super::Computed;
use crate::job::Job;
use crate::ledger::{self, ClaimStatus, LedgerRow};
use crate::stages::error_budget::{self, AtRisk};

/// The short human summary printed on stdout.
pub(crate) fn summary(job: &Job, outcome: &Computed) -> String {
    use std::fmt::Write;
    let rows = &outcome.ledger;
    let mut text = String::new();
    let provisional = rows.iter().filter(|r| r.provisional).count();
    let errors: Vec<&LedgerRow> = rows.iter().filter(|r| r.priced().is_none()).collect();
    writeln!(
        text,
        "sla-ledger: {} service months ({} provisional), months {}..{}, as of {}",
        rows.len(),
        provisional,
        job.months.first,
        job.months.last,
        job.as_of
    )
    .ok();
    below_standard_and_claims(&mut text, rows);
    for (currency, totals) in &outcome.totals {
        writeln!(
            text,
            "  {currency}: compensation {}, payout {}",
            totals.compensation, totals.payout
        )
        .ok();
    }
    if !errors.is_empty() {
        writeln!(text, "  error rows: {}", errors.len()).ok();
        for row in errors.iter().take(10) {
            writeln!(
                text,
                "    customer {} {}: {}",
                row.customer_id,
                row.service_month,
                row.error().unwrap_or("")
            )
            .ok();
        }
    }
    let c = &outcome.counts.rows;
    writeln!(
        text,
        "  call rows: {} read, {} counted, {} quarantined, {} duplicates, {} outside the selected service months",
        c.read, c.counted, c.quarantined, c.duplicates, c.not_counted
    )
    .ok();
    writeln!(text, "  quarantine entries: {}", outcome.quarantine.len()).ok();
    write_watch_list(&mut text, job, &outcome.at_risk);
    writeln!(text, "  written: {}", crate::paths::shown(&job.out_dir)).ok();
    text
}

/// How many months fell below the standard, by tier, and how their claims stand.
fn below_standard_and_claims(text: &mut String, rows: &[LedgerRow]) {
    use std::fmt::Write;
    let mut by_tier: BTreeMap<String, usize> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.tier_rate.is_zero()) {
        *by_tier.entry(ledger::fixed(row.tier_rate, 2)).or_default() += 1;
    }
    let tiers: Vec<String> = by_tier
        .iter()
        .map(|(rate, n)| format!("{n} at {rate}"))
        .collect();
    writeln!(
        text,
        "  below the standard: {}",
        if tiers.is_empty() {
            "none".into()
        } else {
            tiers.join(", ")
        }
    )
    .ok();
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for p in rows
        .iter()
        .filter_map(LedgerRow::priced)
        .filter(|p| p.claim_status != ClaimStatus::NotDue)
    {
        *statuses.entry(p.claim_status.as_str()).or_default() += 1;
    }
    let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(
        text,
        "  claims: {}",
        if statuses.is_empty() {
            "none due".into()
        } else {
            statuses.join(", ")
        }
    )
    .ok();
}

/// Provisional months already below the standard or within 10 % of their error budget.
fn write_watch_list(text: &mut String, job: &Job, at_risk: &[AtRisk]) {
    use std::fmt::Write;
    const SHOWN: usize = 20;
    let watched = error_budget::watch_list(at_risk, &job.policy);
    if watched.is_empty() {
        return;
    }
    let bound = ledger::fixed(job.policy.tiers[0].at_least_pct, 2);
    writeln!(
        text,
        "  at risk (provisional, see at_risk.csv): {} month(s) below {bound}% or within 10% of their error budget",
        watched.len()
    )
    .ok();
    for r in watched.iter().take(SHOWN) {
        let state = if r.remaining_calls < 0 {
            format!("below {bound}% by {} call(s)", -r.remaining_calls)
        } else {
            format!("{} call(s) left before {bound}%", r.remaining_calls)
        };
        writeln!(
            text,
            "    customer {} {}: {} unavailable of {} (budget {}), {state}",
            r.customer_id, r.service_month, r.unavailable_calls, r.total_calls, r.budget_calls
        )
        .ok();
    }
    if watched.len() > SHOWN {
        writeln!(text, "    ... and {} more", watched.len() - SHOWN).ok();
    }
}
