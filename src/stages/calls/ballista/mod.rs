//! Takes the same [`HeavyStepInput`] as the polars engine and gives the same [`CallCounts`],
//! by running the heavy step on Apache DataFusion Ballista (the `distributed` feature).
//!
//! Everything after the heavy step is the polars path's code, so both engines write
//! byte-identical ledgers. Only the heavy step knows this engine: [`super::engine`] chooses it.
//!
//! The cluster reads the call files (paths every executor can reach) and sends back only
//! small results, in five queries (text in [`sql`]):
//! 1. **defects per file**: how many rows each file quarantines (SPEC §2);
//! 2. **repeated ids**: the 128-bit hashes ([`udf`]) of the request ids that more than one
//!    valid row carries, with their rows' count;
//! 3. **error seconds**: the (customer, UTC second) pairs that hold a system error, the only
//!    seconds the burst rule (5.7) needs a count of;
//! 4. **versions of repeated ids**: their distinct rows, picked out of the scan by a Bloom
//!    filter of the hashes of 2 ([`key_filter`]). An id with one version is an exact
//!    re-delivery; to differing ones the driver applies SPEC §2's tie-break with the polars
//!    engine's own code ([`resolve_conflict`]);
//! 5. **counts**: per service month, counted calls, system errors and exempt errors per clause,
//!    plus the unique calls no selected month counts. Filters of the sets of 2 and 3 travel in
//!    the query as literals, so no call row is grouped by id or joined on the cluster; only
//!    the kept versions of differing ids travel as a `VALUES` list (it grows the plan every
//!    task receives, so only these few do).
//!
//! Queries 1 to 3 run side by side. Quarantine entries name a file and row; the cluster counts
//! them per file and the driver names them by reading only the files that have any
//! ([`quarantine_rows`]), then checks that both counts agree. The driver also checks that the
//! counts hold one call per request id: the valid rows, less the repeated ids' rows, plus one
//! per repeated id.

mod key_filter;
pub(crate) mod object_stores;
mod sql;
mod udf;

pub(crate) use udf::functions;

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use super::dedup::{resolve_conflict, CallVersion};
use super::entry_points::quarantine_rows;
use super::{CallCounts, HeavyStepInput, MonthCallCounts, RowCounts};
use crate::inputs::calls::CallFiles;
use crate::inputs::stamp::ReadAs;
use crate::policy::Clause;
use crate::quarantine::Entry;
use crate::telemetry::Phases;
use key_filter::KeyFilter;
use object_stores::S3Registry;
use sql::{CallTable, CountInputs, ResolvedCall};

/// Where the heavy step's cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cluster {
    /// A scheduler and executors started inside this process for the run.
    Standalone,
    /// A running cluster: the scheduler's `df://HOST:PORT`.
    Remote(String),
}

/// Runs the heavy step on Ballista. The input's `threads` sizes the standalone executor and
/// the number of partitions per stage (default: one per core).
pub(super) fn count_calls(input: &HeavyStepInput, cluster: &Cluster) -> anyhow::Result<CallCounts> {
    // Ballista's own progress lines are for cluster operators; a run shows its warnings only,
    // or everything with `--verbose`.
    if !tracing::enabled!(tracing::Level::DEBUG) {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let threads = input.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(2))
        // DataFusion plans and serialises deep expression trees recursively.
        .thread_stack_size(32 * 1024 * 1024)
        .enable_all()
        .build()
        .context("cannot start the async runtime for Ballista")?;
    if *cluster != Cluster::Standalone {
        return runtime.block_on(count_calls_async(input, cluster, threads));
    }
    // The in-process executor writes its shuffle files under the system's temporary folder and
    // never removes them (gigabytes per run at scale). Point it at the step's spill folder (made
    // fresh, empty and owned by the caller, who removes it) and empty it when the step ends,
    // however it ends: everything in it is this step's.
    let previous = std::env::var_os("TMPDIR");
    std::env::set_var("TMPDIR", &input.spill_dir);
    let counts = runtime.block_on(count_calls_async(input, cluster, threads));
    drop(runtime);
    match previous {
        Some(value) => std::env::set_var("TMPDIR", value),
        None => std::env::remove_var("TMPDIR"),
    }
    let removed = empty_folder(&input.spill_dir).with_context(|| {
        format!(
            "cannot empty the spill folder `{}`",
            input.spill_dir.display()
        )
    });
    let counts = counts?;
    removed?;
    Ok(counts)
}

/// Removes what is inside `dir`, never `dir` itself (the caller owns it). Entries are removed
/// as themselves: `remove_dir_all` does not follow a symlink.
fn empty_folder(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// A session on `cluster`. Memory is Ballista's to manage: an in-process cluster's is not
/// bounded (a pool of `--memory-budget-mib` made it spill and run slower without lowering
/// its peak), a remote executor's is its own `cluster executor --memory-limit-mib`.
async fn connect(
    cluster: &Cluster,
    threads: usize,
    files: &CallFiles,
) -> anyhow::Result<SessionContext> {
    // The run's own S3 settings (job file and environment), for the files this session reads.
    let settings = files
        .files
        .iter()
        .find_map(|file| match &file.read {
            ReadAs::Object { client, .. } => Some(client.settings().clone()),
            ReadAs::File { .. } => None,
        })
        .unwrap_or_default();
    let runtime = S3Registry::new(settings).runtime(None)?;
    let config = SessionConfig::new_with_ballista()
        .with_target_partitions(threads)
        .with_ballista_standalone_parallelism(threads)
        .with_ballista_job_name("sla-ledger heavy step");
    // The in-process members are made from this state, so they get the functions from it.
    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    for function in functions() {
        state
            .register_udf(function)
            .context("cannot register the heavy step's functions")?;
    }
    let ctx = match cluster {
        Cluster::Standalone => SessionContext::standalone_with_state(state)
            .await
            .context("cannot start the in-process Ballista cluster")?,
        Cluster::Remote(url) => SessionContext::remote_with_state(url, state)
            .await
            .with_context(|| format!("cannot reach the Ballista scheduler at `{url}`"))?,
    };
    // Ballista's client session replaces the state's scalar functions with its own list.
    for function in functions() {
        ctx.register_udf(function.as_ref().clone());
    }
    Ok(ctx)
}

/// Nanoseconds per unit of `ts` as DataFusion reads the registered table: its reader, not the
/// file's Arrow schema alone, decides the unit (pyarrow's `timestamp[s]` is a Parquet column in
/// milliseconds), so the factor comes from the schema DataFusion gives.
async fn ts_nanos_per_unit(
    ctx: &SessionContext,
    table: &str,
    shown: &std::path::Path,
) -> anyhow::Result<i64> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let frame = ctx
        .table(table)
        .await
        .with_context(|| format!("cannot read the schema of `{}`", shown.display()))?;
    let field = frame
        .schema()
        .field_with_unqualified_name("ts")
        .with_context(|| format!("`{}` has no column `ts`", shown.display()))?;
    match field.data_type() {
        DataType::Timestamp(unit, _) => Ok(match unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        }),
        other => anyhow::bail!(
            "`{}` column `ts` has type {other}; expected a timestamp",
            shown.display()
        ),
    }
}

async fn count_calls_async(
    input: &HeavyStepInput<'_>,
    cluster: &Cluster,
    threads: usize,
) -> anyhow::Result<CallCounts> {
    let mut phases = Phases::start();
    let where_ = match cluster {
        Cluster::Standalone => "the in-process Ballista cluster".to_string(),
        Cluster::Remote(url) => format!("the Ballista cluster at `{url}`"),
    };
    let ctx = connect(cluster, threads, input.files).await?;
    let files = input.files;
    let tables = register_call_files(&ctx, files, &where_).await?;
    phases.lap("connect");

    // Three reads of the call files, side by side.
    let (defects_sql, repeated_sql, error_seconds_sql) = (
        sql::defects_per_file(&tables),
        sql::repeated_ids(&tables),
        sql::error_seconds(&tables),
    );
    let (defects, repeated, error_seconds) = tokio::try_join!(
        query(&ctx, &defects_sql, &where_),
        query(&ctx, &repeated_sql, &where_),
        query(&ctx, &error_seconds_sql, &where_),
    )?;
    let defects_by_file = defects_per_file(&defects)?;
    let repeated = repeated_ids(&repeated)?;
    let error_seconds = error_seconds_filter(&error_seconds)?;
    phases.lap("defects, repeated ids, error seconds");

    let mut quarantine = name_quarantined_rows(files, &defects_by_file, &where_)?;
    phases.lap("name quarantined rows");

    // The repeated ids' versions; the differing ones resolved here with the polars engine's
    // tie-break.
    let versions = query(
        &ctx,
        &sql::repeated_versions(&tables, &repeated.filter),
        &where_,
    )
    .await?;
    let kept_versions = resolve_conflicts(versions_by_id(&versions)?, &mut quarantine);
    phases.lap("resolve conflicts");

    // The counts.
    let resolved: Vec<ResolvedCall> = kept_versions
        .iter()
        .map(|v| ResolvedCall {
            request_id: &v.request_id,
            customer_id: v.customer_id,
            ts: v.ts,
            status: &v.status,
            error_code: v.error_code.as_deref(),
        })
        .collect();
    let text = sql::counts(
        &tables,
        &CountInputs {
            coverage: input.coverage,
            exemptions: input.exemptions,
            policy: input.policy,
            repeated: &repeated.filter,
            resolved: &resolved,
            error_seconds: &error_seconds,
        },
    );
    let batches = query(&ctx, &text, &where_).await?;
    let counted = month_counts(&batches, input.month_count)?;
    phases.lap("count");

    let quarantined: u64 = defects_by_file.values().sum();
    let unique = counted.counted + counted.not_counted;
    let rows = RowCounts::of_unique(files.rows(), quarantined, unique, counted.counted)
        .with_context(|| format!("{where_} returned more calls than the files hold"))?;
    // Each repeated id is one call however many rows carry it: the counts hold one call per
    // id only if every row of one id was judged alike.
    let ids = repeated.filter.keys() as u64;
    let expected = (rows.read - rows.quarantined)
        .checked_sub(repeated.copies)
        .and_then(|singles| singles.checked_add(ids));
    if expected != Some(unique) {
        bail!(
            "{where_} counted {unique} unique calls, but one call per request id gives {} \
             ({} valid rows, {} of them carrying {ids} repeated ids); were the call files \
             changed during the run?",
            expected.map_or("fewer".to_string(), |n| n.to_string()),
            rows.read - rows.quarantined,
            repeated.copies,
        );
    }
    Ok(CallCounts {
        months: counted.months,
        rows,
        quarantine,
        timings: phases.done(),
        spilled_buckets: 0,
    })
}

/// Registers every call file with the cluster as table `calls_{index}`, with the unit its
/// `ts` has there.
async fn register_call_files(
    ctx: &SessionContext,
    files: &CallFiles,
    where_: &str,
) -> anyhow::Result<Vec<CallTable>> {
    let mut tables = Vec::with_capacity(files.files.len());
    for (index, file) in files.files.iter().enumerate() {
        let name = format!("calls_{index}");
        let path = match &file.read {
            ReadAs::File { path, .. } => {
                let path = std::path::absolute(path)
                    .with_context(|| format!("cannot resolve `{}`", path.display()))?;
                path.to_str()
                    .with_context(|| format!("`{}` is not UTF-8", path.display()))?
                    .to_string()
            }
            // The session's registry builds the bucket's store when the URL is first read.
            ReadAs::Object { version, .. } => version.url.to_string(),
        };
        let path = path.as_str();
        ctx.register_parquet(&name, path, ParquetReadOptions::default())
            .await
            .with_context(|| format!("cannot register `{}` with {where_}", file.shown.display()))?;
        let ts_nanos_per_unit = ts_nanos_per_unit(ctx, &name, &file.shown).await?;
        tables.push(CallTable {
            name,
            ts_nanos_per_unit,
        });
    }
    Ok(tables)
}

/// Query 1's result: quarantined rows per file index.
fn defects_per_file(batches: &[RecordBatch]) -> anyhow::Result<BTreeMap<u32, u64>> {
    let mut defects_by_file: BTreeMap<u32, u64> = BTreeMap::new();
    for batch in batches {
        let file = int64(batch, "file")?;
        let rows = int64(batch, "rows")?;
        for i in 0..batch.num_rows() {
            defects_by_file.insert(file.value(i) as u32, rows.value(i) as u64);
        }
    }
    Ok(defects_by_file)
}

/// Query 2's result: a filter of the repeated ids' hashes (one per id), and how many valid rows
/// carry them.
struct RepeatedIds {
    filter: KeyFilter,
    copies: u64,
}

fn repeated_ids(batches: &[RecordBatch]) -> anyhow::Result<RepeatedIds> {
    let (mut hashes, mut copies) = (Vec::new(), 0u64);
    for batch in batches {
        let id_hash = decimal(batch, "id_hash")?;
        let count = int64(batch, "copies")?;
        for i in 0..batch.num_rows() {
            hashes.push(id_hash.value(i));
            copies = copies
                .checked_add(u64::try_from(count.value(i))?)
                .context("the cluster counted more rows than a u64 holds")?;
        }
    }
    Ok(RepeatedIds {
        filter: KeyFilter::new(&hashes),
        copies,
    })
}

/// Query 3's result: a filter of the (customer, second) pairs.
fn error_seconds_filter(batches: &[RecordBatch]) -> anyhow::Result<KeyFilter> {
    let mut pairs = Vec::new();
    for batch in batches {
        let customer_id = int64(batch, "customer_id")?;
        let second = int64(batch, "second")?;
        for i in 0..batch.num_rows() {
            pairs.push(key_filter::pack(customer_id.value(i), second.value(i)));
        }
    }
    Ok(KeyFilter::new(&pairs))
}

/// The quarantine entries of the files the cluster found defects in, named by reading those
/// files here; an error unless this process finds as many per file as the cluster.
fn name_quarantined_rows(
    files: &CallFiles,
    defects_by_file: &BTreeMap<u32, u64>,
    where_: &str,
) -> anyhow::Result<Vec<Entry>> {
    let wanted: Vec<u32> = defects_by_file.keys().copied().collect();
    let by_file = quarantine_rows(files, &wanted)?;
    let named: BTreeMap<u32, u64> = by_file
        .iter()
        .map(|(&file, entries)| (file, entries.len() as u64))
        .collect();
    if named != *defects_by_file {
        bail!(
            "{where_} and this process disagree on the quarantined call rows per file \
             ({defects_by_file:?} against {named:?}); were the call files changed during \
             the run?"
        );
    }
    Ok(by_file.into_values().flatten().collect::<Vec<_>>())
}

/// Query 4's result resolved: for each request id with differing versions, SPEC §2's
/// tie-break keeps one and the id's `conflicting_duplicate` entry goes to `quarantine`; an id
/// with one version is an exact re-delivery, which query 5 counts once by itself. Gives the
/// kept versions.
fn resolve_conflicts(
    by_id: BTreeMap<String, Vec<CallVersion>>,
    quarantine: &mut Vec<Entry>,
) -> Vec<CallVersion> {
    let mut kept_versions = Vec::new();
    for mut versions in by_id.into_values() {
        // The cluster gave distinct rows; telling an exact re-delivery does not rest on that.
        versions.sort();
        versions.dedup();
        if versions.len() > 1 {
            let (entry, kept) = resolve_conflict(versions);
            quarantine.push(entry);
            kept_versions.push(kept);
        }
    }
    kept_versions
}

/// Query 4's result: every distinct version of each duplicated request id.
fn versions_by_id(batches: &[RecordBatch]) -> anyhow::Result<BTreeMap<String, Vec<CallVersion>>> {
    let mut by_id: BTreeMap<String, Vec<CallVersion>> = BTreeMap::new();
    for batch in batches {
        let request_id = string(batch, "request_id")?;
        let customer_id = int64(batch, "customer_id")?;
        let ts = int64(batch, "ts")?;
        let api = string(batch, "api")?;
        let status = string(batch, "status")?;
        let error_code = string(batch, "error_code")?;
        for i in 0..batch.num_rows() {
            let text = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).to_string());
            by_id
                .entry(request_id.value(i).to_string())
                .or_default()
                .push(CallVersion {
                    ts: ts.value(i),
                    customer_id: customer_id.value(i),
                    api: text(&api),
                    status: status.value(i).to_string(),
                    error_code: text(&error_code),
                    request_id: request_id.value(i).to_string(),
                });
        }
    }
    Ok(by_id)
}

/// Query 5's result: the counts per service month, and the unique calls counted in one
/// (`counted`) or in none (`not_counted`).
struct MonthsCounted {
    months: Vec<MonthCallCounts>,
    counted: u64,
    not_counted: u64,
}

fn month_counts(batches: &[RecordBatch], month_count: usize) -> anyhow::Result<MonthsCounted> {
    let mut months = vec![MonthCallCounts::default(); month_count];
    let (mut counted, mut not_counted) = (0u64, 0u64);
    for batch in batches {
        let month_index = int64(batch, "month_index")?;
        let is_error = boolean(batch, "is_error")?;
        let clause = int64(batch, "clause")?;
        let calls = int64(batch, "calls")?;
        for i in 0..batch.num_rows() {
            let n = calls.value(i) as u64;
            if month_index.is_null(i) {
                not_counted += n;
                continue;
            }
            counted += n;
            let month = months
                .get_mut(month_index.value(i) as usize)
                .context("the cluster returned an unknown service month")?;
            month.total_calls += n;
            if is_error.value(i) {
                month.system_errors += n;
                if !clause.is_null(i) {
                    let clause = u8::try_from(clause.value(i))
                        .ok()
                        .and_then(Clause::new)
                        .context("the cluster returned an unknown clause")?;
                    *month.exempt_by_clause.entry(clause).or_default() += n;
                }
            }
        }
    }
    Ok(MonthsCounted {
        months,
        counted,
        not_counted,
    })
}

/// Runs one query on the cluster and collects its (small) result.
async fn query(ctx: &SessionContext, text: &str, where_: &str) -> anyhow::Result<Vec<RecordBatch>> {
    let frame = ctx
        .sql(text)
        .await
        .with_context(|| format!("{where_} could not plan the heavy step's query"))?;
    frame
        .collect()
        .await
        .with_context(|| format!("the heavy step's query failed on {where_}"))
}

/// Column `name` of `batch`, cast to `to` and downcast to the array type `A` of that type.
fn column<A: Array + Clone + 'static>(
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
) -> anyhow::Result<A> {
    let array = batch
        .column_by_name(name)
        .with_context(|| format!("the cluster's result has no column `{name}`"))?;
    let cast: ArrayRef = cast(array, to)?;
    Ok(cast
        .as_any()
        .downcast_ref::<A>()
        .expect("an array of the type cast to")
        .clone())
}

fn int64(batch: &RecordBatch, name: &str) -> anyhow::Result<Int64Array> {
    column(batch, name, &DataType::Int64)
}

fn decimal(batch: &RecordBatch, name: &str) -> anyhow::Result<Decimal128Array> {
    column(batch, name, &DataType::Decimal128(38, 0))
}

fn string(batch: &RecordBatch, name: &str) -> anyhow::Result<StringArray> {
    column(batch, name, &DataType::Utf8)
}

fn boolean(batch: &RecordBatch, name: &str) -> anyhow::Result<BooleanArray> {
    column(batch, name, &DataType::Boolean)
}
