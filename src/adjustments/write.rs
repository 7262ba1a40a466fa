//! The adjustment files: adjustments and totals in, CSV and Parquet out.
//!
//! Gives `adjustments.csv`, `adjustments.parquet` (decimal128 money, never float) and
//! `adjustment_totals.csv`, in the column order of [`ADJUSTMENT_COLUMNS`].

use std::collections::BTreeMap;
use std::io::Write;

use polars::prelude::*;
use rust_decimal::Decimal;

use super::changes::{Adjustment, CurrencyTotals, MONEY_SCALE};
use crate::ledger::{self, money};

/// Adjustment columns, in output order.
pub(crate) const ADJUSTMENT_COLUMNS: [&str; 8] = [
    "customer_id",
    "service_month",
    "prior_payout",
    "current_payout",
    "delta",
    "currency",
    "reason",
    "idempotency_key",
];

pub(crate) fn write_csv(rows: &[Adjustment], out: impl Write) -> anyhow::Result<()> {
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
pub(crate) fn write_parquet(rows: &[Adjustment], out: impl Write) -> anyhow::Result<()> {
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

pub(crate) fn write_totals_csv(
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
