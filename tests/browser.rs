//! `report.html` as a reader sees it, in each report language: rendered by headless Chromium,
//! whose DOM must hold the page's language, the charts and the ledger's totals, and which must
//! produce a screenshot.
//!
//! Skips (saying so) when Chromium is absent on a developer machine; under CI (`CI` set) a
//! missing browser is a failure, since `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::report_html::{html_lang, ledger_records, ledger_totals, page_totals, tagged};
use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("SLA_LEDGER_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "Chromium is missing at `{}` under CI; `.ci/run` should have installed it",
            path.display()
        );
    }
    eprintln!(
        "skipped: Chromium not found at `{}`; install it (`apt-get install -y chromium`) to run \
         the browser check of report.html",
        path.display()
    );
    None
}

/// Runs headless Chromium on `page` with `extra` arguments; returns stdout. Killed after 90 s.
fn headless(browser: &Path, profile: &Path, page: &Path, extra: &[&str]) -> String {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            child.kill().ok();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "chromium failed on {url}\n--- stderr\n{}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn report_html_renders_its_charts_and_totals_in_chromium_in_every_language() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = TempDir::new("browser");
    for (lang, heading) in [("en", "Totals per currency"), ("zh-CN", "各币种合计")] {
        let out = dir.join(lang);
        assert_success(&run_job(
            "jobs/month-end.toml",
            &out,
            &["--report-lang", lang],
        ));
        let page = out.join("report.html");

        let profile = dir.join(format!("profile-dom-{lang}"));
        let dom = headless(&browser, &profile, &page, &["--dump-dom"]);
        assert_eq!(html_lang(&dom), lang, "the rendered page's language");
        assert!(
            dom.contains(&format!("<h2>{heading}</h2>")),
            "{lang}: no `{heading}` heading\n{dom}"
        );
        for chart in [
            "availability-histogram",
            "tier-chart",
            "exemptions-chart",
            "claims-chart",
        ] {
            assert!(
                dom.contains(&format!("<svg id=\"{chart}\"")),
                "{lang}: the rendered DOM has no `{chart}` svg\n{dom}"
            );
        }
        let bars = tagged(&dom, "availability-histogram", "rect", "bar");
        assert!(
            bars.len() > 10,
            "{lang}: histogram bars missing from the DOM"
        );
        // The totals as the reader sees them (grouped in thousands) are the ledger's.
        let ledger = ledger_records(&out);
        assert_eq!(page_totals(&dom), ledger_totals(&ledger), "{lang}");

        let screenshot = dir.join(format!("report-{lang}.png"));
        headless(
            &browser,
            &dir.join(format!("profile-shot-{lang}")),
            &page,
            &[
                "--window-size=1100,3400",
                &format!("--screenshot={}", screenshot.display()),
            ],
        );
        let png = std::fs::read(&screenshot).expect("a screenshot was written");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
            "{lang}: the screenshot is not a rendered PNG ({} bytes)",
            png.len()
        );
    }
}
