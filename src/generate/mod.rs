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
use std::path::{Path, PathBuf};

use self::partition::Partition;
use self::plan::Plan;
use self::planted::{write_planted, SmallTables};
use self::rng::Rng;
use self::tables::write_tables;
use self::traffic::write_customer_month;
use crate::cli::GenerateArgs;
use crate::policy::Policy;

/// `sla-ledger generate --out DIR [--customers N] [--months M1..M2] [--calls N] [--seed N]`.
pub fn generate_command(args: &GenerateArgs) -> anyhow::Result<()> {
    let out = &args.out;
    if out.exists() && fs::read_dir(out)?.next().is_some() {
        return Err(crate::error::hinted(
            format!(
                "output `{}` exists and is not empty",
                crate::paths::shown(out)
            ),
            "choose another `--out`",
        ));
    }
    let plan = Plan::new(args, Policy::ccc().timezone)?;
    fs::create_dir_all(out.join("exemptions"))?;
    // One stream for the whole data set, drawn in a fixed order (the calls month by month,
    // then billing, then claims), so the same arguments write the same bytes.
    let mut rng = Rng::new(plan.seed);
    let calls = write_calls(&plan, out, &mut rng)?;
    write_tables(&plan, out, &mut rng, &calls.reviewed, &calls.planted)?;
    crate::text::print(&format!(
        "sla-ledger generate: {} call rows, {} customers, months {}..{}, seed {} → {}\n",
        calls.rows,
        plan.customers.len(),
        plan.first(),
        plan.last(),
        plan.seed,
        crate::paths::shown(out)
    ))
}

/// What writing the call logs leaves for the small tables.
struct WrittenCalls {
    rows: u64,
    /// Request ids the incident review classified, for `exemptions/calls.csv`.
    reviewed: Vec<String>,
    planted: SmallTables,
}

/// `calls/month=M/`, month by month: every customer's background traffic, then the planted
/// cases.
fn write_calls(plan: &Plan, out: &Path, rng: &mut Rng) -> anyhow::Result<WrittenCalls> {
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
            write_customer_month(plan, c, m, &mut partition, rng, &mut reviewed)?;
        }
        write_planted(plan, m, &mut partition, rng, &mut tables)?;
        rows += partition.finish()?;
    }
    Ok(WrittenCalls {
        rows,
        reviewed,
        planted: tables,
    })
}
