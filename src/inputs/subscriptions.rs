//! `subscriptions.csv` — periods of service (SLA 1.2). Required.
//!
//! Gives one [`Period`] per valid row; a row whose start is after its end is quarantined.
//! A row that cannot be parsed is fatal (file and line).

use std::path::Path;

use chrono::NaiveDate;

use super::{parse_customer_id, read_required};
use crate::error::InputError;
use crate::quarantine::{Quarantine, Reason};
use crate::time::parse_date;

pub const COLUMNS: &[&str] = &["customer_id", "start_date", "end_date"];

/// One purchased period; `end` is inclusive, `None` means ongoing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    pub customer_id: i64,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Default)]
pub struct Subscriptions {
    pub periods: Vec<Period>,
}

impl Subscriptions {
    pub fn load(data_dir: &Path, quarantine: &mut Quarantine) -> Result<Subscriptions, InputError> {
        let records = read_required(data_dir, "subscriptions", COLUMNS)?;
        let mut periods = Vec::with_capacity(records.rows.len());
        for record in &records.rows {
            let customer_id = records.parse(record, "customer_id", parse_customer_id)?;
            let start = records.parse(record, "start_date", parse_date)?;
            let end = match records.cell(record, "end_date") {
                Some(text) => Some(parse_date(text).map_err(|problem| {
                    InputError::new(records.location(record, "end_date"), problem)
                })?),
                None => None,
            };
            if end.is_some_and(|end| start > end) {
                quarantine.add(
                    &records.file,
                    Some(record.position),
                    Reason::StartAfterEnd,
                    format!(
                        "customer {customer_id}: start_date {start} is after end_date {}",
                        end.unwrap()
                    ),
                );
                continue;
            }
            periods.push(Period {
                customer_id,
                start,
                end,
            });
        }
        Ok(Subscriptions { periods })
    }
}
