//! Money as a reader of `report.html` reads it: `2,588,255.80`. The ledger files keep plain
//! fixed-scale numbers (`2588255.80`); only the page groups digits.

use rust_decimal::Decimal;

/// Digits in a group before a separator.
const GROUP: usize = 3;

/// `value` at 2 decimals with its whole part grouped in thousands by commas (`-1,234.50`,
/// `0.00`, `999.99`). Exact: the decimal's own digits, never a float. Money in the ledger has
/// 2 decimals already; a value with more is rescaled as the ledger's `fixed` does (one too
/// wide for cents, beyond any ledger's range, keeps the digits it has), and zero never shows a
/// sign.
pub fn grouped_money(value: Decimal) -> String {
    let plain = crate::ledger::fixed(value.abs(), 2);
    let (whole, cents) = plain.split_once('.').unwrap_or((&plain, ""));
    let mut out = String::with_capacity(plain.len() + plain.len() / GROUP + 1);
    if value.is_sign_negative() && !value.is_zero() {
        out.push('-');
    }
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % GROUP == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if !cents.is_empty() {
        out.push('.');
        out.push_str(cents);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grouped(text: &str) -> String {
        grouped_money(Decimal::from_str_exact(text).unwrap())
    }

    #[test]
    fn thousands_are_grouped_by_commas() {
        assert_eq!(grouped("2588255.80"), "2,588,255.80");
        assert_eq!(grouped("1000.00"), "1,000.00");
        assert_eq!(grouped("100000.01"), "100,000.01");
        assert_eq!(grouped("999999.99"), "999,999.99");
    }

    #[test]
    fn amounts_under_a_thousand_and_zero_are_not_grouped() {
        assert_eq!(grouped("999.99"), "999.99");
        assert_eq!(grouped("0.5"), "0.50");
        assert_eq!(grouped("7"), "7.00");
        assert_eq!(grouped("0"), "0.00");
        assert_eq!(grouped("0.00"), "0.00");
        assert_eq!(grouped("-0.00"), "0.00");
    }

    #[test]
    fn negative_amounts_keep_their_sign_before_the_groups() {
        assert_eq!(grouped("-1234.5"), "-1,234.50");
        assert_eq!(grouped("-999.99"), "-999.99");
        assert_eq!(grouped("-100000"), "-100,000.00");
    }

    #[test]
    fn many_digits_are_grouped_exactly() {
        // The ledger's widest amount: 15 digits before the point (SPEC §2), and beyond.
        assert_eq!(grouped("999999999999999.99"), "999,999,999,999,999.99");
        assert_eq!(
            grouped("12345678901234567890123456.78"),
            "12,345,678,901,234,567,890,123,456.78"
        );
        // Too wide for cents (no ledger amount comes near): the digits it has, still grouped.
        assert_eq!(
            grouped_money(Decimal::MAX),
            "79,228,162,514,264,337,593,543,950,335"
        );
        assert_eq!(
            grouped_money(Decimal::MIN),
            "-79,228,162,514,264,337,593,543,950,335"
        );
    }

    #[test]
    fn the_ledgers_fixed_scale_is_the_grouped_text_without_its_commas() {
        for text in ["0.01", "12.3", "45678.9", "-3210987.65", "1.005"] {
            let value = Decimal::from_str_exact(text).unwrap();
            assert_eq!(
                grouped_money(value).replace(',', ""),
                crate::ledger::fixed(value, 2)
            );
        }
    }
}
