//! Takes the ledger's `error` rows; gives each with the reason its money could not be computed.

use std::fmt::Write as _;

use super::page::escape;
use super::Report;
use crate::ledger::LedgerRow;

pub(super) fn errors_section(page: &mut String, report: &Report) {
    let errors: Vec<&LedgerRow> = report
        .ledger
        .iter()
        .filter(|r| r.priced().is_none())
        .collect();
    if errors.is_empty() {
        return;
    }
    let words = report.words();
    writeln!(
        page,
        "<section id=\"error-rows\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>\n\
         <table>\n<thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>\n<tbody>",
        words.errors_heading, words.errors_note, words.col_customer, words.col_month, words.col_why
    )
    .ok();
    for row in errors {
        writeln!(
            page,
            "<tr data-customer=\"{}\" data-month=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            row.customer_id,
            row.service_month,
            row.customer_id,
            row.service_month,
            escape(row.error().unwrap_or(""))
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}
