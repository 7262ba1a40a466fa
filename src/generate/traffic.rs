//! Background traffic: a customer-month in, its calls out, with the errors its tier needs.

use chrono::Days;

use super::partition::{Call, Partition};
use super::plan::{Customer, Plan, Tier};
use super::rng::Rng;
use super::{CALLEE_LIMITED, INTERNAL_ERROR, MILLIS, PHONE_INVALID};
use crate::time::local_day_start;

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
    let unavailable = match plan.tier(c, month_index) {
        Tier::Fine => calls * rng.below(4) / 1000,
        Tier::Ten => (calls * 7 / 1000).max(1),
        Tier::Thirty => (calls * 25 / 1000).max(2),
        Tier::Fifty => (calls * 8 / 100).max(4),
    };
    let exempt_by_code = (unavailable / 3).max(u64::from(rng.chance(400)));
    let day_starts: Vec<(i64, i64)> = covered
        .iter()
        .map(|&(a, b)| {
            (
                local_day_start(plan.tz, a),
                local_day_start(plan.tz, b + Days::new(1)),
            )
        })
        .collect();
    let total_span: i64 = day_starts.iter().map(|(a, b)| b - a).sum();
    let instant = |rng: &mut Rng| {
        let mut offset = (rng.below((total_span / MILLIS) as u64) as i64) * MILLIS;
        for (start, end) in &day_starts {
            if offset < end - start {
                return start + offset;
            }
            offset -= end - start;
        }
        day_starts[0].0
    };
    for n in 0..calls {
        let ts = instant(rng);
        let (status, error_code) = if n < unavailable {
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
        };
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
