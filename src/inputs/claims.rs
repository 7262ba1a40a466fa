//! `claims.csv` — compensation claims (SLA 3.2). A malformed row is fatal (file and line).

use std::path::Path;

use super::{parse_customer_id, read_optional};
use crate::error::InputError;
use crate::time::{parse_instant, YearMonth};

pub const COLUMNS: &[&str] = &[
    "claim_id",
    "customer_id",
    "service_month",
    "submitted_at",
    "channel",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub claim_id: String,
    pub customer_id: i64,
    pub service_month: YearMonth,
    /// UTC nanoseconds.
    pub submitted_at: i64,
    pub channel: String,
}

#[derive(Debug, Default)]
pub struct Claims {
    pub claims: Vec<Claim>,
}

impl Claims {
    pub fn load(data_dir: &Path) -> Result<Claims, InputError> {
        let records = read_optional(data_dir, "claims", COLUMNS)?;
        let claims = records
            .rows
            .iter()
            .map(|record| {
                Ok(Claim {
                    claim_id: records.required(record, "claim_id")?.to_string(),
                    customer_id: records.parse(record, "customer_id", parse_customer_id)?,
                    service_month: records.parse(record, "service_month", |t| t.parse())?,
                    submitted_at: records.parse(record, "submitted_at", parse_instant)?,
                    channel: records.required(record, "channel")?.to_string(),
                })
            })
            .collect::<Result<_, InputError>>()?;
        Ok(Claims { claims })
    }
}
