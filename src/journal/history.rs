//! `sla-ledger journal history`: the batches, in order, with their entries' totals.
//!
//! Takes the journal; gives one row per batch (number, time, run folder, ledger SHA-256,
//! as_of, months, entries, totals per currency, note) as CSV or JSON on stdout.

use std::collections::BTreeMap;
use std::io::Write;

use rust_decimal::Decimal;
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::store::Store;
use super::{Entry, MONEY_SCALE};
use crate::cli::{HistoryArgs, TableFormat};
use crate::ledger::money;

/// Per currency: how many entries and their net amount.
pub(crate) fn totals(entries: &[Entry]) -> BTreeMap<String, (usize, Decimal)> {
    let mut sums: BTreeMap<String, (usize, Decimal)> = BTreeMap::new();
    for e in entries {
        let t = sums.entry(e.currency.clone()).or_default();
        t.0 += 1;
        t.1 += e.amount;
    }
    for t in sums.values_mut() {
        t.1.rescale(MONEY_SCALE);
    }
    sums
}

#[derive(Debug, Serialize)]
struct HistoryRow {
    batch: u64,
    posted_at: String,
    run: String,
    ledger_sha256: String,
    as_of: String,
    months: String,
    customers: Option<Vec<i64>>,
    entries: u64,
    /// Net amount per currency, as decimal text.
    totals: BTreeMap<String, String>,
    note: String,
}

fn write_history(rows: &[HistoryRow], format: TableFormat, out: impl Write) -> anyhow::Result<()> {
    if format == TableFormat::Json {
        let mut out = out;
        serde_json::to_writer_pretty(&mut out, rows)?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record([
        "batch",
        "posted_at",
        "run",
        "ledger_sha256",
        "as_of",
        "months",
        "customers",
        "entries",
        "totals",
        "note",
    ])?;
    for r in rows {
        let customers = r.customers.as_ref().map_or("all".to_string(), |c| {
            c.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
        });
        let totals: Vec<String> = r.totals.iter().map(|(c, t)| format!("{c} {t}")).collect();
        writer.write_record([
            r.batch.to_string().as_str(),
            &r.posted_at,
            &r.run,
            &r.ledger_sha256,
            &r.as_of,
            &r.months,
            &customers,
            &r.entries.to_string(),
            &totals.join("; "),
            &r.note,
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// `sla-ledger journal history --journal FILE`.
pub(crate) fn history_command(args: &HistoryArgs) -> anyhow::Result<()> {
    let mut store = SqliteStore::open_existing(&args.journal)?;
    let entries = store.entries(1)?;
    let mut by_batch: BTreeMap<u64, Vec<Entry>> = BTreeMap::new();
    for e in entries {
        by_batch.entry(e.batch).or_default().push(e);
    }
    let rows: Vec<HistoryRow> = store
        .batches()?
        .into_iter()
        .map(|b| HistoryRow {
            totals: totals(by_batch.get(&b.number).map_or(&[][..], Vec::as_slice))
                .into_iter()
                .map(|(c, (_, net))| (c, money(net)))
                .collect(),
            months: b.months(),
            batch: b.number,
            posted_at: b.head.posted_at,
            run: b.head.run_dir,
            ledger_sha256: b.head.ledger_sha256,
            as_of: b.head.as_of,
            customers: b.head.customers,
            entries: b.entry_count,
            note: b.head.note,
        })
        .collect();
    let mut buffer = Vec::new();
    write_history(&rows, args.format, &mut buffer)?;
    crate::text::print(&String::from_utf8_lossy(&buffer))
}
