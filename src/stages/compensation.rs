//! Compensation (SPEC §5, SLA 3.1): the tier rate of the fee actually paid, in cents.

use rust_decimal::{Decimal, RoundingStrategy};

/// `min(fee, round_half_up(fee * rate, 2))`, half away from zero.
pub fn compensation(monthly_fee: Decimal, tier_rate: Decimal) -> Decimal {
    let exact = monthly_fee * tier_rate;
    let rounded = exact.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.min(monthly_fee)
}

#[cfg(test)]
mod tests {
    use super::*;

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
