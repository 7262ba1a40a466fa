//! Reading a small table (CSV or Parquet, same columns) into text records with locations.
//!
//! Takes a file and its required columns; gives one [`Record`] per data row, cells as text
//! (`None` for an empty CSV cell or a Parquet null). Typed parsing is each table's own job.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use std::sync::Arc;

use crate::error::{InputError, Location, Position};
use crate::inputs::problems::Problems;
use crate::inputs::source::{object_problem, DataSource, Origin};
use crate::inputs::stamp::{InputFile, ReadAs};

/// A small table file found in the data directory.
#[derive(Debug, Clone)]
pub struct TableFile {
    /// Where it is read from: a path (absolute or caller-relative), or an object version.
    pub origin: Origin,
    /// The path as reported to the user: relative to the data directory.
    pub shown: PathBuf,
    pub format: TableFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Parquet,
}

/// Finds `<stem>.csv` or `<stem>.parquet` in the data directory (`stem` may hold a folder, as
/// in `exemptions/windows`); both at once is ambiguous.
pub fn find_table(source: &DataSource, stem: &str) -> Result<Option<TableFile>, InputError> {
    let shown = |ext: &str| PathBuf::from(format!("{stem}.{ext}"));
    let look = |ext: &str| -> Result<Option<Origin>, InputError> {
        let name = format!("{stem}.{ext}");
        match source {
            DataSource::Folder(dir) => {
                let path = dir.join(&name);
                Ok(present(&path, &shown(ext))?.then_some(Origin::File(path)))
            }
            DataSource::Objects(client) => match client.head(&name) {
                Ok(found) => Ok(found.map(|version| Origin::Object {
                    client: Arc::clone(client),
                    version,
                })),
                Err(err) => Err(object_problem(shown(ext), err)),
            },
        }
    };
    match (look("csv")?, look("parquet")?) {
        (Some(_), Some(_)) => Err(InputError::new(
            Location::file(shown("csv")),
            format!("both `{stem}.csv` and `{stem}.parquet` exist; expected one of them"),
        )
        .hint("remove the one that is out of date")),
        (Some(origin), None) => Ok(Some(TableFile {
            origin,
            shown: shown("csv"),
            format: TableFormat::Csv,
        })),
        (None, Some(origin)) => Ok(Some(TableFile {
            origin,
            shown: shown("parquet"),
            format: TableFormat::Parquet,
        })),
        (None, None) => Ok(None),
    }
}

/// Whether a table file is there: `false` only when nothing at all is at `path`. Anything that
/// is there but is not a readable regular file (a dangling symlink, a folder, a fifo) is an
/// error, never an empty table: an optional table silently read as empty changes payouts.
fn present(path: &Path, shown: &Path) -> Result<bool, InputError> {
    let problem = |what: String| {
        Err(InputError::new(Location::file(shown), what).hint(
            "a table must be a regular file (a symlink to one is followed); remove or fix it",
        ))
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return problem(format!("cannot be inspected: {e}")),
        Ok(_) => {}
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) if meta.is_dir() => problem("is a folder; expected a file".into()),
        Ok(_) => problem("is not a regular file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            problem("is a symlink to nothing (dangling); expected a file".into())
        }
        Err(e) => problem(format!("cannot be opened: {e}")),
    }
}

/// One data row of a small table.
#[derive(Debug, Clone)]
pub struct Record {
    pub position: Position,
    cells: Vec<Option<String>>,
}

/// Records with the columns they were asked for, in that order.
#[derive(Debug)]
pub struct Records {
    pub file: PathBuf,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Record>,
}

impl Records {
    pub fn empty(file: PathBuf, columns: &[&'static str]) -> Records {
        Records {
            file,
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// The location of a cell, for error messages and quarantine.
    pub fn location(&self, record: &Record, column: &str) -> Location {
        Location::file(&self.file)
            .at(record.position)
            .column(column)
    }

    /// A cell's text; `None` when empty or null.
    pub fn cell<'r>(&self, record: &'r Record, column: &str) -> Option<&'r str> {
        let index = self
            .columns
            .iter()
            .position(|c| *c == column)
            .expect("known column");
        record.cells[index].as_deref().filter(|s| !s.is_empty())
    }

    /// A cell that must be present, else an error naming file, line and column.
    pub fn required<'r>(&self, record: &'r Record, column: &str) -> Result<&'r str, InputError> {
        self.cell(record, column).ok_or_else(|| {
            InputError::new(self.location(record, column), "is empty; expected a value")
        })
    }

    /// Parses a required cell, turning a parse failure into an error at that cell.
    pub fn parse<T>(
        &self,
        record: &Record,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, InputError> {
        let text = self.required(record, column)?;
        parse(text).map_err(|problem| InputError::new(self.location(record, column), problem))
    }
}

/// Reads a table's required columns; extra columns are ignored. A row that cannot be read is
/// handed to `problems` and skipped; a file that cannot be read at all (or lacks a column)
/// gives no rows.
pub fn read_table(
    table: &TableFile,
    columns: &[&'static str],
    problems: &mut Problems,
) -> Result<Records, InputError> {
    let empty = || Records::empty(table.shown.clone(), columns);
    let shown = table.shown.display().to_string();
    let (read_as, content) = match &table.origin {
        Origin::File(path) => match crate::inputs::stamp::InputFile::stamp(shown, path) {
            Ok(file) => (file, Content::Path(path.clone())),
            Err(e) => {
                let problem =
                    InputError::new(Location::file(&table.shown), format!("cannot be read: {e}"));
                return problems.report(problem).map(|()| empty());
            }
        },
        // A small table is read whole, once, as the version looked up.
        Origin::Object { client, version } => match client.get_all(version) {
            Ok(bytes) => (
                InputFile {
                    shown,
                    read: ReadAs::Object {
                        client: Arc::clone(client),
                        version: version.clone(),
                    },
                },
                Content::Bytes(bytes),
            ),
            Err(err) => {
                return problems
                    .report(object_problem(&table.shown, err))
                    .map(|()| empty())
            }
        },
    };
    problems.read_file(read_as);
    let table = &TableBytes {
        file: table,
        content,
    };
    let read = match table.file.format {
        TableFormat::Csv => read_csv(table, columns, problems),
        TableFormat::Parquet => read_parquet(table, columns, problems),
    };
    match read {
        Ok(records) => Ok(records.unwrap_or_else(empty)),
        Err(problem) => problems.report(problem).map(|()| empty()),
    }
}

/// A table and what to read it from.
struct TableBytes<'t> {
    file: &'t TableFile,
    content: Content,
}

enum Content {
    /// A local file, opened when read.
    Path(PathBuf),
    /// An object, fetched whole.
    Bytes(bytes::Bytes),
}

fn read_csv(
    table: &TableBytes,
    columns: &[&'static str],
    problems: &mut Problems,
) -> Result<Option<Records>, InputError> {
    let (content, table) = (&table.content, table.file);
    let at = |line: u64| Location::file(&table.shown).at(Position::Line(line));
    let source: Box<dyn std::io::Read> = match content {
        Content::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
        Content::Path(path) => Box::new(File::open(path).map_err(|e| {
            InputError::new(Location::file(&table.shown), format!("cannot open: {e}"))
        })?),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(source);
    let headers = reader
        .headers()
        .map_err(|e| InputError::new(at(1), csv_problem(&e)))?
        .clone();
    let header_names: Vec<&str> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}'))
        .collect();
    let mut indexes = Vec::with_capacity(columns.len());
    for column in columns {
        let found = header_names
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| {
                InputError::new(
                    at(1),
                    format!(
                        "has no column `{column}`; expected columns `{}`",
                        columns.join(",")
                    ),
                )
            });
        if let Some(index) = problems.check(found)? {
            indexes.push(index);
        }
    }
    if indexes.len() < columns.len() {
        return Ok(None);
    }
    let mut rows = Vec::new();
    for result in reader.records() {
        let record = match result {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let recoverable = matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                );
                problems.report(InputError::new(at(line), csv_problem(&e)))?;
                if recoverable {
                    continue;
                }
                break;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let cells = indexes
            .iter()
            .map(|&i| record.get(i).map(str::to_string))
            .collect();
        rows.push(Record {
            position: Position::Line(line),
            cells,
        });
    }
    Ok(Some(Records {
        file: table.shown.clone(),
        columns: columns.to_vec(),
        rows,
    }))
}

fn csv_problem(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("has {len} fields; expected {expected_len} like the header")
        }
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
        _ => format!("cannot be read as CSV: {error}"),
    }
}

fn read_parquet(
    table: &TableBytes,
    columns: &[&'static str],
    problems: &mut Problems,
) -> Result<Option<Records>, InputError> {
    let (content, table) = (&table.content, table.file);
    let file_location = || Location::file(&table.shown);
    let unreadable = |e: PolarsError| {
        InputError::new(file_location(), format!("cannot be read as Parquet: {e}"))
    };
    let decoded = match content {
        Content::Bytes(bytes) => {
            let bytes = bytes.clone();
            crate::inputs::decode::guarded(move || {
                ParquetReader::new(std::io::Cursor::new(bytes)).finish()
            })
        }
        Content::Path(path) => {
            let file = File::open(path)
                .map_err(|e| InputError::new(file_location(), format!("cannot open: {e}")))?;
            crate::inputs::decode::guarded(|| ParquetReader::new(file).finish())
        }
    };
    let frame = match decoded {
        Ok(read) => read.map_err(unreadable)?,
        Err(reason) => {
            return Err(InputError::new(
                file_location(),
                format!("cannot be read as Parquet: the decoder failed ({reason})"),
            )
            .hint("the file may be truncated or corrupt; re-export it"))
        }
    };
    let mut text_columns = Vec::with_capacity(columns.len());
    for column in columns {
        let series = frame.column(column).map_err(|_| {
            InputError::new(
                file_location(),
                format!(
                    "has no column `{column}`; expected columns `{}`",
                    columns.join(",")
                ),
            )
        });
        let text = series.and_then(|series| {
            column_as_text(series.as_materialized_series(), column, &table.shown)
        });
        if let Some(text) = problems.check(text)? {
            text_columns.push(text);
        }
    }
    if text_columns.len() < columns.len() {
        return Ok(None);
    }
    let rows = (0..frame.height())
        .map(|i| Record {
            position: Position::Row(i as u64 + 1),
            cells: text_columns.iter().map(|c| c[i].clone()).collect(),
        })
        .collect();
    Ok(Some(Records {
        file: table.shown.clone(),
        columns: columns.to_vec(),
        rows,
    }))
}

/// Renders a Parquet column as the text its CSV twin would hold. Money must never arrive as
/// floating point, so float columns are refused here for every table.
fn column_as_text(
    series: &Series,
    column: &str,
    shown: &Path,
) -> Result<Vec<Option<String>>, InputError> {
    let location = || Location::file(shown).column(column);
    let dtype = series.dtype().clone();
    if dtype.is_float() {
        return Err(InputError::new(
            location(),
            format!("is floating point ({dtype}); expected text, an integer or a decimal"),
        )
        .hint("money is exact: store amounts as a decimal column or as text like `12.34`"));
    }
    let text = match &dtype {
        DataType::Datetime(unit, _) => {
            let raw = series
                .cast(&DataType::Int64)
                .map_err(|e| InputError::new(location(), e.to_string()))?;
            let raw = raw
                .i64()
                .map_err(|e| InputError::new(location(), e.to_string()))?;
            let factor: i64 = match unit {
                TimeUnit::Milliseconds => 1_000_000,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1,
            };
            let mut text = Vec::with_capacity(raw.len());
            for (i, value) in raw.iter().enumerate() {
                let instant = match value {
                    None => None,
                    Some(v) => Some(v.checked_mul(factor).ok_or_else(|| {
                        InputError::new(
                            Location::file(shown)
                                .at(Position::Row(i as u64 + 1))
                                .column(column),
                            format!(
                                "holds {v} {unit}, which is outside the instants from 1677-09-21 to 2262-04-11; expected a timestamp in that range"
                            ),
                        )
                        .hint("check the column's unit: a value in the wrong unit lands centuries away")
                    })?),
                };
                text.push(instant.map(crate::time::format_instant));
            }
            text
        }
        DataType::Decimal(_, scale) if *scale > 2 => {
            return Err(InputError::new(
                location(),
                format!("is a decimal of scale {scale}; expected scale at most 2"),
            ));
        }
        _ => {
            let cast = series.cast(&DataType::String).map_err(|e| {
                InputError::new(
                    location(),
                    format!("has type {dtype}, which cannot be read as text: {e}"),
                )
            })?;
            cast.str()
                .map_err(|e| InputError::new(location(), e.to_string()))?
                .iter()
                .map(|v| v.map(str::to_string))
                .collect()
        }
    };
    Ok(text)
}
