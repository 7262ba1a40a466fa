//! What a run tells its operator while it works, on stderr (stdout keeps the summary).
//!
//! - a terminal: a spinner naming the current stage (indicatif), and while the call files are
//!   read, a bar over their bytes with files, rows, rate and time left ([`ReadProgress`]);
//! - not a terminal: one plain line per stage, for log files and schedulers;
//! - `--log-format json`: one JSON object per event, never a spinner;
//! - `--verbose`: also each stage's time and row counts; `--quiet`: only warnings and errors.
//!
//! Stages report through [`stage`], which works (silently) before [`init`] is called, so
//! library users and tests need not set anything up. A step with phases of its own (the heavy
//! step) times them with [`Phases`], each with the process's resident memory.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
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
                let spinner = ProgressBar::new_spinner().with_style(spinner_style());
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

/// The spinner's look between the bars.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template")
}

/// Progress over the bytes of the call files being read: on a terminal the spinner becomes a
/// bar (files and rows done, bytes, rate, time left) until dropped; elsewhere it shows
/// nothing, the stage's plain line having said what runs. Safe to advance from many threads.
pub(crate) struct ReadProgress {
    bar: Option<&'static ProgressBar>,
    /// The spinner's message before the bar, shown again after it.
    before: String,
    files: u64,
    /// Chunks still to read, per file: a file is done when its count reaches zero.
    chunks_left: Vec<AtomicU64>,
    files_done: AtomicU64,
    rows: AtomicU64,
}

impl ReadProgress {
    /// Starts the bar over `total_bytes`, for files of which the i-th has `chunks_per_file[i]`
    /// chunks.
    pub(crate) fn start(total_bytes: u64, chunks_per_file: &[u64]) -> ReadProgress {
        let progress = ReadProgress {
            bar: SPINNER.get(),
            before: SPINNER.get().map(ProgressBar::message).unwrap_or_default(),
            files: chunks_per_file.len() as u64,
            chunks_left: chunks_per_file.iter().map(|&n| AtomicU64::new(n)).collect(),
            // A file without rows has no chunk to wait for.
            files_done: AtomicU64::new(chunks_per_file.iter().filter(|&&n| n == 0).count() as u64),
            rows: AtomicU64::new(0),
        };
        if let Some(bar) = progress.bar {
            progress.show();
            bar.set_length(total_bytes);
            bar.set_position(0);
            // The bar takes the width the rest of the line leaves.
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} calls {msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes}, \
                     {binary_bytes_per_sec}, {eta} left",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
        }
        progress
    }

    /// One chunk of file `file` was read: `rows` rows, about `bytes` bytes of it.
    pub(crate) fn chunk_read(&self, file: usize, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        let finished = self
            .chunks_left
            .get(file)
            .is_some_and(|left| left.fetch_sub(1, Ordering::Relaxed) == 1);
        if finished {
            self.files_done.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bar) = self.bar {
            bar.inc(bytes);
        }
        self.show();
    }

    fn show(&self) {
        if let Some(bar) = self.bar {
            bar.set_message(format!(
                "{}/{} files, {} rows",
                self.files_done.load(Ordering::Relaxed),
                self.files,
                self.rows.load(Ordering::Relaxed)
            ));
        }
    }
}

impl Drop for ReadProgress {
    /// Leaves what was read on a line of its own, then back to the spinner for the stages
    /// after the read.
    fn drop(&mut self) {
        if let Some(bar) = self.bar {
            bar.println(format!(
                "calls: read {}/{} files, {} rows, {}",
                self.files_done.load(Ordering::Relaxed),
                self.files,
                self.rows.load(Ordering::Relaxed),
                indicatif::BinaryBytes(bar.position())
            ));
            bar.set_message(std::mem::take(&mut self.before));
            bar.unset_length();
            bar.set_style(spinner_style());
        }
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
pub(crate) struct Stage {
    name: &'static str,
    started: Instant,
}

/// Announces a stage: a spinner message on a terminal, else a plain (or JSON) line.
pub(crate) fn stage(name: &'static str, what: &str) -> Stage {
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
    pub(crate) fn done(self, counts: &[(&str, u64)]) {
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
pub(crate) struct Phase {
    pub name: &'static str,
    pub elapsed: Duration,
    /// Resident memory at the end of the phase and the process's peak so far, in KiB.
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Times a step's phases one after another.
pub(crate) struct Phases {
    clock: Instant,
    done: Vec<Phase>,
}

impl Phases {
    pub(crate) fn start() -> Phases {
        Phases {
            clock: Instant::now(),
            done: Vec::new(),
        }
    }

    /// Ends the phase `name` (begun at the previous lap) and starts the next.
    pub(crate) fn lap(&mut self, name: &'static str) {
        let (rss_kib, peak_kib) = memory_kib();
        self.done.push(Phase {
            name,
            elapsed: self.clock.elapsed(),
            rss_kib,
            peak_kib,
        });
        self.clock = Instant::now();
    }

    pub(crate) fn done(self) -> Vec<Phase> {
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
