//! `sla-ledger validate`: every input checked against the contract (SPEC §2, §6), every
//! problem reported at once, and no ledger computed.
//!
//! Takes the same flags as `run`. Gives a report on stdout: what was read, what a run would
//! quarantine, and each problem that would stop a run (with `--strict`, quarantined rows too).
//! The loaders are the run's own, in their collect-all mode ([`Problems::collect_all`]), so a
//! problem found here is exactly the one a run would fail on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::cli::RunCommandArgs;
use crate::error::{describe, hinted};
use crate::inputs::calendar::RunCalendar;
use crate::inputs::problems::Problems;
use crate::inputs::Inputs;
use crate::job::Job;
use crate::quarantine::Entry;
use crate::stages::service_months::service_months;

/// What the heavy step found in the call logs: row accounting and quarantine.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallScreen {
    pub read: u64,
    pub quarantined: u64,
    pub duplicates: u64,
}

/// What `validate` found.
#[derive(Debug)]
pub(crate) struct Validation {
    /// Each problem as the user reads it: where, what, expected, and a hint where known.
    pub problems: Vec<String>,
    /// What a run would quarantine (small tables and call rows).
    pub quarantine: Vec<Entry>,
    pub calls: Option<CallScreen>,
    pub call_files: usize,
    pub service_months: usize,
    pub closed_months: usize,
    pub calendar: String,
    pub calendar_years: BTreeSet<i32>,
    /// Years the claim windows of closed service months need from the calendar.
    pub years_needed: BTreeSet<i32>,
}

pub fn validate_command(args: &RunCommandArgs) -> anyhow::Result<()> {
    // `--report-lang` is taken so a run's flags validate as they are; nothing is rendered.
    let job =
        Job::resolve_without_out(&args.run, crate::job::today)?.with_report_lang(args.report_lang);
    let validation = validate(&job)?;
    let printed = crate::text::print(&render(&job, &validation));
    // Problems decide the exit status even when stdout was closed early (`| head`).
    if !validation.problems.is_empty() {
        return Err(hinted(
            format!(
                "{} problem(s) in the inputs of `{}`; a run would fail",
                validation.problems.len(),
                job.data
            ),
            "fix them in order, then run `sla-ledger validate` again",
        ));
    }
    printed
}

/// Checks everything a run reads, in the order a run reads it, collecting every problem; when
/// the inputs load cleanly, runs the run's own computation ([`crate::run::compute`], writing
/// nothing), so `validate` fails exactly when `run` would.
pub(crate) fn validate(job: &Job) -> anyhow::Result<Validation> {
    let mut problems = Problems::collect_all();
    let mut extra: Vec<String> = Vec::new();

    if !job.out_dir.as_os_str().is_empty() {
        if let Err(err) = crate::output::check_target(&job.out_dir, job.force) {
            extra.push(describe(&err));
        }
    }
    let calendar = RunCalendar::load(job.calendar.path(), &mut problems)?;
    let inputs = Inputs::load_with(&job.data, &job.policy, &mut problems)?;
    let call_files = inputs.calls.files.len();

    let months = service_months(
        &inputs.subscriptions.periods,
        job.months,
        |customer_id| job.includes_customer(customer_id),
        job.as_of,
    );
    let years_needed = months
        .iter()
        .filter(|m| !m.provisional)
        .map(|m| m.month.next().year)
        .collect();

    // The run's own stages, on whatever loaded (in collect-all mode a defective file or row is
    // left out): every check a run makes after loading is made here too, and writes nothing.
    let spill = crate::scratch::ScratchDir::in_temp("validate")?;
    let (calls, quarantine) = match crate::run::compute(job, &inputs, &calendar, spill) {
        Ok(computed) => {
            let rows = computed.counts.rows;
            let screen = CallScreen {
                read: rows.read,
                quarantined: rows.quarantined,
                duplicates: rows.duplicates,
            };
            (Some(screen), computed.quarantine)
        }
        Err(err) => {
            extra.push(describe(&err));
            (None, inputs.quarantine.sorted())
        }
    };

    let mut all: Vec<String> = problems
        .into_vec()
        .into_iter()
        .map(|p| describe(&p.into()))
        .collect();
    all.extend(extra);
    Ok(Validation {
        problems: all,
        quarantine,
        calls,
        call_files,
        service_months: months.len(),
        closed_months: months.iter().filter(|m| !m.provisional).count(),
        calendar_years: calendar.calendar.years().clone(),
        calendar: calendar.name,
        years_needed,
    })
}

fn years(years: &BTreeSet<i32>) -> String {
    if years.is_empty() {
        return "none".into();
    }
    years
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report printed on stdout.
pub(crate) fn render(job: &Job, v: &Validation) -> String {
    let mut text = String::new();
    writeln!(
        text,
        "sla-ledger validate: `{}`, months {}..{}, as of {}",
        job.data, job.months.first, job.months.last, job.as_of
    )
    .ok();
    match &v.calls {
        Some(c) => writeln!(
            text,
            "  calls/: {} file(s), {} row(s): {} quarantined, {} duplicate(s)",
            v.call_files, c.read, c.quarantined, c.duplicates
        ),
        None => writeln!(text, "  calls/: not screened (see the problems below)"),
    }
    .ok();
    writeln!(
        text,
        "  service months in range: {} ({} closed, whose claim windows need calendar year(s) {})",
        v.service_months,
        v.closed_months,
        years(&v.years_needed)
    )
    .ok();
    writeln!(
        text,
        "  calendar `{}` covers {}",
        v.calendar,
        years(&v.calendar_years)
    )
    .ok();
    let mut by: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for entry in &v.quarantine {
        let source = if entry.source.starts_with("calls") {
            "calls/".to_string()
        } else {
            entry.source.clone()
        };
        *by.entry((source, entry.reason.as_str())).or_default() += 1;
    }
    writeln!(
        text,
        "  would be quarantined: {} row(s){}",
        v.quarantine.len(),
        if by.is_empty() { "" } else { ":" }
    )
    .ok();
    for ((source, reason), n) in &by {
        writeln!(text, "    {source} {reason}: {n}").ok();
    }
    if v.problems.is_empty() {
        writeln!(text, "no problems found").ok();
    } else {
        writeln!(text, "problems: {}", v.problems.len()).ok();
        for (i, problem) in v.problems.iter().enumerate() {
            // Continuation lines (causes, the `hint:`) line up under the problem's text.
            let indented = problem
                .lines()
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n      ");
            writeln!(text, "  {:>2}. {indented}", i + 1).ok();
        }
    }
    text
}
