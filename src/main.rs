//! The binary edge: parse the command line, run, map the outcome to an exit status.

use std::process::ExitCode;

use clap::Parser;
use sla_ledger::cli::{Cli, Command};
use sla_ledger::error::UsageError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => sla_ledger::run::run_command(&args),
        Command::Validate(args) => sla_ledger::validate::validate_command(&args),
        Command::Generate(args) => sla_ledger::generate::generate_command(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
