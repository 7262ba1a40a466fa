//! Takes one call file (a local path, or a listed object version whose footer is fetched by
//! range); gives its footer checked against SPEC §2's columns and types, as a [`CallFile`],
//! or its problems.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::io::mmap::MmapBytesReader;
use polars::io::parquet::read::FileMetadata;
use polars::prelude::*;

use super::{columns, CallFile};
use crate::error::{InputError, Location};
use crate::inputs::decode::guarded;
use crate::inputs::problems::Problems;
use crate::inputs::source::object_problem;
use crate::inputs::stamp::ReadAs;
use crate::storage::sparse::SparseObject;
use crate::storage::{ObjectVersion, S3Client, S3Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringColumn {
    RequestId,
    Api,
    Status,
    ErrorCode,
}

/// Reads a file's Parquet footer and checks every required column's type (SPEC §2). Each
/// problem is handed to `problems`; `None` when the file has any. Long because it is one
/// check after another on the same footer, each with its own message; none depends on a
/// later one.
pub(super) fn check_file(
    read: ReadAs,
    shown: PathBuf,
    problems: &mut Problems,
) -> Result<Option<CallFile>, InputError> {
    let location = || Location::file(&shown);
    let footer = match &read {
        ReadAs::File { path, .. } => File::open(path)
            .map_err(|e| InputError::new(location(), format!("cannot open: {e}")))
            .and_then(|file| read_footer(file, &shown)),
        ReadAs::Object { client, version } => fetch_footer(client, version)
            .map_err(|err| object_problem(&shown, err))
            .and_then(|sparse| read_footer(sparse, &shown)),
    };
    let Some((schema, rows, row_groups, metadata)) = problems.check(footer)? else {
        return Ok(None);
    };
    let footer = matches!(read, ReadAs::Object { .. }).then_some(metadata);
    let column = |name: &str| {
        schema.get(name).map(|f| f.dtype.clone()).ok_or_else(|| {
            InputError::new(
                location().column(name),
                "is missing; expected columns request_id, customer_id, ts, api, status, error_code",
            )
        })
    };
    let mut good = true;
    for (name, which) in [
        (columns::REQUEST_ID, StringColumn::RequestId),
        (columns::API, StringColumn::Api),
        (columns::STATUS, StringColumn::Status),
        (columns::ERROR_CODE, StringColumn::ErrorCode),
    ] {
        let checked = column(name).and_then(|dtype| {
            if is_string(&dtype) {
                Ok(())
            } else {
                Err(InputError::new(
                    location().column(name),
                    format!("has type {dtype:?}; expected a string ({which:?})"),
                ))
            }
        });
        good &= problems.check(checked)?.is_some();
    }
    let customer = column(columns::CUSTOMER_ID).and_then(|customer| {
        if customer == ArrowDataType::Int64 {
            Ok(())
        } else {
            Err(InputError::new(
                location().column(columns::CUSTOMER_ID),
                format!("has type {customer:?}; expected int64"),
            )
            .hint("customer ids must be stored as 64-bit integers"))
        }
    });
    good &= problems.check(customer)?.is_some();
    let ts = column(columns::TS).and_then(|ts| match &ts {
        // The unit is the one polars decodes the column into, not the one the file's Arrow
        // schema names: pyarrow writes `timestamp[s]` as a Parquet column in milliseconds, and
        // polars reads any seconds column as milliseconds (SPEC §2: read what is really there).
        ArrowDataType::Timestamp(unit, tz) if tz.as_deref().is_none_or(is_utc) => {
            Ok(match TimeUnit::from(unit) {
                TimeUnit::Milliseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1,
            })
        }
        other => Err(InputError::new(
            location().column(columns::TS),
            format!(
                "has type {other:?}; expected a timestamp (ms, us or ns) in UTC or without zone"
            ),
        )),
    });
    let ts_nanos_per_unit = problems.check(ts)?;
    match (good, ts_nanos_per_unit) {
        (true, Some(ts_nanos_per_unit)) => Ok(Some(CallFile {
            read,
            shown,
            rows,
            row_groups,
            ts_nanos_per_unit,
            footer,
        })),
        _ => Ok(None),
    }
}

/// What a footer says: the schema, the rows, the rows per row group, and the metadata.
type Footer = (Arc<ArrowSchema>, u64, Vec<u64>, Arc<FileMetadata>);

fn read_footer<R: MmapBytesReader>(reader: R, shown: &Path) -> Result<Footer, InputError> {
    let location = || Location::file(shown);
    let corrupt = |e: PolarsError| {
        InputError::new(location(), format!("is not a readable Parquet file: {e}"))
            .hint("the file may be truncated or still being written; re-export it")
    };
    let read = guarded(|| {
        let mut reader = ParquetReader::new(reader);
        let schema = reader.schema()?;
        let rows = reader.num_rows()? as u64;
        let metadata = Arc::clone(reader.get_metadata()?);
        let row_groups: Vec<u64> = metadata
            .row_groups
            .iter()
            .map(|g| g.num_rows() as u64)
            .collect();
        PolarsResult::Ok((schema, rows, row_groups, metadata))
    });
    match read {
        Ok(footer) => footer.map_err(corrupt),
        Err(reason) => Err(InputError::new(
            location(),
            format!("is not a readable Parquet file: the decoder failed ({reason})"),
        )
        .hint("the file may be truncated or still being written; re-export it")),
    }
}

fn is_utc(zone: &str) -> bool {
    matches!(
        zone,
        "UTC" | "utc" | "Etc/UTC" | "+00:00" | "Z" | "GMT" | "Etc/GMT"
    )
}

fn is_string(dtype: &ArrowDataType) -> bool {
    match dtype {
        ArrowDataType::Utf8 | ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View => true,
        ArrowDataType::Dictionary(_, values, _) => is_string(values),
        _ => false,
    }
}

/// An object's footer, fetched by range: a guess at its size first, then the rest if the
/// footer says it is longer.
fn fetch_footer(client: &S3Client, version: &ObjectVersion) -> Result<SparseObject, S3Error> {
    const GUESS_BYTES: u64 = 64 << 10;
    let size = version.size;
    let tail = size.min(GUESS_BYTES);
    let tail_range = size - tail..size;
    let mut ranges = vec![tail_range];
    let mut parts = if tail == 0 {
        Vec::new()
    } else {
        client.get_ranges(version, &ranges)?
    };
    if let Some(last) = parts.first().filter(|p| p.len() >= 8) {
        let length = &last[last.len() - 8..last.len() - 4];
        let needed = u64::from(u32::from_le_bytes(length.try_into().expect("4 bytes"))) + 8;
        if needed > tail && needed <= size {
            let head = size - needed..size - tail;
            parts.extend(client.get_ranges(version, std::slice::from_ref(&head))?);
            ranges.push(head);
        }
    }
    let pairs: Vec<_> = ranges
        .iter()
        .cloned()
        .zip(parts.iter().map(|b| &b[..]))
        .collect();
    SparseObject::new(size, &pairs).map_err(|e| S3Error {
        action: "read",
        url: version.url.to_string(),
        reason: e.to_string(),
        kind: crate::storage::s3_error::S3ErrorKind::Other,
    })
}
