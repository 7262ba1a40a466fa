//! What a run tells its operator while it works, on stderr (stdout keeps the summary).
//!
//! - a terminal: a spinner naming the current stage (indicatif);
//! - not a terminal: one plain line per stage, for log files and schedulers;
//! - `--log-format json`: one JSON object per event, never a spinner;
//! - `--verbose`: also each stage's time and row counts; `--quiet`: only warnings and errors.
//!
//! Stages report through [`stage`], which works (silently) before [`init`] is called, so
//! library users and tests need not set anything up. A step with phases of its own (the heavy
//! step) times them with [`Phases`], each with the process's resident memory.

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

/// One phase of a step (the heavy step's read, de-duplication, ...), measured.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub name: &'static str,
    pub elapsed: Duration,
    /// Resident memory at the end of the phase and the process's peak so far, in KiB.
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Times a step's phases one after another.
pub struct Phases {
    clock: Instant,
    done: Vec<Phase>,
}

impl Phases {
    pub fn start() -> Phases {
        Phases {
            clock: Instant::now(),
            done: Vec::new(),
        }
    }

    /// Ends the phase `name` (begun at the previous lap) and starts the next.
    pub fn lap(&mut self, name: &'static str) {
        let (rss_kib, peak_kib) = memory_kib();
        self.done.push(Phase {
            name,
            elapsed: self.clock.elapsed(),
            rss_kib,
            peak_kib,
        });
        self.clock = Instant::now();
    }

    pub fn done(self) -> Vec<Phase> {
        self.done
    }
}

/// The process's resident memory now and at its peak, in KiB (Linux; zeros elsewhere).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
