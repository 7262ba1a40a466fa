//! `sla-ledger explain`: everything behind one ledger row, from the same stages as `run`.
//!
//! Takes the run flags plus one customer and month; gives the covered dates, the customer's
//! calls counted and not counted (and why), each system error with the rules that exempted it
//! or did not (SLA 5), the exact tier comparison (SLA 1.5, 3.1), the billing rows behind the fee
//! (SLA 3.1(2)), the compensation arithmetic with its rounding, every claim with why it is valid
//! or not (SLA 3.2), and the payout — ending in the ledger line `run` writes for that month.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Context;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::cli::{ExplainArgs, ExplainFormat, RunArgs};
use crate::error::UsageError;
use crate::inputs::calendar::RunCalendar;
use crate::inputs::claims::Claim;
use crate::inputs::exemptions::Notice;
use crate::inputs::problems::Problems;
use crate::inputs::Inputs;
use crate::job::Job;
use crate::ledger::{self, money};
use crate::policy::{reaches_pct, Clause};
use crate::quarantine::Entry;
use crate::stages::availability::Availability;
use crate::stages::billing::Fee;
use crate::stages::calls::{customer_calls, CustomerCall, MonthCallCounts};
use crate::stages::claims::{check_claim, ClaimContext};
use crate::stages::compensation::{CompensationSteps, ROUNDING_NAME};
use crate::stages::exemptions::{ExemptionMatch, ExemptionRules, SystemError};
use crate::stages::pricing::{price_month, PricedMonth, PricingRules, TablesByMonth};
use crate::stages::service_months::{coverage_intervals, service_months, ServiceMonth};
use crate::time::{format_instant, local_date, MonthRange, YearMonth, NANOS_PER_SECOND};

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub customer_id: i64,
    pub service_month: String,
    pub as_of: String,
    pub period_start: String,
    pub period_end: String,
    pub provisional: bool,
    /// Inclusive local date ranges the subscriptions cover in the month (SLA 1.2).
    pub covered: Vec<[String; 2]>,
    pub calls: CallsSection,
    pub system_errors: Vec<ErrorLine>,
    pub exempt_by_clause: BTreeMap<String, u64>,
    pub availability: AvailabilitySection,
    pub fee: FeeSection,
    pub compensation: Option<CompensationSection>,
    pub claims: ClaimsSection,
    pub payout: String,
    pub status: String,
    /// The line `run` writes in `ledger.csv` for this month, and its columns by name.
    pub ledger_csv: String,
    pub ledger_row: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct CallsSection {
    /// Rows of the customer that passed the row checks.
    pub valid_rows: u64,
    /// Rows of the customer set aside as defects (SPEC §2).
    pub quarantined: Vec<QuarantineLine>,
    /// Valid rows dropped as another copy of a request id.
    pub duplicate_rows: u64,
    pub conflicting_duplicates: Vec<QuarantineLine>,
    pub unique_calls: u64,
    /// Unique calls on local dates of the month its subscriptions do not cover.
    pub outside_coverage_in_month: u64,
    /// Unique calls in other months.
    pub other_months: u64,
    pub counted: u64,
    /// Counted calls by status.
    pub counted_by_status: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct QuarantineLine {
    pub source: String,
    pub row: Option<u64>,
    pub reason: String,
    pub detail: String,
}

impl From<&Entry> for QuarantineLine {
    fn from(e: &Entry) -> Self {
        QuarantineLine {
            source: e.source.clone(),
            row: e.row,
            reason: e.reason.as_str().to_string(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorLine {
    pub request_id: String,
    pub ts: String,
    pub error_code: Option<String>,
    pub calls_in_second: u32,
    /// The smallest matching clause, or `None`: the call is unavailable.
    pub exempt_under: Option<String>,
    pub matched: Vec<ExemptionMatch>,
    /// A burst second that a counted notice covered, so 5.7 did not apply.
    pub burst_suspended_by_notice: Option<NoticeLine>,
    /// Windows covering the call that exempt nothing for lack of advance notice.
    pub unannounced_windows: Vec<String>,
    /// Notices covering the call that were given too late to count.
    pub late_notices: Vec<NoticeLine>,
}

#[derive(Debug, Serialize)]
pub struct NoticeLine {
    pub start: String,
    pub end: String,
}

impl From<&Notice> for NoticeLine {
    fn from(n: &Notice) -> Self {
        NoticeLine {
            start: format_instant(n.start),
            end: format_instant(n.end),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AvailabilitySection {
    pub total_calls: u64,
    pub system_errors: u64,
    pub exempt_errors: u64,
    pub unavailable_calls: u64,
    pub availability_pct: String,
    /// Each tier bound from the top, compared exactly, down to the first one reached.
    pub comparisons: Vec<String>,
    pub tier_rate: String,
}

#[derive(Debug, Serialize)]
pub struct BillingLine {
    pub kind: String,
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize)]
pub struct FeeSection {
    pub billing_rows: Vec<BillingLine>,
    /// Billing rows of this month that were quarantined.
    pub quarantined: Vec<QuarantineLine>,
    pub currency: Option<String>,
    pub monthly_fee: Option<String>,
    /// Why the month cannot be priced (an `error` row).
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CompensationSection {
    pub monthly_fee: String,
    pub tier_rate: String,
    /// `monthly_fee × tier_rate`, unrounded.
    pub exact: String,
    pub rounding: &'static str,
    pub rounded: String,
    /// The fee caps the compensation.
    pub capped_at_fee: bool,
    pub compensation: String,
}

#[derive(Debug, Serialize)]
pub struct ClaimsSection {
    pub claim_opens: Option<String>,
    pub claim_deadline: Option<String>,
    pub claim_status: Option<String>,
    pub claim_id: Option<String>,
    pub claims: Vec<ClaimLine>,
}

#[derive(Debug, Serialize)]
pub struct ClaimLine {
    pub claim_id: String,
    pub submitted_at: String,
    pub submitted_local_date: String,
    pub channel: String,
    pub valid: bool,
    pub why: String,
}

/// `sla-ledger explain`.
pub fn explain_command(args: &ExplainArgs) -> anyhow::Result<()> {
    let explanation = explain(args)?;
    let text = match args.format {
        ExplainFormat::Text => render_text(&explanation),
        ExplainFormat::Json => serde_json::to_string_pretty(&explanation)? + "\n",
    };
    // JSON escapes every control character itself; text has them escaped on the way out.
    crate::text::print(&text)
}

/// The run flags narrowed to the one customer and month, writing nothing.
fn run_args(args: &ExplainArgs) -> RunArgs {
    RunArgs {
        out: None,
        months: Some(args.month.clone()),
        customers: Some(vec![args.customer]),
        force: false,
        no_force: false,
        ..args.run.clone()
    }
}

/// A run's `--months` and `--customers` copied into `explain` must contain what it explains;
/// its `--out` is not written.
fn check_run_flags(args: &ExplainArgs, month: YearMonth, job: &Job) -> Result<(), UsageError> {
    if let Some(months) = &args.run.months {
        let range = MonthRange::parse(months, job.as_of)
            .map_err(|e| UsageError::new(format!("--months: {e}")))?;
        if month < range.first || range.last < month {
            return Err(UsageError::new(format!(
                "--month {month} is outside --months {} ({}..{})",
                crate::text::quoted(months),
                range.first,
                range.last
            ))
            .hint("explain a month the run covers, or widen `--months`"));
        }
    }
    if let Some(customers) = &args.run.customers {
        if !customers.contains(&args.customer) {
            return Err(UsageError::new(format!(
                "--customer {} is not among --customers {}",
                args.customer,
                customers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .hint("explain a customer the run covers, or add it to `--customers`"));
        }
    }
    if let Some(out) = &args.run.out {
        tracing::warn!(
            out = %out.display(),
            "explain writes nothing: --out is ignored"
        );
    }
    Ok(())
}

pub fn explain(args: &ExplainArgs) -> anyhow::Result<Explanation> {
    let job = Job::resolve_without_out(&run_args(args), crate::job::today)?;
    let month: YearMonth = args
        .month
        .parse()
        .map_err(|e: String| UsageError::new(format!("--month: {e}")))?;
    check_run_flags(args, month, &job)?;
    let calendar = RunCalendar::load(job.calendar.path(), &mut Problems::first_fatal())?;
    let inputs = Inputs::load(&job.data_dir, &job.policy)?;
    let months = service_months(
        &inputs.subscriptions.periods,
        MonthRange {
            first: month,
            last: month,
        },
        |id| id == args.customer,
        job.as_of,
    );
    let Some(service_month) = months.first() else {
        return Err(crate::error::hinted(
            format!(
                "customer {} has no service month {month}: its subscriptions do not cover a date in it",
                args.customer,
            ),
            format!("check `subscriptions.csv` for customer {}", args.customer),
        ));
    };

    let calls = customer_calls(&inputs.calls, args.customer)
        .with_context(|| format!("cannot read the calls of customer {}", args.customer))?;
    let counted = Counted::of(&job, &months, &calls.calls);
    let exemption_rules = ExemptionRules::new(&inputs.exemptions, &job.policy);
    let (errors, exempt_by_clause) = system_errors(&exemption_rules, args.customer, &counted);
    let counts = MonthCallCounts {
        total_calls: counted.calls.len() as u64,
        system_errors: errors.len() as u64,
        exempt_by_clause: exempt_by_clause.clone(),
    };
    let rules = PricingRules {
        policy: &job.policy,
        as_of: job.as_of,
        calendar: &calendar.calendar,
        calendar_name: &calendar.name,
    };
    let tables = TablesByMonth::new(&inputs.billing, &inputs.claims.claims);
    let month_tables = tables.of(args.customer, month);
    let priced = price_month(&rules, service_month, &counts, &month_tables)?;
    let row = &priced.row;
    let availability = priced.availability;
    let claims_section = claims_section(&rules, service_month, &priced, &month_tables.claims);
    let ledger_csv = ledger::csv_line(row)?;
    let mut billing_defects = inputs
        .billing
        .defective
        .get(&(args.customer, month))
        .cloned()
        .unwrap_or_default();
    billing_defects.sort();
    let (currency, monthly_fee) = match &priced.fee {
        Fee::Paid { currency, amount } => (currency.clone(), Some(money(*amount))),
        Fee::Unpriceable(_) => (None, None),
    };

    Ok(Explanation {
        customer_id: args.customer,
        service_month: month.to_string(),
        as_of: job.as_of.to_string(),
        period_start: service_month.period_start.to_string(),
        period_end: service_month.period_end.to_string(),
        provisional: service_month.provisional,
        covered: service_month
            .covered
            .iter()
            .map(|(a, b)| [a.to_string(), b.to_string()])
            .collect(),
        calls: CallsSection {
            valid_rows: calls.valid_rows,
            quarantined: calls.quarantined.iter().map(QuarantineLine::from).collect(),
            duplicate_rows: calls.duplicate_rows()?,
            conflicting_duplicates: calls.conflicts.iter().map(QuarantineLine::from).collect(),
            unique_calls: calls.calls.len() as u64,
            outside_coverage_in_month: counted.uncovered_in_month,
            other_months: counted.other_months,
            counted: counted.calls.len() as u64,
            counted_by_status: counted.by_status(),
        },
        system_errors: errors,
        exempt_by_clause: exempt_by_clause
            .iter()
            .map(|(c, n)| (c.to_string(), *n))
            .collect(),
        availability: AvailabilitySection {
            total_calls: availability.total_calls,
            system_errors: row.system_errors,
            exempt_errors: row.exempt_errors,
            unavailable_calls: availability.unavailable_calls,
            availability_pct: ledger::fixed(row.availability_pct, 4),
            comparisons: tier_comparisons(&availability, &job),
            tier_rate: ledger::fixed(row.tier_rate, 2),
        },
        fee: FeeSection {
            billing_rows: month_tables
                .billing_rows
                .iter()
                .map(|r| BillingLine {
                    kind: format!("{:?}", r.kind).to_lowercase(),
                    amount: r.amount.to_string(),
                    currency: r.currency.clone(),
                })
                .collect(),
            quarantined: billing_defects.iter().map(QuarantineLine::from).collect(),
            currency,
            monthly_fee,
            error: row.error().map(str::to_string),
        },
        compensation: priced
            .compensation
            .map(|steps| compensation_section(&priced, steps)),
        claims: claims_section,
        payout: money(row.payout()),
        status: row.status().to_string(),
        ledger_csv,
        ledger_row: ledger::COLUMNS
            .iter()
            .map(|c| c.to_string())
            .zip(ledger::csv_cells(row))
            .collect(),
    })
}

/// The customer's unique calls split as SPEC §4 counts them for one service month.
struct Counted<'a> {
    calls: Vec<&'a CustomerCall>,
    uncovered_in_month: u64,
    other_months: u64,
}

impl<'a> Counted<'a> {
    fn of(job: &Job, months: &[ServiceMonth], calls: &'a [CustomerCall]) -> Counted<'a> {
        let tz = job.policy.timezone;
        let coverage = coverage_intervals(months, tz);
        let month = months[0].month;
        let mut counted = Counted {
            calls: Vec::new(),
            uncovered_in_month: 0,
            other_months: 0,
        };
        for call in calls {
            if coverage
                .iter()
                .any(|c| c.start <= call.ts && call.ts < c.end)
            {
                counted.calls.push(call);
            } else if YearMonth::of(local_date(tz, call.ts)) == month {
                counted.uncovered_in_month += 1;
            } else {
                counted.other_months += 1;
            }
        }
        counted
    }

    fn by_status(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        for call in &self.calls {
            *map.entry(call.status.clone()).or_default() += 1;
        }
        map
    }
}

/// Every counted system error with the rules that exempted it, or did not (SPEC §4, SLA 5).
fn system_errors(
    rules: &ExemptionRules,
    customer_id: i64,
    counted: &Counted,
) -> (Vec<ErrorLine>, BTreeMap<Clause, u64>) {
    let mut per_second: BTreeMap<i64, u32> = BTreeMap::new();
    for call in &counted.calls {
        *per_second
            .entry(call.ts.div_euclid(NANOS_PER_SECOND))
            .or_default() += 1;
    }
    let mut lines = Vec::new();
    let mut by_clause: BTreeMap<Clause, u64> = BTreeMap::new();
    for call in counted
        .calls
        .iter()
        .filter(|c| c.status == crate::inputs::calls::SYSTEM_ERROR)
    {
        let error = SystemError {
            request_id: call.request_id.clone(),
            customer_id,
            ts: call.ts,
            error_code: call.error_code.clone(),
            calls_in_second: per_second[&call.ts.div_euclid(NANOS_PER_SECOND)],
        };
        let clause = rules.attribute(&error);
        if let Some(clause) = clause {
            *by_clause.entry(clause).or_default() += 1;
        }
        lines.push(ErrorLine {
            request_id: error.request_id.clone(),
            ts: format_instant(error.ts),
            error_code: error.error_code.clone(),
            calls_in_second: error.calls_in_second,
            exempt_under: clause.map(|c| c.to_string()),
            matched: rules.matches(&error),
            burst_suspended_by_notice: rules
                .in_burst_second(&error)
                .then(|| rules.notice_covering(&error))
                .flatten()
                .map(NoticeLine::from),
            unannounced_windows: rules
                .unannounced_windows_covering(&error)
                .iter()
                .map(|w| format!("{} ({})", w.window_id, w.clause))
                .collect(),
            late_notices: rules
                .late_notices_covering(&error)
                .into_iter()
                .map(NoticeLine::from)
                .collect(),
        });
    }
    (lines, by_clause)
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
fn claims_section(
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

/// The explanation as plain text, section by section.
pub fn render_text(e: &Explanation) -> String {
    let mut t = String::new();
    let w = &mut t;
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
    let c = &e.calls;
    let _ = writeln!(w, "calls (SLA 1.4, SPEC §2, §4)");
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
    let _ = writeln!(w, "system errors (SLA 5)");
    for err in &e.system_errors {
        let fate = match &err.exempt_under {
            Some(clause) => format!("exempt under {clause}"),
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
            let _ = writeln!(w, "    matches {}: {}", m.clause, match_text(m));
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
    let exempt: Vec<String> = e
        .exempt_by_clause
        .iter()
        .map(|(c, n)| format!("{n} under {c}"))
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
    t
}

fn match_text(m: &ExemptionMatch) -> String {
    use crate::stages::exemptions::MatchSource;
    match &m.source {
        MatchSource::ErrorCode(code) => format!("error code `{code}` is listed"),
        MatchSource::ReviewedCall => "the request id is listed by incident review".into(),
        MatchSource::Window(id) => format!("window `{id}` covers it"),
        MatchSource::Burst { calls_in_second } => {
            format!("burst: {calls_in_second} counted calls in its UTC second, no notice")
        }
    }
}
