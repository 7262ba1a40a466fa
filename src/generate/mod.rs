//! `sla-ledger generate`: a SPEC-shaped synthetic data set at any size.
//!
//! Takes a customer count, a month range, a call total and a seed; writes `calls/` (Parquet,
//! `ts` in ms/us/ns across files, streamed in bounded chunks) and the small tables. Besides
//! background traffic with a skewed tenant base (few large, many small), it plants every case
//! the SPEC names: partial and gapped subscriptions, exact and conflicting duplicates, defective
//! rows, each exemption source (error codes, per-call reviews, announced and unannounced
//! windows, bursts with and without notice), every tier, billing defects and every claim status.
//! The same arguments always write the same bytes.

mod partition;
mod plan;
mod planted;
mod rng;
mod tables;
mod traffic;

use std::fs;
use std::path::PathBuf;

use anyhow::bail;

use self::partition::Partition;
use self::plan::Plan;
use self::planted::{write_planted, SmallTables};
use self::rng::Rng;
use self::tables::{billing_lines, claim_lines, write_text};
use self::traffic::write_customer_month;
use crate::cli::GenerateArgs;
use crate::policy::Policy;

const MILLIS: i64 = 1_000_000;
const INTERNAL_ERROR: &str = "InternalError";
const CALLEE_LIMITED: &str = "FailedOperation.CalleeIsLimited"; // exempt, 5.9
const PHONE_INVALID: &str = "InvalidParameterValue.PhoneNumInvalid"; // exempt, 5.10

pub fn generate_command(args: &GenerateArgs) -> anyhow::Result<()> {
    let out = &args.out;
    if out.exists() && fs::read_dir(out)?.next().is_some() {
        bail!(
            "output `{}` exists and is not empty\n  hint: choose another `--out`",
            out.display()
        );
    }
    let plan = Plan::new(args, Policy::ccc().timezone)?;
    fs::create_dir_all(out.join("exemptions"))?;
    let mut rng = Rng::new(plan.seed);
    let mut tables = SmallTables {
        windows: Vec::new(),
        notices: Vec::new(),
    };
    let mut reviewed = Vec::new();
    let mut rows = 0;
    for (m, month) in plan.months.iter().enumerate() {
        let dir: PathBuf = out.join("calls").join(format!("month={month}"));
        let mut partition = Partition::create(&dir)?;
        for c in &plan.customers {
            write_customer_month(&plan, c, m, &mut partition, &mut rng, &mut reviewed)?;
        }
        write_planted(&plan, m, &mut partition, &mut rng, &mut tables)?;
        rows += partition.finish()?;
    }

    let mut subscriptions: Vec<String> = plan
        .customers
        .iter()
        .flat_map(|c| {
            plan.periods(c).into_iter().map(move |(start, end)| {
                format!(
                    "{},{start},{}",
                    c.id,
                    end.map(|e| e.to_string()).unwrap_or_default()
                )
            })
        })
        .collect();
    // A row with its dates swapped: quarantined.
    let swapped = plan.customers[6 % plan.customers.len()].id;
    subscriptions.push(format!(
        "{swapped},{},{}",
        plan.first().last_day(),
        plan.first().first_day()
    ));
    write_text(
        &out.join("subscriptions.csv"),
        "customer_id,start_date,end_date",
        &subscriptions,
    )?;
    write_text(
        &out.join("billing.csv"),
        "customer_id,period,kind,amount,currency",
        &billing_lines(&plan, &mut rng),
    )?;
    write_text(
        &out.join("claims.csv"),
        "claim_id,customer_id,service_month,submitted_at,channel",
        &claim_lines(&plan, &mut rng),
    )?;
    write_text(
        &out.join("exemptions/error_codes.csv"),
        "error_code,clause",
        &[
            format!("{CALLEE_LIMITED},5.9"),
            format!("{PHONE_INVALID},5.10"),
        ],
    )?;
    let mut reviews: Vec<String> = reviewed.iter().map(|id| format!("{id},5.6")).collect();
    if let Some(first) = reviewed.first() {
        reviews.push(format!("{first},5.15")); // listed twice: the smaller clause wins
    }
    write_text(
        &out.join("exemptions/calls.csv"),
        "request_id,clause",
        &reviews,
    )?;
    write_text(
        &out.join("exemptions/windows.csv"),
        "window_id,clause,start,end,customer_id,announced_at",
        &tables.windows,
    )?;
    write_text(
        &out.join("exemptions/notices.csv"),
        "customer_id,start,end,notified_at",
        &tables.notices,
    )?;
    println!(
        "sla-ledger generate: {rows} call rows, {} customers, months {}..{}, seed {} → {}",
        plan.customers.len(),
        plan.first(),
        plan.last(),
        plan.seed,
        out.display()
    );
    Ok(())
}
