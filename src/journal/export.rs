//! `sla-ledger journal export`: entries of a batch and later, for the accounting system.
//!
//! Takes the journal, the first batch and an output folder; gives `entries.csv`,
//! `entries.parquet` (decimal128 money, never float) and a `manifest.json`, written atomically.

use std::io::Write;
use std::path::PathBuf;

use polars::prelude::*;
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::store::Store;
use super::{Entry, MONEY_SCALE};
use crate::cli::ExportArgs;
use crate::ledger::money;
use crate::manifest::{self, FileDigest, Program};
use crate::output::StagedOutput;

/// Export columns, in output order.
pub(crate) const ENTRY_COLUMNS: [&str; 8] = [
    "batch",
    "customer_id",
    "service_month",
    "currency",
    "amount",
    "balance_after",
    "reason",
    "idempotency_key",
];

pub(crate) fn write_csv(entries: &[Entry], out: impl Write) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(ENTRY_COLUMNS)?;
    for e in entries {
        writer.write_record([
            e.batch.to_string(),
            e.customer_id.to_string(),
            e.service_month.clone(),
            e.currency.clone(),
            money(e.amount),
            money(e.balance_after),
            e.reason.clone(),
            e.idempotency_key.clone(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

pub(crate) fn write_parquet(entries: &[Entry], out: impl Write) -> anyhow::Result<()> {
    let money_column = |name: &str, f: fn(&Entry) -> rust_decimal::Decimal| {
        crate::ledger::decimal_column(
            name,
            entries.iter().map(|e| Some(f(e))).collect(),
            crate::ledger::MONEY_PRECISION,
            MONEY_SCALE,
        )
    };
    let strings = |f: fn(&Entry) -> &str| entries.iter().map(f).collect::<Vec<_>>();
    let mut frame = DataFrame::new(
        entries.len(),
        vec![
            Column::new(
                ENTRY_COLUMNS[0].into(),
                entries.iter().map(|e| e.batch).collect::<Vec<_>>(),
            ),
            Column::new(
                ENTRY_COLUMNS[1].into(),
                entries.iter().map(|e| e.customer_id).collect::<Vec<_>>(),
            ),
            Column::new(ENTRY_COLUMNS[2].into(), strings(|e| &e.service_month)),
            Column::new(ENTRY_COLUMNS[3].into(), strings(|e| &e.currency)),
            money_column(ENTRY_COLUMNS[4], |e| e.amount)?,
            money_column(ENTRY_COLUMNS[5], |e| e.balance_after)?,
            Column::new(ENTRY_COLUMNS[6].into(), strings(|e| &e.reason)),
            Column::new(ENTRY_COLUMNS[7].into(), strings(|e| &e.idempotency_key)),
        ],
    )?;
    crate::ledger::write_frame_parquet(&mut frame, out)
}

#[derive(Debug, Serialize)]
struct ExportManifest {
    program: Program,
    journal: String,
    since_batch: u64,
    last_batch: u64,
    /// The SHA-256 of the last batch exported: the chain position this export stands for.
    last_batch_sha256: String,
    entry_rows: usize,
    outputs: Vec<FileDigest>,
}

/// `sla-ledger journal export --journal FILE --since BATCH --out DIR [--force]`.
pub(crate) fn export_command(args: &ExportArgs) -> anyhow::Result<()> {
    crate::output::check_target(&args.out, args.force)?;
    let mut store = SqliteStore::open_existing(&args.journal)?;
    let batches = store.batches()?;
    let Some(last) = batches.last() else {
        return Err(crate::error::hinted(
            format!(
                "journal `{}` holds no batch yet",
                crate::paths::shown(&args.journal)
            ),
            "`sla-ledger post` books a run first",
        ));
    };
    if args.since > last.number {
        return Err(crate::error::hinted(
            format!(
                "--since {} is after the last batch, {}",
                args.since, last.number
            ),
            format!(
                "`sla-ledger journal history --journal {}` lists the batches",
                crate::paths::shown(&args.journal)
            ),
        ));
    }
    // Nothing leaves a journal that does not verify: the accounting system would book it.
    let (all, balances) = (store.entries(1)?, store.balances()?);
    if let Err(finding) = super::chain::verify(&batches, &all, &balances)? {
        return Err(crate::error::hinted(
            format!("journal `{}`: {finding}; nothing was exported", crate::paths::shown(&args.journal)),
            format!(
                "`sla-ledger journal verify --journal {}` says the same; restore the journal from a backup",
                crate::paths::shown(&args.journal),
            ),
        ));
    }
    let entries: Vec<Entry> = all.into_iter().filter(|e| e.batch >= args.since).collect();
    let staged = StagedOutput::prepare(&args.out, args.force)?;
    staged.write("entries.csv", |w| write_csv(&entries, w))?;
    staged.write("entries.parquet", |w| write_parquet(&entries, w))?;
    let outputs: Vec<(String, PathBuf)> = ["entries.csv", "entries.parquet"]
        .iter()
        .map(|n| (n.to_string(), staged.path(n)))
        .collect();
    let manifest = ExportManifest {
        program: Program::current(),
        journal: args.journal.display().to_string(),
        since_batch: args.since,
        last_batch: last.number,
        last_batch_sha256: last.batch_sha256.clone(),
        entry_rows: entries.len(),
        outputs: manifest::digest_files(&outputs)?,
    };
    staged.write_json("manifest.json", &manifest)?;
    staged.commit(args.force)?;
    crate::text::print(&format!(
        "sla-ledger journal export: {} entries of batches {}..{} of `{}`\n  written: {}\n",
        entries.len(),
        args.since,
        last.number,
        crate::paths::shown(&args.journal),
        crate::paths::shown(&args.out)
    ))
}
