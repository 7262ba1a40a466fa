//! The command line, as typed (SPEC §1). Validation and defaults live in `job`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::lang::Lang;

#[derive(Debug, Parser)]
#[command(
    name = "sla-ledger",
    version,
    about = "Turns Cloud Call Center API call logs into an auditable SLA payout ledger",
    after_help = "Example:\n  sla-ledger run --job jobs/month-end.toml --out out/month-end --force\n\n\
        Reference: docs/reference.md (§1 commands and exit status, §2 inputs, §3 job and policy \
        files, §4 rules, §5-§6 outputs)"
)]
pub struct Cli {
    #[command(flatten)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

/// What the program tells its operator on stderr while it works (see `telemetry`).
#[derive(Debug, Clone, Default, Args)]
pub struct Output {
    /// Only warnings and errors on stderr; stdout's summary is unchanged.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also log each stage's time and row counts.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Log format on stderr: `text`, or `json` (one object per line, for schedulers).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute availability, compensation and claims; write the payout ledger.
    #[command(after_help = "Examples:\n  \
        sla-ledger run --data sample_data --out out/q1 --months 2026-01..2026-03 --as-of 2026-04-30\n  \
        sla-ledger run --job jobs/nightly.toml --as-of 2026-03-16 --out out/nightly --force\n  \
        sla-ledger run --job jobs/month-end.toml --out out/month-end-zh --report-lang zh-CN")]
    Run(RunCommandArgs),
    /// Check every input against the contract and report every problem, without computing.
    ///
    /// Takes the same flags as `run`; `--out` is optional and, when set, is checked too.
    /// Exit status 0 when the inputs are clean, 1 when a problem was found.
    #[command(after_help = "Examples:\n  \
        sla-ledger validate --data sample_data\n  \
        sla-ledger validate --job jobs/month-end.toml --strict")]
    Validate(RunCommandArgs),
    /// Write a synthetic data folder (call logs, subscriptions, billing, claims; docs/reference.md §2).
    #[command(after_help = "Example:\n  \
        sla-ledger generate --out sample_data --customers 40 --months 2026-01..2026-03 \
        --calls 60000 --seed 7")]
    Generate(GenerateArgs),
    /// Compare two run outputs; write the payout corrections as signed adjustments.
    #[command(after_help = "Example:\n  \
        sla-ledger diff --prior out/2026-04-30 --current out/2026-05-31 --out out/adjustments")]
    Diff(DiffArgs),
    /// Book a finished run's payouts in the payout journal, exactly once.
    ///
    /// Each entry is the run's payout minus what the journal has booked for that customer,
    /// month and currency, inside the run's own months and customers only.
    #[command(after_help = "Examples:\n  \
        sla-ledger post --journal payouts.db --run out/2026-04-30 --note \"April month end\"\n  \
        sla-ledger post --journal payouts.db --run out/2026-05-31")]
    Post(PostArgs),
    /// Read, check and export the payout journal that `post` writes.
    #[command(after_help = "Examples:\n  \
        sla-ledger journal balance --journal payouts.db --customer 100023757 --format json\n  \
        sla-ledger journal verify --journal payouts.db\n  \
        sla-ledger journal export --journal payouts.db --since 2 --out out/export-2")]
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Show everything behind one ledger row: calls, exemptions, tier, fee, claims, payout.
    #[command(after_help = "Example:\n  \
        sla-ledger explain --job jobs/month-end.toml --customer 100023757 --month 2026-02")]
    Explain(ExplainArgs),
    /// Serve as a member of a Ballista cluster that runs the heavy step (`--engine ballista`).
    ///
    /// Needs a build with the `distributed` feature. Every host runs this same binary: one
    /// scheduler, and executors that can read the call files at the paths the client uses.
    #[command(after_help = "Examples:\n  \
        sla-ledger cluster scheduler --bind 0.0.0.0:50050\n  \
        sla-ledger cluster executor --scheduler df://sched-host:50050 --bind 0.0.0.0:50051\n  \
        sla-ledger run --job jobs/month-end.toml --engine ballista --scheduler df://sched-host:50050")]
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print a shell completion script on stdout.
    #[command(after_help = "Examples:\n  \
        sla-ledger completions bash > ~/.local/share/bash-completion/completions/sla-ledger\n  \
        sla-ledger completions zsh > ~/.zfunc/_sla-ledger")]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  sla-ledger man > sla-ledger.1 && man ./sla-ledger.1")]
    Man,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ClusterCommand {
    /// Run a Ballista scheduler: clients send it jobs, executors register with it.
    #[command(after_help = "Example:\n  sla-ledger cluster scheduler --bind 0.0.0.0:50050")]
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor that registers with a scheduler and runs its tasks.
    #[command(after_help = "Example:\n  \
        sla-ledger cluster executor --scheduler df://sched-host:50050 --bind 0.0.0.0:50051")]
    Executor(ExecutorArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Address to listen on for clients and executors.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    pub bind: String,
    /// Host name executors and clients use to reach this scheduler (default: the bind host).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Seconds without a heartbeat before an executor is taken as lost and its tasks rerun.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub executor_timeout_secs: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ExecutorArgs {
    /// The scheduler to join, `df://HOST:PORT` or `HOST:PORT`.
    #[arg(long, value_name = "df://HOST:PORT")]
    pub scheduler: String,
    /// Address to listen on for shuffle data (Arrow Flight).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    pub bind: String,
    /// Port for the scheduler's task calls (default: the bind port + 1).
    #[arg(long, value_name = "PORT")]
    pub grpc_port: Option<u16>,
    /// Host name others use to reach this executor (default: the bind host).
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Tasks run at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub concurrent_tasks: Option<usize>,
    /// Folder for shuffle files (default: a fresh temporary folder).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub heartbeat_secs: u64,
    /// Memory the executor's tasks share before they spill to the work folder, in MiB
    /// (default: a share of the machine's memory, as Ballista chooses).
    #[arg(long, value_name = "MIB")]
    pub memory_limit_mib: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Input data directory (docs/reference.md §2).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output directory; written atomically, must be absent or empty unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// `2026-03`, `2026-01..2026-03`, `current`, `previous`, `previous..current` (default).
    #[arg(long, value_name = "M|M1..M2")]
    pub months: Option<String>,
    /// The date the run is as of (end of that local day); default: today, local.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Restrict the ledger to these customers.
    #[arg(long, value_name = "ID,ID,...", value_delimiter = ',')]
    pub customers: Option<Vec<i64>>,
    /// Working-day calendar CSV (`date,kind`; docs/reference.md §3); default: the shipped China
    /// calendar.
    #[arg(long, value_name = "FILE")]
    pub calendar: Option<PathBuf>,
    /// SLA policy TOML (docs/reference.md §3); default: the built-in CCC policy.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A TOML job spec setting any of these options (docs/reference.md §3); flags override it.
    #[arg(long, value_name = "FILE")]
    pub job: Option<PathBuf>,
    /// Replace --out (atomically) if it is an earlier output of this program.
    #[arg(long)]
    pub force: bool,
    /// Never replace a non-empty --out, even if the job file sets `force = true`.
    #[arg(long, conflicts_with = "force")]
    pub no_force: bool,
    /// Fail (writing nothing) if any row is quarantined or any ledger row is an error.
    #[arg(long)]
    pub strict: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    pub threads: Option<usize>,
    /// Memory for call keys before they spill to disk, in MiB (default 2560: ~55M rows).
    #[arg(long, value_name = "MIB")]
    pub memory_budget_mib: Option<u64>,
    /// Where the heavy step runs: `polars` (default, in this process) or `ballista` (needs a
    /// build with the `distributed` feature).
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub engine: Option<EngineName>,
    /// With `--engine ballista`: the scheduler of a running cluster. Without it, a cluster is
    /// started inside this process for the run.
    #[arg(long, value_name = "df://HOST:PORT")]
    pub scheduler: Option<String>,
}

/// `run` and `validate`: the run's flags, and the report's language, which no other command
/// that takes the run's flags (`explain`) writes.
#[derive(Debug, Clone, Default, Args)]
pub struct RunCommandArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Language of `report.html`: `en` (default) or `zh-CN`; numbers and ids stay as in the ledger.
    #[arg(long, value_enum, value_name = "LANG")]
    pub report_lang: Option<Lang>,
}

/// The engines that can run the heavy step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineName {
    Polars,
    Ballista,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Directory to write the data set into (must be absent or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Number of customers.
    #[arg(long, default_value_t = 40)]
    pub customers: u32,
    /// Months of call logs, `M1..M2`.
    #[arg(long, default_value = "2026-01..2026-03")]
    pub months: String,
    /// Total call rows to write (before planted duplicates and defects).
    #[arg(long, default_value_t = 60_000)]
    pub calls: u64,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The earlier run output (its `ledger.csv` and `manifest.json`).
    #[arg(long, value_name = "DIR")]
    pub prior: PathBuf,
    /// The later run output of the same months.
    #[arg(long, value_name = "DIR")]
    pub current: PathBuf,
    /// Where to write `adjustments.csv`, `adjustments.parquet`, `adjustment_totals.csv`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace --out (atomically) if it is an earlier output of this program.
    #[arg(long)]
    pub force: bool,
    /// Compare runs made under different policies; every entry is then labelled `policy`.
    #[arg(long)]
    pub allow_policy_change: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The customer whose row to explain.
    #[arg(long, value_name = "ID")]
    pub customer: i64,
    /// The service month, `YYYY-MM`.
    #[arg(long, value_name = "YYYY-MM")]
    pub month: String,
    /// `text` (default) or `json`.
    #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
    pub format: ExplainFormat,
    /// The run's own flags, so a run's command line can be explained by adding `--customer`
    /// and `--month`: `--months` must contain `--month`, `--customers` must contain
    /// `--customer`, and `--out` is ignored (explain writes nothing). A job file's `out`,
    /// `months` and `customers` are not used.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct PostArgs {
    /// The journal (an SQLite file); created by the first `post`.
    #[arg(long, value_name = "FILE")]
    pub journal: PathBuf,
    /// The run output to book (its `ledger.csv` and `manifest.json`).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// A note kept with the batch (who, why).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Book a run as of a day before the last batch of overlapping months (undoes its corrections).
    #[arg(long)]
    pub allow_backdated: bool,
    /// Book a run under a different policy than the last batch; entries are labelled `policy`.
    #[arg(long)]
    pub allow_policy_change: bool,
    /// Seconds to wait for another `post` holding the journal before failing.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub wait_secs: u64,
}

#[derive(Debug, Clone, Subcommand)]
pub enum JournalCommand {
    /// What has been booked per customer, service month and currency.
    Balance(BalanceArgs),
    /// The batches: number, time, run, ledger SHA-256, as_of, months, entries, totals, note.
    History(HistoryArgs),
    /// Recompute the hash chain and every balance; exit 1 naming the first mismatch.
    Verify(JournalFileArgs),
    /// Write the entries of batch `--since` and later as CSV and Parquet.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct JournalFileArgs {
    /// The journal `post` wrote.
    #[arg(long, value_name = "FILE")]
    pub journal: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct BalanceArgs {
    /// The journal `post` wrote.
    #[arg(long, value_name = "FILE")]
    pub journal: PathBuf,
    /// Only this customer.
    #[arg(long, value_name = "ID")]
    pub customer: Option<i64>,
    /// Only this service month, `YYYY-MM`.
    #[arg(long, value_name = "YYYY-MM")]
    pub month: Option<String>,
    /// `csv` (default) or `json`.
    #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
    pub format: TableFormat,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The journal `post` wrote.
    #[arg(long, value_name = "FILE")]
    pub journal: PathBuf,
    /// `csv` (default) or `json`.
    #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
    pub format: TableFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The journal `post` wrote.
    #[arg(long, value_name = "FILE")]
    pub journal: PathBuf,
    /// The first batch to export (batches are numbered from 1).
    #[arg(long, value_name = "BATCH", value_parser = clap::value_parser!(u64).range(1..))]
    pub since: u64,
    /// Where to write `entries.csv`, `entries.parquet` and `manifest.json`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace a non-empty --out directory (atomically).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Csv,
    Json,
}
