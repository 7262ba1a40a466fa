//! The input tables of a data directory (SPEC §2): one module per table, each giving typed
//! rows plus the rows it quarantined. Fatal defects are [`InputError`]s naming file and line.

pub mod billing;
pub mod calendar;
pub mod calls;
pub mod claims;
pub mod decode;
pub mod exemptions;
pub mod problems;
pub mod source;
pub mod stamp;
pub mod subscriptions;
pub mod table;

use crate::error::{InputError, Location};
use crate::quarantine::Quarantine;
use problems::Problems;
use source::DataSource;
use table::{find_table, read_table, Records};

/// Reads an optional small table; a missing file is an empty table.
pub(crate) fn read_optional(
    data_dir: &DataSource,
    stem: &str,
    columns: &[&'static str],
    problems: &mut Problems,
) -> Result<Records, InputError> {
    let empty = || Records::empty(format!("{stem}.csv").into(), columns);
    match problems.check(find_table(data_dir, stem))?.flatten() {
        Some(table) => read_table(&table, columns, problems),
        None => Ok(empty()),
    }
}

/// Reads a required small table.
pub(crate) fn read_required(
    data_dir: &DataSource,
    stem: &str,
    columns: &[&'static str],
    problems: &mut Problems,
) -> Result<Records, InputError> {
    let empty = || Records::empty(format!("{stem}.csv").into(), columns);
    let table = match find_table(data_dir, stem) {
        Ok(table) => table,
        Err(problem) => return problems.report(problem).map(|()| empty()),
    };
    match table {
        Some(table) => read_table(&table, columns, problems),
        None => problems
            .report(
                InputError::new(
                    Location::file(format!("{stem}.csv")),
                    format!(
                        "is missing from the data directory `{}`; it is required",
                        data_dir.shown()
                    ),
                )
                .hint(format!(
                    "add `{stem}.csv` (or `.parquet`) with columns `{}`",
                    columns.join(",")
                )),
            )
            .map(|()| empty()),
    }
}

/// Parses a customer id cell: a decimal integer.
pub(crate) fn parse_customer_id(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|_| {
        format!(
            "{} is not a customer id; expected an integer",
            crate::text::quoted(text)
        )
    })
}

/// Longest identifier SPEC §2 allows in an output (`claim_id`, `window_id`).
pub const MAX_IDENTIFIER_CHARS: usize = 64;

/// An identifier that reaches the outputs (SPEC §2): `^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}$`.
/// It starts with a letter or digit, so no output cell can begin a spreadsheet formula, and it
/// holds no spaces or control characters.
pub(crate) fn parse_identifier(text: &str) -> Result<String, String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._:/#-".contains(&b);
    let well_formed = text.len() <= MAX_IDENTIFIER_CHARS
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && text.bytes().all(allowed);
    if well_formed {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{} is not an identifier; expected 1 to {MAX_IDENTIFIER_CHARS} letters, digits or `._:/#-`, starting with a letter or digit",
            crate::text::quoted(text)
        ))
    }
}

/// Everything read from the data directory, before any stage runs.
pub struct Inputs {
    pub calls: calls::CallFiles,
    pub subscriptions: subscriptions::Subscriptions,
    pub billing: billing::Billing,
    pub exemptions: exemptions::ExemptionTables,
    pub claims: claims::Claims,
    pub quarantine: Quarantine,
    /// Every file read (call files, then tables), as it was when first opened.
    pub sources: Vec<stamp::InputFile>,
}

impl Inputs {
    /// Loads and validates every table, failing on the first fatal problem; small-table
    /// quarantine entries are collected.
    pub fn load(
        data_dir: &crate::storage::DataRoot,
        policy: &crate::policy::Policy,
    ) -> Result<Inputs, InputError> {
        Inputs::load_with(data_dir, policy, &mut Problems::first_fatal())
    }

    /// Loads every table, handing each fatal problem to `problems` (see [`Problems`]).
    pub fn load_with(
        data_root: &crate::storage::DataRoot,
        policy: &crate::policy::Policy,
        problems: &mut Problems,
    ) -> Result<Inputs, InputError> {
        let mut quarantine = Quarantine::default();
        let data_dir = &DataSource::open(data_root)?;
        let calls = calls::CallFiles::discover_with(data_dir, problems)?;
        let subscriptions =
            subscriptions::Subscriptions::load(data_dir, &mut quarantine, problems)?;
        let billing = billing::Billing::load(data_dir, &mut quarantine, problems)?;
        let exemptions =
            exemptions::ExemptionTables::load(data_dir, policy, &mut quarantine, problems)?;
        let claims = claims::Claims::load(data_dir, problems)?;
        let mut sources: Vec<stamp::InputFile> = calls.inputs().collect();
        sources.extend(problems.take_read());
        Ok(Inputs {
            sources,
            calls,
            subscriptions,
            billing,
            exemptions,
            claims,
            quarantine,
        })
    }
}
