//! `sla-ledger run`: the stages wired together, in the order the data flows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rust_decimal::Decimal;

use crate::cli::RunCommandArgs;
use crate::inputs::calendar::RunCalendar;
use crate::inputs::problems::Problems;
use crate::inputs::stamp::InputFile;
use crate::inputs::Inputs;
use crate::job::Job;
use crate::ledger::{self, money, ClaimStatus, ExemptionCount, LedgerRow, Priced};
use crate::manifest::{self, EffectiveJob, Manifest, Program, Rows, Totals};
use crate::output::StagedOutput;
use crate::quarantine::Entry;
use crate::scratch::ScratchDir;
use crate::stages::calls::engine::{self, Engine};
use crate::stages::calls::{CallCounts, HeavyStepInput, MonthCallCounts};
use crate::stages::error_budget::{self, AtRisk};
use crate::stages::pricing::{price_month, PricingRules, TablesByMonth};
use crate::stages::service_months::{coverage_intervals, service_months, ServiceMonth};
use crate::telemetry;

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
    let inputs = Inputs::load(&job.data_dir, &job.policy)?;
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
    write_outputs(job, &computed, &sources)?;
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
    let coverage = coverage_intervals(&months, job.policy.timezone);
    stage.done(&[("service_months", months.len() as u64)]);
    let stage = telemetry::stage(
        "calls",
        "counting calls (quarantine, duplicates, exemptions)",
    );
    let counts = engine::count_calls(
        &job.engine,
        &HeavyStepInput {
            files: &inputs.calls,
            month_count: months.len(),
            coverage: &coverage,
            exemptions: &inputs.exemptions,
            policy: &job.policy,
            memory_budget_bytes: job.memory_budget_bytes(),
            threads: job.threads,
            spill_dir: spill.path().to_path_buf(),
        },
    )
    .map_err(|err| name_the_spill_folder(err, spill.path()))?;
    drop(spill);
    for phase in &counts.timings {
        tracing::debug!(
            stage = "calls",
            phase = phase.name,
            elapsed_ms = phase.elapsed.as_millis() as u64,
            rss_mib = phase.rss_kib / 1024,
            peak_rss_mib = phase.peak_kib / 1024,
            "phase done"
        );
    }
    stage.done(&[
        ("read", counts.rows.read),
        ("quarantined", counts.rows.quarantined),
        ("duplicates", counts.rows.duplicates),
        ("counted", counts.rows.counted),
        ("spilled_buckets", counts.spilled_buckets as u64),
    ]);

    let stage = telemetry::stage("price", "pricing months and deciding claims");
    let rules = PricingRules {
        policy: &job.policy,
        as_of: job.as_of,
        calendar: &calendar.calendar,
        calendar_name: &calendar.name,
    };
    let ledger = price_months(&rules, inputs, &months, &counts)?;
    stage.done(&[
        ("ledger_rows", ledger.len() as u64),
        (
            "error_rows",
            ledger.iter().filter(|r| r.priced().is_none()).count() as u64,
        ),
    ]);
    let exemptions = exemption_rows(&months, &counts.months);
    let mut quarantine = inputs.quarantine.sorted();
    quarantine.extend(counts.quarantine.iter().cloned());
    quarantine.sort();

    if job.strict {
        let errors = ledger.iter().filter(|r| r.priced().is_none()).count();
        if !quarantine.is_empty() || errors > 0 {
            return Err(crate::error::hinted(
                format!(
                    "--strict: {} quarantined row(s) and {errors} error ledger row(s); nothing was written",
                    quarantine.len(),
                ),
                "run without `--strict` and read `quarantine.csv` and the `error` rows",
            ));
        }
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

/// A fresh scratch sibling of the output folder for call keys that do not fit the memory
/// budget: empty, owned by this run, removed when dropped (SPEC §8). Its parent is created as
/// the output's would be.
fn spill_dir(out: &Path) -> anyhow::Result<ScratchDir> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create `{}`", crate::paths::shown(parent)))?;
    }
    Ok(ScratchDir::beside(out, "spill")?)
}

/// A full or read-only disk while spilling surfaces as a bare OS error: name the folder.
fn name_the_spill_folder(err: anyhow::Error, spill: &Path) -> anyhow::Error {
    let disk_full_or_read_only = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            .is_some_and(|code| {
                [libc::ENOSPC, libc::EDQUOT, libc::EROFS, libc::EFBIG].contains(&code)
            })
    });
    if disk_full_or_read_only {
        crate::error::with_hint(
            err,
            format!(
                "cannot spill call keys into `{}`",
                crate::paths::shown(spill)
            ),
            "free space there, or raise `--memory-budget-mib` so fewer keys are spilled",
        )
    } else {
        err
    }
}

/// Every service month priced, one ledger row each, in the order of `months`.
fn price_months(
    rules: &PricingRules,
    inputs: &Inputs,
    months: &[ServiceMonth],
    counts: &CallCounts,
) -> anyhow::Result<Vec<LedgerRow>> {
    let tables = TablesByMonth::new(&inputs.billing, &inputs.claims.claims);
    months
        .iter()
        .zip(&counts.months)
        .map(|(month, count)| {
            let month_tables = tables.of(month.customer_id, month.month);
            Ok(price_month(rules, month, count, &month_tables)?.row)
        })
        .collect()
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

/// Writes the output folder (SPEC §7) from what [`compute`] gave; `sources` are the inputs read.
fn write_outputs(job: &Job, computed: &Computed, sources: &[InputFile]) -> anyhow::Result<()> {
    let Computed {
        calendar_name,
        ledger: ledger_rows,
        exemptions,
        quarantine,
        counts,
        totals,
        at_risk,
    } = computed;
    let staged = StagedOutput::prepare(&job.out_dir, job.force)?;
    staged.write("ledger.csv", |w| ledger::write_csv(ledger_rows, w))?;
    staged.write("ledger.parquet", |w| ledger::write_parquet(ledger_rows, w))?;
    staged.write("exemptions.csv", |w| {
        ledger::write_exemptions(exemptions, w)
    })?;
    staged.write("quarantine.csv", |w| {
        ledger::write_quarantine(quarantine, w)
    })?;
    staged.write("at_risk.csv", |w| error_budget::write_csv(at_risk, w))?;
    verify_written_totals(&staged.path("ledger.csv"), totals)?;
    staged.write("report.html", |w| {
        let page = crate::report::render(&crate::report::Report {
            job,
            ledger: ledger_rows,
            exemptions,
            quarantine,
            calls: &counts.rows,
            totals,
        });
        std::io::Write::write_all(w, page.as_bytes())?;
        Ok(())
    })?;

    let outputs: Vec<(String, PathBuf)> = [
        "ledger.csv",
        "ledger.parquet",
        "exemptions.csv",
        "quarantine.csv",
        "at_risk.csv",
        "report.html",
    ]
    .iter()
    .map(|name| (name.to_string(), staged.path(name)))
    .collect();
    let mut by_reason: BTreeMap<&'static str, usize> = BTreeMap::new();
    for entry in quarantine {
        *by_reason.entry(entry.reason.as_str()).or_default() += 1;
    }
    let manifest = Manifest {
        program: Program::current(),
        job: EffectiveJob {
            data: job.data_dir.display().to_string(),
            months_spec: job.months_spec.clone(),
            months: job.months,
            as_of: job.as_of.to_string(),
            customers: job.customers.as_ref().map(|c| c.iter().copied().collect()),
            calendar: calendar_name.to_string(),
            policy_source: job
                .policy_source
                .as_ref()
                .map_or("builtin:CCC".into(), |p| p.display().to_string()),
            policy: job.policy.clone(),
            job_file: job.job_file.as_ref().map(|p| p.display().to_string()),
            strict: job.strict,
            engine: job.engine.name(),
            scheduler: match &job.engine {
                Engine::Ballista { scheduler } => scheduler.clone(),
                Engine::Polars => None,
            },
            report_lang: job.report_lang,
        },
        inputs: manifest::digest_inputs(sources)?,
        rows: Rows {
            calls: counts.rows,
            spilled_buckets: counts.spilled_buckets,
            quarantined_by_reason: by_reason,
            ledger_rows: ledger_rows.len(),
            ledger_error_rows: ledger_rows.iter().filter(|r| r.priced().is_none()).count(),
            provisional_rows: ledger_rows.iter().filter(|r| r.provisional).count(),
        },
        totals: totals.clone(),
        outputs: manifest::digest_files(&outputs)?,
    };
    staged.write("manifest.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &manifest)?;
        std::io::Write::write_all(w, b"\n")?;
        Ok(())
    })?;
    staged.commit(job.force)
}

/// Re-reads the written `ledger.csv` and checks its payout and compensation totals equal the
/// ones computed in memory (and so the manifest's).
fn verify_written_totals(path: &Path, expected: &BTreeMap<String, Totals>) -> anyhow::Result<()> {
    let mut reader = csv::Reader::from_path(path)?;
    let headers = reader.headers()?.clone();
    let index = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .context("ledger column")
    };
    let (currency, compensation, payout) =
        (index("currency")?, index("compensation")?, index("payout")?);
    let mut sums: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for record in reader.records() {
        let record = record?;
        if record[currency].is_empty() {
            continue;
        }
        let entry = sums.entry(record[currency].to_string()).or_default();
        entry.0 += Decimal::from_str_exact(&record[compensation])?;
        entry.1 += Decimal::from_str_exact(&record[payout])?;
    }
    let reread: BTreeMap<String, Totals> = sums
        .into_iter()
        .map(|(c, (comp, pay))| {
            (
                c,
                Totals {
                    compensation: money(comp),
                    payout: money(pay),
                },
            )
        })
        .collect();
    if &reread != expected {
        bail!("internal check failed: ledger.csv re-read totals {reread:?} differ from computed {expected:?}; nothing was written");
    }
    Ok(())
}

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
