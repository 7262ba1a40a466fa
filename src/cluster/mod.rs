//! `sla-ledger cluster scheduler|executor`: this binary as a member of a Ballista cluster.
//!
//! Takes the `cluster` command line; runs the member (`members.rs`, in builds with the
//! `distributed` feature) until the process is stopped, or, in a build without it, gives the
//! usage error that says how to build one.

#[cfg(feature = "distributed")]
mod members;

use crate::cli::ClusterCommand;

/// `sla-ledger cluster ...`.
pub fn cluster_command(command: &ClusterCommand) -> anyhow::Result<()> {
    #[cfg(feature = "distributed")]
    {
        members::cluster_command(command)
    }
    #[cfg(not(feature = "distributed"))]
    {
        let _ = command;
        Err(crate::stages::calls::engine::not_built("`sla-ledger cluster`").into())
    }
}
