//! A run's ledger as `diff` and `post` read it: `ledger.csv` in, checked rows out.
//!
//! Takes a run output folder; gives its `ledger.csv` rows (SPEC §7), refusing a file whose
//! SHA-256 is not the one its `manifest.json` recorded or whose money a run could not write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rust_decimal::Decimal;

use crate::ledger::COLUMNS;
use crate::manifest;

/// One ledger row as written, keyed by its column name (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LedgerLine {
    pub(crate) customer_id: i64,
    pub(crate) service_month: String,
    cells: BTreeMap<&'static str, String>,
}

impl LedgerLine {
    pub(crate) fn cell(&self, column: &str) -> &str {
        self.cells.get(column).map_or("", String::as_str)
    }

    pub(crate) fn payout(&self) -> anyhow::Result<Decimal> {
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
pub(crate) struct RunLedger {
    pub(crate) dir: PathBuf,
    pub(crate) sha256: String,
    pub(crate) rows: Vec<LedgerLine>,
}

impl RunLedger {
    /// Reads `DIR/ledger.csv` and checks its hash against `DIR/manifest.json`.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<RunLedger> {
        let path = dir.join("ledger.csv");
        let (_, sha256) = manifest::sha256_file(&path).map_err(|e| {
            crate::error::with_hint(
                e,
                format!("`{}` is not a run output", crate::paths::shown(dir)),
                "pass the `--out` folder of an `sla-ledger run`",
            )
        })?;
        let recorded = recorded_ledger_hash(dir)?;
        if recorded != sha256 {
            return Err(crate::error::hinted(
                format!(
                    "`{}` has SHA-256 `{sha256}` but its manifest recorded `{recorded}`; the ledger was changed after the run",
                    crate::paths::shown(&path),
                ),
                "rerun `sla-ledger run` to get an output whose files match its manifest",
            ));
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
pub(crate) fn read_ledger_csv(path: &Path) -> anyhow::Result<Vec<LedgerLine>> {
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
            crate::error::hinted(
                format!("`{}` line {line} column `{column}`: {problem}", crate::paths::shown(path)),
                "a ledger is read as `sla-ledger run` wrote it; rerun the run rather than edit its output",
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

/// Rows and ledgers built in memory, for the unit tests of `diff`.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A row of customer 1 in 2026-01: every column empty but `cells`, payout `0.00` unless set.
    pub(crate) fn line(cells: &[(&'static str, &str)]) -> LedgerLine {
        line_of(1, cells)
    }

    /// [`line`] of another customer.
    pub(crate) fn line_of(customer_id: i64, cells: &[(&'static str, &str)]) -> LedgerLine {
        let mut map: BTreeMap<&'static str, String> =
            COLUMNS.iter().map(|c| (*c, String::new())).collect();
        map.insert("payout", "0.00".into());
        for (c, v) in cells {
            map.insert(c, v.to_string());
        }
        LedgerLine {
            customer_id,
            service_month: "2026-01".into(),
            cells: map,
        }
    }

    /// A ledger whose folder and SHA-256 are both `sha`.
    pub(crate) fn ledger(sha: &str, rows: Vec<LedgerLine>) -> RunLedger {
        RunLedger {
            dir: PathBuf::from(sha),
            sha256: sha.into(),
            rows,
        }
    }
}
