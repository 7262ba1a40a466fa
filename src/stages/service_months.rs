//! Service months (SPEC §3, SLA 1.2).
//!
//! Takes subscription periods, the selected months and customers, and the as-of date; gives
//! one [`ServiceMonth`] per customer and month the union of its periods touches, with the
//! covered date ranges inside that month, and those ranges as UTC instants
//! ([`CoverageInterval`]), which the heavy step counts calls in.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

use crate::inputs::subscriptions::Period;
use crate::time::{local_dates_to_instants, MonthRange, YearMonth};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMonth {
    pub customer_id: i64,
    pub month: YearMonth,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    /// Disjoint, ascending, inclusive date ranges inside the month.
    pub covered: Vec<(NaiveDate, NaiveDate)>,
    pub provisional: bool,
}

/// Merges overlapping or touching periods of one customer into disjoint inclusive ranges
/// (`None` end: ongoing).
pub fn union_of_periods(
    mut periods: Vec<(NaiveDate, Option<NaiveDate>)>,
) -> Vec<(NaiveDate, Option<NaiveDate>)> {
    periods.sort();
    let mut merged: Vec<(NaiveDate, Option<NaiveDate>)> = Vec::new();
    for (start, end) in periods {
        if let Some(last) = merged.last_mut() {
            let touches = match last.1 {
                None => true,
                Some(last_end) => last_end
                    .checked_add_days(Days::new(1))
                    .is_some_and(|next| start <= next),
            };
            if touches {
                last.1 = match (last.1, end) {
                    (None, _) | (_, None) => None,
                    (Some(a), Some(b)) => Some(a.max(b)),
                };
                continue;
            }
        }
        merged.push((start, end));
    }
    merged
}

/// Every service month of the selected customers within `months`, ordered by
/// (customer_id, month).
pub fn service_months(
    periods: &[Period],
    months: MonthRange,
    include_customer: impl Fn(i64) -> bool,
    as_of: NaiveDate,
) -> Vec<ServiceMonth> {
    let mut by_customer: BTreeMap<i64, Vec<(NaiveDate, Option<NaiveDate>)>> = BTreeMap::new();
    for p in periods.iter().filter(|p| include_customer(p.customer_id)) {
        by_customer
            .entry(p.customer_id)
            .or_default()
            .push((p.start, p.end));
    }
    let mut result = Vec::new();
    for (customer_id, periods) in by_customer {
        let merged = union_of_periods(periods);
        for month in months.months() {
            let (first, last) = (month.first_day(), month.last_day());
            let covered: Vec<(NaiveDate, NaiveDate)> = merged
                .iter()
                .filter_map(|&(start, end)| {
                    let from = start.max(first);
                    let to = end.map_or(last, |end| end.min(last));
                    (from <= to).then_some((from, to))
                })
                .collect();
            if let (Some(&(period_start, _)), Some(&(_, period_end))) =
                (covered.first(), covered.last())
            {
                result.push(ServiceMonth {
                    customer_id,
                    month,
                    period_start,
                    period_end,
                    covered,
                    provisional: period_end > as_of,
                });
            }
        }
    }
    result
}

/// A run of covered local dates of one service month, as UTC instants `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverageInterval {
    /// Index of the service month this range belongs to.
    pub month_index: u32,
    pub customer_id: i64,
    pub start: i64,
    pub end: i64,
}

/// The covered dates of every service month as UTC instant ranges, for the heavy step.
pub fn coverage_intervals(months: &[ServiceMonth], tz: Tz) -> Vec<CoverageInterval> {
    months
        .iter()
        .enumerate()
        .flat_map(|(index, m)| {
            m.covered.iter().map(move |&(first, last)| {
                let (start, end) = local_dates_to_instants(tz, first, last);
                CoverageInterval {
                    month_index: index as u32,
                    customer_id: m.customer_id,
                    start,
                    end,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_date;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn period(customer_id: i64, start: &str, end: Option<&str>) -> Period {
        Period {
            customer_id,
            start: date(start),
            end: end.map(date),
        }
    }

    fn range(first: &str, last: &str) -> MonthRange {
        MonthRange {
            first: first.parse().unwrap(),
            last: last.parse().unwrap(),
        }
    }

    #[test]
    fn sla_1_2_a_three_month_purchase_gives_partial_first_and_last_months() {
        let periods = [period(1, "2026-03-17", Some("2026-06-16"))];
        let months = service_months(
            &periods,
            range("2026-01", "2026-07"),
            |_| true,
            date("2026-12-31"),
        );
        let shown: Vec<_> = months
            .iter()
            .map(|m| (m.month.to_string(), m.period_start, m.period_end))
            .collect();
        assert_eq!(
            shown,
            [
                ("2026-03".into(), date("2026-03-17"), date("2026-03-31")),
                ("2026-04".into(), date("2026-04-01"), date("2026-04-30")),
                ("2026-05".into(), date("2026-05-01"), date("2026-05-31")),
                ("2026-06".into(), date("2026-06-01"), date("2026-06-16")),
            ]
        );
    }

    #[test]
    fn sla_1_2_overlapping_and_touching_periods_are_one_union_gaps_stay_uncovered() {
        let periods = [
            period(1, "2026-01-01", Some("2026-01-10")),
            period(1, "2026-01-11", Some("2026-01-15")),
            period(1, "2026-01-05", Some("2026-01-12")),
            period(1, "2026-01-20", None),
        ];
        let months = service_months(
            &periods,
            range("2026-01", "2026-01"),
            |_| true,
            date("2026-03-01"),
        );
        assert_eq!(months.len(), 1);
        assert_eq!(
            months[0].covered,
            [
                (date("2026-01-01"), date("2026-01-15")),
                (date("2026-01-20"), date("2026-01-31"))
            ]
        );
        assert_eq!(
            (months[0].period_start, months[0].period_end),
            (date("2026-01-01"), date("2026-01-31"))
        );
    }

    #[test]
    fn sla_1_2_a_month_is_provisional_while_its_period_runs_past_as_of() {
        let periods = [period(1, "2026-01-01", None)];
        let months = service_months(
            &periods,
            range("2026-02", "2026-03"),
            |_| true,
            date("2026-03-15"),
        );
        assert_eq!(
            months.iter().map(|m| m.provisional).collect::<Vec<_>>(),
            [false, true]
        );
        let months = service_months(
            &periods,
            range("2026-03", "2026-03"),
            |_| true,
            date("2026-03-31"),
        );
        assert!(!months[0].provisional, "period_end == as_of is final");
    }

    #[test]
    fn customers_outside_the_selection_have_no_service_months() {
        let periods = [period(1, "2026-01-01", None), period(2, "2026-01-01", None)];
        let months = service_months(
            &periods,
            range("2026-01", "2026-01"),
            |c| c == 2,
            date("2026-03-15"),
        );
        assert_eq!(
            months.iter().map(|m| m.customer_id).collect::<Vec<_>>(),
            [2]
        );
    }
}
