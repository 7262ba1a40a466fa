//! `claims.csv` — compensation claims (SLA 3.2). A malformed row is fatal (file and line).

use super::{parse_customer_id, parse_identifier, read_optional};
use crate::error::InputError;
use crate::inputs::problems::Problems;
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
    pub fn load(
        data_dir: &crate::inputs::source::DataSource,
        problems: &mut Problems,
    ) -> Result<Claims, InputError> {
        let records = read_optional(data_dir, "claims", COLUMNS, problems)?;
        let mut claims = Vec::with_capacity(records.rows.len());
        for record in &records.rows {
            let claim_id = problems.check(records.parse(record, "claim_id", parse_identifier))?;
            let customer_id =
                problems.check(records.parse(record, "customer_id", parse_customer_id))?;
            let service_month =
                problems.check(records.parse(record, "service_month", |t| t.parse()))?;
            let submitted_at =
                problems.check(records.parse(record, "submitted_at", parse_instant))?;
            let channel = problems.check(records.required(record, "channel"))?;
            let (
                Some(claim_id),
                Some(customer_id),
                Some(service_month),
                Some(submitted_at),
                Some(channel),
            ) = (claim_id, customer_id, service_month, submitted_at, channel)
            else {
                continue;
            };
            claims.push(Claim {
                claim_id: claim_id.to_string(),
                customer_id,
                service_month,
                submitted_at,
                channel: channel.to_string(),
            });
        }
        Ok(Claims { claims })
    }
}
