//! Who, when and how much: the arguments in, customers, subscriptions, tiers and call counts out.
//!
//! Tenants are skewed (a few large, a long tail of small ones); each has one subscription
//! shape and, per month, one tier its errors aim at. Calls are split exactly over the
//! customer-months by weight times covered days.

use chrono::{Datelike, Days, NaiveDate};

use super::rng::Rng;
use crate::cli::GenerateArgs;
use crate::time::MonthRange;
use crate::time::{local_day_start, YearMonth, NANOS_PER_SECOND};

const FIRST_CUSTOMER_ID: i64 = 100_000_000;

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
pub(super) enum Tier {
    Fine,
    Ten,
    Thirty,
    Fifty,
}

pub(super) struct Customer {
    pub(super) index: u64,
    pub(super) id: i64,
    pub(super) currency: &'static str,
    shape: SubscriptionShape,
    /// Share of all calls, in parts per million.
    weight_ppm: u64,
}

/// The plan of a data set: who, when, how much.
pub(super) struct Plan {
    pub(super) seed: u64,
    pub(super) months: Vec<YearMonth>,
    pub(super) customers: Vec<Customer>,
    calls: u64,
    pub(super) tz: chrono_tz::Tz,
    /// Background calls of each customer-month, `[customer][month]`, summing to `calls`.
    pub(super) allocation: Vec<Vec<u64>>,
}

impl Plan {
    pub(super) fn new(args: &GenerateArgs, tz: chrono_tz::Tz) -> anyhow::Result<Plan> {
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

    pub(super) fn first(&self) -> YearMonth {
        self.months[0]
    }

    pub(super) fn last(&self) -> YearMonth {
        *self.months.last().expect("months")
    }

    pub(super) fn day(month: YearMonth, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(month.year, month.month, day.min(month.last_day().day()))
            .expect("date")
    }

    /// Subscription rows `(start, end)` of a customer.
    pub(super) fn periods(&self, c: &Customer) -> Vec<(NaiveDate, Option<NaiveDate>)> {
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
    pub(super) fn covered(&self, c: &Customer, month: YearMonth) -> Vec<(NaiveDate, NaiveDate)> {
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

    pub(super) fn tier(&self, c: &Customer, month_index: usize) -> Tier {
        let mut rng = Rng::new(self.seed ^ (c.index << 20) ^ (month_index as u64) << 8);
        match rng.below(100) {
            0..=61 => Tier::Fine,
            62..=75 => Tier::Ten,
            76..=89 => Tier::Thirty,
            _ => Tier::Fifty,
        }
    }
}

/// A local wall-clock instant in UTC nanoseconds.
pub(super) fn local(plan: &Plan, date: NaiveDate, hour: i64, minute: i64) -> i64 {
    local_day_start(plan.tz, date) + (hour * 3600 + minute * 60) * NANOS_PER_SECOND
}
