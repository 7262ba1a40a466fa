//! Pure steps, in the order the data flows:
//! service months → calls (the heavy step, with exemptions) → availability → billing
//! → compensation → claims.

pub mod availability;
pub mod billing;
pub mod calls;
pub mod claims;
pub mod compensation;
pub mod error_budget;
pub mod exemptions;
pub mod intervals;
pub mod service_months;
