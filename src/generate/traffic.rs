//! Background traffic: a customer-month in, its calls out, with the errors its tier needs.

use chrono::{Days, NaiveDate};

use super::partition::{Call, Partition, MILLIS};
use super::plan::{Customer, Plan, Tier};
use super::rng::Rng;
use crate::time::local_day_start;

/// The error codes calls fail with; `exemptions/error_codes.csv` exempts the last two.
pub(super) const INTERNAL_ERROR: &str = "InternalError";
pub(super) const CALLEE_LIMITED: &str = "FailedOperation.CalleeIsLimited"; // exempt, 5.9
pub(super) const PHONE_INVALID: &str = "InvalidParameterValue.PhoneNumInvalid"; // exempt, 5.10

const APIS: [&str; 8] = [
    "CreateSDKLoginToken",
    "DescribeTelCallInfo",
    "CreateAutoCalloutTask",
    "DescribeCallInMetrics",
    "DescribeStaffInfoList",
    "BindStaffSkillGroupList",
    "DescribeTelCdr",
    "CreateCCCSkillGroup",
];

/// Background calls of one customer-month, plus its planted errors.
pub(super) fn write_customer_month(
    plan: &Plan,
    c: &Customer,
    month_index: usize,
    partition: &mut Partition,
    rng: &mut Rng,
    reviewed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let month = plan.months[month_index];
    let covered = plan.covered(c, month);
    if covered.is_empty() {
        return Ok(());
    }
    let calls = plan.allocation[c.index as usize][month_index];
    let unavailable = unavailable_calls(plan.tier(c, month_index), calls, rng);
    let exempt_by_code = (unavailable / 3).max(u64::from(rng.chance(400)));
    let time = CoveredTime::new(plan, &covered);
    for n in 0..calls {
        let ts = time.instant(rng);
        let (status, error_code) = outcome(n, unavailable, exempt_by_code, rng);
        let call = Call {
            request_id: Some(rng.request_id()),
            customer_id: Some(c.id),
            ts: Some(ts),
            api: Some(APIS[rng.below(APIS.len() as u64) as usize]),
            status: Some(status),
            error_code,
        };
        // Incident review classified some internal errors (per-call exemptions, 5.6).
        if n == 0 && unavailable > 2 && c.index % 5 == 2 {
            reviewed.push(call.request_id.clone().expect("id"));
        }
        if rng.chance(3) {
            partition.push_duplicate(call.clone())?;
        }
        partition.push(call)?;
    }
    Ok(())
}

/// How many of a customer-month's `calls` fail with an internal error, so that its
/// availability lands in `tier`.
fn unavailable_calls(tier: Tier, calls: u64, rng: &mut Rng) -> u64 {
    match tier {
        Tier::Fine => calls * rng.below(4) / 1000,
        Tier::Ten => (calls * 7 / 1000).max(1),
        Tier::Thirty => (calls * 25 / 1000).max(2),
        Tier::Fifty => (calls * 8 / 100).max(4),
    }
}

/// What call `n` of a customer-month returns: the first `unavailable` fail with an internal
/// error, the next `exempt_by_code` with an exempt code (5.9, 5.10), the rest mostly succeed.
fn outcome(
    n: u64,
    unavailable: u64,
    exempt_by_code: u64,
    rng: &mut Rng,
) -> (&'static str, Option<&'static str>) {
    if n < unavailable {
        ("system_error", Some(INTERNAL_ERROR))
    } else if n < unavailable + exempt_by_code {
        (
            "system_error",
            Some(if rng.chance(700) {
                CALLEE_LIMITED
            } else {
                PHONE_INVALID
            }),
        )
    } else if rng.chance(20) {
        ("client_error", Some("InvalidParameter"))
    } else {
        ("success", None)
    }
}

/// A customer's covered local days in a month, as UTC nanosecond spans `[start, end)`.
struct CoveredTime {
    day_starts: Vec<(i64, i64)>,
    total_span: i64,
}

impl CoveredTime {
    fn new(plan: &Plan, covered: &[(NaiveDate, NaiveDate)]) -> CoveredTime {
        let day_starts: Vec<(i64, i64)> = covered
            .iter()
            .map(|&(a, b)| {
                (
                    local_day_start(plan.tz, a),
                    local_day_start(plan.tz, b + Days::new(1)),
                )
            })
            .collect();
        let total_span = day_starts.iter().map(|(a, b)| b - a).sum();
        CoveredTime {
            day_starts,
            total_span,
        }
    }

    /// A whole millisecond inside the covered days, uniformly.
    fn instant(&self, rng: &mut Rng) -> i64 {
        let mut offset = (rng.below((self.total_span / MILLIS) as u64) as i64) * MILLIS;
        for (start, end) in &self.day_starts {
            if offset < end - start {
                return start + offset;
            }
            offset -= end - start;
        }
        self.day_starts[0].0
    }
}
