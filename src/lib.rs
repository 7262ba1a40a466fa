//! sla-ledger: turns Cloud Call Center API call logs into an auditable SLA payout ledger.
//!
//! The data flows one way through named stages:
//!
//! ```text
//! job (flags + TOML) ──► inputs (load, validate, quarantine)
//!   ──► stages::service_months (SLA 1.2)
//!   ──► stages::calls        (the heavy step: dedup, counted calls, exemptions; polars,
//!                             or Ballista with the `distributed` feature, chosen by
//!                             `stages::calls::engine`)
//!   ──► stages::availability (SLA 1.4, 1.5, 2.1)
//!   ──► stages::billing      (SLA 3.1(2): fee actually paid)
//!   ──► stages::compensation (SLA 3.1)
//!   ──► stages::claims       (SLA 3.2)
//!   ──► ledger + manifest, written atomically by `output`
//! ```
//!
//! Everything after `stages::calls` works on one small typed row per customer-month.

pub mod adjustments;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod explain;
pub mod generate;
pub mod inputs;
pub mod job;
pub mod journal;
pub(crate) mod lang;
pub(crate) mod ledger;
pub(crate) mod manifest;
pub mod manual;
pub(crate) mod output;
pub(crate) mod paths;
pub mod policy;
pub mod quarantine;
pub(crate) mod report;
pub mod run;
pub(crate) mod scope;
pub mod scratch;
pub(crate) mod stages;
pub mod storage;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod validate;
