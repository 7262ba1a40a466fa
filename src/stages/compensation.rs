//! Compensation (SPEC §5, SLA 3.1): the tier rate of the fee actually paid, in cents.

use rust_decimal::{Decimal, RoundingStrategy};

/// The one rounding of compensation: half away from zero, to cents.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;
/// How `explain` names [`ROUNDING`].
pub const ROUNDING_NAME: &str = "half away from zero, to 2 decimals";

/// Each step of the compensation arithmetic, for `explain` to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompensationSteps {
    /// `fee × rate`, unrounded.
    pub exact: Decimal,
    /// `exact` rounded to cents with [`ROUNDING`].
    pub rounded: Decimal,
    /// `min(fee, rounded)`: what is owed.
    pub owed: Decimal,
}

impl CompensationSteps {
    /// Whether the fee capped the rounded amount.
    pub fn capped_at_fee(&self) -> bool {
        self.owed < self.rounded
    }
}

/// `min(fee, round_half_up(fee * rate, 2))`, step by step.
pub fn compensation_steps(monthly_fee: Decimal, tier_rate: Decimal) -> CompensationSteps {
    let exact = monthly_fee * tier_rate;
    let rounded = exact.round_dp_with_strategy(2, ROUNDING);
    CompensationSteps {
        exact,
        rounded,
        owed: rounded.min(monthly_fee),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compensation(monthly_fee: Decimal, tier_rate: Decimal) -> Decimal {
        compensation_steps(monthly_fee, tier_rate).owed
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn sla_3_1_compensation_rounds_half_up_to_cents() {
        assert_eq!(
            compensation(dec("46090.75"), dec("0.10")).to_string(),
            "4609.08"
        );
        assert_eq!(compensation(dec("0.05"), dec("0.10")).to_string(), "0.01");
        assert_eq!(compensation(dec("0.04"), dec("0.10")).to_string(), "0.00");
        assert_eq!(
            compensation(dec("29324.32"), dec("0.30")).to_string(),
            "8797.30"
        );
    }

    #[test]
    fn sla_3_1_compensation_never_exceeds_the_fee() {
        assert_eq!(compensation(dec("0.01"), dec("1.00")), dec("0.01"));
        assert!(compensation(dec("0.01"), dec("0.50")) <= dec("0.01"));
    }
}
