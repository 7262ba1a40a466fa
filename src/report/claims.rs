//! Takes the priced ledger rows and the as-of date; gives months per claim status, open claims.

use std::fmt::Write as _;

use super::charts::bar_chart;
use super::page::{escape, money_cell};
use super::Report;
use crate::ledger::{ClaimStatus, LedgerRow};

const CLAIM_STATUSES: [ClaimStatus; 5] = [
    ClaimStatus::Valid,
    ClaimStatus::Open,
    ClaimStatus::Pending,
    ClaimStatus::Forfeited,
    ClaimStatus::NotDue,
];

fn claim_colour(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::Valid => "#2e7d32",
        ClaimStatus::Open => "#0b6bcb",
        ClaimStatus::Pending => "#829ab1",
        ClaimStatus::Forfeited => "#c62828",
        ClaimStatus::NotDue => "#bcccdc",
    }
}

/// The claims section: months per claim status, then the claims that can still be made.
pub(super) fn claims_section(page: &mut String, report: &Report) {
    let words = report.words();
    writeln!(
        page,
        "<section id=\"claims\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.claims_heading, words.claims_note
    )
    .ok();
    status_counts(page, report);
    open_claims(page, report);
    page.push_str("</section>\n");
}

/// Months per claim status: a chart, and a table that names each status by the ledger's id.
fn status_counts(page: &mut String, report: &Report) {
    let words = report.words();
    let count = |status: ClaimStatus| {
        report
            .ledger
            .iter()
            .filter(|r| r.priced().is_some_and(|p| p.claim_status == status))
            .count() as u64
    };
    let items: Vec<(String, u64, &str)> = CLAIM_STATUSES
        .iter()
        .map(|s| {
            (
                words.claim_status(*s).to_string(),
                count(*s),
                claim_colour(*s),
            )
        })
        .collect();
    bar_chart(page, "claims-chart", words.claims_chart_aria, &items);
    writeln!(
        page,
        "<table id=\"claims-table\">\n<thead><tr><th>{}</th><th class=\"num\">{}</th>\
         </tr></thead>\n<tbody>",
        words.col_status, words.col_months
    )
    .ok();
    for (status, (name, n, _)) in CLAIM_STATUSES.iter().zip(&items) {
        // The ledger's own id beside a translated name, so the page reads against ledger.csv.
        let id = status.as_str();
        let shown = if name == id {
            format!("<code>{id}</code>")
        } else {
            format!("{name} <code>{id}</code>")
        };
        writeln!(
            page,
            "<tr data-claim-status=\"{id}\"><td>{shown}</td>\
             <td class=\"num\" data-field=\"months\">{n}</td></tr>"
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n");
}

/// The claims that can still be made, the nearest deadline first, with the days left.
fn open_claims(page: &mut String, report: &Report) {
    let as_of = report.job.as_of;
    let words = report.words();
    let mut open: Vec<&LedgerRow> = report
        .ledger
        .iter()
        .filter(|r| {
            r.priced()
                .is_some_and(|p| p.claim_status == ClaimStatus::Open)
        })
        .collect();
    open.sort_by_key(|r| {
        (
            r.priced().and_then(|p| p.claim_deadline),
            r.customer_id,
            r.service_month,
        )
    });
    writeln!(page, "<h2>{}</h2>", words.open_heading).ok();
    if open.is_empty() {
        writeln!(page, "<p class=\"empty\">{}</p>", words.open_empty).ok();
        return;
    }
    writeln!(
        page,
        "<table id=\"open-claims\">\n<thead><tr><th>{}</th><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th></tr></thead>\n<tbody>",
        words.col_customer,
        words.col_month,
        words.col_currency,
        words.col_compensation,
        words.col_opens,
        words.col_deadline,
        words.col_days_left
    )
    .ok();
    for row in open {
        let p = row.priced().expect("open rows are priced");
        let deadline = p.claim_deadline;
        let days_left = deadline.map_or(String::new(), |d| (d - as_of).num_days().to_string());
        let date = |d: Option<chrono::NaiveDate>| d.map_or(String::new(), |d| d.to_string());
        writeln!(
            page,
            "<tr data-customer=\"{}\" data-month=\"{}\"><td>{}</td><td>{}</td><td>{}</td>\
             {}<td>{}</td>\
             <td data-field=\"claim_deadline\">{}</td><td class=\"num\">{days_left}</td></tr>",
            row.customer_id,
            row.service_month,
            row.customer_id,
            row.service_month,
            escape(p.currency.as_deref().unwrap_or("")),
            money_cell("compensation", p.compensation),
            date(p.claim_opens),
            date(deadline),
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n");
}
