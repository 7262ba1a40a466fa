//! The integration test binary: one harness, one module per area.

mod support;

mod auditor;
mod bad_input;
mod conformance;
mod golden;
mod run_cli;
