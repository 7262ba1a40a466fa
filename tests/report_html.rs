//! `report.html`: every number it shows is read back from its `data-*` attributes and checked
//! against the ledger files written beside it.

use std::collections::BTreeMap;
use std::path::Path;

use rust_decimal::Decimal;

use crate::support::*;

/// One `<tr>` of the page: its own attributes, its `data-field` cells' text and, for cells
/// that have one (money), their `data-value`.
#[derive(Debug, Clone)]
pub struct HtmlRow {
    pub attrs: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
    pub values: BTreeMap<String, String>,
}

impl HtmlRow {
    /// A money cell as the reader sees it (`2,588,255.80`), checked against its plain
    /// `data-value` (`2588255.80`, as in ledger.csv): the same amount, grouped in thousands.
    pub fn money(&self, field: &str) -> Decimal {
        let shown = &self.fields[field];
        let value = &self.values[field];
        assert_eq!(&shown.replace(',', ""), value, "`{field}` shows {shown}");
        let whole = value.trim_start_matches('-').split('.').next().unwrap();
        let groups: Vec<&str> = shown
            .trim_start_matches('-')
            .split('.')
            .next()
            .unwrap()
            .split(',')
            .collect();
        assert!(
            groups.iter().skip(1).all(|g| g.len() == 3)
                && groups[0].len() <= 3
                && !groups[0].is_empty(),
            "`{field}` is not grouped in thousands: {shown}"
        );
        assert_eq!(groups.concat(), whole);
        dec(value)
    }
}

/// Attributes of an opening tag's text (`tr data-currency="CNY" class="total"`).
fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string();
        let after = &rest[eq + 2..];
        let end = after.find('"').expect("closing quote");
        attrs.insert(name, after[..end].to_string());
        rest = &after[end + 1..];
    }
    attrs
}

/// Every `<tr>` with attributes (so not the header row) inside the element whose `id` is
/// `table_id`.
pub fn table_rows(html: &str, table_id: &str) -> Vec<HtmlRow> {
    let start = html
        .find(&format!("id=\"{table_id}\""))
        .unwrap_or_else(|| panic!("no element with id `{table_id}` in the page"));
    let end = start + html[start..].find("</table>").expect("table end");
    let table = &html[start..end];
    let mut rows = Vec::new();
    for chunk in table.split("<tr").skip(1) {
        let (open, body) = chunk.split_once('>').expect("tag end");
        let body = body.split("</tr>").next().unwrap_or("");
        let mut fields = BTreeMap::new();
        let mut values = BTreeMap::new();
        for cell in body.split("<td").skip(1) {
            let (tag, content) = cell.split_once('>').expect("cell tag end");
            let cell_attrs = attributes(tag);
            if let Some(field) = cell_attrs.get("data-field") {
                let text = content.split('<').next().unwrap_or("").trim().to_string();
                fields.insert(field.clone(), text);
                if let Some(value) = cell_attrs.get("data-value") {
                    values.insert(field.clone(), value.clone());
                }
            }
        }
        let attrs = attributes(open);
        if !attrs.is_empty() {
            rows.push(HtmlRow {
                attrs,
                fields,
                values,
            });
        }
    }
    rows
}

/// The attributes of every `<tag ...>` whose attributes include `class="{class}"`, inside the
/// element with `id`.
pub fn tagged(html: &str, id: &str, tag: &str, class: &str) -> Vec<BTreeMap<String, String>> {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id `{id}` in the page"));
    let end = start + html[start..].find("</svg>").expect("svg end");
    html[start..end]
        .split(&format!("<{tag} "))
        .skip(1)
        .map(|chunk| attributes(chunk.split('>').next().unwrap_or("")))
        .filter(|a| a.get("class").map(String::as_str) == Some(class))
        .collect()
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap_or_else(|e| panic!("`{text}` is not a decimal: {e}"))
}

/// The ledger as header-keyed records.
pub fn ledger_records(out: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(out.join("ledger.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Per currency: months, fee, compensation, payout, summed from `ledger.csv`.
pub fn ledger_totals(
    rows: &[BTreeMap<String, String>],
) -> BTreeMap<String, (usize, Decimal, Decimal, Decimal)> {
    let mut totals: BTreeMap<String, (usize, Decimal, Decimal, Decimal)> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r["currency"].is_empty()) {
        let t = totals.entry(row["currency"].clone()).or_default();
        t.0 += 1;
        t.1 += dec(&row["monthly_fee"]);
        t.2 += dec(&row["compensation"]);
        t.3 += dec(&row["payout"]);
    }
    totals
}

/// Totals of the page's `totals-table`, in the same shape, as the reader sees them.
pub fn page_totals(html: &str) -> BTreeMap<String, (usize, Decimal, Decimal, Decimal)> {
    table_rows(html, "totals-table")
        .into_iter()
        .filter_map(|row| {
            let currency = row.attrs.get("data-currency")?.clone();
            Some((
                currency,
                (
                    row.fields["months"].parse().unwrap(),
                    row.money("monthly_fee"),
                    row.money("compensation"),
                    row.money("payout"),
                ),
            ))
        })
        .collect()
}

fn run_job_into(dir: &TempDir, job: &str, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    assert_success(&crate::support::run_job(
        &format!("jobs/{job}.toml"),
        &out,
        &[],
    ));
    out
}

#[test]
fn report_html_totals_equal_the_ledger() {
    let dir = TempDir::new("report");
    let out = run_job_into(&dir, "month-end", "out");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let ledger = ledger_records(&out);

    // Totals per currency, and the same totals the manifest states.
    let expected = ledger_totals(&ledger);
    assert!(expected.len() >= 2, "sample data bills in two currencies");
    assert_eq!(page_totals(&html), expected);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    for (currency, (_, _, compensation, payout)) in &expected {
        let t = &manifest["totals"][currency];
        assert_eq!(dec(t["payout"].as_str().unwrap()), *payout, "{currency}");
        assert_eq!(
            dec(t["compensation"].as_str().unwrap()),
            *compensation,
            "{currency}"
        );
    }

    // Payout by tier: months per tier rate, and money per tier and currency.
    let mut months_by_rate: BTreeMap<String, usize> = BTreeMap::new();
    let mut money_by_rate: BTreeMap<(String, String), (Decimal, Decimal)> = BTreeMap::new();
    for row in &ledger {
        *months_by_rate.entry(row["tier_rate"].clone()).or_default() += 1;
        if !row["currency"].is_empty() {
            let m = money_by_rate
                .entry((row["tier_rate"].clone(), row["currency"].clone()))
                .or_default();
            m.0 += dec(&row["compensation"]);
            m.1 += dec(&row["payout"]);
        }
    }
    let tier_rows = table_rows(&html, "tier-table");
    let page_months: BTreeMap<String, usize> = tier_rows
        .iter()
        .filter(|r| !r.attrs.contains_key("data-currency"))
        .map(|r| {
            (
                r.attrs["data-tier-rate"].clone(),
                r.fields["months"].parse().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(page_months, months_by_rate);
    let page_money: BTreeMap<(String, String), (Decimal, Decimal)> = tier_rows
        .iter()
        .filter(|r| r.attrs.contains_key("data-currency"))
        .map(|r| {
            (
                (
                    r.attrs["data-tier-rate"].clone(),
                    r.attrs["data-currency"].clone(),
                ),
                (r.money("compensation"), r.money("payout")),
            )
        })
        .collect();
    assert_eq!(page_money, money_by_rate);

    // Claims by status.
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for row in ledger.iter().filter(|r| !r["claim_status"].is_empty()) {
        *by_status.entry(row["claim_status"].clone()).or_default() += 1;
    }
    let page_status: BTreeMap<String, usize> = table_rows(&html, "claims-table")
        .iter()
        .map(|r| {
            (
                r.attrs["data-claim-status"].clone(),
                r.fields["months"].parse().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(page_status, by_status);
    let open: Vec<(String, String, String)> = table_rows(&html, "open-claims")
        .iter()
        .filter(|r| r.attrs.contains_key("data-customer"))
        .map(|r| {
            (
                r.attrs["data-customer"].clone(),
                r.attrs["data-month"].clone(),
                r.fields["claim_deadline"].clone(),
            )
        })
        .collect();
    let mut expected_open: Vec<(String, String, String)> = ledger
        .iter()
        .filter(|r| r["claim_status"] == "open")
        .map(|r| {
            (
                r["customer_id"].clone(),
                r["service_month"].clone(),
                r["claim_deadline"].clone(),
            )
        })
        .collect();
    expected_open.sort_by(|a, b| (&a.2, &a.0, &a.1).cmp(&(&b.2, &b.0, &b.1)));
    assert!(!expected_open.is_empty(), "sample data has open claims");
    assert_eq!(open, expected_open);

    // Exemptions by clause equal exemptions.csv and the ledger's exempt_errors.
    let mut by_clause: BTreeMap<String, u64> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(out.join("exemptions.csv")).unwrap();
    for r in reader.records() {
        let r = r.unwrap();
        *by_clause.entry(r[2].to_string()).or_default() += r[3].parse::<u64>().unwrap();
    }
    let page_clauses: BTreeMap<String, u64> = table_rows(&html, "exemptions-table")
        .iter()
        .map(|r| {
            (
                r.attrs["data-clause"].clone(),
                r.fields["calls"].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(page_clauses, by_clause);
    let exempt_total: u64 = ledger
        .iter()
        .map(|r| r["exempt_errors"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(by_clause.values().sum::<u64>(), exempt_total);

    // The histogram counts every service month once, and its tier bounds split them exactly.
    let bars = tagged(&html, "availability-histogram", "rect", "bar");
    let count = |bars: &[BTreeMap<String, String>]| -> usize {
        bars.iter()
            .map(|b| b["data-count"].parse::<usize>().unwrap())
            .sum()
    };
    assert_eq!(count(&bars), ledger.len());
    let bounds: Vec<String> = tagged(&html, "availability-histogram", "line", "tier-bound")
        .iter()
        .map(|l| l["data-bound"].clone())
        .collect();
    assert_eq!(bounds, ["99.50", "99.00", "95.00"]);
    for bound in &bounds {
        let at_or_above: Vec<_> = bars
            .iter()
            .filter(|b| dec(&b["data-bin-from"]) >= dec(bound))
            .cloned()
            .collect();
        let expected = ledger
            .iter()
            .filter(|r| dec(&r["availability_pct"]) >= dec(bound))
            .count();
        assert_eq!(count(&at_or_above), expected, "months at or above {bound}%");
    }

    // Quarantine summary.
    let quarantine_rows = std::fs::read_to_string(out.join("quarantine.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let page_entries: usize = table_rows(&html, "quarantine-table")
        .iter()
        .map(|r| r.fields["entries"].parse::<usize>().unwrap())
        .sum();
    assert_eq!(page_entries, quarantine_rows);
}

#[test]
fn report_html_is_self_contained_deterministic_and_in_the_manifest() {
    let dir = TempDir::new("report-bytes");
    let a = run_job_into(&dir, "nightly", "a");
    let b = run_job_into(&dir, "nightly", "b");
    let page = std::fs::read(a.join("report.html")).unwrap();
    assert!(
        page == std::fs::read(b.join("report.html")).unwrap(),
        "report.html differs between two runs of the same job"
    );
    let html = String::from_utf8(page.clone()).unwrap();
    for fetch in [
        "<script", "<link", "<img", "<iframe", "url(", "@import", " src=",
    ] {
        assert!(
            !html.contains(fetch),
            "report.html must not fetch anything: found `{fetch}`"
        );
    }
    assert!(html.contains("<style>") && html.contains("<svg id=\"availability-histogram\""));

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "report.html")
        .expect("report.html is listed in the manifest outputs");
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&page)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(listed["sha256"].as_str().unwrap(), digest);
    assert_eq!(listed["bytes"].as_u64().unwrap(), page.len() as u64);
}

/// The chart labels of the bar chart `id`, in order.
fn chart_labels(html: &str, id: &str) -> Vec<String> {
    tagged(html, id, "rect", "bar")
        .into_iter()
        .map(|bar| bar["data-label"].clone())
        .collect()
}

#[test]
fn sla_5_report_html_names_each_exempt_clause_by_its_policy_title() {
    let dir = TempDir::new("report-titles");
    let out = run_job_into(&dir, "month-end", "out");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let titles: BTreeMap<String, String> = table_rows(&html, "exemptions-table")
        .into_iter()
        .map(|r| (r.attrs["data-clause"].clone(), r.fields["title"].clone()))
        .collect();
    assert_eq!(titles["5.9"], "regulator or carrier controls");
    assert_eq!(titles["5.12"], "system maintenance notified in advance");
    assert!(titles.values().all(|t| !t.is_empty()), "{titles:?}");
    let labels = chart_labels(&html, "exemptions-chart");
    assert!(
        labels.contains(&"5.9 regulator or carrier controls".to_string()),
        "{labels:?}"
    );

    // A policy of its own: it titles one clause (its title escaped), the rest show numbers.
    let builtin = std::fs::read_to_string(repo_root().join("jobs/policy-ccc.toml")).unwrap();
    let (numbers, _) = builtin.split_once("\n[clause_titles]").unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        format!("{numbers}\n[clause_titles]\n\"5.9\" = {{ en = \"<b>carrier</b> blocks\" }}\n"),
    )
    .unwrap();
    let own = dir.join("own");
    assert_success(&crate::support::run_job(
        "jobs/month-end.toml",
        &own,
        &["--policy", policy.to_str().unwrap()],
    ));
    let html = std::fs::read_to_string(own.join("report.html")).unwrap();
    assert!(!html.contains("<b>carrier"), "a title is escaped");
    let labels = chart_labels(&html, "exemptions-chart");
    assert!(labels.contains(&"5.9 &lt;b&gt;carrier&lt;/b&gt; blocks".to_string()));
    assert!(labels.contains(&"5.12".to_string()), "{labels:?}");
    let untitled = table_rows(&html, "exemptions-table")
        .into_iter()
        .filter(|r| r.fields["title"].is_empty())
        .count();
    assert_eq!(untitled, titles.len() - 1);
    // Titles are words: the ledger and the recorded policy are the built-in run's.
    for file in ["ledger.csv", "exemptions.csv"] {
        assert_same_file(&out.join(file), &own.join(file));
    }
    let manifest = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(
        manifest(&out)["job"]["policy"],
        manifest(&own)["job"]["policy"]
    );
}

/// The `lang` of the page's `<html>` element.
pub fn html_lang(html: &str) -> String {
    let start = html.find("<html").expect("an html element");
    let tag = &html[start..start + html[start..].find('>').unwrap()];
    attributes(tag)["lang"].clone()
}

#[test]
fn report_html_is_in_the_report_language_and_its_numbers_are_the_ledgers() {
    let dir = TempDir::new("report-lang");
    let en = run_job_into(&dir, "month-end", "en");
    let zh = dir.join("zh");
    assert_success(&crate::support::run_job(
        "jobs/month-end.toml",
        &zh,
        &["--report-lang", "zh-CN"],
    ));
    let page = |out: &Path| std::fs::read_to_string(out.join("report.html")).unwrap();
    let (en_page, zh_page) = (page(&en), page(&zh));
    assert_eq!(html_lang(&en_page), "en");
    assert_eq!(html_lang(&zh_page), "zh-CN");
    assert!(en_page.contains("<h2>Totals per currency</h2>"));
    assert!(
        zh_page.contains("<h2>各币种合计</h2>"),
        "headings are Chinese"
    );
    assert!(!zh_page.contains("Totals per currency"));
    // Money is grouped in thousands for the reader, in both languages; the ledger's total
    // fee in CNY is 2588255.80.
    for html in [&en_page, &zh_page] {
        assert_eq!(page_totals(html), ledger_totals(&ledger_records(&en)));
        assert!(html.contains(">2,588,255.80</td>"), "grouped money");
    }
    // Clause titles follow the language; ids stay ids.
    let zh_titles: BTreeMap<String, String> = table_rows(&zh_page, "exemptions-table")
        .into_iter()
        .map(|r| (r.attrs["data-clause"].clone(), r.fields["title"].clone()))
        .collect();
    assert_eq!(zh_titles["5.9"], "监管部门和运营商管控");
    assert!(zh_page.contains("data-claim-status=\"valid\""));
    // Only report.html and the manifest that records the language differ.
    for file in [
        "ledger.csv",
        "ledger.parquet",
        "exemptions.csv",
        "quarantine.csv",
        "at_risk.csv",
    ] {
        assert!(
            std::fs::read(en.join(file)).unwrap() == std::fs::read(zh.join(file)).unwrap(),
            "{file} depends on the report language"
        );
    }
    let manifest = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(manifest(&en)["job"]["report_lang"], "en");
    assert_eq!(manifest(&zh)["job"]["report_lang"], "zh-CN");
    // Same inputs and arguments, same bytes.
    let again = dir.join("zh-again");
    assert_success(&crate::support::run_job(
        "jobs/month-end.toml",
        &again,
        &["--report-lang", "zh-CN"],
    ));
    assert!(
        page(&again) == zh_page,
        "report.html differs between two zh-CN runs"
    );
}

#[test]
fn report_lang_flag_beats_the_job_key_and_unknown_languages_are_usage_errors() {
    let dir = TempDir::new("report-lang-job");
    let data = repo_root().join("sample_data");
    let job = |name: &str, lang: &str| {
        let path = dir.join(format!("{name}.toml"));
        let text = format!(
            "data = \"{}\"\nmonths = \"2026-01..2026-03\"\nas_of = \"2026-04-30\"\n\
             report_lang = \"{lang}\"\n",
            data.display()
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let zh_job = job("zh", "zh-CN");
    let from_key = dir.join("from-key");
    let output = crate::support::run_job(zh_job.to_str().unwrap(), &from_key, &[]);
    let overridden = dir.join("overridden");
    let flag = crate::support::run_job(
        zh_job.to_str().unwrap(),
        &overridden,
        &["--report-lang", "en"],
    );
    let bad_job = job("fr", "fr");
    let bad_key = crate::support::run_job(bad_job.to_str().unwrap(), &dir.join("bad-key"), &[]);
    let bad_flag = crate::support::run_job(
        "jobs/month-end.toml",
        &dir.join("bad-flag"),
        &["--report-lang", "zh-cn"],
    );

    assert_success(&output);
    let page = |out: &Path| std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html_lang(&page(&from_key)), "zh-CN");
    assert_success(&flag);
    assert_eq!(html_lang(&page(&overridden)), "en");
    for (output, out) in [(&bad_key, "bad-key"), (&bad_flag, "bad-flag")] {
        assert_exit(output, 2);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("en") && stderr.contains("zh-CN"),
            "{stderr}"
        );
        assert!(!dir.join(out).exists());
    }
    assert!(
        text(&bad_key.stderr).contains("report_lang"),
        "{}",
        text(&bad_key.stderr)
    );
}
