//! The small tables: the plan and the planted cases in, every CSV beside `calls/` out.
//!
//! `subscriptions.csv`, `billing.csv`, `claims.csv` and `exemptions/` (error codes, reviewed
//! calls, windows, notices), each with its planted defects: a subscription with its dates
//! swapped, billing with a second currency, a bad amount or an unknown kind, claims filed too
//! early, too late or on the wrong channel.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use chrono::Days;

use super::plan::{local, Plan, Tier};
use super::planted::SmallTables;
use super::rng::Rng;
use super::traffic::{CALLEE_LIMITED, PHONE_INVALID};
use crate::inputs::calendar::Calendar;
use crate::policy::Policy;
use crate::stages::claims::claim_opens;

/// `subscriptions.csv`, `billing.csv`, `claims.csv` and `exemptions/*.csv` of the data set.
/// Billing draws from `rng` before claims.
pub(super) fn write_tables(
    plan: &Plan,
    out: &Path,
    rng: &mut Rng,
    reviewed: &[String],
    planted: &SmallTables,
) -> anyhow::Result<()> {
    write_text(
        &out.join("subscriptions.csv"),
        "customer_id,start_date,end_date",
        &subscription_lines(plan),
    )?;
    write_text(
        &out.join("billing.csv"),
        "customer_id,period,kind,amount,currency",
        &billing_lines(plan, rng),
    )?;
    write_text(
        &out.join("claims.csv"),
        "claim_id,customer_id,service_month,submitted_at,channel",
        &claim_lines(plan, rng),
    )?;
    write_text(
        &out.join("exemptions/error_codes.csv"),
        "error_code,clause",
        &[
            format!("{CALLEE_LIMITED},5.9"),
            format!("{PHONE_INVALID},5.10"),
        ],
    )?;
    write_text(
        &out.join("exemptions/calls.csv"),
        "request_id,clause",
        &review_lines(reviewed),
    )?;
    write_text(
        &out.join("exemptions/windows.csv"),
        "window_id,clause,start,end,customer_id,announced_at",
        &planted.windows,
    )?;
    write_text(
        &out.join("exemptions/notices.csv"),
        "customer_id,start,end,notified_at",
        &planted.notices,
    )?;
    Ok(())
}

/// One row per subscription period of each customer, and one with its dates swapped.
fn subscription_lines(plan: &Plan) -> Vec<String> {
    let mut subscriptions: Vec<String> = plan
        .customers
        .iter()
        .flat_map(|c| {
            plan.periods(c).into_iter().map(move |(start, end)| {
                format!(
                    "{},{start},{}",
                    c.id,
                    end.map(|e| e.to_string()).unwrap_or_default()
                )
            })
        })
        .collect();
    // A row with its dates swapped: quarantined.
    let swapped = plan.customers[6 % plan.customers.len()].id;
    subscriptions.push(format!(
        "{swapped},{},{}",
        plan.first().last_day(),
        plan.first().first_day()
    ));
    subscriptions
}

/// Per-call exemptions (5.6) of the reviewed calls; the first is listed twice.
fn review_lines(reviewed: &[String]) -> Vec<String> {
    let mut reviews: Vec<String> = reviewed.iter().map(|id| format!("{id},5.6")).collect();
    if let Some(first) = reviewed.first() {
        reviews.push(format!("{first},5.15")); // listed twice: the smaller clause wins
    }
    reviews
}

fn write_text(path: &Path, header: &str, lines: &[String]) -> anyhow::Result<()> {
    let mut out = BufWriter::new(
        File::create(path)
            .with_context(|| format!("cannot create `{}`", crate::paths::shown(path)))?,
    );
    writeln!(out, "{header}")?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn billing_lines(plan: &Plan, rng: &mut Rng) -> Vec<String> {
    let mut lines = Vec::new();
    for c in &plan.customers {
        for (m, month) in plan.months.iter().enumerate() {
            if plan.covered(c, *month).is_empty() {
                continue;
            }
            let k = c.index as usize;
            if k == 13 % plan.customers.len() && m == 1 {
                continue; // no billing rows: fee 0.00, currency empty
            }
            let charge = 100_000 + rng.below(4_900_000);
            let mut push = |kind: &str, cents: u64, currency: &str| {
                lines.push(format!(
                    "{},{month},{kind},{},{currency}",
                    c.id,
                    money(cents)
                ));
            };
            push("charge", charge, c.currency);
            if k == 14 % plan.customers.len() && m == 0 {
                push("voucher", charge + 5_000, c.currency); // more voucher than charge: fee 0
            } else if rng.chance(300) {
                push("voucher", charge * (10 + rng.below(30)) / 100, c.currency);
            }
            if rng.chance(100) {
                push("coupon", charge / 20, c.currency);
            }
            if rng.chance(60) {
                push("refund", charge / 10, c.currency);
            }
            if rng.chance(50) {
                push("waiver", charge / 25, c.currency);
            }
            if rng.chance(40) {
                push("discount", charge / 50, c.currency);
            }
            if k == 10 % plan.customers.len() && m == 0 {
                push("charge", 10_000, "USD"); // second currency: error row
            }
            if k == 11 % plan.customers.len() && m == 1 {
                lines.push(format!("{},{month},charge,12.345,{}", c.id, c.currency));
                // bad amount
            }
            if k == 12 % plan.customers.len() && m + 1 == plan.months.len() {
                lines.push(format!("{},{month},rebate,5.00,{}", c.id, c.currency));
                // unknown kind
            }
        }
    }
    lines
}

fn claim_lines(plan: &Plan, rng: &mut Rng) -> Vec<String> {
    let calendar = Calendar::builtin();
    let policy = Policy::ccc();
    let fmt = crate::time::format_instant;
    let mut lines = Vec::new();
    let mut next_id = 1;
    for c in &plan.customers {
        for (m, month) in plan.months.iter().enumerate() {
            if plan.covered(c, *month).is_empty()
                || plan.tier(c, m) == Tier::Fine
                || rng.chance(250)
            {
                continue;
            }
            let Ok(opens) = claim_opens(*month, &calendar, &policy) else {
                continue;
            };
            let (date, hour, channel) = match rng.below(6) {
                0 => (opens - Days::new(1), 23, "ticket"), // a day early
                1 => (opens, 0, "ticket"),                 // first moment of the window
                2 => (opens + Days::new(3), 10, "email"),  // wrong channel
                3 => (month.last_day() + Days::new(75), 9, "ticket"), // too late
                _ => (opens + Days::new(rng.below(20)), 15, "ticket"),
            };
            let ts = local(plan, date, hour, 0);
            lines.push(format!(
                "T{next_id:07},{},{month},{},{channel}",
                c.id,
                fmt(ts)
            ));
            next_id += 1;
        }
    }
    lines
}
