//! The auditor: a slow, row-by-row, obviously-correct model of the SPEC, written without the
//! crate's code, checked against the real pipeline on many generated data sets.
//!
//! It works on the scenario held in memory (not on the files), uses integer cents for money
//! and the CCC numbers written out here, and walks dates one day at a time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};

use crate::support::scenario::{Scenario, SECOND};
use crate::support::*;

const OFFSET: i64 = 8 * 3_600 * SECOND; // Asia/Shanghai has been UTC+8 without DST since 1991

fn local_date(ts: i64) -> NaiveDate {
    let days = (ts + OFFSET).div_euclid(86_400 * SECOND);
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days)
}

fn month_of(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn clause_number(clause: &str) -> u32 {
    clause.strip_prefix("5.").unwrap().parse().unwrap()
}

struct WorkCalendar {
    days: BTreeMap<NaiveDate, bool>,
    years: BTreeSet<i32>,
}

impl WorkCalendar {
    fn shipped() -> WorkCalendar {
        let text = std::fs::read_to_string(repo_root().join("jobs/calendar-cn.csv")).unwrap();
        let mut days = BTreeMap::new();
        let mut years = BTreeSet::new();
        for line in text.lines().skip(1) {
            let (d, k) = line.split_once(',').unwrap();
            let d: NaiveDate = d.parse().unwrap();
            years.insert(d.year());
            days.insert(d, k == "workday");
        }
        WorkCalendar { days, years }
    }

    fn working(&self, d: NaiveDate) -> bool {
        *self
            .days
            .get(&d)
            .unwrap_or(&!matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
    }
}

fn cents_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn parse_cents(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && (text.find('.').is_none()
            || (!frac.is_empty() && frac.len() <= 2 && frac.bytes().all(|b| b.is_ascii_digit())));
    if !ok {
        return None;
    }
    let frac_cents = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().unwrap() * 10,
        _ => frac.parse::<i64>().unwrap(),
    };
    Some(whole.parse::<i64>().unwrap() * 100 + frac_cents)
}

/// The ledger the SPEC says this scenario should produce, as `ledger.csv` text.
pub fn expected_ledger(s: &Scenario, customers: Option<&[i64]>) -> String {
    let as_of: NaiveDate = s.as_of.parse().unwrap();
    let months = ["2026-01", "2026-02"];
    let wanted = |c: i64| customers.is_none_or(|list| list.contains(&c));

    // Covered dates per customer, walking every day (SLA 1.2).
    let mut covered: BTreeMap<i64, BTreeSet<NaiveDate>> = BTreeMap::new();
    for (c, start, end) in &s.subscriptions {
        let start: NaiveDate = start.parse().unwrap();
        let end: NaiveDate = if end.is_empty() {
            "2026-12-31".parse().unwrap()
        } else {
            end.parse().unwrap()
        };
        if start > end || !wanted(*c) {
            continue;
        }
        let mut d = start;
        while d <= end {
            covered.entry(*c).or_default().insert(d);
            d = d.succ_opt().unwrap();
        }
    }

    // Valid rows, then one row per request id: the smallest version (SPEC §2).
    type Version = (i64, i64, Option<String>, String, Option<String>);
    let mut versions: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for row in s.all_calls() {
        let (Some(id), Some(c), Some(ts), Some(status)) =
            (row.request_id, row.customer_id, row.ts, row.status)
        else {
            continue;
        };
        if !["success", "client_error", "system_error"].contains(&status.as_str()) {
            continue;
        }
        versions
            .entry(id)
            .or_default()
            .push((ts, c, row.api, status, row.error_code));
    }
    let calls: Vec<(String, Version)> = versions
        .into_iter()
        .map(|(id, v)| (id, v.into_iter().min().unwrap()))
        .collect();

    let counted_month = |c: i64, ts: i64| -> Option<String> {
        let d = local_date(ts);
        let m = month_of(d);
        (months.contains(&m.as_str()) && covered.get(&c).is_some_and(|set| set.contains(&d)))
            .then_some(m)
    };
    let mut per_second: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for (_, (ts, c, ..)) in &calls {
        if counted_month(*c, *ts).is_some() {
            *per_second.entry((*c, ts.div_euclid(SECOND))).or_default() += 1;
        }
    }

    #[derive(Default)]
    struct Counts {
        total: u64,
        errors: u64,
        exempt: u64,
    }
    let mut counts: BTreeMap<(i64, String), Counts> = BTreeMap::new();
    for (id, (ts, c, _, status, code)) in &calls {
        let Some(m) = counted_month(*c, *ts) else {
            continue;
        };
        let entry = counts.entry((*c, m)).or_default();
        entry.total += 1;
        if status != "system_error" {
            continue;
        }
        entry.errors += 1;
        let mut clauses: Vec<u32> = Vec::new();
        for (ec, clause) in &s.error_codes {
            if code.as_deref() == Some(ec.as_str()) {
                clauses.push(clause_number(clause));
            }
        }
        for (rid, clause) in &s.exempt_calls {
            if rid == id {
                clauses.push(clause_number(clause));
            }
        }
        for w in &s.windows {
            let needs_notice = w.clause == "5.11" || w.clause == "5.12";
            let announced = w.announced.is_some_and(|a| a < w.start);
            if (!needs_notice || announced)
                && w.start <= *ts
                && *ts < w.end
                && w.customer.is_none_or(|wc| wc == *c)
            {
                clauses.push(clause_number(&w.clause));
            }
        }
        let burst = per_second[&(*c, ts.div_euclid(SECOND))] >= 5;
        let noticed = s
            .notices
            .iter()
            .any(|n| n.customer == *c && n.notified < n.start && n.start <= *ts && *ts < n.end);
        if burst && !noticed {
            clauses.push(7);
        }
        if !clauses.is_empty() {
            entry.exempt += 1;
        }
    }

    let calendar = WorkCalendar::shipped();
    let mut out = String::from("customer_id,service_month,period_start,period_end,provisional,total_calls,system_errors,exempt_errors,unavailable_calls,availability_pct,tier_rate,currency,monthly_fee,compensation,claim_status,claim_id,claim_opens,claim_deadline,payout,status\n");
    for (c, dates) in &covered {
        for m in months {
            let in_month: Vec<&NaiveDate> = dates.iter().filter(|d| month_of(**d) == m).collect();
            let (Some(first), Some(last)) = (in_month.first(), in_month.last()) else {
                continue;
            };
            let provisional = **last > as_of;
            let k = counts.get(&(*c, m.to_string()));
            let (total, errors, exempt) = k.map_or((0, 0, 0), |k| (k.total, k.errors, k.exempt));
            let unavailable = errors - exempt;
            let available = total - unavailable;
            let pct_e4 = (available * 1_000_000)
                .checked_div(total)
                .unwrap_or(1_000_000);
            // Tiers in integers: available/total >= 99.50 % <=> available*10000 >= 9950*total.
            let rate = if total == 0 || available * 10_000 >= 9_950 * total {
                0
            } else if available * 10_000 >= 9_900 * total {
                10
            } else if available * 10_000 >= 9_500 * total {
                30
            } else {
                50
            };
            let lines: Vec<_> = s
                .billing
                .iter()
                .filter(|b| b.customer == *c && b.period == m)
                .collect();
            let kinds = [
                "charge", "refund", "voucher", "coupon", "discount", "waiver",
            ];
            let defective = lines.iter().any(|b| {
                !kinds.contains(&b.kind.as_str())
                    || parse_cents(&b.amount).is_none()
                    || b.currency.is_empty()
            });
            let currencies: BTreeSet<&str> = lines.iter().map(|b| b.currency.as_str()).collect();
            let head = format!(
                "{c},{m},{first},{last},{provisional},{total},{errors},{exempt},{unavailable},{}.{:04},0.{rate:02}",
                pct_e4 / 10_000,
                pct_e4 % 10_000
            );
            if defective || currencies.len() > 1 {
                out.push_str(&format!("{head},,,,,,,,0.00,error\n"));
                continue;
            }
            let net: i64 = lines
                .iter()
                .map(|b| if b.kind == "charge" { 1 } else { -1 } * parse_cents(&b.amount).unwrap())
                .sum();
            let fee = net.max(0);
            let compensation = ((fee * rate + 50) / 100).min(fee);
            let currency = currencies.iter().next().copied().unwrap_or("");
            if compensation == 0 {
                out.push_str(&format!(
                    "{head},{currency},{},0.00,not_due,,,,0.00,ok\n",
                    cents_text(fee)
                ));
                continue;
            }
            let deadline = **last + Days::new(60);
            let next_first = NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").unwrap()
                + chrono::Months::new(1);
            assert!(calendar.years.contains(&next_first.year()));
            let mut d = next_first;
            let mut seen = 0;
            loop {
                if calendar.working(d) {
                    seen += 1;
                    if seen == 5 {
                        break;
                    }
                }
                d = d.succ_opt().unwrap();
            }
            let opens = d.succ_opt().unwrap();
            let (status, claim_id, payout) = if provisional {
                ("pending", String::new(), 0)
            } else {
                let valid = s
                    .claims
                    .iter()
                    .filter(|cl| {
                        let sub = local_date(cl.submitted);
                        cl.channel == "ticket"
                            && cl.customer == *c
                            && cl.month == m
                            && opens <= sub
                            && sub <= deadline
                            && sub <= as_of
                    })
                    .min_by(|a, b| (a.submitted, &a.id).cmp(&(b.submitted, &b.id)));
                match valid {
                    Some(cl) => ("valid", cl.id.clone(), compensation),
                    None if as_of <= deadline => ("open", String::new(), 0),
                    None => ("forfeited", String::new(), 0),
                }
            };
            out.push_str(&format!(
                "{head},{currency},{},{},{status},{claim_id},{opens},{deadline},{},ok\n",
                cents_text(fee),
                cents_text(compensation),
                cents_text(payout)
            ));
        }
    }
    out
}

fn run_pipeline(s: &Scenario, dir: &TempDir, extra: &[&str]) -> String {
    let data = dir.join("data");
    if !data.exists() {
        s.write(&data);
    }
    let out = dir.join("out");
    let mut args = vec!["--force"];
    args.extend_from_slice(extra);
    let output = run_ledger(&data, &out, &s.months, &s.as_of, &args);
    assert_success(&output);
    std::fs::read_to_string(out.join("ledger.csv")).unwrap()
}

/// The number of generated data sets the reference check runs (override with
/// `SLA_LEDGER_AUDIT_SEEDS`).
fn seeds() -> u64 {
    std::env::var("SLA_LEDGER_AUDIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[test]
fn the_pipeline_agrees_with_the_row_by_row_auditor_on_generated_data() {
    let mut seen = String::new();
    for seed in 0..seeds() {
        let s = crate::support::scenario::Scenario::random(seed);
        let dir = TempDir::new("auditor");
        let actual = run_pipeline(&s, &dir, &[]);
        let expected = expected_ledger(&s, None);
        if actual != expected {
            panic!("seed {seed}: pipeline and auditor disagree\n{}\n--- auditor\n{expected}\n--- pipeline\n{actual}", line_diff(&expected, &actual));
        }
        seen.push_str(&expected);
    }
    // The generated data must reach every outcome, or agreement proves little.
    for outcome in [
        ",pending,",
        ",valid,",
        ",open,",
        ",forfeited,",
        ",not_due,",
        ",error\n",
        ",0.10,",
        ",0.30,",
        ",0.50,",
        ",true,",
    ] {
        assert!(
            seen.contains(outcome),
            "no generated data set produced `{outcome}`"
        );
    }
    let exempting_rows = seen
        .lines()
        .skip(1)
        .filter(|l| {
            l.split(',')
                .nth(7)
                .is_some_and(|e| e != "0" && e != "exempt_errors")
        })
        .count();
    assert!(
        exempting_rows > 0,
        "no generated data set had an exempt error"
    );
}

#[test]
fn the_auditor_agrees_for_a_customer_subset() {
    for seed in 1000..1020 {
        let s = crate::support::scenario::Scenario::random(seed);
        let dir = TempDir::new("auditor-subset");
        let actual = run_pipeline(&s, &dir, &["--customers", "102,104"]);
        let expected = expected_ledger(&s, Some(&[102, 104]));
        assert!(
            actual == expected,
            "seed {seed}\n{}",
            line_diff(&expected, &actual)
        );
    }
}
