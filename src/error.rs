//! Typed errors shared by the input readers, the usage error that maps to exit status 2, and
//! hints: what the user can do about an error.
//!
//! A hint is never part of an error's message. It travels in [`Hinted`] (any error of the
//! program), [`InputError`] or [`UsageError`], and [`hints`] collects them from an error's
//! chain, so `main` prints every hint in one place, as `hint:` lines after the error.

use std::fmt;
use std::path::PathBuf;

/// A problem with the command line or the job file: the run never started (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    pub hint: Option<String>,
}

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// An error and what the user can do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

/// An error whose hint `main` prints after it.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// Adds to an error a layer of context with a hint: `.map_err(|e| with_hint(e, what, hint))`.
pub fn with_hint(
    err: impl Into<anyhow::Error>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> anyhow::Error {
    err.into().context(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// Every hint an error carries, outermost first, each once.
pub fn hints(err: &anyhow::Error) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    // A context layer is found through anyhow's downcast, an error in the chain through its own.
    if let Some(hinted) = err.downcast_ref::<Hinted>() {
        found.push(hinted.hint.clone());
    }
    for cause in err.chain() {
        let hint = if let Some(e) = cause.downcast_ref::<Hinted>() {
            Some(e.hint.as_str())
        } else if let Some(e) = cause.downcast_ref::<InputError>() {
            e.hint.as_deref()
        } else if let Some(e) = cause.downcast_ref::<UsageError>() {
            e.hint.as_deref()
        } else {
            None
        };
        if let Some(hint) = hint.filter(|h| !found.iter().any(|f| f == h)) {
            found.push(hint.to_string());
        }
    }
    found
}

/// An error as one text: its message, its causes, then its hints (for reports that list
/// several errors, like `validate`'s).
pub fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    for hint in hints(err) {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

/// Whether the error is a write to a closed pipe (`sla-ledger ... | head`): the reader's
/// choice, not a failure.
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
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
        write!(f, "{}: {}", self.location, self.problem)
    }
}
