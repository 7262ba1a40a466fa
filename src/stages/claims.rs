//! Claims (SPEC §6, SLA 3.2).
//!
//! Takes a priced service month with compensation, its claims and the working-day calendar;
//! gives the claim window, the decision and the payout.

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use crate::inputs::calendar::Calendar;
use crate::inputs::claims::Claim;
use crate::ledger::ClaimStatus;
use crate::policy::Policy;
use crate::time::{local_date, YearMonth};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimDecision {
    pub status: ClaimStatus,
    pub claim_id: Option<String>,
    pub claim_opens: Option<NaiveDate>,
    pub claim_deadline: Option<NaiveDate>,
    pub payout: Decimal,
}

/// A calendar year the run needed but the calendar does not list.
#[derive(Debug, thiserror::Error)]
#[error("the working-day calendar `{calendar}` does not cover {year}, needed for the claim window of customer {customer_id} {month}")]
pub struct CalendarGap {
    pub calendar: String,
    pub year: i32,
    pub customer_id: i64,
    pub month: YearMonth,
}

impl CalendarGap {
    /// What the user can do about the gap.
    pub fn hint(&self) -> String {
        format!(
            "add {}'s holidays and make-up workdays to the calendar (one file), or pass `--calendar FILE`",
            self.year
        )
    }
}

/// The facts about one service month that its claim decision needs.
pub struct ClaimContext<'a> {
    pub customer_id: i64,
    pub month: YearMonth,
    pub period_end: NaiveDate,
    pub provisional: bool,
    pub compensation: Decimal,
    pub as_of: NaiveDate,
    pub policy: &'a Policy,
    pub calendar: &'a Calendar,
    pub calendar_name: &'a str,
}

/// The first date a claim for `month` may be filed: the day after the n-th working day of
/// the following month. `Err(year)` when the calendar does not cover that year.
pub fn claim_opens(
    month: YearMonth,
    calendar: &Calendar,
    policy: &Policy,
) -> Result<NaiveDate, i32> {
    let first = month.next().first_day();
    let nth = calendar.nth_working_day_from(first, policy.claim_opens_after_working_days)?;
    Ok(nth.checked_add_days(Days::new(1)).expect("date in range"))
}

pub fn decide(context: &ClaimContext, claims: &[&Claim]) -> Result<ClaimDecision, CalendarGap> {
    let not_due = ClaimDecision {
        status: ClaimStatus::NotDue,
        claim_id: None,
        claim_opens: None,
        claim_deadline: None,
        payout: Decimal::new(0, 2),
    };
    if context.compensation <= Decimal::ZERO {
        return Ok(not_due);
    }
    let deadline = context
        .period_end
        .checked_add_days(Days::new(u64::from(context.policy.claim_deadline_days)))
        .expect("date in range");
    let opens = match claim_opens(context.month, context.calendar, context.policy) {
        Ok(date) => Some(date),
        // A provisional month may wait for next year's calendar; a final one may not.
        Err(_) if context.provisional => None,
        Err(year) => {
            return Err(CalendarGap {
                calendar: context.calendar_name.to_string(),
                year,
                customer_id: context.customer_id,
                month: context.month,
            })
        }
    };
    let base = ClaimDecision {
        claim_opens: opens,
        claim_deadline: Some(deadline),
        ..not_due
    };
    if context.provisional {
        return Ok(ClaimDecision {
            status: ClaimStatus::Pending,
            ..base
        });
    }
    let opens = opens.expect("final rows have an opening date");
    let valid = claims
        .iter()
        .filter(|c| check_claim(c, context, opens, deadline).is_ok())
        .min_by(|a, b| (a.submitted_at, &a.claim_id).cmp(&(b.submitted_at, &b.claim_id)));
    Ok(match valid {
        Some(claim) => ClaimDecision {
            status: ClaimStatus::Valid,
            claim_id: Some(claim.claim_id.clone()),
            payout: context.compensation,
            ..base
        },
        None if context.as_of <= deadline => ClaimDecision {
            status: ClaimStatus::Open,
            ..base
        },
        None => ClaimDecision {
            status: ClaimStatus::Forfeited,
            ..base
        },
    })
}

/// SLA 3.2: by ticket, for this customer and month, inside the window, and known by as-of.
/// Why a claim is not valid (SLA 3.2), the first failed condition in the order the rule lists
/// them; `Ok` when it is valid.
pub fn check_claim(
    claim: &Claim,
    context: &ClaimContext,
    opens: NaiveDate,
    deadline: NaiveDate,
) -> Result<(), String> {
    let submitted = local_date(context.policy.timezone, claim.submitted_at);
    if claim.channel != "ticket" {
        return Err(format!(
            "channel `{}`; only `ticket` is valid",
            claim.channel
        ));
    }
    if claim.customer_id != context.customer_id || claim.service_month != context.month {
        return Err(format!(
            "for customer {} {}, not this service month",
            claim.customer_id, claim.service_month
        ));
    }
    if submitted < opens {
        return Err(format!(
            "submitted {submitted}, before the window opens on {opens}"
        ));
    }
    if submitted > deadline {
        return Err(format!(
            "submitted {submitted}, after the deadline {deadline}"
        ));
    }
    if submitted > context.as_of {
        return Err(format!(
            "submitted {submitted}, after as-of {}",
            context.as_of
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_date, parse_instant};

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    fn claim(id: &str, submitted_at: &str, channel: &str) -> Claim {
        Claim {
            claim_id: id.into(),
            customer_id: 1,
            service_month: "2026-01".parse().unwrap(),
            submitted_at: parse_instant(submitted_at).unwrap(),
            channel: channel.into(),
        }
    }

    fn decide_at(
        as_of: &str,
        provisional: bool,
        claims: &[Claim],
    ) -> Result<ClaimDecision, CalendarGap> {
        let policy = Policy::ccc();
        let calendar = Calendar::builtin();
        let context = ClaimContext {
            customer_id: 1,
            month: "2026-01".parse().unwrap(),
            period_end: date("2026-01-31"),
            provisional,
            compensation: Decimal::new(100, 2),
            as_of: date(as_of),
            policy: &policy,
            calendar: &calendar,
            calendar_name: "test",
        };
        decide(&context, &claims.iter().collect::<Vec<_>>())
    }

    #[test]
    fn sla_3_2_the_window_opens_after_the_fifth_working_day_and_closes_60_days_after() {
        let d = decide_at("2026-06-30", false, &[]).unwrap();
        assert_eq!(d.claim_opens, Some(date("2026-02-07")));
        assert_eq!(d.claim_deadline, Some(date("2026-04-01")));
        assert_eq!(d.status, ClaimStatus::Forfeited);
        assert_eq!(
            decide_at("2026-04-01", false, &[]).unwrap().status,
            ClaimStatus::Open
        );
    }

    #[test]
    fn sla_3_2_only_tickets_inside_the_window_by_as_of_are_valid() {
        let claims = [
            claim("T1", "2026-02-06T23:59:59+08:00", "ticket"), // a day early
            claim("T2", "2026-02-07T00:00:00+08:00", "email"),  // wrong channel
            claim("T4", "2026-04-02T00:00:00+08:00", "ticket"), // a day late
        ];
        assert_eq!(
            decide_at("2026-06-30", false, &claims).unwrap().status,
            ClaimStatus::Forfeited
        );
        let on_edge = [claim("T3", "2026-02-06T16:00:00Z", "ticket")]; // 2026-02-07 00:00 local
        let d = decide_at("2026-06-30", false, &on_edge).unwrap();
        assert_eq!(
            (d.status, d.claim_id.as_deref(), d.payout),
            (ClaimStatus::Valid, Some("T3"), Decimal::new(100, 2))
        );
        // Filed after as-of: not known yet, so still open.
        assert_eq!(
            decide_at(
                "2026-02-08",
                false,
                &[claim("T5", "2026-02-09T10:00:00+08:00", "ticket")]
            )
            .unwrap()
            .status,
            ClaimStatus::Open
        );
    }

    #[test]
    fn sla_3_2_the_earliest_valid_claim_wins_ties_by_id() {
        let claims = [
            claim("T9", "2026-02-10T10:00:00+08:00", "ticket"),
            claim("T8", "2026-02-10T02:00:00Z", "ticket"),
            claim("T7", "2026-02-11T10:00:00+08:00", "ticket"),
        ];
        assert_eq!(
            decide_at("2026-06-30", false, &claims)
                .unwrap()
                .claim_id
                .as_deref(),
            Some("T8")
        );
    }

    #[test]
    fn sla_3_2_provisional_months_are_pending_and_a_missing_year_fails_only_final_rows() {
        let d = decide_at("2026-01-20", true, &[]).unwrap();
        assert_eq!(
            (d.status, d.payout),
            (ClaimStatus::Pending, Decimal::new(0, 2))
        );
        let policy = Policy::ccc();
        let calendar = Calendar::builtin();
        let mut context = ClaimContext {
            customer_id: 1,
            month: "2026-12".parse().unwrap(),
            period_end: date("2026-12-31"),
            provisional: true,
            compensation: Decimal::ONE,
            as_of: date("2026-12-15"),
            policy: &policy,
            calendar: &calendar,
            calendar_name: "test",
        };
        assert_eq!(decide(&context, &[]).unwrap().claim_opens, None);
        context.provisional = false;
        context.as_of = date("2027-03-01");
        assert_eq!(decide(&context, &[]).unwrap_err().year, 2027);
    }
}
