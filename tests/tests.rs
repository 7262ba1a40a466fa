//! The integration test binary: one harness, one module per area.

mod support;

mod browser;
mod conformance;
mod golden;
mod operator_cli;
mod report_html;
mod run_cli;
mod validate;
