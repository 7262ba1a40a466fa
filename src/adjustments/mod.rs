//! `sla-ledger diff`: finance reconciliation between two run outputs.
//!
//! Takes a prior and a current output folder (their `ledger.csv`, checked against the SHA-256
//! their `manifest.json` recorded); gives one adjustment per service month whose payout,
//! compensation, tier, fee, currency, status or claim changed. Payouts already made are never
//! rewritten: a correction is a signed `delta = current_payout - prior_payout` (SLA 3.1, 3.2).
//!
//! The steps, one file each: `run_ledger` reads and checks each side's `ledger.csv`,
//! `compare` keeps what both runs covered (`crate::scope`), `changes` computes the adjustments
//! and their totals, `write` writes them; this file runs the command and reports it.

pub(crate) mod changes;
pub(crate) mod compare;
pub(crate) mod run_ledger;
pub(crate) mod write;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use self::changes::{totals, Adjustment, CurrencyTotals};
use self::compare::{compare, Comparison};
use self::run_ledger::RunLedger;
use self::write::{write_csv, write_parquet, write_totals_csv};
use crate::cli::DiffArgs;
use crate::ledger::money;
use crate::manifest::{self, FileDigest, Program};
use crate::output::StagedOutput;
use crate::scope::RunScope;

#[derive(Debug, Serialize)]
struct DiffManifest {
    program: Program,
    prior: LedgerSource,
    current: LedgerSource,
    adjustment_rows: usize,
    scope: ScopeRecord,
    totals: BTreeMap<String, CurrencyTotals>,
    outputs: Vec<FileDigest>,
}

#[derive(Debug, Serialize)]
struct LedgerSource {
    dir: String,
    ledger_sha256: String,
    ledger_rows: usize,
}

impl LedgerSource {
    fn of(ledger: &RunLedger) -> LedgerSource {
        LedgerSource {
            dir: ledger.dir.display().to_string(),
            ledger_sha256: ledger.sha256.clone(),
            ledger_rows: ledger.rows.len(),
        }
    }
}

/// `sla-ledger diff --prior DIR --current DIR --out DIR [--force]`.
pub fn diff_command(args: &DiffArgs) -> anyhow::Result<()> {
    crate::output::check_apart(
        &args.out,
        &[("--prior", &args.prior), ("--current", &args.current)],
    )?;
    crate::output::check_target(&args.out, args.force)?;
    let prior = RunLedger::load(&args.prior)?;
    let current = RunLedger::load(&args.current)?;
    let (prior_scope, current_scope) =
        (RunScope::load(&args.prior)?, RunScope::load(&args.current)?);
    let comparison = compare(
        &prior,
        &prior_scope,
        &current,
        &current_scope,
        args.allow_policy_change,
    )?;
    let rows = &comparison.rows;
    let totals = totals(rows);

    let staged = StagedOutput::prepare(&args.out, args.force)?;
    staged.write("adjustments.csv", |w| write_csv(rows, w))?;
    staged.write("adjustments.parquet", |w| write_parquet(rows, w))?;
    staged.write("adjustment_totals.csv", |w| write_totals_csv(&totals, w))?;
    let outputs: Vec<(String, PathBuf)> = [
        "adjustments.csv",
        "adjustments.parquet",
        "adjustment_totals.csv",
    ]
    .iter()
    .map(|n| (n.to_string(), staged.path(n)))
    .collect();
    let manifest = DiffManifest {
        program: Program::current(),
        prior: LedgerSource::of(&prior),
        current: LedgerSource::of(&current),
        adjustment_rows: rows.len(),
        scope: ScopeRecord::of(&comparison),
        totals: totals.clone(),
        outputs: manifest::digest_files(&outputs)?,
    };
    staged.write_json("manifest.json", &manifest)?;
    staged.commit(args.force)?;
    let mut text = summary(&prior, &current, rows, &totals, &args.out);
    text.insert_str(
        text.find('\n').map_or(0, |i| i + 1),
        &scope_lines(&comparison),
    );
    crate::text::print(&text)?;
    Ok(())
}

/// What was compared and what was left out, for the summary (issue 16's scope rule).
fn scope_lines(comparison: &Comparison) -> String {
    let compared = comparison.common.as_ref().map_or(
        "nothing: the runs share no customer-month".to_string(),
        RunScope::describe,
    );
    let (prior_out, current_out) = comparison.left_out_rows;
    let mut text = format!("  compared: {compared}\n");
    if prior_out + current_out > 0 {
        writeln!(
            text,
            "  left out (not covered by both runs): {prior_out} prior row(s), {current_out} current row(s)"
        )
        .ok();
    }
    if comparison.policy_changed {
        text.push_str("  policy changed: every entry is labelled `policy`\n");
    }
    text
}

/// The compared scope as `manifest.json` records it.
#[derive(Debug, Serialize)]
struct ScopeRecord {
    compared: Option<String>,
    left_out_prior_rows: usize,
    left_out_current_rows: usize,
    policy_changed: bool,
}

impl ScopeRecord {
    fn of(comparison: &Comparison) -> ScopeRecord {
        ScopeRecord {
            compared: comparison.common.as_ref().map(RunScope::describe),
            left_out_prior_rows: comparison.left_out_rows.0,
            left_out_current_rows: comparison.left_out_rows.1,
            policy_changed: comparison.policy_changed,
        }
    }
}

fn summary(
    prior: &RunLedger,
    current: &RunLedger,
    rows: &[Adjustment],
    totals: &BTreeMap<String, CurrencyTotals>,
    out: &Path,
) -> String {
    let mut text = String::new();
    writeln!(
        text,
        "sla-ledger diff: {} adjustment(s) between `{}` ({} rows) and `{}` ({} rows)",
        rows.len(),
        crate::paths::shown(&prior.dir),
        prior.rows.len(),
        crate::paths::shown(&current.dir),
        current.rows.len()
    )
    .ok();
    for (currency, t) in totals {
        writeln!(
            text,
            "  {currency}: {} row(s), paid before {}, due now {}, delta {}",
            t.rows,
            money(t.prior_payout),
            money(t.current_payout),
            money(t.delta)
        )
        .ok();
    }
    writeln!(text, "  written: {}", crate::paths::shown(out)).ok();
    text
}
