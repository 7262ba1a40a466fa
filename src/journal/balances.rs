//! `sla-ledger journal balance`: what has been booked per customer, service month and currency.
//!
//! Takes the journal and optional customer and month filters; gives CSV or JSON on stdout.

use std::io::Write;

use serde::Serialize;

use super::sqlite::SqliteStore;
use super::store::Store;
use super::Balance;
use crate::cli::{BalanceArgs, TableFormat};
use crate::error::UsageError;
use crate::ledger::money;

#[derive(Debug, Serialize)]
struct BalanceRow<'a> {
    customer_id: i64,
    service_month: &'a str,
    currency: &'a str,
    /// Decimal text, so no reader turns money into a float.
    balance: String,
}

fn selected<'a>(balances: &'a [Balance], args: &BalanceArgs) -> Vec<BalanceRow<'a>> {
    balances
        .iter()
        .filter(|b| args.customer.is_none_or(|c| c == b.customer_id))
        .filter(|b| args.month.as_ref().is_none_or(|m| *m == b.service_month))
        .map(|b| BalanceRow {
            customer_id: b.customer_id,
            service_month: &b.service_month,
            currency: &b.currency,
            balance: money(b.amount),
        })
        .collect()
}

fn write_balances(rows: &[BalanceRow], format: TableFormat, out: impl Write) -> anyhow::Result<()> {
    match format {
        TableFormat::Json => {
            let mut out = out;
            serde_json::to_writer_pretty(&mut out, rows)?;
            out.write_all(b"\n")?;
        }
        TableFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(out);
            writer.write_record(["customer_id", "service_month", "currency", "balance"])?;
            for r in rows {
                writer.write_record([
                    r.customer_id.to_string().as_str(),
                    r.service_month,
                    r.currency,
                    &r.balance,
                ])?;
            }
            writer.flush()?;
        }
    }
    Ok(())
}

/// `sla-ledger journal balance --journal FILE [--customer ID] [--month YYYY-MM]`.
pub(crate) fn balance_command(args: &BalanceArgs) -> anyhow::Result<()> {
    if let Some(month) = &args.month {
        month.parse::<crate::time::YearMonth>().map_err(|e| {
            UsageError::new(format!("--month `{}`: {e}", crate::text::shown(month)))
        })?;
    }
    let mut store = SqliteStore::open_existing(&args.journal)?;
    let balances = store.balances()?;
    let mut buffer = Vec::new();
    write_balances(&selected(&balances, args), args.format, &mut buffer)?;
    crate::text::print(&String::from_utf8_lossy(&buffer))
}
