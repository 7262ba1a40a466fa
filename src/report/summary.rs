//! Takes the ledger and the row counts; gives the overview cards and the money totals per currency.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::page::{escape, money_cell};
use super::Report;
use crate::ledger::{money, LedgerRow};

fn card(page: &mut String, id: &str, label: &str, value: impl std::fmt::Display) {
    writeln!(
        page,
        "<div class=\"card\"><div class=\"label\">{label}</div>\
         <div class=\"value\" id=\"{id}\">{value}</div></div>"
    )
    .ok();
}

pub(super) fn overview(page: &mut String, report: &Report) {
    let rows = report.ledger;
    let words = report.words();
    writeln!(
        page,
        "<section id=\"overview\">\n<h2>{}</h2>\n<div class=\"cards\">",
        words.overview_heading
    )
    .ok();
    card(
        page,
        "service-months",
        words.card_service_months,
        rows.len(),
    );
    card(
        page,
        "provisional-months",
        words.card_provisional,
        rows.iter().filter(|r| r.provisional).count(),
    );
    card(
        page,
        "below-standard-months",
        words.card_below_standard,
        rows.iter().filter(|r| !r.tier_rate.is_zero()).count(),
    );
    card(
        page,
        "error-months",
        words.card_error_rows,
        rows.iter().filter(|r| r.priced().is_none()).count(),
    );
    card(
        page,
        "calls-counted",
        words.card_calls_counted,
        report.calls.counted,
    );
    card(
        page,
        "quarantine-entries",
        words.card_quarantine_entries,
        report.quarantine.len(),
    );
    page.push_str("</div>\n</section>\n");
}

/// One currency's priced months and their money.
#[derive(Default)]
pub(super) struct Money {
    months: usize,
    fee: Decimal,
    pub(super) compensation: Decimal,
    pub(super) payout: Decimal,
}

/// Sums the money of the priced rows that have a currency, per currency.
pub(super) fn money_by_currency<'r>(
    rows: impl Iterator<Item = &'r LedgerRow>,
) -> BTreeMap<String, Money> {
    let mut sums: BTreeMap<String, Money> = BTreeMap::new();
    for row in rows {
        if let Some(priced) = row.priced() {
            if let Some(currency) = &priced.currency {
                let m = sums.entry(currency.clone()).or_default();
                m.months += 1;
                m.fee += priced.monthly_fee;
                m.compensation += priced.compensation;
                m.payout += row.payout();
            }
        }
    }
    sums
}

pub(super) fn totals_section(page: &mut String, report: &Report) {
    let words = report.words();
    writeln!(
        page,
        "<section id=\"totals\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.totals_heading, words.totals_note
    )
    .ok();
    let sums = money_by_currency(report.ledger.iter());
    if sums.is_empty() {
        writeln!(
            page,
            "<p class=\"empty\">{}</p>\n</section>",
            words.totals_empty
        )
        .ok();
        return;
    }
    writeln!(
        page,
        "<table id=\"totals-table\">\n<thead><tr><th>{}</th><th class=\"num\">{}</th>\
         <th class=\"num\">{}</th><th class=\"num\">{}</th>\
         <th class=\"num\">{}</th></tr></thead>\n<tbody>",
        words.col_currency,
        words.col_months,
        words.col_fees_paid,
        words.col_compensation,
        words.col_payout
    )
    .ok();
    for (currency, m) in &sums {
        // The manifest's totals are the contract; the page must agree with them.
        debug_assert!(report.totals.get(currency).is_some_and(|t| {
            t.compensation == money(m.compensation) && t.payout == money(m.payout)
        }));
        let c = escape(currency);
        writeln!(
            page,
            "<tr class=\"total\" data-currency=\"{c}\"><th>{c}</th>\
             <td class=\"num\" data-field=\"months\">{}</td>{}{}{}</tr>",
            m.months,
            money_cell("monthly_fee", m.fee),
            money_cell("compensation", m.compensation),
            money_cell("payout", m.payout)
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}
