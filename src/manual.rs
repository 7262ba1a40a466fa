//! Shell completions and the man page, generated from the command line's own definition so
//! they never drift from `--help`.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = Cli::command();
    // Generated in memory: `clap_complete` panics on a write error, such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "sla-ledger", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("cannot write the completion script to stdout")
}

/// Writes the man page (roff, section 1) on stdout: the program and each subcommand.
pub fn man_page() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`sla-ledger man | head`) ends quietly in `main`.
    write_man_page(&mut out)
        .and_then(|()| out.flush())
        .context("cannot write the man page to stdout")
}

pub(crate) fn write_man_page(out: &mut dyn Write) -> std::io::Result<()> {
    let command = Cli::command();
    clap_mangen::Man::new(command.clone()).render(out)?;
    // One section per subcommand, so `man sla-ledger` documents `run` and `validate` flags too.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        writeln!(out, ".SH \"SLA-LEDGER {}\"", sub.get_name().to_uppercase())?;
        let man = clap_mangen::Man::new(sub.clone());
        man.render_description_section(out)?;
        man.render_options_section(out)?;
        man.render_extra_section(out)?;
    }
    Ok(())
}
