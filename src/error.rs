//! Typed errors shared by the input readers, and the usage error that maps to exit status 2.

use std::fmt;
use std::path::PathBuf;

/// A problem with the command line or the job file: the run never started (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Where in an input a value was found: a file plus, where known, a line (CSV) or row (Parquet)
/// and a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub position: Option<Position>,
    pub column: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a CSV file, the header being line 1.
    Line(u64),
    /// 1-based data row of a Parquet file.
    Row(u64),
}

impl Location {
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            position: None,
            column: None,
        }
    }

    pub fn at(mut self, position: Position) -> Self {
        self.position = Some(position);
        self
    }

    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", crate::paths::shown(&self.file))?;
        match self.position {
            Some(Position::Line(n)) => write!(f, " line {n}")?,
            Some(Position::Row(n)) => write!(f, " row {n}")?,
            None => {}
        }
        if let Some(column) = &self.column {
            write!(f, " column `{column}`")?;
        }
        Ok(())
    }
}

/// A fatal defect in an input: names where, what was found, what was expected.
#[derive(Debug, thiserror::Error)]
pub struct InputError {
    pub location: Location,
    pub problem: String,
    pub hint: Option<String>,
}

impl InputError {
    pub fn new(location: Location, problem: impl Into<String>) -> Self {
        Self {
            location,
            problem: problem.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.problem)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
