//! Availability (SPEC §4, SLA 1.4, 1.5, 2.1) and its tier (SLA 3.1), in exact integers.
//!
//! Takes counted calls and unavailable (non-exempt system error) calls; gives the percentage
//! rounded down to 4 decimals for display and the tier rate chosen by exact comparison.

use rust_decimal::Decimal;

use crate::policy::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    pub total_calls: u64,
    pub unavailable_calls: u64,
}

impl Availability {
    /// SLA 1.4: the unavailable calls are the system errors no clause exempts. Fails, naming the
    /// numbers, unless `exempt_errors ≤ system_errors ≤ total_calls` (an internal error: the
    /// heavy step's counts are checked to hold it).
    pub fn of(total_calls: u64, system_errors: u64, exempt_errors: u64) -> anyhow::Result<Self> {
        match system_errors.checked_sub(exempt_errors) {
            Some(unavailable_calls) if system_errors <= total_calls => Ok(Availability {
                total_calls,
                unavailable_calls,
            }),
            _ => anyhow::bail!(
                "internal check failed: {exempt_errors} exempt errors of {system_errors} system \
                 errors of {total_calls} calls"
            ),
        }
    }

    pub fn available_calls(&self) -> u64 {
        // Availability::of, which every caller builds it with, proved this.
        debug_assert!(self.unavailable_calls <= self.total_calls, "{self:?}");
        self.total_calls.saturating_sub(self.unavailable_calls)
    }

    /// `A * 100` rounded down to 4 decimals (`99.4999`); `100.0000` when there were no calls.
    pub fn pct_rounded_down(&self) -> Decimal {
        if self.total_calls == 0 {
            return Decimal::new(1_000_000, 4);
        }
        // floor(available / total * 10^6) / 10^4, all in integers.
        let scaled = u128::from(self.available_calls()) * 1_000_000 / u128::from(self.total_calls);
        Decimal::from_i128_with_scale(scaled as i128, 4)
    }

    /// The tier rate, with the bounds compared exactly (never through the rounded percentage).
    pub fn tier_rate(&self, policy: &Policy) -> Decimal {
        policy
            .tier_for(self.available_calls(), self.total_calls)
            .rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn availability(total_calls: u64, unavailable_calls: u64) -> Availability {
        Availability {
            total_calls,
            unavailable_calls,
        }
    }

    #[test]
    fn sla_1_5_availability_is_rounded_down_to_four_decimals() {
        assert_eq!(
            availability(2001, 11).pct_rounded_down().to_string(),
            "99.4502"
        );
        assert_eq!(availability(3, 1).pct_rounded_down().to_string(), "66.6666");
        assert_eq!(
            availability(200, 1).pct_rounded_down().to_string(),
            "99.5000"
        );
        assert_eq!(availability(5, 5).pct_rounded_down().to_string(), "0.0000");
    }

    #[test]
    fn sla_1_4_unavailable_calls_are_the_system_errors_no_clause_exempts() {
        assert_eq!(Availability::of(200, 7, 3).unwrap(), availability(200, 4));
        assert_eq!(Availability::of(0, 0, 0).unwrap(), availability(0, 0));
        let more_exempt = Availability::of(200, 3, 4).unwrap_err().to_string();
        assert_eq!(
            more_exempt,
            "internal check failed: 4 exempt errors of 3 system errors of 200 calls"
        );
        assert!(Availability::of(2, 3, 0).is_err());
    }

    #[test]
    fn sla_1_5_no_calls_means_full_availability() {
        let a = availability(0, 0);
        assert_eq!(a.pct_rounded_down().to_string(), "100.0000");
        assert_eq!(a.tier_rate(&Policy::ccc()).to_string(), "0.00");
    }

    #[test]
    fn sla_3_1_a_rounded_99_5000_below_the_bound_still_pays() {
        // 19999 of 20100 = 99.49751...%: displayed 99.4975, tier 10 %.
        let a = availability(20100, 101);
        assert_eq!(a.pct_rounded_down().to_string(), "99.4975");
        assert_eq!(a.tier_rate(&Policy::ccc()).to_string(), "0.10");
        // 1 unavailable in 199: 99.4974...% → 10 %; exactly 1 in 200 → 0 %.
        assert_eq!(
            availability(199, 1).tier_rate(&Policy::ccc()).to_string(),
            "0.10"
        );
        assert_eq!(
            availability(200, 1).tier_rate(&Policy::ccc()).to_string(),
            "0.00"
        );
    }
}
