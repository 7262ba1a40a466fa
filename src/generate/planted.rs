//! The planted cases of a month: the plan in, calls around every exemption source and defect out.
//!
//! Exemption windows (announced, late, unannounced, one customer's), bursts with and without
//! notice, defective rows, conflicting duplicates and a sub-millisecond tie; gives the
//! `windows.csv` and `notices.csv` rows that go with them.

use chrono::Days;

use super::partition::{Call, Partition, MILLIS};
use super::plan::{local, Plan};
use super::rng::Rng;
use super::traffic::INTERNAL_ERROR;
use crate::time::{YearMonth, NANOS_PER_SECOND};

/// The rows of `exemptions/windows.csv` and `exemptions/notices.csv` the planted calls go with.
pub(super) struct SmallTables {
    pub(super) windows: Vec<String>,
    pub(super) notices: Vec<String>,
}

/// Calls planted around the exemption windows, bursts, duplicates and defects of one month.
/// The order of the steps is the order the random stream is drawn in: changing it changes
/// every later byte.
pub(super) fn write_planted(
    plan: &Plan,
    month_index: usize,
    partition: &mut Partition,
    rng: &mut Rng,
    tables: &mut SmallTables,
) -> anyhow::Result<()> {
    let month = plan.months[month_index];
    for window in exemption_windows(plan, month) {
        tables.windows.push(window.line());
        write_window_errors(plan, month, &window, partition, rng)?;
    }
    write_bursts(plan, month, partition, rng)?;
    tables.notices.extend(notice_line(plan, month, month_index));
    write_defects(plan, month, partition, rng)?;
    write_conflicting_duplicates(plan, month, partition, rng)
}

/// A planted call of `customer` at `ts`, drawing its request id from `rng`.
fn planted_call(
    rng: &mut Rng,
    customer: i64,
    ts: i64,
    status: &'static str,
    code: Option<&'static str>,
) -> Call {
    Call {
        request_id: Some(rng.request_id()),
        customer_id: Some(customer),
        ts: Some(ts),
        api: Some("CreateAutoCalloutTask"),
        status: Some(status),
        error_code: code,
    }
}

/// One row of `exemptions/windows.csv`; instants in UTC nanoseconds.
struct Window {
    id: String,
    clause: &'static str,
    start: i64,
    end: i64,
    /// `None`: every customer.
    customer: Option<i64>,
    announced: Option<i64>,
}

impl Window {
    fn line(&self) -> String {
        let fmt = |t: &i64| crate::time::format_instant(*t);
        format!(
            "{},{},{},{},{},{}",
            self.id,
            self.clause,
            fmt(&self.start),
            fmt(&self.end),
            self.customer.map(|c| c.to_string()).unwrap_or_default(),
            self.announced.as_ref().map(fmt).unwrap_or_default()
        )
    }
}

/// A month's windows: maintenance announced in time (5.12), maintenance announced after it
/// began, an unannounced force majeure (5.14) and one customer's network fault (5.13).
fn exemption_windows(plan: &Plan, month: YearMonth) -> [Window; 4] {
    let announced_day = Plan::day(month, 10);
    [
        Window {
            id: format!("mw-{month}-a"),
            clause: "5.12",
            start: local(plan, announced_day, 2, 0),
            end: local(plan, announced_day, 3, 0),
            customer: None,
            announced: Some(local(plan, announced_day - Days::new(3), 9, 0)),
        },
        Window {
            id: format!("mw-{month}-late"),
            clause: "5.12",
            start: local(plan, Plan::day(month, 20), 4, 0),
            end: local(plan, Plan::day(month, 20), 5, 0),
            customer: None,
            announced: Some(local(plan, Plan::day(month, 20), 4, 1)),
        },
        Window {
            id: format!("fm-{month}"),
            clause: "5.14",
            start: local(plan, Plan::day(month, 15), 2, 0),
            end: local(plan, Plan::day(month, 15), 2, 30),
            customer: None,
            announced: None,
        },
        Window {
            id: format!("net-{month}"),
            clause: "5.13",
            start: local(plan, Plan::day(month, 12), 1, 0),
            end: local(plan, Plan::day(month, 12), 2, 0),
            customer: Some(plan.customers[7 % plan.customers.len()].id),
            announced: None,
        },
    ]
}

/// Errors inside a window, for a few of its customers subscribed then.
fn write_window_errors(
    plan: &Plan,
    month: YearMonth,
    window: &Window,
    partition: &mut Partition,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    let (start, end) = (window.start, window.end);
    for c in plan
        .customers
        .iter()
        .filter(|c| window.customer.is_none_or(|id| id == c.id))
        .take(6)
    {
        if plan
            .covered(c, month)
            .iter()
            .any(|(a, b)| *a <= Plan::day(month, 20) && Plan::day(month, 10) <= *b)
        {
            let ts = start + (rng.below(((end - start) / MILLIS) as u64) as i64) * MILLIS;
            partition.push(planted_call(
                rng,
                c.id,
                ts,
                "system_error",
                Some(INTERNAL_ERROR),
            ))?;
        }
    }
    Ok(())
}

/// Bursts (5.7): customer 8 sends 5 calls in one second (exempt) and 4 (not exempt);
/// customer 9 notified its load in advance for the first half of the month.
fn write_bursts(
    plan: &Plan,
    month: YearMonth,
    partition: &mut Partition,
    rng: &mut Rng,
) -> anyhow::Result<()> {
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
            partition.push(planted_call(
                rng,
                c.id,
                second + i64::from(n) * 100 * MILLIS,
                status,
                code,
            ))?;
        }
    }
    Ok(())
}

/// Customer 9's notice of high load for the first half of the month: in advance in even
/// months, an hour late in odd ones. `None` when there is no customer 9.
fn notice_line(plan: &Plan, month: YearMonth, month_index: usize) -> Option<String> {
    let c = plan.customers.get(9)?;
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
    Some(format!(
        "{},{},{},{}",
        c.id,
        fmt(start),
        fmt(end),
        fmt(notified)
    ))
}

/// The first customer's mid-month instant that the defects and conflicts are planted at.
fn defect_site(plan: &Plan, month: YearMonth) -> (i64, i64) {
    (
        plan.customers[0].id,
        local(plan, Plan::day(month, 14), 12, 0),
    )
}

/// Defective rows: quarantined, never counted.
fn write_defects(
    plan: &Plan,
    month: YearMonth,
    partition: &mut Partition,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    let (some, mid) = defect_site(plan, month);
    let mut defect = planted_call(rng, some, mid, "success", None);
    defect.request_id = None;
    partition.push(defect)?;
    let mut defect = planted_call(rng, some, mid, "success", None);
    defect.customer_id = None;
    partition.push(defect)?;
    partition.push(planted_call(rng, some, mid, "timeout", None))?;
    let mut defect = planted_call(rng, some, mid, "success", None);
    defect.ts = None;
    partition.push(defect)
}

/// Conflicting duplicates: the same id delivered with different content; the smallest (by
/// ts, then customer, api, status, error_code) is kept. Then a pair a sub-millisecond apart.
fn write_conflicting_duplicates(
    plan: &Plan,
    month: YearMonth,
    partition: &mut Partition,
    rng: &mut Rng,
) -> anyhow::Result<()> {
    let (some, mid) = defect_site(plan, month);
    let id = rng.request_id();
    let first = planted_call(
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
    })
}
