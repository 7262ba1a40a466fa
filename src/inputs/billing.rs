//! `billing.csv` — what each customer was billed and how it paid, per month (SLA 3.1(2)).
//!
//! Gives the well-formed rows plus the customer-months made unusable by a quarantined row
//! (unknown kind, bad amount, empty currency). An unparsable customer_id or period is fatal.

use std::collections::BTreeSet;
use std::path::Path;

use rust_decimal::Decimal;

use super::{parse_customer_id, read_optional};
use crate::error::InputError;
use crate::inputs::problems::Problems;
use crate::quarantine::{Quarantine, Reason};
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
    /// Customer-months with at least one quarantined billing row: their ledger row is `error`.
    pub defective: BTreeSet<(i64, YearMonth)>,
}

/// An amount as SPEC §2 allows it: `^[0-9]+(\.[0-9]{1,2})?$`, read exactly.
pub fn parse_amount(text: &str) -> Option<Decimal> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = digits(whole) && fraction.is_none_or(|f| digits(f) && f.len() <= 2);
    if !well_formed {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

impl Billing {
    pub fn load(
        data_dir: &Path,
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
                quarantine.add(&records.file, Some(record.position), reason, detail);
                billing.defective.insert((customer_id, period));
            };
            let Some(kind) = Kind::parse(kind_text) else {
                defect(Reason::UnknownKind, format!("customer {customer_id} {period}: kind `{kind_text}`; expected charge, refund, voucher, coupon, discount or waiver"));
                continue;
            };
            let Some(amount) = parse_amount(amount_text) else {
                defect(Reason::BadAmount, format!("customer {customer_id} {period}: amount `{amount_text}`; expected digits with at most 2 decimals"));
                continue;
            };
            if currency.is_empty() {
                defect(
                    Reason::EmptyCurrency,
                    format!("customer {customer_id} {period}: currency is empty"),
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
}
