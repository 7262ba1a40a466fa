//! Takes what [`super::compute`] gave and the inputs read; gives the output folder (SPEC §7),
//! staged and committed atomically, its totals re-read and checked before the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rust_decimal::Decimal;

use super::Computed;
use crate::inputs::stamp::InputFile;
use crate::job::Job;
use crate::ledger::{self, money};
use crate::manifest::{self, EffectiveJob, Manifest, Program, Rows, Totals};
use crate::output::StagedOutput;
use crate::stages::calls::engine::Engine;
use crate::stages::error_budget;

/// Writes the output folder (SPEC §7) from what [`compute`] gave; `sources` are the inputs read.
pub(super) fn write_outputs(
    job: &Job,
    computed: &Computed,
    sources: &[InputFile],
) -> anyhow::Result<()> {
    let Computed {
        ledger: ledger_rows,
        exemptions,
        quarantine,
        counts,
        totals,
        at_risk,
        ..
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
    let manifest = manifest_of(job, computed, sources, &outputs)?;
    staged.write_json("manifest.json", &manifest)?;
    staged.commit(job.force)
}

/// The run's provenance: the effective job, every input's digest, the row accounting, the
/// totals and every output's digest.
fn manifest_of(
    job: &Job,
    computed: &Computed,
    sources: &[InputFile],
    outputs: &[(String, PathBuf)],
) -> anyhow::Result<Manifest> {
    let Computed {
        calendar_name,
        ledger: ledger_rows,
        quarantine,
        counts,
        totals,
        ..
    } = computed;
    let mut by_reason: BTreeMap<&'static str, usize> = BTreeMap::new();
    for entry in quarantine {
        *by_reason.entry(entry.reason.as_str()).or_default() += 1;
    }
    Ok(Manifest {
        program: Program::current(),
        job: EffectiveJob {
            data: job.data.recorded(),
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
        outputs: manifest::digest_files(outputs)?,
    })
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
