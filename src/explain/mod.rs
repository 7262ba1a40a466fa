//! `sla-ledger explain`: everything behind one ledger row, from the same stages as `run`.
//!
//! Takes the run flags plus one customer and month; gives the covered dates, the customer's
//! calls counted and not counted (and why), each system error with the rules that exempted it
//! or did not (SLA 5), the exact tier comparison (SLA 1.5, 3.1), the billing rows behind the fee
//! (SLA 3.1(2)), the compensation arithmetic with its rounding, every claim with why it is valid
//! or not (SLA 3.2), and the payout — ending in the ledger line `run` writes for that month.
//!
//! The month's counts come from the heavy step and its price from `price_month`, exactly as
//! in `run`; the same run of the heavy step notes the row facts behind them, which must add
//! up to the counts. This module only presents: `sections.rs` builds what is shown from
//! the stage results, `text.rs` renders it.

mod model;
mod sections;
mod text;

use crate::cli::{ExplainArgs, ExplainFormat, RunArgs};
use crate::error::UsageError;
use crate::inputs::calendar::RunCalendar;
use crate::inputs::problems::Problems;
use crate::inputs::Inputs;
use crate::job::Job;
use crate::policy::Clause;
use crate::scratch::ScratchDir;
use crate::stages::calls::{CustomerMonth, MonthCallCounts, NotedCustomer};
use crate::stages::exemptions::ExemptionRules;
use crate::stages::pricing::{price_month, PricingRules, TablesByMonth};
use crate::stages::service_months::{service_months, ServiceMonth};
use crate::time::{MonthRange, YearMonth};

pub(crate) use model::Explanation;
pub(crate) use text::render_text;

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

pub(crate) fn explain(args: &ExplainArgs) -> anyhow::Result<Explanation> {
    let job = Job::resolve_without_out(&run_args(args), crate::job::today)?;
    let month: YearMonth = args
        .month
        .parse()
        .map_err(|e: String| UsageError::new(format!("--month: {e}")))?;
    check_run_flags(args, month, &job)?;
    let calendar = RunCalendar::load(job.calendar.path(), &mut Problems::first_fatal())?;
    let inputs = Inputs::load(&job.data, &job.policy)?;
    let service_month = the_service_month(&job, &inputs, args.customer, month)?;
    let customer = NotedCustomer {
        customer_id: args.customer,
        month,
        tz: job.policy.timezone,
    };
    let (counts, calls) = heavy_step(&job, &inputs, &service_month, customer)?;
    let exemption_rules = ExemptionRules::new(&inputs.exemptions, &job.policy);
    let errors = sections::error_lines(&exemption_rules, &calls.system_errors);
    // A file that changed while it was read would mix two versions (SPEC §8).
    for input in &inputs.sources {
        input.check_unchanged()?;
    }
    check_agreement(&counts, &calls, &errors)?;

    let rules = PricingRules {
        policy: &job.policy,
        as_of: job.as_of,
        calendar: &calendar.calendar,
        calendar_name: &calendar.name,
    };
    let tables = TablesByMonth::new(&inputs.billing, &inputs.claims.claims);
    let month_tables = tables.of(args.customer, month);
    let priced = price_month(&rules, &service_month, &counts, &month_tables)?;
    let billing_defects = inputs
        .billing
        .defective
        .get(&(args.customer, month))
        .cloned()
        .unwrap_or_default();
    sections::explanation(sections::Parts {
        job: &job,
        rules: &rules,
        service_month: &service_month,
        calls: &calls,
        errors,
        counts: &counts,
        priced: &priced,
        month_tables: &month_tables,
        billing_defects,
    })
}

/// The customer's service month, as `run` cuts it from the subscriptions (SLA 1.2).
fn the_service_month(
    job: &Job,
    inputs: &Inputs,
    customer_id: i64,
    month: YearMonth,
) -> anyhow::Result<ServiceMonth> {
    let months = service_months(
        &inputs.subscriptions.periods,
        MonthRange {
            first: month,
            last: month,
        },
        |id| id == customer_id,
        job.as_of,
    );
    months.into_iter().next().ok_or_else(|| {
        crate::error::hinted(
            format!(
                "customer {customer_id} has no service month {month}: its subscriptions do not cover a date in it"
            ),
            format!("check `subscriptions.csv` for customer {customer_id}"),
        )
    })
}

/// The heavy step's counts for the one month, from the run's engine, by `run`'s own code, and
/// the customer's rows behind them.
fn heavy_step(
    job: &Job,
    inputs: &Inputs,
    service_month: &ServiceMonth,
    customer: NotedCustomer,
) -> anyhow::Result<(MonthCallCounts, CustomerMonth)> {
    let spill = ScratchDir::in_temp("spill")?;
    let months = std::slice::from_ref(service_month);
    let (counts, calls) = crate::run::count_calls_noting(job, inputs, months, spill, customer)?;
    let mut months = counts.months.into_iter();
    match (months.next(), months.next()) {
        (Some(count), None) => Ok((count, calls)),
        _ => anyhow::bail!("internal check failed: the heavy step gave no single month's counts"),
    }
}

/// The row facts shown must be the ones the heavy step counted: the same counted calls,
/// system errors and exempt errors per clause (an internal error otherwise).
fn check_agreement(
    counts: &MonthCallCounts,
    calls: &CustomerMonth,
    errors: &[model::ErrorLine],
) -> anyhow::Result<()> {
    let mut by_clause: std::collections::BTreeMap<Clause, u64> = Default::default();
    for clause in errors.iter().filter_map(|e| e.clause) {
        *by_clause.entry(clause).or_default() += 1;
    }
    let shown = (
        calls.counted(),
        calls.system_errors.len() as u64,
        &by_clause,
    );
    let counted = (
        counts.total_calls,
        counts.system_errors,
        &counts.exempt_by_clause,
    );
    if shown != counted {
        anyhow::bail!(
            "internal check failed: the rows explained ({} counted, {} system errors, exempt {:?}) \
             differ from the heavy step's counts ({} counted, {} system errors, exempt {:?})",
            shown.0,
            shown.1,
            shown.2,
            counted.0,
            counted.1,
            counted.2
        );
    }
    Ok(())
}
