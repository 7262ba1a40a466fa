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
mod claims;
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
use crate::ledger::{ExemptionCount, LedgerRow};
use crate::manifest::Totals;
use crate::quarantine::Entry;
use crate::stages::calls::RowCounts;
use availability::histogram_section;
use claims::claims_section;
use exemptions::exemptions_section;
use page::{escape, head};
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
