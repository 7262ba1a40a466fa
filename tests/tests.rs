//! The integration test binary: one harness, one module per area.

mod support;

mod architecture;
mod auditor;
mod bad_input;
mod browser;
mod conformance;
mod determinism;
mod distributed;
mod explain;
mod fuzz;
mod golden;
mod hostile_exemptions;
mod hostile_heavy;
mod hostile_input;
mod hostile_output;
mod journal;
mod object_storage;
mod operator_cli;
mod parquet_readers;
mod properties;
mod reconcile;
mod report_html;
mod run_cli;
mod validate;
