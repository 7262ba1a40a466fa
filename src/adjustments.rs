//! `sla-ledger diff`: finance reconciliation between two run outputs.
//!
//! Takes a prior and a current output folder (their `ledger.csv`, checked against the SHA-256
//! their `manifest.json` recorded); gives one adjustment per service month whose payout,
//! compensation, tier, fee, currency, status or claim changed. Payouts already made are never
//! rewritten: a correction is a signed `delta = current_payout - prior_payout` (SLA 3.1, 3.2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use polars::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cli::DiffArgs;
use crate::ledger::{self, COLUMNS};
use crate::manifest::{self, FileDigest, Program};
use crate::output::StagedOutput;
use crate::scope::{compare, Comparison, RunScope};

/// Adjustment columns, in output order.
pub const ADJUSTMENT_COLUMNS: [&str; 8] = [
    "customer_id",
    "service_month",
    "prior_payout",
    "current_payout",
    "delta",
    "currency",
    "reason",
    "idempotency_key",
];

const MONEY_SCALE: u32 = 2;

/// One ledger row as written, keyed by its column name (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    pub customer_id: i64,
    pub service_month: String,
    cells: BTreeMap<&'static str, String>,
}

impl LedgerLine {
    pub fn cell(&self, column: &str) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }

    pub fn payout(&self) -> anyhow::Result<Decimal> {
        Decimal::from_str_exact(self.cell("payout")).with_context(|| {
            format!(
                "customer {} {}: payout `{}` is not a decimal",
                self.customer_id,
                self.service_month,
                self.cell("payout")
            )
        })
    }
}

/// A run output's ledger: its rows and the SHA-256 of its `ledger.csv`.
#[derive(Debug)]
pub struct RunLedger {
    pub dir: PathBuf,
    pub sha256: String,
    pub rows: Vec<LedgerLine>,
}

impl RunLedger {
    /// Reads `DIR/ledger.csv` and checks its hash against `DIR/manifest.json`.
    pub fn load(dir: &Path) -> anyhow::Result<RunLedger> {
        let path = dir.join("ledger.csv");
        let (_, sha256) = manifest::sha256_file(&path).map_err(|e| {
            e.context(format!(
                "`{}` is not a run output\n  hint: pass the `--out` folder of an `sla-ledger run`",
                crate::paths::shown(dir)
            ))
        })?;
        let recorded = recorded_ledger_hash(dir)?;
        if recorded != sha256 {
            bail!(
                "`{}` has SHA-256 `{sha256}` but its manifest recorded `{recorded}`; the ledger was changed after the run\n  hint: rerun `sla-ledger run` to get an output whose files match its manifest",
                crate::paths::shown(&path)
            );
        }
        Ok(RunLedger {
            dir: dir.to_path_buf(),
            sha256,
            rows: read_ledger_csv(&path)?,
        })
    }
}

fn recorded_ledger_hash(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("manifest.json");
    let manifest = manifest::read_run_manifest(dir)?;
    manifest["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["path"] == "ledger.csv")
        .and_then(|o| o["sha256"].as_str())
        .map(str::to_string)
        .with_context(|| {
            format!(
                "`{}` lists no SHA-256 for `ledger.csv` in `outputs`",
                crate::paths::shown(&path)
            )
        })
}

/// Reads a `ledger.csv`, requiring exactly the SPEC §7 header.
pub fn read_ledger_csv(path: &Path) -> anyhow::Result<Vec<LedgerLine>> {
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read `{}`", crate::paths::shown(path)))?;
    let headers = reader.headers()?.clone();
    if headers.iter().ne(COLUMNS.iter().copied()) {
        bail!(
            "`{}` has header `{}`; expected the ledger columns `{}` (docs/reference.md §5)",
            crate::paths::shown(path),
            headers.iter().collect::<Vec<_>>().join(","),
            COLUMNS.join(",")
        );
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record =
            record.with_context(|| format!("cannot read `{}`", crate::paths::shown(path)))?;
        let line = index as u64 + 2;
        let customer_id = record[0].parse::<i64>().with_context(|| {
            format!(
                "`{}` line {line} column `customer_id`: `{}` is not an integer",
                crate::paths::shown(path),
                &record[0]
            )
        })?;
        let cells = COLUMNS
            .iter()
            .zip(record.iter())
            .map(|(c, v)| (*c, v.to_string()))
            .collect();
        let row = LedgerLine {
            customer_id,
            service_month: record[1].to_string(),
            cells,
        };
        check_money(&row).map_err(|(column, problem)| {
            anyhow::anyhow!(
                "`{}` line {line} column `{column}`: {problem}\n  hint: a ledger is read as `sla-ledger run` wrote it; rerun the run rather than edit its output",
                crate::paths::shown(path)
            )
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// What an adjustment is computed from must be what a run writes (SPEC §7): a payout of at
/// most 15 digits and 2 decimals, a currency that is empty or an ISO 4217 code, and no money
/// without a currency. Gives the offending column and what is wrong with it.
fn check_money(row: &LedgerLine) -> Result<(), (&'static str, String)> {
    let payout_text = row.cell("payout");
    let payout = crate::inputs::billing::parse_amount(payout_text).ok_or_else(|| {
        (
            "payout",
            format!(
                "{} is not an amount; expected digits with 2 decimals, like `12.30`",
                crate::text::quoted(payout_text)
            ),
        )
    })?;
    let currency = row.cell("currency");
    if !currency.is_empty() && !crate::inputs::billing::is_currency_code(currency) {
        return Err((
            "currency",
            format!(
                "{} is not an ISO 4217 code of three capital letters",
                crate::text::quoted(currency)
            ),
        ));
    }
    if currency.is_empty() && !payout.is_zero() {
        return Err((
            "currency",
            format!("is empty, but the payout is {payout_text}; expected a currency for any money"),
        ));
    }
    Ok(())
}

/// One correction entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adjustment {
    pub customer_id: i64,
    pub service_month: String,
    pub prior_payout: Decimal,
    pub current_payout: Decimal,
    pub delta: Decimal,
    /// Empty only when neither side has a currency (then every amount is 0.00).
    pub currency: String,
    pub reason: String,
    pub idempotency_key: String,
}

/// What changed between two versions of a row, in a fixed order. Each names a group of
/// ledger columns; `tier` and `compensation` appear only when nothing upstream explains them
/// (for example a different policy).
fn reasons(prior: &LedgerLine, current: &LedgerLine) -> Vec<&'static str> {
    let differs = |columns: &[&str]| columns.iter().any(|c| prior.cell(c) != current.cell(c));
    let mut found = Vec::new();
    let groups: [(&str, &[&str]); 7] = [
        ("period", &["period_start", "period_end"]),
        ("provisional", &["provisional"]),
        ("counts", &["total_calls", "system_errors"]),
        ("exemptions", &["exempt_errors"]),
        ("fee", &["monthly_fee"]),
        ("currency", &["currency"]),
        ("status", &["status"]),
    ];
    for (name, columns) in groups {
        if differs(columns) {
            found.push(name);
        }
    }
    // A claim decision that moved to or from `not_due` (or an `error` row) follows from the
    // compensation; only a change between owed states is a claim event (filed, won, lapsed).
    let owed = |r: &LedgerLine| !matches!(r.cell("claim_status"), "" | "not_due");
    if differs(&["claim_status", "claim_id"]) && owed(prior) && owed(current) {
        found.push("claim");
    }
    let upstream_of_tier = ["period", "counts", "exemptions"];
    if differs(&["tier_rate"]) && !found.iter().any(|r| upstream_of_tier.contains(r)) {
        found.push("tier");
    }
    if differs(&["compensation"]) && found.is_empty() {
        found.push("compensation");
    }
    if found.is_empty() {
        // Nothing upstream changed: name the changed columns themselves.
        found.extend(TRIGGER_COLUMNS.iter().filter(|c| differs(&[c])));
    }
    found
}

/// The columns whose change makes a row an adjustment.
const TRIGGER_COLUMNS: [&str; 8] = [
    "payout",
    "compensation",
    "tier_rate",
    "monthly_fee",
    "currency",
    "claim_status",
    "claim_id",
    "status",
];

/// `sha256("customer_id|service_month|currency|prior ledger sha256|current ledger sha256")`
/// in lowercase hex: the same pair of ledgers always gives the same key, so posting an
/// adjustment twice is detectable. The currency separates the two entries of a month whose
/// currency changed.
pub fn idempotency_key(
    customer_id: i64,
    service_month: &str,
    currency: &str,
    prior_sha256: &str,
    current_sha256: &str,
) -> String {
    let text = format!("{customer_id}|{service_month}|{currency}|{prior_sha256}|{current_sha256}");
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            write!(s, "{b:02x}").expect("write to String");
            s
        })
}

/// One currency of a customer-month's payout change: (currency, paid before, due now).
pub type CurrencyChange = (String, Decimal, Decimal);

/// A row's payout by currency; empty for no row or a row without currency (no billing, or an
/// `error` row), which pays 0.00.
pub fn payout_by_currency(row: Option<&LedgerLine>) -> anyhow::Result<BTreeMap<String, Decimal>> {
    let mut payouts = BTreeMap::new();
    if let Some(row) = row.filter(|r| !r.cell("currency").is_empty()) {
        payouts.insert(row.cell("currency").to_string(), row.payout()?);
    }
    Ok(payouts)
}

/// The change of one customer-month's payout, per currency, shared by `diff` and `post`:
/// money in two currencies is never netted, so a currency on one side only is reversed in its
/// own (paid before, nothing due) or booked in its own (nothing before, due now). The prior
/// side's currencies come first.
pub fn payout_changes(
    prior: &BTreeMap<String, Decimal>,
    current: &BTreeMap<String, Decimal>,
) -> Vec<CurrencyChange> {
    let zero = Decimal::new(0, MONEY_SCALE);
    let mut changes: Vec<CurrencyChange> = prior
        .iter()
        .map(|(c, paid)| (c.clone(), *paid, current.get(c).copied().unwrap_or(zero)))
        .collect();
    changes.extend(
        current
            .iter()
            .filter(|(c, _)| !prior.contains_key(*c))
            .map(|(c, due)| (c.clone(), zero, *due)),
    );
    changes
}

/// Every adjustment between two ledgers, ordered by (customer_id, service_month, currency).
pub fn adjustments(prior: &RunLedger, current: &RunLedger) -> anyhow::Result<Vec<Adjustment>> {
    let key = |r: &LedgerLine| (r.customer_id, r.service_month.clone());
    let prior_rows: BTreeMap<_, _> = prior.rows.iter().map(|r| (key(r), r)).collect();
    let current_rows: BTreeMap<_, _> = current.rows.iter().map(|r| (key(r), r)).collect();
    let mut keys: Vec<&(i64, String)> = prior_rows.keys().chain(current_rows.keys()).collect();
    keys.sort();
    keys.dedup();

    let mut out = Vec::new();
    for k in keys {
        let entry = |prior_payout: Decimal, current_payout: Decimal, currency: &str, reason| {
            let mut delta = current_payout - prior_payout;
            delta.rescale(MONEY_SCALE);
            Adjustment {
                customer_id: k.0,
                service_month: k.1.clone(),
                prior_payout,
                current_payout,
                delta,
                currency: currency.to_string(),
                reason,
                idempotency_key: idempotency_key(
                    k.0,
                    &k.1,
                    currency,
                    &prior.sha256,
                    &current.sha256,
                ),
            }
        };
        let (p, c) = (prior_rows.get(k).copied(), current_rows.get(k).copied());
        let reason = match (p, c) {
            (Some(_), None) => "only_prior".to_string(),
            (None, Some(_)) => "only_current".to_string(),
            (Some(p), Some(c)) => {
                if TRIGGER_COLUMNS.iter().all(|col| p.cell(col) == c.cell(col)) {
                    continue;
                }
                reasons(p, c).join("+")
            }
            (None, None) => unreachable!("key from one of the sides"),
        };
        let mut changes = payout_changes(&payout_by_currency(p)?, &payout_by_currency(c)?);
        if changes.is_empty() {
            // Neither side has a currency (no billing, or an `error` row): 0.00 on both.
            let zero = Decimal::new(0, MONEY_SCALE);
            changes.push((String::new(), zero, zero));
        }
        for (currency, prior_payout, current_payout) in changes {
            out.push(entry(
                prior_payout,
                current_payout,
                &currency,
                reason.clone(),
            ));
        }
    }
    for a in &out {
        assert_eq!(a.delta, a.current_payout - a.prior_payout);
        assert!(
            !a.currency.is_empty() || a.delta.is_zero(),
            "money without a currency: {a:?}"
        );
    }
    Ok(out)
}

/// Per currency: how many entries, what was paid before, what is due now, and the net delta.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub rows: usize,
    pub prior_payout: Decimal,
    pub current_payout: Decimal,
    pub delta: Decimal,
}

/// Totals per currency over entries that carry money (a currency).
pub fn totals(adjustments: &[Adjustment]) -> BTreeMap<String, CurrencyTotals> {
    let mut sums: BTreeMap<String, CurrencyTotals> = BTreeMap::new();
    for a in adjustments.iter().filter(|a| !a.currency.is_empty()) {
        let t = sums.entry(a.currency.clone()).or_default();
        t.rows += 1;
        t.prior_payout += a.prior_payout;
        t.current_payout += a.current_payout;
        t.delta += a.delta;
    }
    for t in sums.values_mut() {
        for v in [&mut t.prior_payout, &mut t.current_payout, &mut t.delta] {
            v.rescale(MONEY_SCALE);
        }
    }
    sums
}

fn money(value: Decimal) -> String {
    ledger::fixed(value, MONEY_SCALE)
}

pub fn write_csv(rows: &[Adjustment], out: impl Write) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(ADJUSTMENT_COLUMNS)?;
    for a in rows {
        writer.write_record([
            a.customer_id.to_string(),
            a.service_month.clone(),
            money(a.prior_payout),
            money(a.current_payout),
            money(a.delta),
            a.currency.clone(),
            a.reason.clone(),
            a.idempotency_key.clone(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// Parquet with decimal128 money (never float), the same columns as the CSV.
pub fn write_parquet(rows: &[Adjustment], out: impl Write) -> anyhow::Result<()> {
    let money_column = |name: &str, f: fn(&Adjustment) -> Decimal| {
        ledger::decimal_column(
            name,
            rows.iter().map(|a| Some(f(a))).collect(),
            ledger::MONEY_PRECISION,
            MONEY_SCALE,
        )
    };
    let strings = |f: fn(&Adjustment) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let mut frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                ADJUSTMENT_COLUMNS[0].into(),
                rows.iter().map(|a| a.customer_id).collect::<Vec<_>>(),
            ),
            Column::new(ADJUSTMENT_COLUMNS[1].into(), strings(|a| &a.service_month)),
            money_column(ADJUSTMENT_COLUMNS[2], |a| a.prior_payout)?,
            money_column(ADJUSTMENT_COLUMNS[3], |a| a.current_payout)?,
            money_column(ADJUSTMENT_COLUMNS[4], |a| a.delta)?,
            Column::new(ADJUSTMENT_COLUMNS[5].into(), strings(|a| &a.currency)),
            Column::new(ADJUSTMENT_COLUMNS[6].into(), strings(|a| &a.reason)),
            Column::new(
                ADJUSTMENT_COLUMNS[7].into(),
                strings(|a| &a.idempotency_key),
            ),
        ],
    )?;
    crate::ledger::write_frame_parquet(&mut frame, out)
}

pub fn write_totals_csv(
    totals: &BTreeMap<String, CurrencyTotals>,
    out: impl Write,
) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record([
        "currency",
        "rows",
        "prior_payout",
        "current_payout",
        "delta",
    ])?;
    for (currency, t) in totals {
        writer.write_record([
            currency.clone(),
            t.rows.to_string(),
            money(t.prior_payout),
            money(t.current_payout),
            money(t.delta),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

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
    staged.write("manifest.json", |w| {
        serde_json::to_writer_pretty(&mut *w, &manifest)?;
        w.write_all(b"\n")?;
        Ok(())
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cells: &[(&'static str, &str)]) -> LedgerLine {
        let mut map: BTreeMap<&'static str, String> =
            COLUMNS.iter().map(|c| (*c, String::new())).collect();
        map.insert("payout", "0.00".into());
        for (c, v) in cells {
            map.insert(c, v.to_string());
        }
        LedgerLine {
            customer_id: 1,
            service_month: "2026-01".into(),
            cells: map,
        }
    }

    fn ledger(sha: &str, rows: Vec<LedgerLine>) -> RunLedger {
        RunLedger {
            dir: PathBuf::from(sha),
            sha256: sha.into(),
            rows,
        }
    }

    #[test]
    fn sla_3_2_a_currency_change_reverses_and_rebooks_instead_of_netting() {
        let p = line(&[("currency", "CNY"), ("payout", "10.00")]);
        let c = line(&[("currency", "USD"), ("payout", "2.00")]);
        let rows = adjustments(&ledger("a", vec![p]), &ledger("b", vec![c])).unwrap();
        let shown: Vec<_> = rows
            .iter()
            .map(|a| (money(a.delta), a.currency.as_str(), a.reason.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("-10.00".to_string(), "CNY", "currency"),
                ("2.00".to_string(), "USD", "currency")
            ]
        );
        assert_ne!(rows[0].idempotency_key, rows[1].idempotency_key);
    }

    #[test]
    fn sla_3_1_an_error_row_reverses_the_prior_payout_in_its_currency() {
        let p = line(&[
            ("currency", "CNY"),
            ("payout", "7.00"),
            ("status", "ok"),
            ("claim_status", "valid"),
        ]);
        let c = line(&[("payout", "0.00"), ("status", "error")]);
        let rows = adjustments(&ledger("a", vec![p]), &ledger("b", vec![c])).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (money(rows[0].delta), rows[0].currency.as_str()),
            ("-7.00".to_string(), "CNY")
        );
        assert_eq!(rows[0].reason, "currency+status");
    }

    fn scope(first: &str, last: &str, customers: Option<&[i64]>) -> RunScope {
        RunScope {
            first_month: first.parse().unwrap(),
            last_month: last.parse().unwrap(),
            customers: customers.map(|c| c.iter().copied().collect()),
            as_of: "2026-04-30".into(),
            policy: serde_json::json!({"name": "CCC"}),
        }
    }

    #[test]
    fn issue16_scope_a_one_customer_rerun_reverses_no_other_customer() {
        let prior = ledger(
            "a",
            vec![
                line(&[("currency", "CNY"), ("payout", "10.00")]),
                LedgerLine {
                    customer_id: 2,
                    ..line(&[("currency", "CNY"), ("payout", "5.00")])
                },
            ],
        );
        let current = ledger("b", vec![line(&[("currency", "CNY"), ("payout", "12.00")])]);
        let comparison = compare(
            &prior,
            &scope("2026-01", "2026-01", None),
            &current,
            &scope("2026-01", "2026-01", Some(&[1])),
            false,
        )
        .unwrap();
        let shown: Vec<_> = comparison
            .rows
            .iter()
            .map(|a| (a.customer_id, money(a.delta)))
            .collect();
        assert_eq!(shown, [(1, "2.00".to_string())]);
        assert_eq!(comparison.left_out_rows, (1, 0));
    }

    #[test]
    fn idempotency_key_is_sha256_of_its_parts() {
        let key = idempotency_key(1, "2026-01", "CNY", "p", "c");
        let expected = Sha256::digest(b"1|2026-01|CNY|p|c");
        assert_eq!(key.len(), 64);
        assert_eq!(
            key,
            expected
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
}
