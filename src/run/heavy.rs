//! Takes the job, the inputs and the service months; gives the heavy step's counts from the
//! job's engine (for `explain`, with the rows behind one customer's month), with its spill
//! folder beside the output (SPEC §8) and its phases logged.

use std::path::Path;

use anyhow::Context;

use crate::inputs::Inputs;
use crate::job::Job;
use crate::scratch::ScratchDir;
use crate::stages::calls::engine;
use crate::stages::calls::{CallCounts, CustomerMonth, HeavyStepInput, NotedCustomer};
use crate::stages::service_months::{coverage_intervals, ServiceMonth};
use crate::telemetry;

/// The heavy step over `months`, spilling into `spill` (removed once it is done).
pub(crate) fn count(
    job: &Job,
    inputs: &Inputs,
    months: &[ServiceMonth],
    spill: ScratchDir,
) -> anyhow::Result<CallCounts> {
    let step = |input: &HeavyStepInput| Ok((engine::count_calls(&job.engine, input)?, ()));
    Ok(count_with(job, inputs, months, spill, step)?.0)
}

/// [`count`], plus the rows behind `customer`'s month as the heavy step noted them.
pub(crate) fn count_noting(
    job: &Job,
    inputs: &Inputs,
    months: &[ServiceMonth],
    spill: ScratchDir,
    customer: NotedCustomer,
) -> anyhow::Result<(CallCounts, CustomerMonth)> {
    let step = |input: &HeavyStepInput| engine::count_calls_noting(&job.engine, input, customer);
    count_with(job, inputs, months, spill, step)
}

/// The heavy step as `step` runs it on the input of `months`, in its stage of the log.
fn count_with<T>(
    job: &Job,
    inputs: &Inputs,
    months: &[ServiceMonth],
    spill: ScratchDir,
    step: impl FnOnce(&HeavyStepInput) -> anyhow::Result<(CallCounts, T)>,
) -> anyhow::Result<(CallCounts, T)> {
    let stage = telemetry::stage(
        "calls",
        "counting calls (quarantine, duplicates, exemptions)",
    );
    let coverage = coverage_intervals(months, job.policy.timezone);
    let (counts, noted) = step(&HeavyStepInput {
        files: &inputs.calls,
        month_count: months.len(),
        coverage: &coverage,
        exemptions: &inputs.exemptions,
        policy: &job.policy,
        memory_budget_bytes: job.memory_budget_bytes(),
        threads: job.threads,
        spill_dir: spill.path().to_path_buf(),
    })
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
    Ok((counts, noted))
}

/// A fresh scratch sibling of the output folder for call keys that do not fit the memory
/// budget: empty, owned by this run, removed when dropped (SPEC §8). Its parent is created as
/// the output's would be.
pub(crate) fn spill_dir(out: &Path) -> anyhow::Result<ScratchDir> {
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
