//! Takes the priced ledger rows; gives the customers with the largest payouts, per currency.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::page::{escape, money_cell};
use super::strings::fill;
use super::Report;

/// How many customers the "largest payouts" table lists.
const TOP_CUSTOMERS: usize = 10;

pub(super) fn top_payouts_section(page: &mut String, report: &Report) {
    // Per customer and currency: payout, then compensation owed.
    let mut per_customer: BTreeMap<(i64, String), (Decimal, Decimal, usize)> = BTreeMap::new();
    for row in report.ledger {
        if let Some(p) = row.priced() {
            if let Some(currency) = &p.currency {
                let entry = per_customer
                    .entry((row.customer_id, currency.clone()))
                    .or_default();
                entry.0 += row.payout();
                entry.1 += p.compensation;
                entry.2 += usize::from(!p.compensation.is_zero());
            }
        }
    }
    let mut ranked: Vec<_> = per_customer
        .into_iter()
        .filter(|(_, (payout, compensation, _))| !payout.is_zero() || !compensation.is_zero())
        .collect();
    // Largest payout first, then largest compensation; ties by customer and currency.
    ranked.sort_by(|a, b| {
        (b.1 .0, b.1 .1)
            .cmp(&(a.1 .0, a.1 .1))
            .then_with(|| a.0.cmp(&b.0))
    });
    let words = report.words();
    writeln!(
        page,
        "<section id=\"top-payouts\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.top_heading,
        fill(words.top_note, &[("n", &TOP_CUSTOMERS.to_string())])
    )
    .ok();
    if ranked.is_empty() {
        writeln!(
            page,
            "<p class=\"empty\">{}</p>\n</section>",
            words.top_empty
        )
        .ok();
        return;
    }
    writeln!(
        page,
        "<table id=\"top-payouts-table\">\n<thead><tr><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th><th class=\"num\">{}</th>\
         <th class=\"num\">{}</th></tr></thead>\n<tbody>",
        words.col_customer,
        words.col_currency,
        words.col_months_owed,
        words.col_compensation,
        words.col_payout
    )
    .ok();
    for ((customer, currency), (payout, compensation, months)) in ranked.iter().take(TOP_CUSTOMERS)
    {
        let c = escape(currency);
        writeln!(
            page,
            "<tr data-customer=\"{customer}\" data-currency=\"{c}\"><td>{customer}</td><td>{c}</td>\
             <td class=\"num\">{months}</td>{}{}</tr>",
            money_cell("compensation", *compensation),
            money_cell("payout", *payout)
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}
