//! Fuzzing the parsers with arbitrary input: they may refuse, never panic.

use std::fs;

use proptest::prelude::*;
use sla_ledger::cli::RunArgs;
use sla_ledger::inputs::billing::{parse_amount, Billing};
use sla_ledger::inputs::calendar::Calendar;
use sla_ledger::inputs::claims::Claims;
use sla_ledger::inputs::exemptions::ExemptionTables;
use sla_ledger::inputs::problems::Problems;
use sla_ledger::inputs::source::DataSource;
use sla_ledger::inputs::subscriptions::Subscriptions;
use sla_ledger::job::Job;
use sla_ledger::policy::{Clause, Policy};
use sla_ledger::quarantine::Quarantine;
use sla_ledger::time::{parse_date, parse_instant, MonthRange, YearMonth};

use crate::support::TempDir;

/// Text that looks like the inputs' grammar often enough to get past the first character.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9:T+Z.\\-]{0,40}",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,12})?([+-][0-9]{2}:[0-9]{2}|Z)?",
        "5\\.[0-9]{0,3}",
    ]
}

fn csvish() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec("[0-9a-z,.:+\\-\"\n T]{0,30}", 0..8)
            .prop_map(|lines| lines.join("\n").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scalar_parsers_never_panic(text in texty()) {
        let _ = parse_instant(&text);
        let _ = parse_date(&text);
        let _ = text.parse::<YearMonth>();
        let _ = text.parse::<Clause>();
        let _ = parse_amount(&text);
        let _ = MonthRange::parse(&text, chrono::NaiveDate::from_ymd_opt(2026, 3, 15).unwrap());
    }

    #[test]
    fn policy_and_job_toml_never_panic(text in any::<String>()) {
        let _ = Policy::from_toml(&text);
        let dir = TempDir::new("fuzz-job");
        let job = dir.join("job.toml");
        fs::write(&job, &text).unwrap();
        let args = RunArgs { job: Some(job), ..RunArgs::default() };
        let _ = Job::resolve(&args, |_| chrono::NaiveDate::from_ymd_opt(2026, 3, 15).unwrap());
    }

    #[test]
    fn csv_tables_never_panic(subscriptions in csvish(), billing in csvish(), claims in csvish(), windows in csvish(), calendar in csvish()) {
        let dir = TempDir::new("fuzz-csv");
        fs::create_dir_all(dir.join("exemptions")).unwrap();
        let with_header = |header: &str, body: &[u8]| [header.as_bytes(), b"\n", body].concat();
        fs::write(dir.join("subscriptions.csv"), with_header("customer_id,start_date,end_date", &subscriptions)).unwrap();
        fs::write(dir.join("billing.csv"), with_header("customer_id,period,kind,amount,currency", &billing)).unwrap();
        fs::write(dir.join("claims.csv"), with_header("claim_id,customer_id,service_month,submitted_at,channel", &claims)).unwrap();
        fs::write(dir.join("exemptions/windows.csv"), with_header("window_id,clause,start,end,customer_id,announced_at", &windows)).unwrap();
        fs::write(dir.join("calendar.csv"), with_header("date,kind", &calendar)).unwrap();
        // Both modes: a run stops at the first fatal problem, validate collects them all.
        for mut problems in [Problems::first_fatal(), Problems::collect_all()] {
            let mut quarantine = Quarantine::default();
            let _ = Subscriptions::load(&DataSource::Folder(dir.path.clone()), &mut quarantine, &mut problems);
            let _ = Billing::load(&DataSource::Folder(dir.path.clone()), &mut quarantine, &mut problems);
            let _ = Claims::load(&DataSource::Folder(dir.path.clone()), &mut problems);
            let _ = ExemptionTables::load(&DataSource::Folder(dir.path.clone()), &Policy::ccc(), &mut quarantine, &mut problems);
        }
        let _ = Calendar::load(&dir.join("calendar.csv"));
        // Raw bytes without a header, too.
        fs::write(dir.join("billing.csv"), &billing).unwrap();
        let _ = Billing::load(&DataSource::Folder(dir.path.clone()), &mut Quarantine::default(), &mut Problems::first_fatal());
    }
}
