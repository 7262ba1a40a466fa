//! The ledger row (SPEC §7) and its writers: `ledger.csv`, `ledger.parquet`, plus the
//! `exemptions.csv` and `quarantine.csv` side tables.

use std::io::Write;

use anyhow::Context;
use chrono::NaiveDate;
use polars::prelude::*;
use rust_decimal::Decimal;

use crate::policy::Clause;
use crate::quarantine::Entry;
use crate::time::YearMonth;

/// Ledger columns, in SPEC §7 order.
pub const COLUMNS: [&str; 20] = [
    "customer_id",
    "service_month",
    "period_start",
    "period_end",
    "provisional",
    "total_calls",
    "system_errors",
    "exempt_errors",
    "unavailable_calls",
    "availability_pct",
    "tier_rate",
    "currency",
    "monthly_fee",
    "compensation",
    "claim_status",
    "claim_id",
    "claim_opens",
    "claim_deadline",
    "payout",
    "status",
];

/// Decimal scales and precisions of the ledger's decimal columns.
const PCT_SCALE: u32 = 4;
const RATE_SCALE: u32 = 2;
const MONEY_SCALE: u32 = 2;
const PCT_PRECISION: usize = 7; // 100.0000
const RATE_PRECISION: usize = 3; // 0.50
pub const MONEY_PRECISION: usize = 18;

/// How a claim for a month stands (SPEC §6, SLA 3.2), as the ledger's `claim_status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStatus {
    NotDue,
    Pending,
    Valid,
    Open,
    Forfeited,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::NotDue => "not_due",
            ClaimStatus::Pending => "pending",
            ClaimStatus::Valid => "valid",
            ClaimStatus::Open => "open",
            ClaimStatus::Forfeited => "forfeited",
        }
    }
}

/// The priced part of an `ok` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub currency: Option<String>,
    pub monthly_fee: Decimal,
    pub compensation: Decimal,
    pub claim_status: ClaimStatus,
    pub claim_id: Option<String>,
    pub claim_opens: Option<NaiveDate>,
    pub claim_deadline: Option<NaiveDate>,
    pub payout: Decimal,
}

/// A row is either priced (`ok`) or could not be (`error`, SPEC §5), never both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pricing {
    Priced(Priced),
    /// The month's billing is unusable; the row pays nothing.
    Unpriceable {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub customer_id: i64,
    pub service_month: YearMonth,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub provisional: bool,
    pub total_calls: u64,
    pub system_errors: u64,
    pub exempt_errors: u64,
    pub unavailable_calls: u64,
    pub availability_pct: Decimal,
    pub tier_rate: Decimal,
    pub pricing: Pricing,
}

impl LedgerRow {
    pub fn status(&self) -> &'static str {
        match self.pricing {
            Pricing::Priced(_) => "ok",
            Pricing::Unpriceable { .. } => "error",
        }
    }

    pub fn priced(&self) -> Option<&Priced> {
        match &self.pricing {
            Pricing::Priced(priced) => Some(priced),
            Pricing::Unpriceable { .. } => None,
        }
    }

    /// Why the row is an `error` row.
    pub fn error(&self) -> Option<&str> {
        match &self.pricing {
            Pricing::Priced(_) => None,
            Pricing::Unpriceable { error } => Some(error),
        }
    }

    /// What the row pays: 0.00 on an `error` row.
    pub fn payout(&self) -> Decimal {
        self.priced().map_or(Decimal::new(0, 2), |p| p.payout)
    }
}

/// Money as the ledger writes it: two decimals, the scale fixed, never rounded here (amounts
/// are already in cents).
pub fn money(value: Decimal) -> String {
    fixed(value, MONEY_SCALE)
}

/// A decimal at a fixed scale, as text (`0.10`, `100.0000`).
pub fn fixed(value: Decimal, scale: u32) -> String {
    let mut v = value;
    v.rescale(scale);
    v.to_string()
}

fn date_text(date: Option<NaiveDate>) -> String {
    date.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The CSV cells of one row, in [`COLUMNS`] order.
pub fn csv_cells(row: &LedgerRow) -> Vec<String> {
    let priced = row.priced();
    vec![
        row.customer_id.to_string(),
        row.service_month.to_string(),
        date_text(Some(row.period_start)),
        date_text(Some(row.period_end)),
        row.provisional.to_string(),
        row.total_calls.to_string(),
        row.system_errors.to_string(),
        row.exempt_errors.to_string(),
        row.unavailable_calls.to_string(),
        fixed(row.availability_pct, PCT_SCALE),
        fixed(row.tier_rate, RATE_SCALE),
        priced.and_then(|p| p.currency.clone()).unwrap_or_default(),
        priced
            .map(|p| fixed(p.monthly_fee, MONEY_SCALE))
            .unwrap_or_default(),
        priced
            .map(|p| fixed(p.compensation, MONEY_SCALE))
            .unwrap_or_default(),
        priced
            .map(|p| p.claim_status.as_str().to_string())
            .unwrap_or_default(),
        priced.and_then(|p| p.claim_id.clone()).unwrap_or_default(),
        date_text(priced.and_then(|p| p.claim_opens)),
        date_text(priced.and_then(|p| p.claim_deadline)),
        fixed(row.payout(), MONEY_SCALE),
        row.status().to_string(),
    ]
}

/// One row as the line `ledger.csv` holds for it, without the line end.
pub fn csv_line(row: &LedgerRow) -> anyhow::Result<String> {
    let mut line = Vec::new();
    write_csv_rows(std::slice::from_ref(row), &mut line)?;
    let text = String::from_utf8(line)?;
    Ok(text.trim_end_matches('\n').to_string())
}

pub fn write_csv(rows: &[LedgerRow], mut out: impl Write) -> anyhow::Result<()> {
    let mut header = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(&mut out);
    header.write_record(COLUMNS)?;
    header.flush()?;
    drop(header);
    write_csv_rows(rows, out)
}

/// The rows of `ledger.csv`, without its header.
fn write_csv_rows(rows: &[LedgerRow], out: impl Write) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    for row in rows {
        writer.write_record(csv_cells(row))?;
    }
    writer.flush()?;
    Ok(())
}

pub fn decimal_column(
    name: &str,
    values: Vec<Option<Decimal>>,
    precision: usize,
    scale: u32,
) -> PolarsResult<Column> {
    let mantissas = values.into_iter().map(|v| {
        v.map(|mut d| {
            d.rescale(scale);
            d.mantissa()
        })
    });
    let chunked = Int128Chunked::from_iter_options(name.into(), mantissas);
    Ok(chunked
        .into_decimal(precision, scale as usize)?
        .into_series()
        .into())
}

fn date_column(
    name: &str,
    values: impl Iterator<Item = Option<NaiveDate>>,
) -> PolarsResult<Column> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let days = values.map(|d| d.map(|d| (d - epoch).num_days() as i32));
    Ok(Int32Chunked::from_iter_options(name.into(), days)
        .into_date()
        .into_series()
        .into())
}

/// The ledger as a polars frame with SPEC §7 Parquet types: int64, string, date32, boolean,
/// decimal128 for percentages, rates and money. Long because it is one column per ledger
/// column, in `COLUMNS` order, each a line or two: splitting it would hide that order.
pub fn to_frame(rows: &[LedgerRow]) -> PolarsResult<DataFrame> {
    let priced = |f: &dyn Fn(&Priced) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|r| r.priced().and_then(f)).collect()
    };
    let count =
        |f: fn(&LedgerRow) -> u64| -> Vec<i64> { rows.iter().map(|r| f(r) as i64).collect() };
    let columns = vec![
        Column::new(
            COLUMNS[0].into(),
            rows.iter().map(|r| r.customer_id).collect::<Vec<_>>(),
        ),
        Column::new(
            COLUMNS[1].into(),
            rows.iter()
                .map(|r| r.service_month.to_string())
                .collect::<Vec<_>>(),
        ),
        date_column(COLUMNS[2], rows.iter().map(|r| Some(r.period_start)))?,
        date_column(COLUMNS[3], rows.iter().map(|r| Some(r.period_end)))?,
        Column::new(
            COLUMNS[4].into(),
            rows.iter().map(|r| r.provisional).collect::<Vec<_>>(),
        ),
        Column::new(COLUMNS[5].into(), count(|r| r.total_calls)),
        Column::new(COLUMNS[6].into(), count(|r| r.system_errors)),
        Column::new(COLUMNS[7].into(), count(|r| r.exempt_errors)),
        Column::new(COLUMNS[8].into(), count(|r| r.unavailable_calls)),
        decimal_column(
            COLUMNS[9],
            rows.iter().map(|r| Some(r.availability_pct)).collect(),
            PCT_PRECISION,
            PCT_SCALE,
        )?,
        decimal_column(
            COLUMNS[10],
            rows.iter().map(|r| Some(r.tier_rate)).collect(),
            RATE_PRECISION,
            RATE_SCALE,
        )?,
        Column::new(COLUMNS[11].into(), priced(&|p| p.currency.clone())),
        decimal_column(
            COLUMNS[12],
            rows.iter()
                .map(|r| r.priced().map(|p| p.monthly_fee))
                .collect(),
            MONEY_PRECISION,
            MONEY_SCALE,
        )?,
        decimal_column(
            COLUMNS[13],
            rows.iter()
                .map(|r| r.priced().map(|p| p.compensation))
                .collect(),
            MONEY_PRECISION,
            MONEY_SCALE,
        )?,
        Column::new(
            COLUMNS[14].into(),
            priced(&|p| Some(p.claim_status.as_str().to_string())),
        ),
        Column::new(COLUMNS[15].into(), priced(&|p| p.claim_id.clone())),
        date_column(
            COLUMNS[16],
            rows.iter().map(|r| r.priced().and_then(|p| p.claim_opens)),
        )?,
        date_column(
            COLUMNS[17],
            rows.iter()
                .map(|r| r.priced().and_then(|p| p.claim_deadline)),
        )?,
        decimal_column(
            COLUMNS[18],
            rows.iter().map(|r| Some(r.payout())).collect(),
            MONEY_PRECISION,
            MONEY_SCALE,
        )?,
        Column::new(
            COLUMNS[19].into(),
            rows.iter().map(|r| r.status()).collect::<Vec<_>>(),
        ),
    ];
    DataFrame::new(rows.len(), columns)
}

pub fn write_parquet(rows: &[LedgerRow], out: impl Write) -> anyhow::Result<()> {
    write_frame_parquet(&mut to_frame(rows)?, out)
}

/// Writes an output table as Parquet (zstd, full statistics) that every reader takes as it
/// is: its Arrow schema (the file's `ARROW:schema` metadata) declares strings as plain UTF-8.
/// polars holds strings as views and would declare `string_view`, which readers built on
/// older Arrow versions refuse or take as binary. The column data is the same either way
/// (Parquet `BYTE_ARRAY` with the `STRING` logical type); only the declaration changes.
/// Every Parquet output (ledger, adjustments, journal export) is written here.
pub fn write_frame_parquet(frame: &mut DataFrame, out: impl Write) -> anyhow::Result<()> {
    let mut schema = frame.schema().to_arrow(CompatLevel::newest());
    for field in schema.iter_values_mut() {
        field.dtype = plain_strings(&field.dtype)?;
    }
    let declared = polars_parquet::write::schema_to_metadata_key(&schema);
    let value = declared
        .value
        .context("the Arrow schema of a Parquet output serialises to a value")?;
    ParquetWriter::new(out)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
            declared.key,
            value,
        )])))
        .finish(frame)?;
    Ok(())
}

/// One line of `exemptions.csv`: the calls of a service month a clause exempted. Ordered by
/// customer, month and clause number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExemptionCount {
    pub customer_id: i64,
    pub service_month: YearMonth,
    pub clause: Clause,
    pub calls: u64,
}

/// `dtype` with string and binary views declared as plain UTF-8 and binary. Output tables are
/// flat; a nested type is refused rather than declared half-converted.
fn plain_strings(dtype: &ArrowDataType) -> anyhow::Result<ArrowDataType> {
    Ok(match dtype {
        ArrowDataType::Utf8View => ArrowDataType::Utf8,
        ArrowDataType::BinaryView => ArrowDataType::Binary,
        nested if nested.is_nested() => {
            anyhow::bail!("internal: an output table has a nested column of type {nested:?}")
        }
        other => other.clone(),
    })
}

/// `exemptions.csv`: `customer_id,service_month,clause,calls`, non-zero counts, ordered by
/// customer, month and clause number.
pub fn write_exemptions(rows: &[ExemptionCount], out: impl Write) -> anyhow::Result<()> {
    let mut sorted = rows.to_vec();
    sorted.sort();
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(["customer_id", "service_month", "clause", "calls"])?;
    for row in sorted.into_iter().filter(|r| r.calls > 0) {
        writer.write_record([
            row.customer_id.to_string(),
            row.service_month.to_string(),
            row.clause.to_string(),
            row.calls.to_string(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}

/// `quarantine.csv`: `source,row,reason,detail`, sorted.
pub fn write_quarantine(entries: &[Entry], out: impl Write) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    writer.write_record(["source", "row", "reason", "detail"])?;
    for e in entries {
        writer.write_record([
            e.source.clone(),
            e.row.map(|r| r.to_string()).unwrap_or_default(),
            e.reason.as_str().to_string(),
            e.detail.clone(),
        ])?;
    }
    writer.flush()?;
    Ok(())
}
