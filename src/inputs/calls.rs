//! `calls/` — every `*.parquet` file below it, recursively (SPEC §2). Required.
//!
//! Takes the data directory; gives the list of call files, each with its schema checked and its
//! row groups known, cut into chunks that [`CallFiles::read_chunk`] decodes with polars into one
//! normalised schema (see [`columns`]).
//! Partition folder names are ignored: months are computed from `ts`, never from paths.
//! `footer.rs` checks each file's footer.

mod footer;

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
use crate::storage::S3Client;

use footer::check_file;

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

const METADATA_HINT: &str = "the file's metadata does not match its data; re-export it";

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
        let file = &self.files[chunk.file as usize];
        let rows = format!("rows {}..{}", chunk.offset + 1, chunk.offset + chunk.rows);
        let failed = |problem: String| {
            InputError::new(
                Location::file(&file.shown),
                format!("cannot read {rows}: {problem}"),
            )
        };
        // Rows are numbered by the row groups' counts; a file count that differs would make
        // the row accounting (read = quarantined + duplicates + counted + ...) not add up.
        let group_rows: u64 = file.row_groups.iter().sum();
        if group_rows != file.rows {
            return Err(failed(format!(
                "the file's footer counts {} rows, its row groups {group_rows}",
                file.rows
            ))
            .hint(METADATA_HINT));
        }
        // An object's column chunks of these rows are fetched first, by range.
        let fetched = fetch_chunk(file, chunk, &failed)?;
        let decode = || -> PolarsResult<DataFrame> {
            let frame = match fetched {
                Some((sparse, footer, rows)) => {
                    let mut reader = ParquetReader::new(sparse);
                    reader.set_metadata(footer);
                    project(reader, rows)?
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
            normalise(&frame, file.ts_nanos_per_unit)
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
            .hint(METADATA_HINT));
        }
        Ok(frame)
    }
}

/// The six columns of `chunk`'s rows, as polars decodes them.
/// An object's column chunks of `chunk`'s rows, fetched by range, with the footer to decode
/// them and the chunk's rows as that footer numbers them; `None` for a local file, which is
/// read where it lies.
fn fetch_chunk(
    file: &CallFile,
    chunk: Chunk,
    failed: &dyn Fn(String) -> InputError,
) -> Result<Option<(SparseObject, Arc<FileMetadata>, Chunk)>, InputError> {
    let (ReadAs::Object { client, version }, Some(footer)) = (&file.read, &file.footer) else {
        return Ok(None);
    };
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
        .map_err(|e| failed(e.to_string()).hint(METADATA_HINT))?;
    let (footer, chunk) = chunk_footer(footer, &file.row_groups, chunk);
    Ok(Some((sparse, Arc::new(footer), chunk)))
}

/// The footer cut to the row groups that hold `chunk`'s rows, and the chunk's rows counted from
/// the first of them. Polars decodes the row groups before a slice's first row too, and the
/// sparse copy of an object holds only the fetched ones: given the whole footer it read zeros
/// for the earlier groups of a file of several.
fn chunk_footer(footer: &FileMetadata, row_groups: &[u64], chunk: Chunk) -> (FileMetadata, Chunk) {
    let held = groups_holding(row_groups, chunk);
    let mut kept = footer.clone();
    kept.row_groups = held
        .iter()
        .filter_map(|&(group, ..)| footer.row_groups.get(group).cloned())
        .collect();
    kept.num_rows = held.iter().map(|&(.., rows)| rows as usize).sum();
    let first_row = held.first().map_or(0, |&(_, first_row, _)| first_row);
    let relative = Chunk {
        offset: chunk.offset - first_row,
        ..chunk
    };
    (kept, relative)
}

/// The row groups that hold `chunk`'s rows, as (index, first row, rows), in file order.
fn groups_holding(row_groups: &[u64], chunk: Chunk) -> Vec<(usize, u64, u64)> {
    let mut first_row = 0u64;
    let mut held = Vec::new();
    for (group, &rows) in row_groups.iter().enumerate() {
        if first_row < chunk.offset + chunk.rows && chunk.offset < first_row + rows {
            held.push((group, first_row, rows));
        }
        first_row += rows;
    }
    held
}

/// A decoded chunk in the schema of [`columns`]: strings as `String`, `ts` as UTC
/// nanoseconds from `ts_nanos_per_unit`, saturating at the `i64` range.
fn normalise(frame: &DataFrame, ts_nanos_per_unit: i64) -> PolarsResult<DataFrame> {
    use columns::*;
    let text = |name: &str| -> PolarsResult<Column> { frame.column(name)?.cast(&DataType::String) };
    let raw_ts = frame.column(TS)?.cast(&DataType::Int64)?;
    let ts: Int64Chunked = raw_ts
        .i64()?
        .iter()
        .map(|v| {
            v.map(|t| {
                t.checked_mul(ts_nanos_per_unit)
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
}

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
    for (group, ..) in groups_holding(row_groups, chunk) {
        let Some(group) = footer.row_groups.get(group) else {
            continue;
        };
        for name in [REQUEST_ID, CUSTOMER_ID, TS, API, STATUS, ERROR_CODE] {
            if let Some(columns) = group.columns_under_root_iter(name) {
                ranges.extend(columns.map(|c| c.byte_range()));
            }
        }
    }
    ranges
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
