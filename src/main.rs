//! The binary edge: parse the command line, run, map the outcome to an exit status.

use std::process::ExitCode;

use clap::Parser;
use sla_ledger::cli::{Cli, Command, LogFormat};
use sla_ledger::error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    sla_ledger::telemetry::init(&cli.output);
    if let Err(err) = sla_ledger::scratch::install_signal_cleanup() {
        eprintln!("error: cannot install the SIGINT/SIGTERM/SIGHUP cleanup: {err}");
        return ExitCode::from(1);
    }
    let outcome = match cli.command {
        Command::Run(args) => sla_ledger::run::run_command(&args),
        Command::Validate(args) => sla_ledger::validate::validate_command(&args),
        Command::Generate(args) => sla_ledger::generate::generate_command(&args),
        Command::Diff(args) => sla_ledger::adjustments::diff_command(&args),
        Command::Post(args) => sla_ledger::journal::post::post_command(&args),
        Command::Journal { command } => sla_ledger::journal::journal_command(&command),
        Command::Explain(args) => sla_ledger::explain::explain_command(&args),
        Command::Cluster { command } => sla_ledger::cluster::cluster_command(&command),
        Command::Completions(args) => sla_ledger::manual::completions(args.shell),
        Command::Man => sla_ledger::manual::man_page(),
    };
    sla_ledger::telemetry::finish();
    // A signal being handled wins: its cleanup ends the process with its own status.
    sla_ledger::scratch::wait_for_signal_cleanup();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // `sla-ledger ... | head` closed stdout: the reader's choice, decided here once.
        Err(err) if error::is_closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let hints = error::hints(&err);
            if cli.output.log_format == LogFormat::Json {
                // Schedulers parse every stderr line: the error is one JSON object too.
                let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
                tracing::error!(error = %chain.join(": "), hint = %hints.join("; "), "failed");
            } else {
                // Input values can hold terminal escapes: printed inert (SPEC §8).
                eprintln!(
                    "error: {}",
                    sla_ledger::text::for_terminal(&err.to_string())
                );
                for cause in err.chain().skip(1) {
                    let cause = sla_ledger::text::for_terminal(&cause.to_string());
                    eprintln!("  caused by: {cause}");
                }
                for hint in &hints {
                    eprintln!("  hint: {}", sla_ledger::text::for_terminal(hint));
                }
            }
            if err.downcast_ref::<error::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
