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
//!
//! One file per concern: `page.rs` the document shell (head, CSS, escaping, money cells),
//! `charts.rs` the bar chart, and one per section in the page's order: `summary.rs` (overview
//! cards, totals), `availability.rs` (the histogram), `tiers.rs`, `exemptions.rs`,
//! `payouts.rs`, `claims.rs`, `quarantine.rs`, `error_rows.rs`.

mod availability;
mod charts;
mod claims;
mod error_rows;
mod exemptions;
pub mod money;
mod page;
mod payouts;
mod quarantine;
pub mod strings;
mod summary;
mod tiers;

use std::collections::BTreeMap;

use crate::job::Job;
use crate::lang::Lang;
use crate::ledger::{ExemptionCount, LedgerRow};
use crate::manifest::Totals;
use crate::quarantine::Entry;
use crate::stages::calls::RowCounts;
use availability::histogram_section;
use claims::claims_section;
use error_rows::errors_section;
use exemptions::exemptions_section;
use page::head;
use payouts::top_payouts_section;
use quarantine::quarantine_section;
use strings::Strings;
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

/// The whole page: its head, then each section in reading order.
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
