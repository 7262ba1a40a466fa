//! `billing.csv` — what each customer was billed and how it paid, per month (SLA 3.1(2)).
//!
//! Gives the well-formed rows plus the customer-months made unusable by a quarantined row
//! (unknown kind, bad amount, empty currency). An unparsable customer_id or period is fatal.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{parse_customer_id, read_optional};
use crate::error::InputError;
use crate::inputs::problems::Problems;
use crate::quarantine::{Entry, Quarantine, Reason};
use crate::time::YearMonth;

pub const COLUMNS: &[&str] = &["customer_id", "period", "kind", "amount", "currency"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Charge,
    Refund,
    Voucher,
    Coupon,
    Discount,
    Waiver,
}

impl Kind {
    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "charge" => Kind::Charge,
            "refund" => Kind::Refund,
            "voucher" => Kind::Voucher,
            "coupon" => Kind::Coupon,
            "discount" => Kind::Discount,
            "waiver" => Kind::Waiver,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRow {
    pub customer_id: i64,
    pub period: YearMonth,
    pub kind: Kind,
    pub amount: Decimal,
    pub currency: String,
}

#[derive(Debug, Default)]
pub struct Billing {
    pub rows: Vec<BillingRow>,
    /// Customer-months with at least one quarantined billing row, and those rows' entries:
    /// their ledger row is `error`.
    pub defective: BTreeMap<(i64, YearMonth), Vec<Entry>>,
}

/// Digits an amount may have before its decimal point (SPEC §2).
pub const MAX_WHOLE_DIGITS: usize = 15;

/// An amount as SPEC §2 allows it: `^[0-9]{1,15}(\.[0-9]{1,2})?$`, read exactly.
pub fn parse_amount(text: &str) -> Option<Decimal> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = digits(whole)
        && whole.len() <= MAX_WHOLE_DIGITS
        && fraction.is_none_or(|f| digits(f) && f.len() <= 2);
    if !well_formed {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

/// A currency as SPEC §2 allows it: an ISO 4217 alphabetic code, `^[A-Z]{3}$`.
pub fn is_currency_code(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase())
}

impl Billing {
    pub fn load(
        data_dir: &crate::inputs::source::DataSource,
        quarantine: &mut Quarantine,
        problems: &mut Problems,
    ) -> Result<Billing, InputError> {
        let records = read_optional(data_dir, "billing", COLUMNS, problems)?;
        let mut billing = Billing::default();
        for record in &records.rows {
            let customer_id =
                problems.check(records.parse(record, "customer_id", parse_customer_id))?;
            let period =
                problems.check(records.parse(record, "period", |t| t.parse::<YearMonth>()))?;
            let (Some(customer_id), Some(period)) = (customer_id, period) else {
                continue;
            };
            let kind_text = records.cell(record, "kind").unwrap_or("");
            let amount_text = records.cell(record, "amount").unwrap_or("");
            let currency = records.cell(record, "currency").unwrap_or("");
            let mut defect = |reason: Reason, detail: String| {
                let entry = quarantine.add(&records.file, Some(record.position), reason, detail);
                billing
                    .defective
                    .entry((customer_id, period))
                    .or_default()
                    .push(entry.clone());
            };
            let Some(kind) = Kind::parse(kind_text) else {
                defect(Reason::UnknownKind, format!("customer {customer_id} {period}: kind {}; expected charge, refund, voucher, coupon, discount or waiver", crate::text::quoted(kind_text)));
                continue;
            };
            let Some(amount) = parse_amount(amount_text) else {
                defect(Reason::BadAmount, format!("customer {customer_id} {period}: amount {}; expected at most 15 digits with at most 2 decimals", crate::text::quoted(amount_text)));
                continue;
            };
            if currency.is_empty() {
                defect(
                    Reason::EmptyCurrency,
                    format!("customer {customer_id} {period}: currency is empty"),
                );
                continue;
            }
            if !is_currency_code(currency) {
                defect(
                    Reason::BadCurrency,
                    format!(
                        "customer {customer_id} {period}: currency {}; expected an ISO 4217 code of three capital letters, like `CNY`",
                        crate::text::quoted(currency)
                    ),
                );
                continue;
            }
            billing.rows.push(BillingRow {
                customer_id,
                period,
                kind,
                amount,
                currency: currency.to_string(),
            });
        }
        Ok(billing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_2_amounts_accept_only_plain_cents() {
        assert_eq!(parse_amount("12.30"), Some(Decimal::new(1230, 2)));
        assert_eq!(parse_amount("7"), Some(Decimal::new(7, 0)));
        assert_eq!(parse_amount("0.5"), Some(Decimal::new(5, 1)));
        for bad in [
            "1.500", "-0.00", "+1", ".5", " 1", "1.", "1e3", "", "1,00", "１",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad:?} should be rejected");
        }
    }

    #[test]
    fn spec_2_amounts_have_at_most_15_whole_digits() {
        let most = "9".repeat(15);
        assert!(parse_amount(&most).is_some());
        assert!(parse_amount(&format!("{most}.99")).is_some());
        assert_eq!(parse_amount(&"1".repeat(16)), None);
        assert_eq!(parse_amount(&format!("1{}", "0".repeat(28))), None);
    }

    #[test]
    fn spec_2_currencies_are_iso_4217_codes() {
        assert!(is_currency_code("CNY"));
        for bad in [
            "cny",
            "RMB ¥",
            "=1+2",
            "CN",
            "CNYY",
            "C\u{1b}Y",
            "ＣＮＹ",
            "@SU",
        ] {
            assert!(!is_currency_code(bad), "{bad:?} should be rejected");
        }
    }
}
