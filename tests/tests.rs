//! The integration test binary: one harness, one module per area.

mod support;

mod auditor;
mod bad_input;
mod conformance;
mod determinism;
mod explain;
mod fuzz;
mod golden;
mod properties;
mod reconcile;
mod run_cli;
