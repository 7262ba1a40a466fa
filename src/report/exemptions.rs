//! Takes the exemption counts and the policy's clause titles; gives exempt calls per clause.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::charts::bar_chart;
use super::page::escape;
use super::strings::fill;
use super::Report;
use crate::ledger::ExemptionCount;
use crate::policy::Clause;

pub(super) fn exemptions_section(page: &mut String, report: &Report) {
    let mut by_clause: BTreeMap<Clause, u64> = BTreeMap::new();
    for &ExemptionCount { clause, calls, .. } in report.exemptions {
        *by_clause.entry(clause).or_default() += calls;
    }
    let total: u64 = by_clause.values().sum();
    let words = report.words();
    let strong = format!("<strong id=\"exempt-total\" data-value=\"{total}\">{total}</strong>");
    writeln!(
        page,
        "<section id=\"exemptions\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.exemptions_heading,
        fill(words.exemptions_note, &[("total", &strong)])
    )
    .ok();
    if by_clause.is_empty() {
        writeln!(
            page,
            "<p class=\"empty\">{}</p>\n</section>",
            words.exemptions_empty
        )
        .ok();
        return;
    }
    let policy = &report.job.policy;
    let lang = report.lang();
    let items: Vec<(String, u64, &str)> = by_clause
        .iter()
        .map(|(clause, n)| (policy.clause_label(*clause, lang), *n, "#0b6bcb"))
        .collect();
    bar_chart(
        page,
        "exemptions-chart",
        words.exemptions_chart_aria,
        &items,
    );
    writeln!(
        page,
        "<table id=\"exemptions-table\">\n<thead><tr><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th></tr></thead>\n<tbody>",
        words.col_clause, words.col_clause_title, words.col_exempt_calls
    )
    .ok();
    for (clause, n) in &by_clause {
        writeln!(
            page,
            "<tr data-clause=\"{clause}\"><td>{clause}</td>\
             <td data-field=\"title\">{}</td>\
             <td class=\"num\" data-field=\"calls\">{n}</td></tr>",
            escape(policy.clause_title(*clause, lang).unwrap_or(""))
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}
