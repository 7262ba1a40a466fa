//! Takes the job and its language; gives the page's head with inline CSS, escaping and money cells.

use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::money::grouped_money;
use super::strings::fill;
use super::Report;
use crate::ledger::money;

/// Escapes text for HTML element content and double-quoted attributes. Control characters
/// are shown as `\u{..}` first: HTML forbids them, and the file may be read in a terminal.
pub(super) fn escape(text: &str) -> String {
    let visible = crate::text::for_terminal(text);
    let mut out = String::with_capacity(visible.len());
    for c in visible.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A money cell: the amount grouped for the reader, its plain fixed-scale value in
/// `data-value` (as in `ledger.csv`) for scripts.
pub(super) fn money_cell(field: &str, value: Decimal) -> String {
    format!(
        "<td class=\"num\" data-field=\"{field}\" data-value=\"{}\">{}</td>",
        money(value),
        grouped_money(value)
    )
}

const STYLE: &str = "\
:root{--ink:#1f2933;--muted:#52606d;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;--accent:#0b6bcb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC','PingFang SC','Microsoft YaHei','Helvetica Neue',Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#102a43;color:#f0f4f8;padding:20px 32px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#bcccdc}
main{max-width:1040px;margin:0 auto;padding:16px 24px 48px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
p.note{color:var(--muted);margin:4px 0 10px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 120px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:#fbfcfe}
.card .label{color:var(--muted);font-size:12px}
.card .value{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:middle}
svg{display:block;max-width:100%;height:auto}
#availability-histogram{width:100%}
svg text{font:11px system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',Arial,sans-serif;fill:#334e68}
.empty{color:var(--muted);font-style:italic}
";

pub(super) fn head(page: &mut String, report: &Report) {
    let job = report.job;
    let words = report.words();
    let (first, last, as_of) = (
        job.months.first.to_string(),
        job.months.last.to_string(),
        job.as_of.to_string(),
    );
    // The dates and months are digits and dashes: nothing to escape.
    let title = fill(
        words.title,
        &[("first", &first), ("last", &last), ("as_of", &as_of)],
    );
    let policy = format!("<span id=\"policy\">{}</span>", escape(&job.policy.name));
    let months = format!(
        "<span id=\"months\" data-first=\"{first}\" data-last=\"{last}\">{first}..{last}</span>"
    );
    let as_of_span = format!("<span id=\"as-of\">{as_of}</span>");
    let program = format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    let header = fill(
        words.header,
        &[
            ("policy", &policy),
            ("months", &months),
            ("as_of", &as_of_span),
            ("program", &program),
        ],
    );
    writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<header>\n\
         <h1 id=\"title\">{title}</h1>\n<p>{header}</p>\n</header>\n<main>",
        report.lang().tag(),
    )
    .ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
