//! `sla-ledger run`: the stages wired together, in the order the data flows.
//!
//! Takes the resolved job; loads the inputs, runs every stage ([`compute`]) and writes the
//! output folder atomically (`write.rs`), then prints the summary (`summary.rs`). The heavy
//! step and its spill folder are in `heavy.rs`.

mod heavy;
mod summary;
mod write;

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use rust_decimal::Decimal;

use crate::cli::RunCommandArgs;
use crate::inputs::calendar::RunCalendar;
use crate::inputs::problems::Problems;
use crate::inputs::Inputs;
use crate::job::Job;
use crate::ledger::{money, ExemptionCount, LedgerRow, Priced};
use crate::manifest::Totals;
use crate::quarantine::Entry;
use crate::scratch::ScratchDir;
use crate::stages::calls::{CallCounts, MonthCallCounts};
use crate::stages::error_budget::{self, AtRisk};
use crate::stages::pricing::{price_month, PricingRules, TablesByMonth};
use crate::stages::service_months::{service_months, ServiceMonth};
use crate::telemetry;

pub(crate) use heavy::{count_noting as count_calls_noting, spill_dir};
pub(crate) use summary::summary;

pub fn run_command(args: &RunCommandArgs) -> anyhow::Result<()> {
    let job = Job::resolve(&args.run, crate::job::today)?.with_report_lang(args.report_lang);
    if let Some(threads) = job.threads {
        use_threads(threads)?;
    }
    let computed = execute(&job)?;
    telemetry::finish();
    crate::text::print(&summary(&job, &computed))?;
    Ok(())
}

/// Sizes both thread pools (ours and polars') before either starts.
fn use_threads(threads: usize) -> anyhow::Result<()> {
    debug_assert!(threads > 0, "job resolution refuses --threads 0");
    // Read by polars when its pool first starts, which has not happened yet in this process.
    std::env::set_var("POLARS_MAX_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("cannot size the thread pool")
}

/// Runs every stage and writes the output folder atomically.
pub(crate) fn execute(job: &Job) -> anyhow::Result<Computed> {
    crate::output::check_target(&job.out_dir, job.force)?;
    let stage = telemetry::stage("inputs", "reading the data directory");
    let calendar = RunCalendar::load(job.calendar.path(), &mut Problems::first_fatal())?;
    let inputs = Inputs::load(&job.data, &job.policy)?;
    stage.done(&[
        ("call_files", inputs.calls.files.len() as u64),
        ("call_rows", inputs.calls.rows()),
        (
            "subscription_periods",
            inputs.subscriptions.periods.len() as u64,
        ),
        ("billing_rows", inputs.billing.rows.len() as u64),
        ("claims", inputs.claims.claims.len() as u64),
    ]);
    let computed = compute(job, &inputs, &calendar, spill_dir(&job.out_dir)?)?;
    let mut sources = inputs.sources;
    sources.extend(calendar.input.clone());
    sources.extend(job.sources.iter().cloned());
    let stage = telemetry::stage("write", "writing the output folder");
    write::write_outputs(job, &computed, &sources)?;
    stage.done(&[("quarantine_entries", computed.quarantine.len() as u64)]);
    Ok(computed)
}

/// Everything a run computes, before anything is written.
#[derive(Debug)]
pub(crate) struct Computed {
    pub calendar_name: String,
    pub ledger: Vec<LedgerRow>,
    pub exemptions: Vec<ExemptionCount>,
    /// Small tables' and call rows' entries, sorted.
    pub quarantine: Vec<Entry>,
    pub counts: CallCounts,
    pub totals: BTreeMap<String, Totals>,
    pub at_risk: Vec<AtRisk>,
}

/// Every stage after loading, in the order the data flows, writing nothing but the heavy
/// step's spill files into `spill` (removed once the heavy step is done). `validate` runs
/// exactly this, so it fails exactly when a run would.
pub(crate) fn compute(
    job: &Job,
    inputs: &Inputs,
    calendar: &RunCalendar,
    spill: ScratchDir,
) -> anyhow::Result<Computed> {
    let months = cut_service_months(job, inputs);
    let counts = heavy::count(job, inputs, &months, spill)?;
    let rules = PricingRules {
        policy: &job.policy,
        as_of: job.as_of,
        calendar: &calendar.calendar,
        calendar_name: &calendar.name,
    };
    let ledger = price_months(&rules, inputs, &months, &counts)?;
    let exemptions = exemption_rows(&months, &counts.months);
    let mut quarantine = inputs.quarantine.sorted();
    quarantine.extend(counts.quarantine.iter().cloned());
    quarantine.sort();
    if job.strict {
        refuse_anything_set_aside(&ledger, &quarantine)?;
    }
    let totals = totals_by_currency(&ledger)?;
    let at_risk = error_budget::at_risk_rows(&ledger, &job.policy);
    Ok(Computed {
        calendar_name: calendar.name.clone(),
        ledger,
        exemptions,
        quarantine,
        counts,
        totals,
        at_risk,
    })
}

/// The service months of the run's customers and months (SLA 1.2).
fn cut_service_months(job: &Job, inputs: &Inputs) -> Vec<ServiceMonth> {
    let stage = telemetry::stage(
        "service_months",
        "cutting subscriptions into service months",
    );
    let months = service_months(
        &inputs.subscriptions.periods,
        job.months,
        |customer_id| job.includes_customer(customer_id),
        job.as_of,
    );
    stage.done(&[("service_months", months.len() as u64)]);
    months
}

/// `--strict`: a ledger with quarantined rows or `error` rows is not written.
fn refuse_anything_set_aside(ledger: &[LedgerRow], quarantine: &[Entry]) -> anyhow::Result<()> {
    let errors = ledger.iter().filter(|r| r.priced().is_none()).count();
    if quarantine.is_empty() && errors == 0 {
        return Ok(());
    }
    Err(crate::error::hinted(
        format!(
            "--strict: {} quarantined row(s) and {errors} error ledger row(s); nothing was written",
            quarantine.len(),
        ),
        "run without `--strict` and read `quarantine.csv` and the `error` rows",
    ))
}

/// Every service month priced, one ledger row each, in the order of `months`.
fn price_months(
    rules: &PricingRules,
    inputs: &Inputs,
    months: &[ServiceMonth],
    counts: &CallCounts,
) -> anyhow::Result<Vec<LedgerRow>> {
    let stage = telemetry::stage("price", "pricing months and deciding claims");
    let tables = TablesByMonth::new(&inputs.billing, &inputs.claims.claims);
    let ledger: Vec<LedgerRow> = months
        .iter()
        .zip(&counts.months)
        .map(|(month, count)| {
            let month_tables = tables.of(month.customer_id, month.month);
            Ok(price_month(rules, month, count, &month_tables)?.row)
        })
        .collect::<anyhow::Result<_>>()?;
    stage.done(&[
        ("ledger_rows", ledger.len() as u64),
        (
            "error_rows",
            ledger.iter().filter(|r| r.priced().is_none()).count() as u64,
        ),
    ]);
    Ok(ledger)
}

fn exemption_rows(months: &[ServiceMonth], counts: &[MonthCallCounts]) -> Vec<ExemptionCount> {
    months
        .iter()
        .zip(counts)
        .flat_map(|(m, c)| {
            c.exempt_by_clause.iter().map(|(clause, n)| ExemptionCount {
                customer_id: m.customer_id,
                service_month: m.month,
                clause: *clause,
                calls: *n,
            })
        })
        .collect()
}

/// Compensation and payout per currency over `ok` rows with a currency.
pub(crate) fn totals_by_currency(rows: &[LedgerRow]) -> anyhow::Result<BTreeMap<String, Totals>> {
    let mut sums: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for row in rows {
        if let Some(Priced {
            currency: Some(currency),
            compensation,
            payout,
            ..
        }) = row.priced()
        {
            let entry = sums.entry(currency.clone()).or_default();
            let sum = entry
                .0
                .checked_add(*compensation)
                .zip(entry.1.checked_add(*payout));
            let Some(sum) = sum else {
                bail!("the {currency} totals of the ledger exceed the range of exact decimals; nothing was written");
            };
            *entry = sum;
        }
    }
    Ok(sums
        .into_iter()
        .map(|(currency, (c, p))| {
            (
                currency,
                Totals {
                    compensation: money(c),
                    payout: money(p),
                },
            )
        })
        .collect())
}
