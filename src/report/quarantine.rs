//! Takes the row counts and the quarantine entries; gives the rows' accounting, entries by source.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::page::escape;
use super::strings::fill;
use super::Report;

pub(super) fn quarantine_section(page: &mut String, report: &Report) {
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
