//! Random but reproducible data sets for property and reference tests: small, dense with edge
//! cases (duplicates, conflicts, defects, bursts, windows, notices, gaps, billing defects,
//! claims on the window's edges), held in memory so a test can also compute the answer itself.

use std::fs;
use std::path::Path;

use polars::prelude::TimeUnit;

use super::{write_calls_parquet, CallRow};

pub const HOUR: i64 = 3_600_000_000_000;
pub const DAY: i64 = 24 * HOUR;
pub const SECOND: i64 = 1_000_000_000;
/// 2025-12-01T00:00:00+08:00 in UTC nanoseconds.
pub const BASE: i64 = 1_764_518_400 * SECOND;

/// splitmix64, for reproducible scenarios.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Debug, Clone)]
pub struct Window {
    pub id: String,
    pub clause: String,
    pub start: i64,
    pub end: i64,
    pub customer: Option<i64>,
    pub announced: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Notice {
    pub customer: i64,
    pub start: i64,
    pub end: i64,
    pub notified: i64,
}

#[derive(Debug, Clone)]
pub struct BillingLine {
    pub customer: i64,
    pub period: String,
    pub kind: String,
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone)]
pub struct ClaimLine {
    pub id: String,
    pub customer: i64,
    pub month: String,
    pub submitted: i64,
    pub channel: String,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub files: Vec<Vec<CallRow>>,
    /// `(customer, start, end)` as ISO dates; end empty = ongoing.
    pub subscriptions: Vec<(i64, String, String)>,
    pub billing: Vec<BillingLine>,
    pub error_codes: Vec<(String, String)>,
    pub exempt_calls: Vec<(String, String)>,
    pub windows: Vec<Window>,
    pub notices: Vec<Notice>,
    pub claims: Vec<ClaimLine>,
    pub months: String,
    pub as_of: String,
}

pub fn iso(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn date_text(day_offset: i64) -> String {
    // Day 0 is 2025-12-01.
    (chrono::NaiveDate::from_ymd_opt(2025, 12, 1).unwrap() + chrono::Days::new(day_offset as u64))
        .to_string()
}

pub const CUSTOMERS: [i64; 4] = [101, 102, 103, 104];

impl Scenario {
    pub fn random(seed: u64) -> Scenario {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
        let mut subscriptions = Vec::new();
        for &c in &CUSTOMERS {
            for _ in 0..1 + rng.below(3) {
                let start = rng.below(100) as i64; // 2025-12-01 .. 2026-03-10
                let end = if rng.chance(40) {
                    String::new()
                } else {
                    date_text(start + rng.below(60) as i64)
                };
                subscriptions.push((c, date_text(start), end));
            }
        }
        if rng.chance(30) {
            subscriptions.push((*rng.pick(&CUSTOMERS), date_text(50), date_text(40)));
            // swapped
        }

        // Calls: a small id pool so duplicates and conflicts are common; hot seconds for bursts.
        let rows = 300 + rng.below(1200);
        let pool = rows * 9 / 10;
        let hot: Vec<(i64, i64)> = (0..6)
            .map(|_| {
                (
                    *rng.pick(&CUSTOMERS),
                    BASE + (25 + rng.below(70) as i64) * DAY + rng.below(86_400) as i64 * SECOND,
                )
            })
            .collect();
        // From a clean month to a bad one, so every tier shows up across seeds.
        let error_per_mille = *rng.pick(&[5, 10, 15, 30, 200]);
        let mut calls: Vec<CallRow> = Vec::new();
        for _ in 0..rows {
            let id = format!("r{}", rng.below(pool));
            let copy_of = calls
                .iter()
                .rposition(|c| c.request_id.as_deref() == Some(id.as_str()));
            if let Some(i) = copy_of {
                if rng.chance(70) {
                    calls.push(calls[i].clone()); // an exact re-delivery
                    continue;
                }
            }
            let (customer, ts) = {
                // Mostly inside the two service months, some before and after them.
                let days = if rng.chance(85) {
                    31 + rng.below(59)
                } else {
                    rng.below(120)
                };
                (
                    *rng.pick(&CUSTOMERS),
                    BASE + (days * 86_400_000 + rng.below(86_400_000)) as i64 * 1_000_000,
                )
            };
            let roll = rng.below(1000);
            let status = match roll {
                0..=4 => None,
                5..=9 => Some("timeout".to_string()),
                10..=59 => Some("client_error".to_string()),
                _ if roll < 60 + error_per_mille => Some("system_error".to_string()),
                _ => Some("success".to_string()),
            };
            let error_code = match status.as_deref() {
                Some("system_error") => rng
                    .pick(&[Some("InternalError"), Some("E59"), Some("E510"), None])
                    .map(str::to_string),
                Some("client_error") => Some("InvalidParameter".to_string()),
                _ => None,
            };
            calls.push(CallRow {
                request_id: (!rng.chance(1)).then_some(id),
                customer_id: (!rng.chance(1)).then_some(customer),
                ts: (!rng.chance(1)).then_some(ts),
                api: rng.pick(&[Some("a"), Some("b"), None]).map(str::to_string),
                status,
                error_code,
            });
        }
        // Bursts of exactly 3 to 6 calls in one second, each with a system error, some with
        // a duplicate delivery (which must count once).
        for (k, &(customer, second)) in hot.iter().enumerate() {
            let size = 3 + rng.below(4);
            for n in 0..size {
                let call = CallRow {
                    request_id: Some(format!("burst{seed}-{k}-{n}")),
                    customer_id: Some(customer),
                    ts: Some(second + rng.below(1000) as i64 * 1_000_000),
                    api: Some("a".to_string()),
                    status: Some(if n == 0 { "system_error" } else { "success" }.to_string()),
                    error_code: (n == 0).then(|| "InternalError".to_string()),
                };
                if rng.chance(20) {
                    calls.push(call.clone());
                }
                calls.push(call);
            }
        }
        // Shuffle, then deal into 1 to 3 files.
        for i in (1..calls.len()).rev() {
            calls.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let file_count = 1 + rng.below(3) as usize;
        let mut files = vec![Vec::new(); file_count];
        for (i, call) in calls.into_iter().enumerate() {
            files[i % file_count].push(call);
        }

        let error_codes = vec![
            ("E59".into(), "5.9".into()),
            ("E510".into(), "5.10".into()),
            ("E59".into(), "5.3".into()),
        ];
        let exempt_calls = (0..4)
            .map(|_| {
                (
                    format!("r{}", rng.below(pool)),
                    rng.pick(&["5.6", "5.15", "5.1"]).to_string(),
                )
            })
            .collect();
        let windows = (0..4)
            .map(|i| {
                let start = BASE + (25 + rng.below(70) as i64) * DAY + rng.below(24) as i64 * HOUR;
                let announced = match rng.below(3) {
                    0 => None,
                    1 => Some(start - DAY),
                    _ => Some(start + SECOND),
                };
                Window {
                    id: format!("w{i}"),
                    clause: rng.pick(&["5.11", "5.12", "5.13", "5.14"]).to_string(),
                    start,
                    end: start + (1 + rng.below(48) as i64) * HOUR,
                    customer: rng.chance(50).then(|| *rng.pick(&CUSTOMERS)),
                    announced,
                }
            })
            .collect();
        let mut notices = Vec::new();
        for &(c, second) in &hot {
            if rng.chance(50) {
                let notified = if rng.chance(70) {
                    second - 2 * HOUR
                } else {
                    second - HOUR
                };
                notices.push(Notice {
                    customer: c,
                    start: second - HOUR,
                    end: second + HOUR,
                    notified,
                });
            }
        }

        let mut billing = Vec::new();
        let mut claims = Vec::new();
        for &c in &CUSTOMERS {
            for (m, month) in ["2026-01", "2026-02"].iter().enumerate() {
                if rng.chance(10) {
                    continue;
                }
                let currency = if c == 104 { "USD" } else { "CNY" };
                let charge = 1 + rng.below(2_000_000);
                let cents = |v: u64| format!("{}.{:02}", v / 100, v % 100);
                let mut line = |kind: &str, amount: String, currency: &str| {
                    billing.push(BillingLine {
                        customer: c,
                        period: month.to_string(),
                        kind: kind.into(),
                        amount,
                        currency: currency.into(),
                    });
                };
                line("charge", cents(charge), currency);
                for kind in ["refund", "voucher", "coupon", "discount", "waiver"] {
                    if rng.chance(15) {
                        line(kind, cents(rng.below(charge + 1000)), currency);
                    }
                }
                match rng.below(30) {
                    0 => line("charge", "1.234".into(), currency),
                    1 => line("rebate", "5.00".into(), currency),
                    2 => line("charge", "5.00".into(), "EUR"),
                    3 => line("charge", "7".into(), currency),
                    _ => {}
                }
                for k in 0..rng.below(3) {
                    // From the month's end to 90 days later, at any hour.
                    let month_end = BASE + (31 + 31 * m as i64) * DAY;
                    let submitted =
                        month_end + rng.below(90) as i64 * DAY + rng.below(24) as i64 * HOUR
                            - 8 * HOUR;
                    claims.push(ClaimLine {
                        id: format!("T{c}{m}{k}"),
                        customer: c,
                        month: month.to_string(),
                        submitted,
                        channel: if rng.chance(80) {
                            "ticket".into()
                        } else {
                            "email".into()
                        },
                    });
                }
            }
        }
        let as_of = date_text(45 + rng.below(170) as i64);
        Scenario {
            files,
            subscriptions,
            billing,
            error_codes,
            exempt_calls,
            windows,
            notices,
            claims,
            months: "2026-01..2026-02".into(),
            as_of,
        }
    }

    /// Writes the scenario as a SPEC data folder.
    pub fn write(&self, dir: &Path) {
        fs::create_dir_all(dir.join("exemptions")).unwrap();
        let units = [
            (TimeUnit::Milliseconds, true),
            (TimeUnit::Microseconds, true),
            (TimeUnit::Nanoseconds, false),
        ];
        for (i, rows) in self.files.iter().enumerate() {
            let (unit, utc) = units[i % units.len()];
            // Millisecond files cannot hold finer instants; scenarios use whole milliseconds.
            write_calls_parquet(
                &dir.join(format!("calls/f{i}/part.parquet")),
                rows,
                unit,
                utc,
            );
        }
        let write = |name: &str, header: &str, lines: Vec<String>| {
            let mut text = format!("{header}\n");
            for l in lines {
                text.push_str(&l);
                text.push('\n');
            }
            fs::write(dir.join(name), text).unwrap();
        };
        write(
            "subscriptions.csv",
            "customer_id,start_date,end_date",
            self.subscriptions
                .iter()
                .map(|(c, s, e)| format!("{c},{s},{e}"))
                .collect(),
        );
        write(
            "billing.csv",
            "customer_id,period,kind,amount,currency",
            self.billing
                .iter()
                .map(|b| {
                    format!(
                        "{},{},{},{},{}",
                        b.customer, b.period, b.kind, b.amount, b.currency
                    )
                })
                .collect(),
        );
        write(
            "exemptions/error_codes.csv",
            "error_code,clause",
            self.error_codes
                .iter()
                .map(|(a, b)| format!("{a},{b}"))
                .collect(),
        );
        write(
            "exemptions/calls.csv",
            "request_id,clause",
            self.exempt_calls
                .iter()
                .map(|(a, b)| format!("{a},{b}"))
                .collect(),
        );
        write(
            "exemptions/windows.csv",
            "window_id,clause,start,end,customer_id,announced_at",
            self.windows
                .iter()
                .map(|w| {
                    format!(
                        "{},{},{},{},{},{}",
                        w.id,
                        w.clause,
                        iso(w.start),
                        iso(w.end),
                        w.customer.map(|c| c.to_string()).unwrap_or_default(),
                        w.announced.map(iso).unwrap_or_default()
                    )
                })
                .collect(),
        );
        write(
            "exemptions/notices.csv",
            "customer_id,start,end,notified_at",
            self.notices
                .iter()
                .map(|n| {
                    format!(
                        "{},{},{},{}",
                        n.customer,
                        iso(n.start),
                        iso(n.end),
                        iso(n.notified)
                    )
                })
                .collect(),
        );
        write(
            "claims.csv",
            "claim_id,customer_id,service_month,submitted_at,channel",
            self.claims
                .iter()
                .map(|c| {
                    format!(
                        "{},{},{},{},{}",
                        c.id,
                        c.customer,
                        c.month,
                        iso(c.submitted),
                        c.channel
                    )
                })
                .collect(),
        );
    }

    pub fn all_calls(&self) -> Vec<CallRow> {
        self.files.iter().flatten().cloned().collect()
    }
}
