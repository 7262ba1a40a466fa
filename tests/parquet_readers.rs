//! The Parquet outputs read by a reader other than polars (the Apache Arrow `parquet` crate):
//! the Arrow schema each file declares (its `ARROW:schema` metadata) names strings as plain
//! UTF-8, never `string_view`, and every cell reads back as the CSV written beside it says.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::parquet_to_arrow_schema;

use crate::support::*;

/// The Arrow schema `path` declares, as the `parquet` crate decodes it from the file's
/// `ARROW:schema` metadata (which must be there: without it a reader would infer the types
/// from the Parquet schema and this check would prove nothing).
fn declared_schema(path: &Path) -> Schema {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let file = builder.metadata().file_metadata();
    let metadata = file.key_value_metadata();
    assert!(
        metadata.is_some_and(|kv| kv.iter().any(|kv| kv.key == "ARROW:schema")),
        "{} declares no Arrow schema",
        path.display()
    );
    let schema = parquet_to_arrow_schema(file.schema_descr(), metadata).unwrap();
    assert_eq!(
        &schema.fields,
        builder.schema().fields(),
        "the reader builder takes the declared schema"
    );
    schema
}

/// Asserts that exactly `strings` are string columns, each declared as plain `Utf8`.
fn assert_plain_utf8(path: &Path, strings: &[&str]) {
    let schema = declared_schema(path);
    for field in schema.fields() {
        let name = field.name().as_str();
        let expected_string = strings.contains(&name);
        match field.data_type() {
            DataType::Utf8 => assert!(expected_string, "`{name}` is a string column"),
            other => assert!(
                !expected_string
                    && !matches!(
                        other,
                        DataType::Utf8View
                            | DataType::LargeUtf8
                            | DataType::BinaryView
                            | DataType::Binary
                            | DataType::LargeBinary
                    ),
                "{}: `{name}` is declared as {other}, not Utf8",
                path.display()
            ),
        }
    }
}

/// One cell as the CSV writers write it: decimals at their scale, dates ISO, null empty.
fn cell(array: &dyn Array, row: usize) -> String {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Decimal128Type, Int64Type, UInt64Type};
    if array.is_null(row) {
        return String::new();
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).to_string(),
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            (epoch + chrono::Duration::days(i64::from(days))).to_string()
        }
        DataType::Decimal128(_, scale) => {
            let mantissa = array.as_primitive::<Decimal128Type>().value(row);
            rust_decimal::Decimal::from_i128_with_scale(mantissa, u32::try_from(*scale).unwrap())
                .to_string()
        }
        other => panic!("an output column of unexpected type {other}"),
    }
}

/// Every row of `path` read with the Arrow reader, as CSV cells, with the column names.
fn arrow_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|column| cell(column.as_ref(), row))
                    .collect(),
            );
        }
    }
    (names, rows)
}

/// Asserts that `parquet` reads back, column by column and row by row, as `csv` does.
fn assert_reads_as_csv(parquet: &Path, csv: &Path) -> usize {
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let expected: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    let (names, rows) = arrow_rows(parquet);
    assert_eq!(names, header, "{}", parquet.display());
    for (i, (parquet_row, csv_row)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(parquet_row, csv_row, "{} row {}", parquet.display(), i + 1);
    }
    assert_eq!(rows.len(), expected.len(), "{}", parquet.display());
    rows.len()
}

#[test]
fn spec_7_ledger_parquet_declares_plain_utf8_strings_and_reads_as_the_csv() {
    let dir = TempDir::new("parquet-readers");
    let out = dir.join("out");
    assert_success(&run_job("jobs/month-end.toml", &out, &[]));
    let parquet = out.join("ledger.parquet");
    assert_plain_utf8(
        &parquet,
        &[
            "service_month",
            "currency",
            "claim_status",
            "claim_id",
            "status",
        ],
    );
    let declared: BTreeMap<String, DataType> = declared_schema(&parquet)
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    for (name, dtype) in [
        ("customer_id", DataType::Int64),
        ("period_start", DataType::Date32),
        ("provisional", DataType::Boolean),
        ("total_calls", DataType::Int64),
        ("availability_pct", DataType::Decimal128(7, 4)),
        ("tier_rate", DataType::Decimal128(3, 2)),
        ("monthly_fee", DataType::Decimal128(18, 2)),
        ("payout", DataType::Decimal128(18, 2)),
        ("claim_deadline", DataType::Date32),
    ] {
        assert_eq!(declared.get(name), Some(&dtype), "column {name}");
    }
    let rows = assert_reads_as_csv(&parquet, &out.join("ledger.csv"));
    assert_eq!(rows, 120, "the sample data's month-end ledger");
}

#[test]
fn adjustments_and_journal_export_parquet_declare_plain_utf8_strings_too() {
    let dir = TempDir::new("parquet-readers-diff");
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    // Before the claim windows open nothing is paid; by the end of April two claims are valid.
    let early = dir.join("early");
    let late = dir.join("late");
    assert_success(&run_ledger(&data, &early, "2026-01", "2026-02-10", &[]));
    assert_success(&run_ledger(&data, &late, "2026-01", "2026-04-30", &[]));
    let adjustments = dir.join("adjustments");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let diff = [
        "diff",
        "--prior",
        &path(&early),
        "--current",
        &path(&late),
        "--out",
        &path(&adjustments),
    ];
    assert_success(&sla_ledger(&repo_root(), &diff));
    let parquet = adjustments.join("adjustments.parquet");
    assert_plain_utf8(
        &parquet,
        &["service_month", "currency", "reason", "idempotency_key"],
    );
    let rows = assert_reads_as_csv(&parquet, &adjustments.join("adjustments.csv"));
    assert!(rows > 0, "the diff has entries to read back");

    let journal = dir.join("payouts.db");
    let post = ["post", "--journal", &path(&journal), "--run", &path(&late)];
    assert_success(&sla_ledger(&repo_root(), &post));
    let export = dir.join("export");
    let args = [
        "journal",
        "export",
        "--journal",
        &path(&journal),
        "--since",
        "1",
        "--out",
        &path(&export),
    ];
    assert_success(&sla_ledger(&repo_root(), &args));
    let parquet = export.join("entries.parquet");
    assert_plain_utf8(
        &parquet,
        &["service_month", "currency", "reason", "idempotency_key"],
    );
    let rows = assert_reads_as_csv(&parquet, &export.join("entries.csv"));
    assert_eq!(rows, 2, "the golden case pays two customers");
}
