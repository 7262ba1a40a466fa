//! Takes the policy's tiers and the ledger; gives tier colours, the legend and the tiers section.

use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::charts::bar_chart;
use super::page::{escape, money_cell};
use super::strings::{fill, Strings};
use super::summary::money_by_currency;
use super::Report;
use crate::ledger::{fixed, LedgerRow};
use crate::policy::Policy;

/// Tier colours, best tier first; the policy's tiers take them in order.
const TIER_COLOURS: [&str; 6] = [
    "#2e7d32", "#f9a825", "#ef6c00", "#c62828", "#6a1b9a", "#37474f",
];

pub(super) fn tier_colour(policy: &Policy, rate: Decimal) -> &'static str {
    let index = policy
        .tiers
        .iter()
        .position(|t| t.rate == rate)
        .unwrap_or(TIER_COLOURS.len() - 1);
    TIER_COLOURS[index.min(TIER_COLOURS.len() - 1)]
}

fn tier_range(policy: &Policy, index: usize, words: &Strings) -> String {
    let bound = |i: usize| fixed(policy.tiers[i].at_least_pct, 2);
    match index {
        0 => fill(words.tier_range_top, &[("bound", &bound(0))]),
        _ => fill(
            words.tier_range_between,
            &[("low", &bound(index)), ("high", &bound(index - 1))],
        ),
    }
}

pub(super) fn tier_legend(page: &mut String, policy: &Policy, words: &Strings) {
    page.push_str("<p class=\"note\" id=\"tier-legend\">");
    for (i, tier) in policy.tiers.iter().enumerate() {
        let entry = fill(
            words.tier_legend_entry,
            &[
                ("range", &tier_range(policy, i, words)),
                ("rate", &fixed(tier.rate, 2)),
            ],
        );
        write!(
            page,
            "<span class=\"swatch\" style=\"background:{}\"></span>{entry} &nbsp; ",
            tier_colour(policy, tier.rate),
        )
        .ok();
    }
    page.push_str("</p>\n");
}

pub(super) fn tiers_section(page: &mut String, report: &Report) {
    let policy = &report.job.policy;
    let currencies: Vec<String> = money_by_currency(report.ledger.iter())
        .into_keys()
        .collect();
    let words = report.words();
    writeln!(
        page,
        "<section id=\"tiers\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.tiers_heading, words.tiers_note
    )
    .ok();
    let items: Vec<(String, u64, &str)> = policy
        .tiers
        .iter()
        .map(|t| {
            let months = report
                .ledger
                .iter()
                .filter(|r| r.tier_rate == t.rate)
                .count() as u64;
            (
                fill(words.tier_bar_label, &[("rate", &fixed(t.rate, 2))]),
                months,
                tier_colour(policy, t.rate),
            )
        })
        .collect();
    bar_chart(page, "tier-chart", words.tiers_chart_aria, &items);
    writeln!(
        page,
        "<table id=\"tier-table\">\n<thead><tr><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th><th>{}</th><th class=\"num\">{}</th>\
         <th class=\"num\">{}</th></tr></thead>\n<tbody>",
        words.col_tier,
        words.col_availability,
        words.col_months,
        words.col_currency,
        words.col_compensation,
        words.col_payout
    )
    .ok();
    for (i, tier) in policy.tiers.iter().enumerate() {
        let rate = fixed(tier.rate, 2);
        let in_tier: Vec<&LedgerRow> = report
            .ledger
            .iter()
            .filter(|r| r.tier_rate == tier.rate)
            .collect();
        let sums = money_by_currency(in_tier.iter().copied());
        writeln!(
            page,
            "<tr data-tier-rate=\"{rate}\"><td><span class=\"swatch\" style=\"background:{}\">\
             </span>{rate}</td><td>{}</td><td class=\"num\" data-field=\"months\">{}</td>\
             <td colspan=\"3\"></td></tr>",
            tier_colour(policy, tier.rate),
            tier_range(policy, i, words),
            in_tier.len()
        )
        .ok();
        for currency in &currencies {
            let Some(m) = sums.get(currency) else {
                continue;
            };
            let c = escape(currency);
            writeln!(
                page,
                "<tr data-tier-rate=\"{rate}\" data-currency=\"{c}\"><td></td><td></td>\
                 <td></td><td>{c}</td>{}{}</tr>",
                money_cell("compensation", m.compensation),
                money_cell("payout", m.payout)
            )
            .ok();
        }
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}
