//! Takes the resolved [`Engine`] and the heavy step's input; gives [`CallCounts`] from the
//! embedded polars engine (the default) or from Apache DataFusion Ballista, which exists only
//! in builds with the `distributed` feature. Everything after the heavy step is shared.

use super::{CallCounts, CustomerMonth, HeavyStepInput, NotedCustomer};
use crate::error::UsageError;

/// Where the heavy step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// In this process, on polars (`stages::calls`).
    Polars,
    /// On Ballista: the scheduler's `df://HOST:PORT`, or `None` for an in-process cluster.
    Ballista { scheduler: Option<String> },
}

impl Engine {
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Polars => "polars",
            Engine::Ballista { .. } => "ballista",
        }
    }
}

/// Whether this build can run the heavy step on Ballista.
pub(crate) const DISTRIBUTED: bool = cfg!(feature = "distributed");

/// The usage error of `what` in a build without the `distributed` feature.
pub(crate) fn not_built(what: &str) -> UsageError {
    UsageError::new(format!(
        "{what} needs the Ballista engine, which this build of sla-ledger leaves out; \
         build with `cargo build --release --features distributed`"
    ))
}

/// Checks that `engine` exists in this build (a usage error, exit status 2, when not).
pub(crate) fn check_available(engine: &Engine) -> Result<(), UsageError> {
    match engine {
        Engine::Ballista { .. } if !DISTRIBUTED => Err(not_built("--engine ballista")),
        _ => Ok(()),
    }
}

/// Runs the heavy step on `engine`, and checks what it gives ([`CallCounts::check`]): a
/// violation is an internal error, whichever engine it came from.
pub(crate) fn count_calls(engine: &Engine, input: &HeavyStepInput) -> anyhow::Result<CallCounts> {
    let counts = run_on(engine, input)?;
    check(engine, input, &counts)?;
    Ok(counts)
}

/// [`CallCounts::check`], its failure named as the engine's internal error.
fn check(engine: &Engine, input: &HeavyStepInput, counts: &CallCounts) -> anyhow::Result<()> {
    counts.check(input.month_count).map_err(|e| {
        anyhow::anyhow!(
            "internal check failed: the {} engine's call counts: {e}",
            engine.name()
        )
    })
}

/// [`count_calls`], plus the rows behind `customer`'s month as the polars engine's run of the
/// step noted them: the same run on the polars engine; on Ballista, which notes nothing, a
/// run of the polars engine after it.
pub(crate) fn count_calls_noting(
    engine: &Engine,
    input: &HeavyStepInput,
    customer: NotedCustomer,
) -> anyhow::Result<(CallCounts, CustomerMonth)> {
    let (counts, noted) = match engine {
        Engine::Polars => super::count_calls_noting(input, Some(customer))?,
        Engine::Ballista { .. } => {
            let counts = run_on(engine, input)?;
            (counts, super::count_calls_noting(input, Some(customer))?.1)
        }
    };
    check(engine, input, &counts)?;
    let noted = noted.ok_or_else(|| {
        anyhow::anyhow!("internal check failed: the heavy step noted no rows of the customer")
    })?;
    Ok((counts, noted))
}

fn run_on(engine: &Engine, input: &HeavyStepInput) -> anyhow::Result<CallCounts> {
    match engine {
        Engine::Polars => super::count_calls(input),
        #[cfg(feature = "distributed")]
        Engine::Ballista { scheduler } => {
            let cluster = match scheduler {
                Some(url) => super::ballista::Cluster::Remote(url.clone()),
                None => super::ballista::Cluster::Standalone,
            };
            super::ballista::count_calls(input, &cluster)
        }
        #[cfg(not(feature = "distributed"))]
        Engine::Ballista { .. } => Err(not_built("--engine ballista").into()),
    }
}
