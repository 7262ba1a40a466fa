//! Job TOML + command-line flags → one resolved, validated [`Job`] (SPEC §1).
//!
//! Precedence: a flag given on the command line, else the job file's value, else the default.
//! Paths in a job file are relative to the job file's folder.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::cli::{EngineName, RunArgs};
use crate::error::UsageError;
use crate::inputs::stamp::InputFile;
use crate::lang::Lang;
use crate::policy::Policy;
use crate::stages::calls::engine::{check_available, Engine};
use crate::stages::calls::DEFAULT_MEMORY_BUDGET_MIB;
use crate::storage::{DataRoot, S3Settings, S3Url};
use crate::time::{parse_date, MonthRange, PRICED_YEARS};

/// A job file: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub data: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub months: Option<String>,
    pub as_of: Option<String>,
    pub customers: Option<Vec<i64>>,
    pub calendar: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub force: Option<bool>,
    pub strict: Option<bool>,
    pub threads: Option<usize>,
    pub memory_budget_mib: Option<u64>,
    pub engine: Option<EngineName>,
    pub scheduler: Option<String>,
    pub report_lang: Option<Lang>,
    /// How to reach the object store when `data` is an `s3://` URL: the `[s3]` table, never
    /// the keys (an unknown key, such as a secret, is refused). The environment's `AWS_*`
    /// variables override it.
    pub s3: Option<S3Settings>,
}

/// Where the working-day calendar comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSource {
    Builtin,
    File(PathBuf),
}

impl CalendarSource {
    /// The calendar file, if not the built-in one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CalendarSource::Builtin => None,
            CalendarSource::File(path) => Some(path),
        }
    }
}

/// Today in the policy's time zone: what `--as-of` and `current` mean when not given.
pub fn today(policy: &Policy) -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&policy.timezone)
        .date_naive()
}

/// Everything a run needs, resolved and validated.
#[derive(Debug, Clone)]
pub struct Job {
    /// The data directory: a local folder or an S3 prefix.
    pub data: DataRoot,
    pub out_dir: PathBuf,
    pub months: MonthRange,
    /// The months as the user wrote them, for the manifest.
    pub months_spec: String,
    pub as_of: NaiveDate,
    pub customers: Option<BTreeSet<i64>>,
    pub calendar: CalendarSource,
    pub policy: Policy,
    pub policy_source: Option<PathBuf>,
    pub job_file: Option<PathBuf>,
    pub force: bool,
    pub strict: bool,
    /// Worker threads; `None`: one per core.
    pub threads: Option<usize>,
    /// Call keys (40 bytes per call row) held in memory before spilling to disk.
    pub memory_budget_mib: u64,
    /// Where the heavy step runs.
    pub engine: Engine,
    /// The job and policy files read, as they were before they were read (for the manifest).
    pub sources: Vec<InputFile>,
    /// The language of `report.html`.
    pub report_lang: Lang,
}

pub const DEFAULT_MONTHS: &str = "previous..current";

impl Job {
    /// Resolves flags over the job file over the defaults; `today` is the local date now.
    pub fn resolve(
        args: &RunArgs,
        today: impl FnOnce(&Policy) -> NaiveDate,
    ) -> anyhow::Result<Job> {
        Self::resolve_with(args, today, true)
    }

    /// As [`Job::resolve`], for a command that writes nothing (`explain`): no `--out` is
    /// needed and `out_dir` is left empty.
    pub fn resolve_without_out(
        args: &RunArgs,
        today: impl FnOnce(&Policy) -> NaiveDate,
    ) -> anyhow::Result<Job> {
        Self::resolve_with(args, today, false)
    }

    /// Each setting in turn: the flag, else the job file's key, else the default, then
    /// checked. Long because it is that list, one setting after another, in the order
    /// `--help` gives them.
    fn resolve_with(
        args: &RunArgs,
        today: impl FnOnce(&Policy) -> NaiveDate,
        needs_out: bool,
    ) -> anyhow::Result<Job> {
        let mut sources = Vec::new();
        let (file, base) = match &args.job {
            Some(path) => {
                let file = read_stamped(path, "job", &mut sources, read_job_file)?;
                (file, path.parent().map(Path::to_path_buf))
            }
            None => (JobFile::default(), None),
        };
        let from_file = |p: &Option<PathBuf>| p.as_ref().map(|p| relative_to(base.as_deref(), p));

        let policy_source = args.policy.clone().or_else(|| from_file(&file.policy));
        let policy = match &policy_source {
            Some(path) => read_stamped(path, "policy", &mut sources, Policy::from_file)?,
            None => Policy::ccc(),
        };

        // An `s3://` URL is taken as written, never joined to the job file's folder.
        let data_text = args.data.clone().or_else(|| file.data.clone());
        let data_is_s3 = data_text
            .as_deref()
            .and_then(Path::to_str)
            .is_some_and(S3Url::is_s3);
        let data_dir = if data_is_s3 {
            data_text
        } else {
            args.data.clone().or_else(|| from_file(&file.data))
        }
        .ok_or_else(|| {
            UsageError::new("no data directory; pass `--data DIR` or set `data` in the job file")
        })?;
        let data = data_root(&data_dir, file.s3.clone().unwrap_or_default())?;
        let out_dir = args
            .out
            .clone()
            .or_else(|| from_file(&file.out))
            .or_else(|| (!needs_out).then(PathBuf::new))
            .ok_or_else(|| {
                UsageError::new(
                    "no output directory; pass `--out DIR` or set `out` in the job file",
                )
            })?;

        if let (false, Some(folder)) = (out_dir.as_os_str().is_empty(), data.folder()) {
            crate::output::check_apart(&out_dir, &[("--data", folder)])?;
        }

        let as_of = match args.as_of.as_ref().or(file.as_of.as_ref()) {
            Some(text) => parse_date(text).map_err(|e| UsageError::new(format!("--as-of: {e}")))?,
            None => today(&policy),
        };
        if !PRICED_YEARS.contains(&chrono::Datelike::year(&as_of)) {
            return Err(UsageError::new(format!(
                "--as-of: {as_of} is outside the years {}..={} a ledger can cover",
                PRICED_YEARS.start(),
                PRICED_YEARS.end()
            ))
            .into());
        }
        let months_spec = args
            .months
            .clone()
            .or(file.months.clone())
            .unwrap_or_else(|| DEFAULT_MONTHS.to_string());
        let months = MonthRange::parse(&months_spec, as_of)
            .map_err(|e| UsageError::new(format!("--months: {e}")))?;

        let customers = args.customers.clone().or(file.customers.clone());
        if customers.as_ref().is_some_and(Vec::is_empty) {
            return Err(UsageError::new("--customers: the list is empty").into());
        }
        let calendar = match args.calendar.clone().or_else(|| from_file(&file.calendar)) {
            Some(path) => CalendarSource::File(path),
            None => CalendarSource::Builtin,
        };

        Ok(Job {
            data,
            out_dir,
            months,
            months_spec,
            as_of,
            customers: customers.map(|ids| ids.into_iter().collect()),
            calendar,
            policy,
            policy_source,
            job_file: args.job.clone(),
            force: !args.no_force && (args.force || file.force.unwrap_or(false)),
            strict: args.strict || file.strict.unwrap_or(false),
            threads: checked_threads(args.threads.or(file.threads))?,
            memory_budget_mib: checked_memory_budget(
                args.memory_budget_mib
                    .or(file.memory_budget_mib)
                    .unwrap_or(DEFAULT_MEMORY_BUDGET_MIB),
            )?,
            engine: resolve_engine(args, &file)?,
            sources,
            report_lang: file.report_lang.unwrap_or_default(),
        })
    }

    /// The job with `--report-lang`, when given, over the job file's `report_lang` (the flag
    /// belongs to `run` and `validate` only, so it is not among the shared run flags).
    pub fn with_report_lang(mut self, flag: Option<Lang>) -> Job {
        if let Some(lang) = flag {
            self.report_lang = lang;
        }
        self
    }

    /// The memory budget in bytes (resolution bounds it, so this cannot overflow).
    pub fn memory_budget_bytes(&self) -> u64 {
        self.memory_budget_mib * 1024 * 1024
    }

    pub fn includes_customer(&self, customer_id: i64) -> bool {
        self.customers
            .as_ref()
            .is_none_or(|ids| ids.contains(&customer_id))
    }
}

/// Largest `--memory-budget-mib`: 16 TiB, far above any machine, and its bytes fit a `u64`.
pub const MAX_MEMORY_BUDGET_MIB: u64 = 1 << 24;

fn checked_threads(threads: Option<usize>) -> Result<Option<usize>, UsageError> {
    match threads {
        Some(0) => Err(UsageError::new("--threads must be at least 1")),
        other => Ok(other),
    }
}

fn checked_memory_budget(mib: u64) -> Result<u64, UsageError> {
    if (1..=MAX_MEMORY_BUDGET_MIB).contains(&mib) {
        Ok(mib)
    } else {
        Err(UsageError::new(format!(
            "--memory-budget-mib must be from 1 to {MAX_MEMORY_BUDGET_MIB}; got {mib}"
        )))
    }
}

/// `--engine` and `--scheduler` (flags over the job file); a scheduler needs Ballista.
fn resolve_engine(args: &RunArgs, file: &JobFile) -> Result<Engine, UsageError> {
    let name = args.engine.or(file.engine).unwrap_or(EngineName::Polars);
    let scheduler = args.scheduler.clone().or(file.scheduler.clone());
    let engine =
        match (name, scheduler) {
            (EngineName::Polars, None) => Engine::Polars,
            (EngineName::Polars, Some(_)) => return Err(UsageError::new(
                "--scheduler is for `--engine ballista`; the polars engine runs in this process",
            )),
            (EngineName::Ballista, scheduler) => {
                if let Some(url) = &scheduler {
                    let bare = url.strip_prefix("df://").ok_or_else(|| {
                        UsageError::new(format!("--scheduler: `{url}` is not df://HOST:PORT"))
                    })?;
                    let port_ok = bare.rsplit_once(':').is_some_and(|(host, port)| {
                        !host.is_empty() && port.parse::<u16>().is_ok()
                    });
                    if !port_ok {
                        return Err(UsageError::new(format!(
                            "--scheduler: `{url}` is not df://HOST:PORT"
                        )));
                    }
                }
                Engine::Ballista { scheduler }
            }
        };
    check_available(&engine)?;
    Ok(engine)
}

/// `--data` as a folder, or as an S3 prefix with the job file's `[s3]` settings and the
/// environment's over them.
fn data_root(data: &Path, from_file: S3Settings) -> Result<DataRoot, UsageError> {
    let Some(text) = data.to_str().filter(|t| S3Url::is_s3(t)) else {
        return Ok(DataRoot::Folder(data.to_path_buf()));
    };
    let url = S3Url::parse(text).map_err(|e| {
        UsageError::new(format!("--data: {e}"))
            .hint("an object store location is `s3://BUCKET/PREFIX`")
    })?;
    let settings = from_file
        .with_environment(&|name| std::env::var(name).ok())
        .map_err(|e| UsageError::new(format!("S3 settings: {e}")))?;
    Ok(DataRoot::Objects { url, settings })
}

/// Reads a file of the job's own (`label` names it in the manifest) and notes its stamp,
/// taken before the read, so the manifest can prove the file did not change afterwards.
fn read_stamped<T>(
    path: &Path,
    label: &str,
    sources: &mut Vec<InputFile>,
    read: impl FnOnce(&Path) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let shown = format!("{label}:{}", path.display());
    let before = InputFile::stamp(shown.clone(), path);
    let value = read(path)?;
    // A stamp that failed before a read that worked: the file appeared in between; stamp now.
    sources.push(match before {
        Ok(file) => file,
        Err(_) => InputFile::stamp(shown, path)
            .with_context(|| format!("cannot read `{}`", crate::paths::shown(path)))?,
    });
    Ok(value)
}

fn relative_to(base: Option<&Path>, path: &Path) -> PathBuf {
    match base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

fn read_job_file(path: &Path) -> anyhow::Result<JobFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError::new(format!(
            "cannot read job file `{}`: {e}",
            crate::paths::shown(path)
        ))
    })?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        UsageError::new(format!(
            "job file `{}`: {}{}",
            crate::paths::shown(path),
            e.span()
                .map(|span| at_line(&text, span.start))
                .unwrap_or_default(),
            e.message().trim_end()
        ))
        .into()
    })
}

/// `line L, column C (key `K`): ` of a byte offset. Only the key of the line is quoted,
/// never its value: a secret written into the job file by mistake must not reach the terminal
/// or a log.
fn at_line(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && key.len() <= 64);
    match key {
        Some(key) => format!(
            "line {line}, column {column} (key `{}`): ",
            crate::text::shown(key)
        ),
        None => format!("line {line}, column {column}: "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    /// A job file holding `text` in a fresh folder named after `name`; gives the folder (for the
    /// test to remove) and the file's path.
    fn job_file(name: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("sla-ledger-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let job_path = dir.join("job.toml");
        std::fs::write(&job_path, text).unwrap();
        (dir, job_path)
    }

    #[test]
    fn flags_override_the_job_file_and_paths_are_relative_to_it() {
        let (dir, job_path) = job_file(
            "job",
            "data = \"d\"\nout = \"o\"\nmonths = \"2026-01\"\nas_of = \"2026-02-10\"\n",
        );
        let args = RunArgs {
            job: Some(job_path),
            months: Some("2026-02".into()),
            ..RunArgs::default()
        };
        let job = Job::resolve(&args, |_| unreachable!("as_of is set")).unwrap();
        assert_eq!(job.data, DataRoot::Folder(dir.join("d")));
        assert_eq!(job.months.first.to_string(), "2026-02");
        assert_eq!(job.as_of, date("2026-02-10"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_job_keys_are_usage_errors() {
        let (dir, job_path) = job_file("jobkey", "dat = \"d\"\n");
        let args = RunArgs {
            job: Some(job_path),
            ..RunArgs::default()
        };
        let err = Job::resolve(&args, |_| date("2026-01-01")).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().contains("dat"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_8_a_key_written_into_the_s3_table_is_refused_without_quoting_it() {
        let (dir, job_path) = job_file(
            "jobs3",
            "[s3]\nregion = \"ap-guangzhou\"\nsecret_access_key = \"SECRETVALUE\"\n",
        );
        let args = RunArgs {
            job: Some(job_path),
            ..RunArgs::default()
        };
        let err = Job::resolve(&args, |_| date("2026-01-01")).unwrap_err();
        let text = err.to_string();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(text.contains("line 3, column 1"), "{text}");
        assert!(text.contains("unknown field `secret_access_key`"), "{text}");
        assert!(!text.contains("SECRETVALUE"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_engine_comes_from_flags_over_the_job_file() {
        let (dir, job_path) = job_file(
            "engine",
            "data = \"d\"\nout = \"o\"\nas_of = \"2026-02-10\"\n\
             engine = \"ballista\"\nscheduler = \"df://sched:50050\"\n",
        );
        let from_file = RunArgs {
            job: Some(job_path.clone()),
            ..RunArgs::default()
        };
        let flags = RunArgs {
            job: Some(job_path),
            engine: Some(EngineName::Ballista),
            scheduler: Some("df://other:6000".into()),
            ..RunArgs::default()
        };
        let today = |_: &Policy| date("2026-01-01");
        if crate::stages::calls::engine::DISTRIBUTED {
            let job = Job::resolve(&from_file, today).unwrap();
            assert_eq!(
                job.engine,
                Engine::Ballista {
                    scheduler: Some("df://sched:50050".into())
                }
            );
            let job = Job::resolve(&flags, today).unwrap();
            assert_eq!(
                job.engine,
                Engine::Ballista {
                    scheduler: Some("df://other:6000".into())
                }
            );
        } else {
            let err = Job::resolve(&from_file, today).unwrap_err();
            assert!(err.to_string().contains("--features distributed"), "{err}");
        }
        let polars_with_scheduler = RunArgs {
            engine: Some(EngineName::Polars),
            ..flags
        };
        let err = Job::resolve(&polars_with_scheduler, today).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_1_no_force_undoes_the_job_files_force_and_out_stays_apart_from_data() {
        let dir = std::env::temp_dir().join(format!("sla-ledger-noforce-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d")).unwrap();
        let job_path = dir.join("job.toml");
        std::fs::write(&job_path, "data = \"d\"\nout = \"o\"\nforce = true\n").unwrap();
        let today = |_: &Policy| date("2026-01-01");
        let from_file = RunArgs {
            job: Some(job_path.clone()),
            ..RunArgs::default()
        };
        assert!(Job::resolve(&from_file, today).unwrap().force);
        let no_force = RunArgs {
            no_force: true,
            ..from_file.clone()
        };
        assert!(!Job::resolve(&no_force, today).unwrap().force);
        let inside = RunArgs {
            out: Some(dir.join("d/../d/out")),
            ..from_file
        };
        let err = Job::resolve(&inside, today).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some(), "{err}");
        assert!(err.to_string().contains("lies inside"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
