//! `sla-ledger generate`: a SPEC-shaped synthetic data set at any size.
//!
//! Takes a customer count, a month range, a call total and a seed; writes `calls/` (Parquet,
//! `ts` in ms/us/ns across files, streamed in bounded chunks) and the small tables. Besides
//! background traffic with a skewed tenant base (few large, many small), it plants every case
//! the SPEC names: partial and gapped subscriptions, exact and conflicting duplicates, defective
//! rows, each exemption source (error codes, per-call reviews, announced and unannounced
//! windows, bursts with and without notice), every tier, billing defects and every claim status.
//! The same arguments always write the same bytes.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{Datelike, Days, NaiveDate};
use polars::prelude::*;

use crate::cli::GenerateArgs;
use crate::inputs::calendar::Calendar;
use crate::policy::Policy;
use crate::stages::claims::claim_opens;
use crate::time::{local_day_start, MonthRange, YearMonth, NANOS_PER_SECOND};

/// Rows held in memory per output file before they are flushed as a row group.
const CHUNK_ROWS: usize = 250_000;
const MILLIS: i64 = 1_000_000;
const FIRST_CUSTOMER_ID: i64 = 100_000_000;

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
const INTERNAL_ERROR: &str = "InternalError";
const CALLEE_LIMITED: &str = "FailedOperation.CalleeIsLimited"; // exempt, 5.9
const PHONE_INVALID: &str = "InvalidParameterValue.PhoneNumInvalid"; // exempt, 5.10

/// splitmix64: small, fast, and stable across versions, so a seed always means the same data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn request_id(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

/// One call row as written.
#[derive(Clone)]
struct Call {
    request_id: Option<String>,
    customer_id: Option<i64>,
    ts: Option<i64>,
    api: Option<&'static str>,
    status: Option<&'static str>,
    error_code: Option<&'static str>,
}

/// One Parquet file being written in row groups, with its `ts` unit.
struct PartWriter {
    writer: polars::io::parquet::write::BatchedWriter<BufWriter<File>>,
    unit: TimeUnit,
    zone: Option<TimeZone>,
    buffer: Vec<Call>,
    rows: u64,
}

impl PartWriter {
    fn create(path: &Path, unit: TimeUnit, zone: Option<TimeZone>) -> anyhow::Result<PartWriter> {
        let file = BufWriter::new(
            File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?,
        );
        let schema = Schema::from_iter([
            Field::new("request_id".into(), DataType::String),
            Field::new("customer_id".into(), DataType::Int64),
            Field::new("ts".into(), DataType::Datetime(unit, zone.clone())),
            Field::new("api".into(), DataType::String),
            Field::new("status".into(), DataType::String),
            Field::new("error_code".into(), DataType::String),
        ]);
        let writer = ParquetWriter::new(file).batched(&schema)?;
        Ok(PartWriter {
            writer,
            unit,
            zone,
            buffer: Vec::with_capacity(CHUNK_ROWS),
            rows: 0,
        })
    }

    fn push(&mut self, call: Call) -> anyhow::Result<()> {
        self.buffer.push(call);
        if self.buffer.len() >= CHUNK_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let per_unit = match self.unit {
            TimeUnit::Milliseconds => MILLIS,
            TimeUnit::Microseconds => 1_000,
            TimeUnit::Nanoseconds => 1,
        };
        let rows = std::mem::take(&mut self.buffer);
        let ts = Int64Chunked::from_iter_options(
            "ts".into(),
            rows.iter().map(|c| c.ts.map(|t| t / per_unit)),
        )
        .into_datetime(self.unit, self.zone.clone());
        let frame = DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "request_id".into(),
                    rows.iter()
                        .map(|c| c.request_id.as_deref())
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "customer_id".into(),
                    rows.iter().map(|c| c.customer_id).collect::<Vec<_>>(),
                ),
                ts.into_series().into(),
                Column::new("api".into(), rows.iter().map(|c| c.api).collect::<Vec<_>>()),
                Column::new(
                    "status".into(),
                    rows.iter().map(|c| c.status).collect::<Vec<_>>(),
                ),
                Column::new(
                    "error_code".into(),
                    rows.iter().map(|c| c.error_code).collect::<Vec<_>>(),
                ),
            ],
        )?;
        self.rows += rows.len() as u64;
        self.writer.write_batch(&frame)?;
        self.buffer = rows;
        self.buffer.clear();
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        self.writer.finish()?;
        Ok(self.rows)
    }
}

/// The three files of one month partition, one per `ts` unit; rows are dealt round robin.
struct Partition {
    parts: Vec<PartWriter>,
    next: usize,
}

impl Partition {
    fn create(dir: &Path) -> anyhow::Result<Partition> {
        fs::create_dir_all(dir)?;
        let parts = vec![
            PartWriter::create(
                &dir.join("part-000.parquet"),
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            )?,
            PartWriter::create(
                &dir.join("part-001.parquet"),
                TimeUnit::Microseconds,
                Some(TimeZone::UTC),
            )?,
            PartWriter::create(&dir.join("part-002.parquet"), TimeUnit::Nanoseconds, None)?,
        ];
        Ok(Partition { parts, next: 0 })
    }

    fn push(&mut self, call: Call) -> anyhow::Result<()> {
        let index = self.next;
        self.next = (self.next + 1) % self.parts.len();
        self.parts[index].push(call)
    }

    /// Writes the same row again into another file: a duplicate delivery.
    fn push_duplicate(&mut self, call: Call) -> anyhow::Result<()> {
        let index = (self.next + 1) % self.parts.len();
        self.parts[index].push(call)
    }

    /// Writes into the nanosecond file, where sub-millisecond instants survive.
    fn push_precise(&mut self, call: Call) -> anyhow::Result<()> {
        self.parts[2].push(call)
    }

    fn finish(self) -> anyhow::Result<u64> {
        self.parts.into_iter().map(PartWriter::finish).sum()
    }
}

/// How a customer's subscription looks over the generated months.
#[derive(Debug, Clone, Copy)]
enum SubscriptionShape {
    Ongoing,
    StartsMidFirstMonth,
    EndsMidLastMonth,
    GapInSecondMonth,
    Overlapping,
    ThreeMonthPurchase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Fine,
    Ten,
    Thirty,
    Fifty,
}

struct Customer {
    index: u64,
    id: i64,
    currency: &'static str,
    shape: SubscriptionShape,
    /// Share of all calls, in parts per million.
    weight_ppm: u64,
}

/// The plan of a data set: who, when, how much.
struct Plan {
    seed: u64,
    months: Vec<YearMonth>,
    customers: Vec<Customer>,
    calls: u64,
    tz: chrono_tz::Tz,
    /// Background calls of each customer-month, `[customer][month]`, summing to `calls`.
    allocation: Vec<Vec<u64>>,
}

impl Plan {
    fn new(args: &GenerateArgs, tz: chrono_tz::Tz) -> anyhow::Result<Plan> {
        let range = MonthRange::parse(
            &args.months,
            NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        )
        .map_err(|e| crate::error::UsageError::new(format!("--months: {e}")))?;
        if args.customers == 0 {
            return Err(crate::error::UsageError::new("--customers must be at least 1").into());
        }
        let months: Vec<YearMonth> = range.months().collect();
        // Zipf-like skew: a few large tenants, a long tail of small ones.
        let raw: Vec<f64> = (0..args.customers)
            .map(|k| 1.0 / f64::from(k + 1).powf(0.9))
            .collect();
        let sum: f64 = raw.iter().sum();
        let customers = (0..u64::from(args.customers))
            .map(|k| {
                let shape = match k % 10 {
                    1 => SubscriptionShape::StartsMidFirstMonth,
                    2 => SubscriptionShape::EndsMidLastMonth,
                    3 => SubscriptionShape::GapInSecondMonth,
                    4 => SubscriptionShape::Overlapping,
                    5 => SubscriptionShape::ThreeMonthPurchase,
                    _ => SubscriptionShape::Ongoing,
                };
                Customer {
                    index: k,
                    id: FIRST_CUSTOMER_ID + (k as i64) * 7_919,
                    currency: if k % 9 == 4 { "USD" } else { "CNY" },
                    shape,
                    weight_ppm: ((raw[k as usize] / sum) * 1e6).round() as u64,
                }
            })
            .collect();
        let mut plan = Plan {
            seed: args.seed,
            months,
            customers,
            calls: args.calls,
            tz,
            allocation: Vec::new(),
        };
        plan.allocation = plan.allocate();
        Ok(plan)
    }

    /// Splits `calls` over customer-months by tenant weight times covered days, exactly: the
    /// floors first, then one more call to the largest remainders.
    fn allocate(&self) -> Vec<Vec<u64>> {
        let weights: Vec<Vec<u128>> = self
            .customers
            .iter()
            .map(|c| {
                self.months
                    .iter()
                    .map(|&m| {
                        let days: i64 = self
                            .covered(c, m)
                            .iter()
                            .map(|(a, b)| (*b - *a).num_days() + 1)
                            .sum();
                        u128::from(c.weight_ppm.max(1)) * days as u128 * 1_000
                            / u128::from(m.last_day().day())
                    })
                    .collect()
            })
            .collect();
        let total: u128 = weights.iter().flatten().sum::<u128>().max(1);
        let calls = u128::from(self.calls);
        let mut allocation: Vec<Vec<u64>> = weights
            .iter()
            .map(|row| row.iter().map(|w| (calls * w / total) as u64).collect())
            .collect();
        let mut remainders: Vec<(u128, usize, usize)> = weights
            .iter()
            .enumerate()
            .flat_map(|(c, row)| {
                row.iter()
                    .enumerate()
                    .map(move |(m, w)| (calls * w % total, c, m))
            })
            .filter(|(_, c, m)| weights[*c][*m] > 0)
            .collect();
        remainders.sort_by(|a, b| b.cmp(a));
        let given: u64 = allocation.iter().flatten().sum();
        for &(_, c, m) in remainders.iter().take((self.calls - given) as usize) {
            allocation[c][m] += 1;
        }
        allocation
    }

    fn first(&self) -> YearMonth {
        self.months[0]
    }

    fn last(&self) -> YearMonth {
        *self.months.last().expect("months")
    }

    fn day(month: YearMonth, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(month.year, month.month, day.min(month.last_day().day()))
            .expect("date")
    }

    /// Subscription rows `(start, end)` of a customer.
    fn periods(&self, c: &Customer) -> Vec<(NaiveDate, Option<NaiveDate>)> {
        let long_ago = self.first().first_day() - Days::new(200 + c.index * 3);
        let second = self.months.get(1).copied().unwrap_or(self.first());
        match c.shape {
            SubscriptionShape::Ongoing => vec![(long_ago, None)],
            SubscriptionShape::StartsMidFirstMonth => vec![(Plan::day(self.first(), 12), None)],
            SubscriptionShape::EndsMidLastMonth => {
                vec![(long_ago, Some(Plan::day(self.last(), 18)))]
            }
            SubscriptionShape::GapInSecondMonth => vec![
                (long_ago, Some(Plan::day(second, 9))),
                (Plan::day(second, 16), None),
            ],
            SubscriptionShape::Overlapping => vec![
                (long_ago, Some(Plan::day(second, 20))),
                (Plan::day(second, 5), Some(Plan::day(self.last(), 25))),
                (Plan::day(self.last(), 26), None),
            ],
            SubscriptionShape::ThreeMonthPurchase => {
                let start = Plan::day(self.first(), 17);
                let end = start
                    .checked_add_months(chrono::Months::new(3))
                    .expect("date")
                    - Days::new(1);
                vec![(start, Some(end))]
            }
        }
    }

    /// Covered local dates of a customer in a month, as disjoint inclusive ranges.
    fn covered(&self, c: &Customer, month: YearMonth) -> Vec<(NaiveDate, NaiveDate)> {
        let merged = crate::stages::service_months::union_of_periods(self.periods(c));
        merged
            .iter()
            .filter_map(|&(start, end)| {
                let from = start.max(month.first_day());
                let to = end.map_or(month.last_day(), |e| e.min(month.last_day()));
                (from <= to).then_some((from, to))
            })
            .collect()
    }

    fn tier(&self, c: &Customer, month_index: usize) -> Tier {
        let mut rng = Rng::new(self.seed ^ (c.index << 20) ^ (month_index as u64) << 8);
        match rng.below(100) {
            0..=61 => Tier::Fine,
            62..=75 => Tier::Ten,
            76..=89 => Tier::Thirty,
            _ => Tier::Fifty,
        }
    }
}

/// Background calls of one customer-month, plus its planted errors.
fn write_customer_month(
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

/// A local wall-clock instant in UTC nanoseconds.
fn local(plan: &Plan, date: NaiveDate, hour: i64, minute: i64) -> i64 {
    local_day_start(plan.tz, date) + (hour * 3600 + minute * 60) * NANOS_PER_SECOND
}

struct SmallTables {
    windows: Vec<String>,
    notices: Vec<String>,
}

/// Calls planted around the exemption windows, bursts, duplicates and defects of one month.
fn write_planted(
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

fn write_text(path: &Path, header: &str, lines: &[String]) -> anyhow::Result<()> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?,
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

pub fn generate_command(args: &GenerateArgs) -> anyhow::Result<()> {
    let out = &args.out;
    if out.exists() && fs::read_dir(out)?.next().is_some() {
        bail!(
            "output `{}` exists and is not empty\n  hint: choose another `--out`",
            out.display()
        );
    }
    let plan = Plan::new(args, Policy::ccc().timezone)?;
    fs::create_dir_all(out.join("exemptions"))?;
    let mut rng = Rng::new(plan.seed);
    let mut tables = SmallTables {
        windows: Vec::new(),
        notices: Vec::new(),
    };
    let mut reviewed = Vec::new();
    let mut rows = 0;
    for (m, month) in plan.months.iter().enumerate() {
        let dir: PathBuf = out.join("calls").join(format!("month={month}"));
        let mut partition = Partition::create(&dir)?;
        for c in &plan.customers {
            write_customer_month(&plan, c, m, &mut partition, &mut rng, &mut reviewed)?;
        }
        write_planted(&plan, m, &mut partition, &mut rng, &mut tables)?;
        rows += partition.finish()?;
    }

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
    write_text(
        &out.join("subscriptions.csv"),
        "customer_id,start_date,end_date",
        &subscriptions,
    )?;
    write_text(
        &out.join("billing.csv"),
        "customer_id,period,kind,amount,currency",
        &billing_lines(&plan, &mut rng),
    )?;
    write_text(
        &out.join("claims.csv"),
        "claim_id,customer_id,service_month,submitted_at,channel",
        &claim_lines(&plan, &mut rng),
    )?;
    write_text(
        &out.join("exemptions/error_codes.csv"),
        "error_code,clause",
        &[
            format!("{CALLEE_LIMITED},5.9"),
            format!("{PHONE_INVALID},5.10"),
        ],
    )?;
    let mut reviews: Vec<String> = reviewed.iter().map(|id| format!("{id},5.6")).collect();
    if let Some(first) = reviewed.first() {
        reviews.push(format!("{first},5.15")); // listed twice: the smaller clause wins
    }
    write_text(
        &out.join("exemptions/calls.csv"),
        "request_id,clause",
        &reviews,
    )?;
    write_text(
        &out.join("exemptions/windows.csv"),
        "window_id,clause,start,end,customer_id,announced_at",
        &tables.windows,
    )?;
    write_text(
        &out.join("exemptions/notices.csv"),
        "customer_id,start,end,notified_at",
        &tables.notices,
    )?;
    println!(
        "sla-ledger generate: {rows} call rows, {} customers, months {}..{}, seed {} → {}",
        plan.customers.len(),
        plan.first(),
        plan.last(),
        plan.seed,
        out.display()
    );
    Ok(())
}
