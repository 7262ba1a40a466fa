//! What a run tells its operator while it works, on stderr (stdout keeps the summary).
//!
//! - a terminal: a spinner naming the current stage (indicatif);
//! - not a terminal: one plain line per stage, for log files and schedulers;
//! - `--log-format json`: one JSON object per event, never a spinner;
//! - `--verbose`: also each stage's time and row counts; `--quiet`: only warnings and errors.
//!
//! Stages report through [`stage`], which works (silently) before [`init`] is called, so
//! library users and tests need not set anything up.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::Level;

use crate::cli::{LogFormat, Output};

/// The spinner, when stderr is a terminal and the format is text.
static SPINNER: OnceLock<ProgressBar> = OnceLock::new();

/// Installs the stderr logger (and the spinner) for this process.
pub fn init(output: &Output) {
    let level = if output.quiet {
        Level::WARN
    } else if output.verbose {
        Level::DEBUG
    } else {
        Level::INFO
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .with_writer(SuspendingStderr::default);
    let installed = match output.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => {
            let terminal = std::io::stderr().is_terminal();
            if terminal && !output.quiet {
                let spinner = ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .expect("a valid template"),
                );
                spinner.enable_steady_tick(Duration::from_millis(120));
                SPINNER.set(spinner).ok();
            }
            builder.without_time().try_init()
        }
    };
    // A second init (tests calling `main` twice) keeps the first logger.
    installed.ok();
}

/// Clears the spinner before the process prints its result.
pub fn finish() {
    if let Some(spinner) = SPINNER.get() {
        spinner.finish_and_clear();
    }
}

/// Writes log lines to stderr, lifting the spinner out of the way while doing so.
#[derive(Default)]
struct SuspendingStderr;

impl Write for SuspendingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match SPINNER.get() {
            Some(spinner) => spinner.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// One stage of a run, from [`stage`] to [`Stage::done`].
pub struct Stage {
    name: &'static str,
    started: Instant,
}

/// Announces a stage: a spinner message on a terminal, else a plain (or JSON) line.
pub fn stage(name: &'static str, what: &str) -> Stage {
    match SPINNER.get() {
        Some(spinner) => spinner.set_message(format!("{name}: {what}")),
        None => tracing::info!(stage = name, "{what}"),
    }
    Stage {
        name,
        started: Instant::now(),
    }
}

impl Stage {
    /// Ends the stage; with `--verbose`, logs its time and row counts.
    pub fn done(self, counts: &[(&str, u64)]) {
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        let rows = counts
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        tracing::debug!(stage = self.name, elapsed_ms, counts = %rows, "done");
    }
}
