//! Takes the tally of kept calls and the system errors' details; gives each service month's
//! counts with every counted system error attributed to its smallest exempting clause
//! (SPEC §4, SLA 5).

use rayon::prelude::*;

use super::read::ErrorDetails;
use super::tally::{CountedError, CustomerSecond, Tally};
use super::{HeavyStepInput, MonthCallCounts};
use crate::policy::Clause;
use crate::stages::exemptions::{ExemptionRules, SystemError};

/// Totals per month, and each counted system error attributed to its clause (SPEC §4).
pub(super) fn attribute(
    input: &HeavyStepInput,
    tally: &Tally,
    errors: &ErrorDetails,
) -> anyhow::Result<Vec<MonthCallCounts>> {
    let mut months: Vec<MonthCallCounts> = tally
        .totals
        .iter()
        .map(|&total_calls| MonthCallCounts {
            total_calls,
            ..MonthCallCounts::default()
        })
        .collect();
    let rules = ExemptionRules::new(input.exemptions, input.policy);
    let outcomes: Vec<(u32, Option<Clause>)> = tally
        .errors
        .par_iter()
        .map(|counted| {
            let error = system_error(counted, tally, errors)?;
            Ok((counted.month_index, rules.attribute(&error)))
        })
        .collect::<anyhow::Result<_>>()?;
    for (month, clause) in outcomes {
        let month = &mut months[month as usize];
        month.system_errors += 1;
        if let Some(clause) = clause {
            *month.exempt_by_clause.entry(clause).or_default() += 1;
        }
    }
    Ok(months)
}

/// The counted system errors of `customer_id`, in full, as attribution sees them.
pub(super) fn system_errors_of(
    customer_id: i64,
    tally: &Tally,
    errors: &ErrorDetails,
) -> anyhow::Result<Vec<SystemError>> {
    tally
        .errors
        .iter()
        .filter(|counted| counted.customer_id == customer_id)
        .map(|counted| system_error(counted, tally, errors))
        .collect()
}

/// A counted system error in full: its detail, and the counted calls of its customer's second.
fn system_error(
    counted: &CountedError,
    tally: &Tally,
    errors: &ErrorDetails,
) -> anyhow::Result<SystemError> {
    let &CountedError {
        id,
        content,
        customer_id,
        ts,
        ..
    } = counted;
    // Every counted system error's detail was kept when its row was read.
    let detail = errors
        .get(&(id, content))
        .ok_or_else(|| anyhow::anyhow!("a counted system error has no detail"))?;
    Ok(SystemError {
        request_id: detail.request_id.to_string(),
        customer_id,
        ts,
        error_code: detail.error_code.as_deref().map(str::to_string),
        calls_in_second: tally
            .seconds
            .get(&CustomerSecond::of(customer_id, ts))
            .copied()
            .unwrap_or(1),
    })
}
