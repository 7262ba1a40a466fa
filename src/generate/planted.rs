//! The planted cases of a month: the plan in, calls around every exemption source and defect out.
//!
//! Exemption windows (announced, late, unannounced, one customer's), bursts with and without
//! notice, defective rows, conflicting duplicates and a sub-millisecond tie; gives the
//! `windows.csv` and `notices.csv` rows that go with them.

use chrono::Days;

use super::partition::{Call, Partition};
use super::plan::{local, Plan};
use super::rng::Rng;
use super::{INTERNAL_ERROR, MILLIS};
use crate::time::NANOS_PER_SECOND;

pub(super) struct SmallTables {
    pub(super) windows: Vec<String>,
    pub(super) notices: Vec<String>,
}

/// Calls planted around the exemption windows, bursts, duplicates and defects of one month.
pub(super) fn write_planted(
    plan: &Plan,
    month_index: usize,
    partition: &mut Partition,
    rng: &mut Rng,
    tables: &mut SmallTables,
) -> anyhow::Result<()> {
    let month = plan.months[month_index];
    let call = |rng: &mut Rng,
                customer: i64,
                ts: i64,
                status: &'static str,
                code: Option<&'static str>| Call {
        request_id: Some(rng.request_id()),
        customer_id: Some(customer),
        ts: Some(ts),
        api: Some("CreateAutoCalloutTask"),
        status: Some(status),
        error_code: code,
    };
    let announced_day = Plan::day(month, 10);
    let windows = [
        // (id, clause, start, end, customer, announced)
        (
            format!("mw-{month}-a"),
            "5.12",
            local(plan, announced_day, 2, 0),
            local(plan, announced_day, 3, 0),
            None,
            Some(local(plan, announced_day - Days::new(3), 9, 0)),
        ),
        (
            format!("mw-{month}-late"),
            "5.12",
            local(plan, Plan::day(month, 20), 4, 0),
            local(plan, Plan::day(month, 20), 5, 0),
            None,
            Some(local(plan, Plan::day(month, 20), 4, 1)),
        ),
        (
            format!("fm-{month}"),
            "5.14",
            local(plan, Plan::day(month, 15), 2, 0),
            local(plan, Plan::day(month, 15), 2, 30),
            None,
            None,
        ),
        (
            format!("net-{month}"),
            "5.13",
            local(plan, Plan::day(month, 12), 1, 0),
            local(plan, Plan::day(month, 12), 2, 0),
            Some(plan.customers[7 % plan.customers.len()].id),
            None,
        ),
    ];
    for (id, clause, start, end, customer, announced) in &windows {
        let fmt = |t: &i64| crate::time::format_instant(*t);
        tables.windows.push(format!(
            "{id},{clause},{},{},{},{}",
            fmt(start),
            fmt(end),
            customer.map(|c| c.to_string()).unwrap_or_default(),
            announced.as_ref().map(fmt).unwrap_or_default()
        ));
        // Errors inside each window, for a few customers subscribed then.
        for c in plan
            .customers
            .iter()
            .filter(|c| customer.is_none_or(|id| id == c.id))
            .take(6)
        {
            if plan
                .covered(c, month)
                .iter()
                .any(|(a, b)| *a <= Plan::day(month, 20) && Plan::day(month, 10) <= *b)
            {
                let ts = start + (rng.below(((end - start) / MILLIS) as u64) as i64) * MILLIS;
                partition.push(call(rng, c.id, ts, "system_error", Some(INTERNAL_ERROR)))?;
            }
        }
    }

    // Bursts (5.7): customer 8 sends 5 calls in one second (exempt) and 4 (not exempt);
    // customer 9 notified its load in advance for the first half of the month.
    for (k, calls_in_second) in [(8usize, 5u32), (8, 4), (9, 6)] {
        let Some(c) = plan.customers.get(k) else {
            continue;
        };
        let day = Plan::day(month, 3 + calls_in_second);
        if !plan
            .covered(c, month)
            .iter()
            .any(|(a, b)| *a <= day && day <= *b)
        {
            continue;
        }
        let second = local(plan, day, 14, 0) + i64::from(calls_in_second) * NANOS_PER_SECOND;
        for n in 0..calls_in_second {
            let status = if n == 0 { "system_error" } else { "success" };
            let code = (n == 0).then_some(INTERNAL_ERROR);
            partition.push(call(
                rng,
                c.id,
                second + i64::from(n) * 100 * MILLIS,
                status,
                code,
            ))?;
        }
    }
    if let Some(c) = plan.customers.get(9) {
        let (start, end) = (
            local(plan, Plan::day(month, 1), 0, 0),
            local(plan, Plan::day(month, 16), 0, 0),
        );
        let fmt = crate::time::format_instant;
        let notified = if month_index % 2 == 0 {
            start - 86_400 * NANOS_PER_SECOND
        } else {
            start + 3_600 * NANOS_PER_SECOND
        };
        tables.notices.push(format!(
            "{},{},{},{}",
            c.id,
            fmt(start),
            fmt(end),
            fmt(notified)
        ));
    }

    // Defective rows: quarantined, never counted.
    let some = plan.customers[0].id;
    let mid = local(plan, Plan::day(month, 14), 12, 0);
    let mut defect = call(rng, some, mid, "success", None);
    defect.request_id = None;
    partition.push(defect)?;
    let mut defect = call(rng, some, mid, "success", None);
    defect.customer_id = None;
    partition.push(defect)?;
    partition.push(call(rng, some, mid, "timeout", None))?;
    let mut defect = call(rng, some, mid, "success", None);
    defect.ts = None;
    partition.push(defect)?;

    // Conflicting duplicates: the same id delivered with different content; the smallest
    // (by ts, then customer, api, status, error_code) is kept.
    let id = rng.request_id();
    let first = call(
        rng,
        some,
        mid + 5 * MILLIS,
        "system_error",
        Some(INTERNAL_ERROR),
    );
    let second = Call {
        status: Some("success"),
        error_code: None,
        ..first.clone()
    };
    partition.push(Call {
        request_id: Some(id.clone()),
        ..first.clone()
    })?;
    partition.push_duplicate(Call {
        request_id: Some(id.clone()),
        ..second
    })?;
    // Sub-millisecond difference: only full precision tells them apart.
    let precise = rng.request_id();
    partition.push_precise(Call {
        request_id: Some(precise.clone()),
        ts: Some(mid + 7 * MILLIS + 1),
        ..first.clone()
    })?;
    partition.push_precise(Call {
        request_id: Some(precise),
        ts: Some(mid + 7 * MILLIS),
        status: Some("success"),
        error_code: None,
        ..first
    })?;
    Ok(())
}
