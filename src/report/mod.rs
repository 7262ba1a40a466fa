//! `report.html`: one self-contained page a reader can open from the output folder.
//!
//! Takes the finished ledger, its side tables and the job; gives an HTML page with inline CSS
//! and inline SVG charts (no scripts, no fonts, nothing fetched), in the job's report language
//! (`--report-lang`): every word comes from [`strings`], money is grouped in thousands by
//! [`money::grouped_money`], and numbers and ids are the ledger's. Every number shown is
//! derived from the same rows the ledger files are written from, and carries a stable `id` or
//! `data-*` attribute (money its plain fixed-scale value in `data-value`) so tests (and
//! scripts) can read it back. The page depends only on the inputs and arguments: it never
//! shows the wall-clock time of the run, so the same inputs give the same bytes.

mod availability;
mod charts;
mod exemptions;
pub mod money;
mod page;
mod payouts;
pub mod strings;
mod summary;
mod tiers;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::job::Job;
use crate::lang::Lang;
use crate::ledger::{ClaimStatus, ExemptionCount, LedgerRow};
use crate::manifest::Totals;
use crate::quarantine::Entry;
use crate::stages::calls::RowCounts;
use availability::histogram_section;
use charts::bar_chart;
use exemptions::exemptions_section;
use page::{escape, head, money_cell};
use payouts::top_payouts_section;
use strings::{fill, Strings};
use summary::{overview, totals_section};
use tiers::tiers_section;

/// Everything the page shows.
pub struct Report<'a> {
    pub job: &'a Job,
    pub ledger: &'a [LedgerRow],
    pub exemptions: &'a [ExemptionCount],
    pub quarantine: &'a [Entry],
    pub calls: &'a RowCounts,
    pub totals: &'a BTreeMap<String, Totals>,
}

impl Report<'_> {
    /// The language the page is written in.
    fn lang(&self) -> Lang {
        self.job.report_lang
    }

    /// The page's words, in its language.
    fn words(&self) -> &'static Strings {
        Strings::of(self.lang())
    }
}

pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    head(&mut page, report);
    overview(&mut page, report);
    totals_section(&mut page, report);
    histogram_section(&mut page, report);
    tiers_section(&mut page, report);
    exemptions_section(&mut page, report);
    top_payouts_section(&mut page, report);
    claims_section(&mut page, report);
    quarantine_section(&mut page, report);
    errors_section(&mut page, report);
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

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

fn claims_section(page: &mut String, report: &Report) {
    let as_of = report.job.as_of;
    let words = report.words();
    writeln!(
        page,
        "<section id=\"claims\">\n<h2>{}</h2>\n<p class=\"note\">{}</p>",
        words.claims_heading, words.claims_note
    )
    .ok();
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
        writeln!(
            page,
            "<p class=\"empty\">{}</p>\n</section>",
            words.open_empty
        )
        .ok();
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
    page.push_str("</tbody>\n</table>\n</section>\n");
}

fn quarantine_section(page: &mut String, report: &Report) {
    let c = report.calls;
    let words = report.words();
    let note = fill(
        words.quarantine_note,
        &[
            (
                "read",
                &format!("<span id=\"calls-read\">{}</span>", c.read),
            ),
            ("counted", &c.counted.to_string()),
            (
                "quarantined",
                &format!("<span id=\"calls-quarantined\">{}</span>", c.quarantined),
            ),
            ("duplicates", &c.duplicates.to_string()),
            ("not_counted", &c.not_counted.to_string()),
        ],
    );
    writeln!(
        page,
        "<section id=\"quarantine\">\n<h2>{}</h2>\n<p class=\"note\">{note}</p>",
        words.quarantine_heading
    )
    .ok();
    if report.quarantine.is_empty() {
        writeln!(
            page,
            "<p class=\"empty\">{}</p>\n</section>",
            words.quarantine_empty
        )
        .ok();
        return;
    }
    let mut by: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for entry in report.quarantine {
        let source = entry.source.split('/').next().unwrap_or(&entry.source);
        // Call files are many; group them under `calls/`.
        let source = if source == "calls" || entry.source.starts_with("calls/") {
            "calls/"
        } else {
            entry.source.as_str()
        };
        *by.entry((source, entry.reason.as_str())).or_default() += 1;
    }
    writeln!(
        page,
        "<table id=\"quarantine-table\">\n<thead><tr><th>{}</th><th>{}</th>\
         <th class=\"num\">{}</th></tr></thead>\n<tbody>",
        words.col_source, words.col_reason, words.col_entries
    )
    .ok();
    for ((source, reason), n) in &by {
        writeln!(
            page,
            "<tr data-source=\"{}\" data-reason=\"{reason}\"><td>{}</td><td>{reason}</td>\
             <td class=\"num\" data-field=\"entries\">{n}</td></tr>",
            escape(source),
            escape(source)
        )
        .ok();
    }
    page.push_str("</tbody>\n</table>\n</section>\n");
}

fn errors_section(page: &mut String, report: &Report) {
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
