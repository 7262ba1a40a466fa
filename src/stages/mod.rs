//! Pure steps, in the order the data flows:
//! service months → calls (the heavy step, with exemptions) → pricing (availability → billing
//! → compensation → claims, one month at a time) → error budgets.

pub mod availability;
pub mod billing;
pub mod calls;
pub mod claims;
pub mod compensation;
pub mod error_budget;
pub mod exemptions;
pub mod intervals;
pub mod pricing;
pub mod service_months;
