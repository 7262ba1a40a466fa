//! One month's `calls/month=M/` partition: call rows in, three Parquet files out.
//!
//! Each file has its own `ts` unit (ms and us in UTC, ns without a zone) and is written in
//! row groups of at most [`CHUNK_ROWS`] rows, so memory stays bounded at any size.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use polars::prelude::*;

/// Nanoseconds in a millisecond, the coarsest `ts` unit written.
pub(super) const MILLIS: i64 = 1_000_000;

/// Rows held in memory per output file before they are flushed as a row group.
const CHUNK_ROWS: usize = 250_000;

/// One call row as written.
#[derive(Clone)]
pub(super) struct Call {
    pub(super) request_id: Option<String>,
    pub(super) customer_id: Option<i64>,
    pub(super) ts: Option<i64>,
    pub(super) api: Option<&'static str>,
    pub(super) status: Option<&'static str>,
    pub(super) error_code: Option<&'static str>,
}

/// One Parquet file being written in row groups, with its `ts` unit.
struct PartWriter {
    writer: polars::io::parquet::write::BatchedWriter<BufWriter<File>>,
    unit: TimeUnit,
    zone: Option<TimeZone>,
    buffer: Vec<Call>,
    rows: u64,
}

impl PartWriter {
    fn create(path: &Path, unit: TimeUnit, zone: Option<TimeZone>) -> anyhow::Result<PartWriter> {
        let file = BufWriter::new(
            File::create(path)
                .with_context(|| format!("cannot create `{}`", crate::paths::shown(path)))?,
        );
        let schema = Schema::from_iter([
            Field::new("request_id".into(), DataType::String),
            Field::new("customer_id".into(), DataType::Int64),
            Field::new("ts".into(), DataType::Datetime(unit, zone.clone())),
            Field::new("api".into(), DataType::String),
            Field::new("status".into(), DataType::String),
            Field::new("error_code".into(), DataType::String),
        ]);
        let writer = ParquetWriter::new(file).batched(&schema)?;
        Ok(PartWriter {
            writer,
            unit,
            zone,
            buffer: Vec::with_capacity(CHUNK_ROWS),
            rows: 0,
        })
    }

    fn push(&mut self, call: Call) -> anyhow::Result<()> {
        self.buffer.push(call);
        if self.buffer.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let per_unit = match self.unit {
            TimeUnit::Milliseconds => MILLIS,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Nanoseconds => 1,
        };
        let rows = std::mem::take(&mut self.buffer);
        let ts = Int64Chunked::from_iter_options(
            "ts".into(),
            rows.iter().map(|c| c.ts.map(|t| t / per_unit)),
        )
        .into_datetime(self.unit, self.zone.clone());
        let frame = DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "request_id".into(),
                    rows.iter()
                        .map(|c| c.request_id.as_deref())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "customer_id".into(),
                    rows.iter().map(|c| c.customer_id).collect::<Vec<_>>(),
                ),
                ts.into_series().into(),
                Column::new("api".into(), rows.iter().map(|c| c.api).collect::<Vec<_>>()),
                Column::new(
                    "status".into(),
                    rows.iter().map(|c| c.status).collect::<Vec<_>>(),
                ),
                Column::new(
                    "error_code".into(),
                    rows.iter().map(|c| c.error_code).collect::<Vec<_>>(),
                ),
            ],
        )?;
        self.rows += rows.len() as u64;
        self.writer.write_batch(&frame)?;
        self.buffer = rows;
        self.buffer.clear();
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        self.writer.finish()?;
        Ok(self.rows)
    }
}

/// The three files of one month partition, one per `ts` unit; rows are dealt round robin.
pub(super) struct Partition {
    parts: Vec<PartWriter>,
    next: usize,
}

impl Partition {
    pub(super) fn create(dir: &Path) -> anyhow::Result<Partition> {
        fs::create_dir_all(dir)?;
        let parts = vec![
            PartWriter::create(
                &dir.join("part-000.parquet"),
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            )?,
            PartWriter::create(
                &dir.join("part-001.parquet"),
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            )?,
            PartWriter::create(&dir.join("part-002.parquet"), TimeUnit::Nanoseconds, None)?,
        ];
        Ok(Partition { parts, next: 0 })
    }

    pub(super) fn push(&mut self, call: Call) -> anyhow::Result<()> {
        let index = self.next;
        self.next = (self.next + 1) % self.parts.len();
        self.parts[index].push(call)
    }

    /// Writes the same row again into another file: a duplicate delivery.
    pub(super) fn push_duplicate(&mut self, call: Call) -> anyhow::Result<()> {
        let index = (self.next + 1) % self.parts.len();
        self.parts[index].push(call)
    }

    /// Writes into the nanosecond file, where sub-millisecond instants survive.
    pub(super) fn push_precise(&mut self, call: Call) -> anyhow::Result<()> {
        self.parts[2].push(call)
    }

    pub(super) fn finish(self) -> anyhow::Result<u64> {
        self.parts.into_iter().map(PartWriter::finish).sum()
    }
}
