//! `sla-ledger generate`: a SPEC-shaped synthetic data set.
use crate::cli::GenerateArgs;

pub fn generate_command(_args: &GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
