//! `calls/` — every `*.parquet` file below it, recursively (SPEC §2). Required.
//!
//! Takes the data directory; gives the list of call files, each with its schema checked and its
//! row groups known, cut into chunks that [`CallFiles::read_chunk`] decodes with polars into one
//! normalised schema (see [`columns`]).
//! Partition folder names are ignored: months are computed from `ts`, never from paths.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::io::mmap::MmapBytesReader;
use polars::io::parquet::read::FileMetadata;
use polars::prelude::*;

use crate::error::{InputError, Location};
use crate::inputs::decode::guarded;
use crate::inputs::problems::Problems;
use crate::inputs::source::{object_problem, DataSource};
use crate::inputs::stamp::{FileStamp, InputFile, ReadAs};
use crate::storage::sparse::SparseObject;
use crate::storage::{ObjectVersion, S3Client, S3Error};

/// Column names of the call logs and of a chunk as [`CallFiles::read_chunk`] gives it.
pub mod columns {
    pub const REQUEST_ID: &str = "request_id";
    pub const CUSTOMER_ID: &str = "customer_id";
    /// UTC nanoseconds since the epoch, `Int64`, whatever the file's unit.
    pub const TS: &str = "ts";
    pub const API: &str = "api";
    pub const STATUS: &str = "status";
    pub const ERROR_CODE: &str = "error_code";
}

/// The three statuses a call can have (SPEC §2).
pub const STATUSES: [&str; 3] = ["success", "client_error", "system_error"];
pub const SYSTEM_ERROR: &str = "system_error";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringColumn {
    RequestId,
    Api,
    Status,
    ErrorCode,
}

/// One call-log file and the unit of its `ts` column.
#[derive(Debug, Clone)]
pub struct CallFile {
    /// The file and its stamp, or the object version, as they were before the footer was read;
    /// the manifest checks it is unchanged.
    pub read: ReadAs,
    /// The path relative to the data directory, as reported to users.
    pub shown: PathBuf,
    pub rows: u64,
    /// Rows per row group, in file order.
    pub row_groups: Vec<u64>,
    ts_nanos_per_unit: i64,
    /// An object's footer, fetched once; a local file's is read again with each chunk.
    footer: Option<Arc<FileMetadata>>,
}

impl CallFile {
    /// Its size in bytes when found.
    pub fn bytes(&self) -> u64 {
        match &self.read {
            ReadAs::File { stamp, .. } => stamp.bytes,
            ReadAs::Object { version, .. } => version.size,
        }
    }
}

/// A run of whole row groups of one file: the unit of parallel reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub file: u32,
    /// First row (0-based) and number of rows.
    pub offset: u64,
    pub rows: u64,
}

/// Rows a chunk aims for; whole row groups are never split.
pub const CHUNK_ROWS: u64 = 1 << 17;

#[derive(Debug, Clone)]
pub struct CallFiles {
    /// Sorted by their path relative to the data directory.
    pub files: Vec<CallFile>,
}

impl CallFiles {
    /// Finds and checks every call file, handing each problem to `problems`; files with a
    /// problem are left out.
    pub fn discover_with(
        source: &DataSource,
        problems: &mut Problems,
    ) -> Result<CallFiles, InputError> {
        let data_dir = match source {
            DataSource::Folder(dir) => dir,
            DataSource::Objects(client) => return CallFiles::list_objects(client, problems),
        };
        let none = CallFiles { files: Vec::new() };
        let root = data_dir.join("calls");
        if !root.is_dir() {
            problems.report(
                InputError::new(
                    Location::file("calls/"),
                    format!(
                        "is missing from the data directory `{}`; it is required",
                        crate::paths::shown(data_dir)
                    ),
                )
                .hint("put the call logs as Parquet files under `calls/` (any folder layout)"),
            )?;
            return Ok(none);
        }
        let mut walk = Walk::default();
        walk.folder(&root, data_dir, problems)?;
        let paths = walk.files;
        if paths.is_empty() {
            problems.report(
                InputError::new(
                    Location::file("calls/"),
                    "holds no `*.parquet` file; expected at least one",
                )
                .hint("call logs must be Parquet files; CSV call logs are not read"),
            )?;
            return Ok(none);
        }
        // Checked in path order, so the first problem reported is the same on every machine.
        let mut files = Vec::with_capacity(paths.len());
        for (path, stamp) in paths {
            let shown = path.strip_prefix(data_dir).unwrap_or(&path).to_path_buf();
            if let Some(file) = check_file(ReadAs::File { path, stamp }, shown, problems)? {
                files.push(file);
            }
        }
        files.sort_by(|a, b| a.shown.cmp(&b.shown));
        Ok(CallFiles { files })
    }

    /// As [`CallFiles::discover_with`] for an S3 prefix: every object under `calls/` whose
    /// name ends in `.parquet`, listed page by page, each footer fetched by range.
    fn list_objects(
        client: &Arc<S3Client>,
        problems: &mut Problems,
    ) -> Result<CallFiles, InputError> {
        let none = CallFiles { files: Vec::new() };
        let listed = match client.list("calls") {
            Ok(listed) => listed,
            Err(err) => {
                problems.report(object_problem("calls/", err))?;
                return Ok(none);
            }
        };
        if listed.is_empty() {
            problems.report(
                InputError::new(
                    Location::file("calls/"),
                    format!(
                        "is missing from the data directory `{}`; it is required",
                        client.root()
                    ),
                )
                .hint("put the call logs as Parquet objects under `calls/` (any key layout)"),
            )?;
            return Ok(none);
        }
        let parquet: Vec<_> = listed
            .into_iter()
            .filter(|(name, _)| name.ends_with(".parquet") && !name.ends_with("/.parquet"))
            .collect();
        if parquet.is_empty() {
            problems.report(
                InputError::new(
                    Location::file("calls/"),
                    "holds no `*.parquet` object; expected at least one",
                )
                .hint("call logs must be Parquet files; CSV call logs are not read"),
            )?;
            return Ok(none);
        }
        let mut files = Vec::with_capacity(parquet.len());
        for (name, version) in parquet {
            let read = ReadAs::Object {
                client: Arc::clone(client),
                version,
            };
            if let Some(file) = check_file(read, PathBuf::from(name), problems)? {
                files.push(file);
            }
        }
        files.sort_by(|a, b| a.shown.cmp(&b.shown));
        Ok(CallFiles { files })
    }

    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Every call file as an input of the run, with the stamp it had when first opened.
    pub fn inputs(&self) -> impl Iterator<Item = InputFile> + '_ {
        self.files.iter().map(|f| InputFile {
            shown: f.shown.display().to_string(),
            read: f.read.clone(),
        })
    }

    /// Every file cut into chunks of whole row groups, about [`CHUNK_ROWS`] rows each.
    pub fn chunks(&self) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for (index, file) in self.files.iter().enumerate() {
            let mut offset = 0;
            let mut rows = 0;
            for &group in &file.row_groups {
                rows += group;
                if rows >= CHUNK_ROWS {
                    chunks.push(Chunk {
                        file: index as u32,
                        offset,
                        rows,
                    });
                    offset += rows;
                    rows = 0;
                }
            }
            if rows > 0 {
                chunks.push(Chunk {
                    file: index as u32,
                    offset,
                    rows,
                });
            }
        }
        chunks
    }

    /// Reads one chunk's six columns: strings as `String`, `customer_id` as `Int64`, `ts` as
    /// `Int64` UTC nanoseconds (saturating far outside the years 1678–2261). The frame holds
    /// exactly `chunk.rows` rows; a footer whose row count is not that of its row groups, or a
    /// decode that fails, panics or gives another number of rows, is an error naming the file
    /// and the rows.
    pub fn read_chunk(&self, chunk: Chunk) -> Result<DataFrame, InputError> {
        use columns::*;
        let file = &self.files[chunk.file as usize];
        let rows = format!("rows {}..{}", chunk.offset + 1, chunk.offset + chunk.rows);
        let failed = |problem: String| {
            InputError::new(
                Location::file(&file.shown),
                format!("cannot read {rows}: {problem}"),
            )
        };
        let metadata_hint = "the file's metadata does not match its data; re-export it";
        // Rows are numbered by the row groups' counts; a file count that differs would make
        // the row accounting (read = quarantined + duplicates + counted + ...) not add up.
        let group_rows: u64 = file.row_groups.iter().sum();
        if group_rows != file.rows {
            return Err(failed(format!(
                "the file's footer counts {} rows, its row groups {group_rows}",
                file.rows
            ))
            .hint(metadata_hint));
        }
        // An object's column chunks of these rows are fetched first, by range.
        let fetched = match (&file.read, &file.footer) {
            (ReadAs::Object { client, version }, Some(footer)) => {
                let ranges = chunk_byte_ranges(footer, &file.row_groups, chunk);
                let fetched = client
                    .get_ranges(version, &ranges)
                    .map_err(|err| object_problem(&file.shown, err))?;
                let pairs: Vec<_> = ranges
                    .iter()
                    .cloned()
                    .zip(fetched.iter().map(|b| &b[..]))
                    .collect();
                let sparse = SparseObject::new(version.size, &pairs)
                    .map_err(|e| failed(e.to_string()).hint(metadata_hint))?;
                Some((sparse, Arc::clone(footer)))
            }
            _ => None,
        };
        let decode = || -> PolarsResult<DataFrame> {
            let frame = match fetched {
                Some((sparse, footer)) => {
                    let mut reader = ParquetReader::new(sparse);
                    reader.set_metadata(footer);
                    project(reader, chunk)?
                }
                None => match &file.read {
                    ReadAs::File { path, .. } => {
                        project(ParquetReader::new(File::open(path)?), chunk)?
                    }
                    ReadAs::Object { .. } => {
                        polars_bail!(ComputeError: "the object's footer was not kept")
                    }
                },
            };
            let text = |name: &str| -> PolarsResult<Column> {
                frame.column(name)?.cast(&DataType::String)
            };
            let raw_ts = frame.column(TS)?.cast(&DataType::Int64)?;
            let factor = file.ts_nanos_per_unit;
            let ts: Int64Chunked = raw_ts
                .i64()?
                .iter()
                .map(|v| {
                    v.map(|t| {
                        t.checked_mul(factor)
                            .unwrap_or(if t > 0 { i64::MAX } else { i64::MIN })
                    })
                })
                .collect();
            DataFrame::new(
                frame.height(),
                vec![
                    text(REQUEST_ID)?,
                    frame.column(CUSTOMER_ID)?.clone(),
                    ts.with_name(TS.into()).into_series().into(),
                    text(API)?,
                    text(STATUS)?,
                    text(ERROR_CODE)?,
                ],
            )
        };
        let frame = match guarded(decode) {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => {
                return Err(failed(e.to_string())
                    .hint("the file may be truncated or corrupt; re-export it"))
            }
            Err(reason) => {
                return Err(failed(format!("the Parquet decoder failed ({reason})"))
                    .hint("the file is corrupt; re-export it"));
            }
        };
        if frame.height() as u64 != chunk.rows {
            return Err(failed(format!(
                "they decode to {} rows; the file's footer says {}",
                frame.height(),
                chunk.rows
            ))
            .hint(metadata_hint));
        }
        Ok(frame)
    }
}

/// The six columns of `chunk`'s rows, as polars decodes them.
fn project<R: MmapBytesReader>(reader: ParquetReader<R>, chunk: Chunk) -> PolarsResult<DataFrame> {
    use columns::*;
    reader
        .with_columns(Some(
            [REQUEST_ID, CUSTOMER_ID, TS, API, STATUS, ERROR_CODE]
                .map(String::from)
                .to_vec(),
        ))
        .with_slice(Some((chunk.offset as usize, chunk.rows as usize)))
        .read_parallel(ParallelStrategy::None)
        .set_rechunk(true)
        .finish()
}

/// The byte ranges of the six columns in the row groups that hold `chunk`'s rows: what an
/// object's read fetches.
fn chunk_byte_ranges(footer: &FileMetadata, row_groups: &[u64], chunk: Chunk) -> Vec<Range<u64>> {
    use columns::*;
    let mut ranges = Vec::new();
    let mut first_row = 0u64;
    for (group, &rows) in footer.row_groups.iter().zip(row_groups) {
        let holds = first_row < chunk.offset + chunk.rows && chunk.offset < first_row + rows;
        first_row += rows;
        if !holds {
            continue;
        }
        for name in [REQUEST_ID, CUSTOMER_ID, TS, API, STATUS, ERROR_CODE] {
            if let Some(columns) = group.columns_under_root_iter(name) {
                ranges.extend(columns.map(|c| c.byte_range()));
            }
        }
    }
    ranges
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
        kind: crate::storage::s3::S3ErrorKind::Other,
    })
}

/// The walk of `calls/`: every `*.parquet` file below it, each read once.
///
/// Symlinks are followed, to files and to folders alike, but every folder is listed once and
/// every file kept once, by device and inode: a link back into `calls/` (or to a folder seen
/// under another name) is passed over, so a loop ends and no call is counted twice. A file
/// reached by two paths is kept under the first in path order. Entries are visited in name
/// order, so what is kept is the same on every machine. Anything at a `*.parquet` path that is
/// not a regular file, and any link that leads nowhere, is an error: it is either an input the
/// run would miss or one it cannot read (a fifo would block the run).
#[derive(Default)]
struct Walk {
    folders_seen: std::collections::HashSet<(u64, u64)>,
    files_seen: std::collections::HashSet<(u64, u64)>,
    /// Files kept, with the stamp taken when they were found, in path order once walked.
    files: Vec<(PathBuf, FileStamp)>,
}

impl Walk {
    fn folder(
        &mut self,
        dir: &Path,
        data_dir: &Path,
        problems: &mut Problems,
    ) -> Result<(), InputError> {
        let shown =
            |path: &Path| Location::file(path.strip_prefix(data_dir).unwrap_or(path).to_path_buf());
        let identity = match std::fs::metadata(dir) {
            Ok(meta) => FileStamp::from_metadata(&meta).identity(),
            Err(e) => {
                return problems.report(InputError::new(shown(dir), format!("cannot be read: {e}")))
            }
        };
        if !self.folders_seen.insert(identity) {
            return Ok(());
        }
        let listed = std::fs::read_dir(dir).and_then(|entries| {
            let mut paths = entries
                .map(|entry| entry.map(|e| e.path()))
                .collect::<std::io::Result<Vec<PathBuf>>>()?;
            paths.sort();
            Ok(paths)
        });
        let paths = match listed {
            Ok(paths) => paths,
            Err(e) => {
                return problems.report(InputError::new(
                    shown(dir),
                    format!("cannot be listed: {e}"),
                ))
            }
        };
        for path in paths {
            let is_parquet = path.extension().is_some_and(|e| e == "parquet");
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    let dangling = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
                    let problem = if dangling {
                        "is a symlink to nothing (dangling); expected a folder or a Parquet file"
                            .to_string()
                    } else {
                        format!("cannot be read: {e}")
                    };
                    problems
                        .report(InputError::new(shown(&path), problem).hint(
                            "every entry under `calls/` must be readable: fix or remove it",
                        ))?;
                    continue;
                }
            };
            if meta.is_dir() {
                self.folder(&path, data_dir, problems)?;
            } else if is_parquet && !meta.is_file() {
                problems.report(
                    InputError::new(
                        shown(&path),
                        "is not a regular file; expected a Parquet file",
                    )
                    .hint("a call file must be a regular file (a symlink to one is followed)"),
                )?;
            } else if is_parquet {
                let stamp = FileStamp::from_metadata(&meta);
                if self.files_seen.insert(stamp.identity()) {
                    self.files.push((path, stamp));
                }
            }
        }
        Ok(())
    }
}

/// Reads a file's Parquet footer and checks every required column's type (SPEC §2). Each
/// problem is handed to `problems`; `None` when the file has any. Long because it is one
/// check after another on the same footer, each with its own message; none depends on a
/// later one.
fn check_file(
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
