//! The fee actually paid for a service month (SPEC §5, SLA 3.1(2)).
//!
//! Takes the billing rows of one customer-month and whether any of its rows was quarantined;
//! gives the fee `max(0, charge - refund - voucher - coupon - discount - waiver)` in its one
//! currency, or why the month cannot be priced.

use rust_decimal::Decimal;

use crate::inputs::billing::{BillingRow, Kind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fee {
    /// `currency` is `None` when the month has no billing rows (fee 0.00).
    Paid {
        currency: Option<String>,
        amount: Decimal,
    },
    /// The ledger row becomes `error`.
    Unpriceable(String),
}

pub fn monthly_fee<'a>(
    rows: impl IntoIterator<Item = &'a BillingRow>,
    has_defective_rows: bool,
) -> Fee {
    if has_defective_rows {
        return Fee::Unpriceable("a billing row of this month was quarantined".into());
    }
    let mut currency: Option<&str> = None;
    let mut net = Decimal::ZERO;
    for row in rows {
        match currency {
            None => currency = Some(&row.currency),
            Some(c) if c != row.currency => {
                return Fee::Unpriceable(format!(
                    "billing rows in two currencies, `{c}` and `{}`",
                    row.currency
                ));
            }
            Some(_) => {}
        }
        let summed = match row.kind {
            Kind::Charge => net.checked_add(row.amount),
            Kind::Refund | Kind::Voucher | Kind::Coupon | Kind::Discount | Kind::Waiver => {
                net.checked_sub(row.amount)
            }
        };
        // Unreachable with SPEC §2's 15-digit amounts short of 10^13 rows, but an exact
        // decimal never wraps or rounds silently: such a month cannot be priced.
        let Some(summed) = summed else {
            return Fee::Unpriceable(
                "the billing rows of this month sum beyond the range of exact decimals".into(),
            );
        };
        net = summed;
    }
    // Floor at zero: refunds and vouchers can exceed the charge; nobody paid less than nothing.
    let mut amount = net.max(Decimal::ZERO);
    debug_assert!(amount.scale() <= 2, "amounts carry at most 2 decimals");
    amount.rescale(2); // exact: only adds trailing zeros
    Fee::Paid {
        currency: currency.map(str::to_string),
        amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::YearMonth;

    fn row(kind: Kind, amount: &str, currency: &str) -> BillingRow {
        BillingRow {
            customer_id: 1,
            period: YearMonth::new(2026, 1).unwrap(),
            kind,
            amount: Decimal::from_str_exact(amount).unwrap(),
            currency: currency.into(),
        }
    }

    fn paid(fee: Fee) -> String {
        match fee {
            Fee::Paid { amount, .. } => format!("{amount:.2}"),
            Fee::Unpriceable(why) => panic!("unpriceable: {why}"),
        }
    }

    #[test]
    fn sla_3_1_2_vouchers_coupons_and_waivers_are_not_cash_paid() {
        let rows = [
            row(Kind::Charge, "17032.88", "CNY"),
            row(Kind::Voucher, "6813.15", "CNY"),
            row(Kind::Coupon, "10", "CNY"),
            row(Kind::Waiver, "0.5", "CNY"),
            row(Kind::Discount, "1.00", "CNY"),
            row(Kind::Refund, "2.23", "CNY"),
        ];
        assert_eq!(paid(monthly_fee(&rows, false)), "10206.00");
    }

    #[test]
    fn sla_3_1_2_the_fee_never_goes_below_zero() {
        let rows = [
            row(Kind::Charge, "100.00", "CNY"),
            row(Kind::Voucher, "150.00", "CNY"),
        ];
        assert_eq!(paid(monthly_fee(&rows, false)), "0.00");
    }

    #[test]
    fn spec_5_no_billing_rows_is_a_zero_fee_without_currency() {
        assert_eq!(
            monthly_fee(&[], false),
            Fee::Paid {
                currency: None,
                amount: Decimal::new(0, 2)
            }
        );
    }

    #[test]
    fn spec_5_mixed_currencies_or_quarantined_rows_make_an_error_row() {
        let rows = [
            row(Kind::Charge, "100.00", "CNY"),
            row(Kind::Charge, "1.00", "USD"),
        ];
        assert!(matches!(monthly_fee(&rows, false), Fee::Unpriceable(_)));
        assert!(matches!(monthly_fee(&rows[..1], true), Fee::Unpriceable(_)));
    }
}
