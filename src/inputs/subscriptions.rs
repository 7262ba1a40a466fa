//! `subscriptions.csv` — periods of service (SLA 1.2). Required.
//!
//! Gives one [`Period`] per valid row; a row whose start is after its end is quarantined.
//! A row that cannot be parsed is fatal (file and line).

use chrono::NaiveDate;

use super::{parse_customer_id, read_required};
use crate::error::InputError;
use crate::inputs::problems::Problems;
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
    pub fn load(
        data_dir: &crate::inputs::source::DataSource,
        quarantine: &mut Quarantine,
        problems: &mut Problems,
    ) -> Result<Subscriptions, InputError> {
        let records = read_required(data_dir, "subscriptions", COLUMNS, problems)?;
        let mut periods = Vec::with_capacity(records.rows.len());
        for record in &records.rows {
            let customer_id =
                problems.check(records.parse(record, "customer_id", parse_customer_id))?;
            let start = problems.check(records.parse(record, "start_date", parse_date))?;
            let end = records
                .cell(record, "end_date")
                .map(|text| {
                    parse_date(text).map_err(|problem| {
                        InputError::new(records.location(record, "end_date"), problem)
                    })
                })
                .transpose();
            let end = problems.check(end)?;
            let (Some(customer_id), Some(start), Some(end)) = (customer_id, start, end) else {
                continue;
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
