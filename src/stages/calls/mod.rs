//! The heavy step (SPEC §2 quarantine and duplicates, §4 counted calls and exemptions).
//!
//! Takes the call files, the covered instant ranges of every service month, the exemption
//! tables and the policy; gives, per service month, counted calls, system errors and exempt
//! errors per clause, plus row accounting and the call rows it quarantined.
//!
//! This is the one seam between the call logs and typed Rust: [`engine::count_calls`] runs the
//! step on the chosen engine, [`count_calls`] here (polars, in this process) or Ballista
//! (`ballista/`, in builds with the `distributed` feature), and [`CallCounts`] is all it
//! returns. Another engine can replace it without the rest of the pipeline noticing.
//!
//! How it stays fast and small (memory grows with 40 bytes per call row, not with strings):
//! 1. **Read** (parallel, polars Parquet decoding): every chunk of whole row groups is read,
//!    defective rows are quarantined, and each valid row becomes a fixed-width `CallKey`:
//!    a 128-bit hash of its `request_id`, a 64-bit hash of its content, `ts`, the service
//!    month it counts for (looked up here, once per row), a system-error flag and its
//!    position. Keys go straight into buckets by the top bits of the id hash. System errors
//!    also keep their detail, once per distinct (id, content), their error codes shared
//!    (memory grows with the distinct strings, not rows × length), and the (customer,
//!    second) of each is noted.
//! 2. **De-duplicate**, bucket by bucket in parallel: a counting pass on the next bits of the
//!    id hash cuts a bucket into runs that are sorted in cache; rows sharing a request id hash
//!    are one call. When their contents differ, the versions are re-read exactly from their
//!    positions and the SPEC tie-break picks the kept one. The buckets the memory budget does
//!    not hold are written to disk during the read (files created fresh in the caller's
//!    spill folder) and read back one at a time, each verified against the count and checksum
//!    of what was written (SPEC §8).
//! 3. **Count**: each kept call is counted in its service month; counted calls in seconds that
//!    hold a system error are counted for the burst rule (5.7); finally each counted system
//!    error is attributed to its smallest exempting clause.
//!
//! Request ids are compared through a 128-bit XXH3 hash: the chance that two different ids of
//! 10^9 rows collide is below 10^-20.
//!
//! The step is a folder of one-concept files, in the order the data flows:
//! - `key.rs`: the fixed-width `CallKey` of a call row and the hashes in it;
//! - `read.rs`: decoding chunks into keys, quarantining row defects, keeping error details;
//! - `store.rs`, `spill.rs`: buckets of keys in memory and, beyond the budget, on disk (all of
//!   the step's `unsafe` code; every other file denies it);
//! - `sort.rs`: the radix sort of one bucket;
//! - `dedup.rs`: one call per request id, and SPEC §2's tie-break for differing copies;
//! - `tally.rs`: counting kept calls in their service months;
//! - `attribute.rs`: each counted system error's exempting clause;
//! - `customer.rs`: what the step notes about one customer's rows as it runs, for `explain`;
//! - `entry_points.rs`: the quarantine entries of defective rows, for other engines;
//! - `engine.rs`: which engine runs the step; `ballista/`: the step as Ballista queries.

#[deny(unsafe_code)]
mod attribute;
#[cfg(feature = "distributed")]
pub(crate) mod ballista;
/// The scalar functions the Ballista engine's queries call: every cluster member registers them.
#[cfg(feature = "distributed")]
pub(crate) use ballista::functions as ballista_functions;
#[deny(unsafe_code)]
mod customer;
#[deny(unsafe_code)]
mod dedup;
#[deny(unsafe_code)]
pub mod engine;
#[deny(unsafe_code)]
mod entry_points;
#[deny(unsafe_code)]
mod key;
#[deny(unsafe_code)]
mod read;
#[deny(unsafe_code)]
mod sort;
mod spill;
mod store;
#[deny(unsafe_code)]
mod tally;
#[cfg(test)]
#[deny(unsafe_code)]
mod testing;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::inputs::calls::CallFiles;
use crate::inputs::exemptions::ExemptionTables;
use crate::policy::{Clause, Policy};
use crate::quarantine::Entry;
use crate::stages::service_months::CoverageInterval;
use crate::telemetry::{Phase, Phases};

pub(crate) use customer::{CustomerMonth, NotedCustomer};

use attribute::{attribute, system_errors_of};
use customer::CustomerNotes;
use dedup::{deduplicate_buckets, resolve_conflicts};
use key::Positions;
use read::read_all;
use store::KeyStore;
use tally::{Coverage, TallyContext};

/// The memory budget when none is given: about 67 million call rows' keys (40 bytes each) in
/// memory; beyond that, the excess is spilled to disk.
pub(crate) const DEFAULT_MEMORY_BUDGET_MIB: u64 = 2560;

/// What the heavy step needs.
pub(crate) struct HeavyStepInput<'a> {
    pub files: &'a CallFiles,
    /// Number of service months; `month_index` values are below it.
    pub month_count: usize,
    pub coverage: &'a [CoverageInterval],
    pub exemptions: &'a ExemptionTables,
    pub policy: &'a Policy,
    /// Bytes of call keys held in memory before they are spilled to disk in buckets (the
    /// polars engine; Ballista manages its own memory).
    pub memory_budget_bytes: u64,
    /// Worker threads; `None`: one per core. The polars engine runs on rayon's global pool,
    /// which the caller sizes before anything starts; Ballista sizes its executor and the
    /// partitions of each stage with it.
    #[cfg_attr(not(feature = "distributed"), allow(dead_code))]
    pub threads: Option<usize>,
    /// Where spilled buckets go: a folder that exists, is empty and is owned (created fresh,
    /// readable only by its owner, and removed) by the caller. The step creates its files in
    /// it and removes only those.
    pub spill_dir: PathBuf,
}

/// Per service month call counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthCallCounts {
    pub total_calls: u64,
    pub system_errors: u64,
    pub exempt_by_clause: BTreeMap<Clause, u64>,
}

impl MonthCallCounts {
    pub fn exempt_errors(&self) -> u64 {
        self.exempt_by_clause.values().sum()
    }

    /// `exempt ≤ system errors ≤ calls`, each clause listed with at least one exempt error
    /// (an empty one would be a row of `exemptions.csv`), and the clauses' sum, which
    /// [`MonthCallCounts::exempt_errors`] gives, within a `u64`.
    fn check(&self) -> anyhow::Result<()> {
        let mut exempt_errors: u64 = 0;
        for (clause, &errors) in &self.exempt_by_clause {
            if errors == 0 {
                anyhow::bail!("clause {clause} is listed with 0 exempt errors");
            }
            exempt_errors = exempt_errors.checked_add(errors).ok_or_else(|| {
                anyhow::anyhow!("its exempt errors per clause overflow a 64-bit count")
            })?;
        }
        if exempt_errors > self.system_errors || self.system_errors > self.total_calls {
            anyhow::bail!(
                "{exempt_errors} exempt errors of {} system errors of {} calls; expected exempt \
                 ≤ system errors ≤ calls",
                self.system_errors,
                self.total_calls
            );
        }
        Ok(())
    }
}

/// Where every call row went: `read = quarantined + duplicates + counted + not_counted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RowCounts {
    pub read: u64,
    pub quarantined: u64,
    /// Rows dropped as repeats of a request id already kept.
    pub duplicates: u64,
    pub counted: u64,
    /// Unique valid calls outside every selected service month (other months, customers,
    /// or dates the customer was not subscribed).
    pub not_counted: u64,
}

impl RowCounts {
    /// `read = quarantined + duplicates + counted + not_counted`, without overflow.
    fn check(&self) -> anyhow::Result<()> {
        let accounted = [
            self.quarantined,
            self.duplicates,
            self.counted,
            self.not_counted,
        ]
        .iter()
        .try_fold(0u64, |sum, &n| sum.checked_add(n));
        if accounted != Some(self.read) {
            anyhow::bail!(
                "the call rows do not add up: {} read, but {} quarantined + {} duplicates + {} \
                 counted + {} not counted",
                self.read,
                self.quarantined,
                self.duplicates,
                self.counted,
                self.not_counted
            );
        }
        Ok(())
    }

    /// The accounting of `read` rows of which `quarantined` were set aside and `unique` calls
    /// remained, `counted` of them in a selected service month; `None` if those cannot hold.
    fn of_unique(read: u64, quarantined: u64, unique: u64, counted: u64) -> Option<RowCounts> {
        Some(RowCounts {
            read,
            quarantined,
            duplicates: read.checked_sub(quarantined)?.checked_sub(unique)?,
            counted,
            not_counted: unique.checked_sub(counted)?,
        })
    }
}

/// What the heavy step gives back, whichever engine ran it ([`CallCounts::check`] holds).
#[derive(Debug, Clone, Default)]
pub struct CallCounts {
    /// Indexed by `month_index`.
    pub months: Vec<MonthCallCounts>,
    pub rows: RowCounts,
    pub quarantine: Vec<Entry>,
    /// Wall time and memory of each phase, for `--verbose` output and benchmarks.
    pub timings: Vec<Phase>,
    /// Buckets of call keys written to disk (0: everything fit the memory budget).
    pub spilled_buckets: usize,
}

impl CallCounts {
    /// The invariants of what an engine gives for `month_count` service months: one count per
    /// month; per month, exempt ≤ system errors ≤ calls (see [`MonthCallCounts`]); the calls
    /// counted in months are the row accounting's `counted`; and the row accounting adds up.
    /// A failure is an internal error that names the month and the numbers.
    fn check(&self, month_count: usize) -> anyhow::Result<()> {
        if self.months.len() != month_count {
            anyhow::bail!(
                "{} month counts for {month_count} service months",
                self.months.len()
            );
        }
        let mut counted_in_months: u64 = 0;
        for (month_index, month) in self.months.iter().enumerate() {
            month
                .check()
                .map_err(|e| anyhow::anyhow!("service month #{month_index}: {e}"))?;
            counted_in_months = counted_in_months
                .checked_add(month.total_calls)
                .ok_or_else(|| anyhow::anyhow!("the months' calls overflow a 64-bit count"))?;
        }
        if counted_in_months != self.rows.counted {
            anyhow::bail!(
                "{counted_in_months} calls counted in the service months, {} in the row accounting",
                self.rows.counted
            );
        }
        self.rows.check()
    }
}

/// Runs the heavy step on polars, in this process.
fn count_calls(input: &HeavyStepInput) -> anyhow::Result<CallCounts> {
    Ok(count_calls_noting(input, None)?.0)
}

/// Runs the heavy step on polars, in this process: the phases one after another; with a
/// customer to note, also the rows behind its month's counts, for `explain`.
fn count_calls_noting(
    input: &HeavyStepInput,
    customer: Option<NotedCustomer>,
) -> anyhow::Result<(CallCounts, Option<CustomerMonth>)> {
    let mut phases = Phases::start();
    let files = input.files;
    let chunks = files.chunks();
    let positions = Positions::new(&chunks)?;
    let coverage = Coverage::new(input.coverage, input.month_count);
    // The rows the chunks hold, each chunk's frame checked to hold exactly its rows.
    let rows_read: u64 = chunks.iter().map(|c| c.rows).sum();
    let store = KeyStore::new(rows_read, input.memory_budget_bytes, &input.spill_dir)?;
    let spilled_buckets = store.spilled_buckets();
    let notes = customer.map(|c| CustomerNotes::new(c, rows_read));
    let notes = notes.as_ref();

    // 1. Read.
    let mut read = read_all(files, &chunks, &positions, &coverage, &store, notes)?;
    phases.lap("read");

    // 2. De-duplicate and 3. count, bucket by bucket.
    let context = TallyContext::new(&coverage, &read.error_seconds);
    let partial = deduplicate_buckets(store, &context, notes)?;
    phases.lap("deduplicate");

    let resolved = resolve_conflicts(
        files,
        &chunks,
        &positions,
        &partial.conflicts,
        &coverage,
        &mut read.errors,
        notes,
    )?;
    read.quarantine.extend(resolved.entries);
    let mut total = partial.tally;
    for key in &resolved.kept {
        total.add(&context, key);
    }
    let unique_calls = partial.unique + resolved.kept.len() as u64;
    phases.lap("resolve conflicts");

    let months = attribute(input, &total, &read.errors)?;
    phases.lap("attribute exemptions");
    let noted = notes
        .map(|notes| -> anyhow::Result<CustomerMonth> {
            let kept = partial.noted_kept.merge(resolved.noted_kept);
            let errors = system_errors_of(notes.customer_id(), &total, &read.errors)?;
            Ok(notes.customer_month(read.noted_quarantine, resolved.noted_entries, kept, errors))
        })
        .transpose()?;

    let quarantined = read.quarantined;
    let rows = RowCounts::of_unique(rows_read, quarantined, unique_calls, total.counted)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the call rows do not add up: {rows_read} read, {quarantined} quarantined, {unique_calls} unique, {} counted",
                total.counted
            )
        })?;
    let counts = CallCounts {
        months,
        rows,
        quarantine: read.quarantine,
        timings: phases.done(),
        spilled_buckets,
    };
    Ok((counts, noted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(number: u8) -> Clause {
        Clause::new(number).unwrap()
    }

    /// Two months: 10 calls (4 system errors, 1 exempt by 5.1 and 2 by 5.7) and 5 calls;
    /// 20 rows read, of which 2 quarantined, 2 duplicates and 1 outside every month.
    fn good() -> CallCounts {
        CallCounts {
            months: vec![
                MonthCallCounts {
                    total_calls: 10,
                    system_errors: 4,
                    exempt_by_clause: BTreeMap::from([(clause(1), 1), (clause(7), 2)]),
                },
                MonthCallCounts {
                    total_calls: 5,
                    ..MonthCallCounts::default()
                },
            ],
            rows: RowCounts {
                read: 20,
                quarantined: 2,
                duplicates: 2,
                counted: 15,
                not_counted: 1,
            },
            ..CallCounts::default()
        }
    }

    fn failure(counts: &CallCounts, month_count: usize) -> String {
        counts
            .check(month_count)
            .expect_err("the check fails")
            .to_string()
    }

    #[test]
    fn spec4_consistent_counts_pass_the_check() {
        good().check(2).unwrap();
        CallCounts::default().check(0).unwrap();
    }

    #[test]
    fn spec4_a_count_per_service_month_is_checked() {
        assert_eq!(failure(&good(), 3), "2 month counts for 3 service months");
    }

    #[test]
    fn spec4_more_exempt_than_system_errors_fails_the_check_naming_the_month() {
        let mut counts = good();
        counts.months[0].exempt_by_clause.insert(clause(11), 2);
        assert_eq!(
            failure(&counts, 2),
            "service month #0: 5 exempt errors of 4 system errors of 10 calls; expected \
             exempt ≤ system errors ≤ calls"
        );
    }

    #[test]
    fn spec4_more_system_errors_than_calls_fails_the_check() {
        let mut counts = good();
        counts.months[1].system_errors = 6;
        assert_eq!(
            failure(&counts, 2),
            "service month #1: 0 exempt errors of 6 system errors of 5 calls; expected exempt \
             ≤ system errors ≤ calls"
        );
    }

    #[test]
    fn spec4_a_clause_with_no_exempt_errors_fails_the_check() {
        let mut counts = good();
        counts.months[1].exempt_by_clause.insert(clause(3), 0);
        assert_eq!(
            failure(&counts, 2),
            "service month #1: clause 5.3 is listed with 0 exempt errors"
        );
    }

    #[test]
    fn spec4_exempt_errors_per_clause_that_overflow_fail_the_check() {
        let mut counts = good();
        let month = &mut counts.months[0];
        month.exempt_by_clause = BTreeMap::from([(clause(1), u64::MAX), (clause(2), 1)]);
        assert!(failure(&counts, 2).contains("overflow"));
    }

    #[test]
    fn spec4_calls_counted_in_months_must_be_the_row_accountings_counted() {
        let mut counts = good();
        counts.months[1].total_calls = 4;
        assert_eq!(
            failure(&counts, 2),
            "14 calls counted in the service months, 15 in the row accounting"
        );
    }

    #[test]
    fn spec2_rows_read_must_be_quarantined_plus_duplicates_plus_counted_plus_not_counted() {
        let mut counts = good();
        counts.rows.duplicates = 3;
        assert_eq!(
            failure(&counts, 2),
            "the call rows do not add up: 20 read, but 2 quarantined + 3 duplicates + 15 \
             counted + 1 not counted"
        );
        counts.rows.duplicates = u64::MAX;
        assert!(failure(&counts, 2).starts_with("the call rows do not add up"));
    }
}
