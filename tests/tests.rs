//! The integration test binary: one harness, one module per area.

mod support;

mod conformance;
mod explain;
mod golden;
mod reconcile;
mod run_cli;
