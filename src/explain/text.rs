//! Takes an [`Explanation`]; gives it as plain text, one function per section.

use std::fmt::Write as _;

use super::model::Explanation;
use crate::stages::exemptions::{ExemptionMatch, MatchSource};

/// The explanation as plain text, section by section.
pub(crate) fn render_text(e: &Explanation) -> String {
    let mut t = String::new();
    let w = &mut t;
    heading(w, e);
    calls(w, e);
    system_errors(w, e);
    availability(w, e);
    fee(w, e);
    compensation(w, e);
    claims(w, e);
    t
}

/// A clause with its titles, as the explanation names it.
fn named<'e>(e: &'e Explanation, clause: &'e str) -> &'e str {
    e.clause_names.get(clause).map_or(clause, String::as_str)
}

/// The customer, month and covered dates (SLA 1.2).
fn heading(w: &mut String, e: &Explanation) {
    let _ = writeln!(
        w,
        "customer {} {} (as of {})",
        e.customer_id, e.service_month, e.as_of
    );
    let covered: Vec<String> = e.covered.iter().map(|[a, b]| format!("{a}..{b}")).collect();
    let _ = writeln!(
        w,
        "  covered dates: {} (period {}..{}){}",
        covered.join(", "),
        e.period_start,
        e.period_end,
        if e.provisional {
            ", provisional: the month is not over"
        } else {
            ""
        }
    );
}

/// The customer's rows: valid, duplicate, quarantined, counted and not (SLA 1.4, SPEC §2, §4).
fn calls(w: &mut String, e: &Explanation) {
    let c = &e.calls;
    let _ = writeln!(w, "calls (SLA 1.4; reference §4, §6)");
    let _ = writeln!(
        w,
        "  {} valid rows of the customer, {} duplicate rows dropped → {} unique calls",
        c.valid_rows, c.duplicate_rows, c.unique_calls
    );
    let _ = writeln!(
        w,
        "  not counted: {} on dates of the month not covered, {} in other months",
        c.outside_coverage_in_month, c.other_months
    );
    let by_status: Vec<String> = c
        .counted_by_status
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let _ = writeln!(w, "  counted: {} ({})", c.counted, by_status.join(", "));
    for q in c.quarantined.iter().chain(&c.conflicting_duplicates) {
        let _ = writeln!(
            w,
            "  quarantine: {} row {} {}: {}",
            q.source,
            q.row.map(|r| r.to_string()).unwrap_or_default(),
            q.reason,
            q.detail
        );
    }
}

/// Each counted system error and the rules that exempted it, or did not (SLA 5).
fn system_errors(w: &mut String, e: &Explanation) {
    let _ = writeln!(w, "system errors (SLA 5)");
    for err in &e.system_errors {
        let fate = match &err.exempt_under {
            Some(clause) => format!("exempt under {}", named(e, clause)),
            None => "unavailable".to_string(),
        };
        let _ = writeln!(
            w,
            "  {} {} {} ({} calls in its second): {fate}",
            err.request_id,
            err.ts,
            err.error_code.as_deref().unwrap_or("-"),
            err.calls_in_second
        );
        for m in &err.matched {
            let clause = m.clause.to_string();
            let _ = writeln!(w, "    matches {}: {}", named(e, &clause), match_text(m));
        }
        if let Some(n) = &err.burst_suspended_by_notice {
            let _ = writeln!(
                w,
                "    burst, but a notice given in advance covers {}..{}: 5.7 does not apply",
                n.start, n.end
            );
        }
        for window in &err.unannounced_windows {
            let _ = writeln!(
                w,
                "    window {window} covers it but was not announced in advance: exempts nothing"
            );
        }
        for n in &err.late_notices {
            let _ = writeln!(
                w,
                "    notice for {}..{} was given too late: it does not count",
                n.start, n.end
            );
        }
    }
}

/// Exempt and unavailable calls, and the exact tier comparison (SLA 1.5, 3.1).
fn availability(w: &mut String, e: &Explanation) {
    let exempt: Vec<String> = e
        .exempt_by_clause
        .iter()
        .map(|(c, n)| format!("{n} under {}", named(e, c)))
        .collect();
    let a = &e.availability;
    let _ = writeln!(
        w,
        "  {} system errors, {} exempt ({}), {} unavailable",
        a.system_errors,
        a.exempt_errors,
        if exempt.is_empty() {
            "none".into()
        } else {
            exempt.join(", ")
        },
        a.unavailable_calls
    );
    let _ = writeln!(
        w,
        "availability (SLA 1.5, 3.1): {} % (rounded down)",
        a.availability_pct
    );
    for line in &a.comparisons {
        let _ = writeln!(w, "  {line}");
    }
    let _ = writeln!(w, "  tier rate {}", a.tier_rate);
}

/// The billing rows behind the fee actually paid (SLA 3.1(2)).
fn fee(w: &mut String, e: &Explanation) {
    let _ = writeln!(w, "fee (SLA 3.1(2))");
    for b in &e.fee.billing_rows {
        let _ = writeln!(w, "  {} {} {}", b.kind, b.amount, b.currency);
    }
    for q in &e.fee.quarantined {
        let _ = writeln!(
            w,
            "  quarantined: {} line {}: {}",
            q.source,
            q.row.map(|r| r.to_string()).unwrap_or_default(),
            q.detail
        );
    }
    match (&e.fee.error, &e.fee.monthly_fee) {
        (Some(why), _) => {
            let _ = writeln!(w, "  cannot be priced: {why} → `error` row");
        }
        (None, Some(fee)) => {
            let _ = writeln!(
                w,
                "  monthly fee = max(0, charge - refund - voucher - coupon - discount - waiver) = {fee} {}",
                e.fee.currency.as_deref().unwrap_or("(no billing rows)")
            );
        }
        (None, None) => {}
    }
}

/// The compensation arithmetic with its rounding (SLA 3.1).
fn compensation(w: &mut String, e: &Explanation) {
    if let Some(comp) = &e.compensation {
        let _ = writeln!(
            w,
            "compensation (SLA 3.1): {} × {} = {} → rounded {} → {}{}",
            comp.monthly_fee,
            comp.tier_rate,
            comp.exact,
            comp.rounding,
            comp.rounded,
            if comp.capped_at_fee {
                format!(", capped at the fee: {}", comp.compensation)
            } else {
                String::new()
            }
        );
    }
}

/// Every claim and why it is valid or not, then the payout and the ledger line (SLA 3.2).
fn claims(w: &mut String, e: &Explanation) {
    let cl = &e.claims;
    let _ = writeln!(
        w,
        "claims (SLA 3.2): status {}, window {}..{}{}",
        cl.claim_status.as_deref().unwrap_or("-"),
        cl.claim_opens.as_deref().unwrap_or("?"),
        cl.claim_deadline.as_deref().unwrap_or("?"),
        cl.claim_id
            .as_deref()
            .map(|id| format!(", paid claim {id}"))
            .unwrap_or_default()
    );
    for claim in &cl.claims {
        let _ = writeln!(
            w,
            "  {} by {} submitted {} (local {}): {}",
            claim.claim_id,
            claim.channel,
            claim.submitted_at,
            claim.submitted_local_date,
            claim.why
        );
    }
    let _ = writeln!(w, "payout: {} ({})", e.payout, e.status);
    let _ = writeln!(w, "ledger.csv line:\n  {}", e.ledger_csv);
}

fn match_text(m: &ExemptionMatch) -> String {
    match &m.source {
        MatchSource::ErrorCode(code) => format!("error code `{code}` is listed"),
        MatchSource::ReviewedCall => "the request id is listed by incident review".into(),
        MatchSource::Window(id) => format!("window `{id}` covers it"),
        MatchSource::Burst { calls_in_second } => {
            format!("burst: {calls_in_second} counted calls in its UTC second, no notice")
        }
    }
}
