//! Provenance (SPEC §7 `manifest.json`): program version, the effective job, every input
//! file with size and SHA-256, row counts, totals per currency, and each output's SHA-256.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::inputs::stamp::{InputFile, ReadAs};
use crate::lang::Lang;
use crate::policy::Policy;
use crate::stages::calls::RowCounts;
use crate::time::MonthRange;

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub program: Program,
    pub job: EffectiveJob,
    pub inputs: Vec<FileDigest>,
    pub rows: Rows,
    /// Per currency, over `ok` rows: compensation owed and payout due.
    pub totals: BTreeMap<String, Totals>,
    pub outputs: Vec<FileDigest>,
}

#[derive(Debug, Serialize)]
pub struct Program {
    pub name: &'static str,
    pub version: &'static str,
}

impl Program {
    pub fn current() -> Program {
        Program {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Whether `manifest` (the bytes of a `manifest.json`) was written by this program, `run` or
/// `diff`: it parses, and its `program.name` is ours. Any other field may differ.
pub fn written_by_this_program(manifest: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Head {
        program: Name,
    }
    #[derive(serde::Deserialize)]
    struct Name {
        name: String,
    }
    serde_json::from_slice::<Head>(manifest)
        .is_ok_and(|h| h.program.name == Program::current().name)
}

/// The `manifest.json` of the run output `dir`, as JSON, for the commands that read a run
/// (`diff`, `post`).
pub fn read_run_manifest(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        crate::error::with_hint(
            e,
            format!("cannot read `{}`", crate::paths::shown(&path)),
            "pass the `--out` folder of an `sla-ledger run`",
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not valid JSON", crate::paths::shown(&path)))
}

#[derive(Debug, Serialize)]
pub struct EffectiveJob {
    pub data: String,
    pub months_spec: String,
    pub months: MonthRange,
    pub as_of: String,
    pub customers: Option<Vec<i64>>,
    pub calendar: String,
    pub policy_source: String,
    pub policy: Policy,
    pub job_file: Option<String>,
    pub strict: bool,
    /// The heavy step's engine, `polars` or `ballista`.
    pub engine: &'static str,
    /// With `ballista`: the remote scheduler, or `None` for the in-process cluster.
    pub scheduler: Option<String>,
    /// The language `report.html` is written in: an argument that changes an output's bytes.
    pub report_lang: Lang,
}

#[derive(Debug, Serialize)]
pub struct Rows {
    pub calls: RowCounts,
    /// Buckets of call keys spilled to disk beyond the memory budget (0: none).
    pub spilled_buckets: usize,
    /// Quarantine entries of every table, by reason.
    pub quarantined_by_reason: BTreeMap<&'static str, usize>,
    pub ledger_rows: usize,
    pub ledger_error_rows: usize,
    pub provisional_rows: usize,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub compensation: String,
    pub payout: String,
}

#[derive(Debug, Serialize)]
pub struct FileDigest {
    pub path: String,
    /// An object's URL (`s3://bucket/key`); a local file has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub bytes: u64,
    /// An object's ETag as the store gave it when listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub sha256: String,
}

/// SHA-256 of a file, in lowercase hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = File::open(path)
        .with_context(|| format!("cannot open `{}` to hash it", crate::paths::shown(path)))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((bytes, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Digests of the run's inputs, hashed in parallel, in the given order. Each input must still
/// be exactly the file the run read, before and after its bytes are hashed, so the hash is of
/// the bytes that were counted (SPEC §8).
pub fn digest_inputs(inputs: &[InputFile]) -> anyhow::Result<Vec<FileDigest>> {
    inputs
        .par_iter()
        .map(|input| {
            input.check_unchanged()?;
            let digest = match &input.read {
                ReadAs::File { path, .. } => digest_file(&input.shown, path)?,
                ReadAs::Object { client, version } => {
                    let (bytes, sha256) = client.sha256(version).map_err(|err| {
                        let hint = err.hint();
                        crate::error::hinted(
                            format!("input `{}`: {err}", crate::text::shown(&input.shown)),
                            hint,
                        )
                    })?;
                    FileDigest {
                        path: input.shown.clone(),
                        url: Some(version.url.to_string()),
                        bytes,
                        etag: version.etag.clone(),
                        sha256,
                    }
                }
            };
            input.check_unchanged()?;
            Ok(digest)
        })
        .collect()
}

fn digest_file(shown: &str, path: &Path) -> anyhow::Result<FileDigest> {
    let (bytes, sha256) = sha256_file(path)?;
    Ok(FileDigest {
        path: shown.to_string(),
        url: None,
        bytes,
        etag: None,
        sha256,
    })
}

/// Digests of `(shown name, path)` pairs, hashed in parallel, in the given order.
pub fn digest_files(files: &[(String, PathBuf)]) -> anyhow::Result<Vec<FileDigest>> {
    files
        .par_iter()
        .map(|(shown, path)| digest_file(shown, path))
        .collect()
}
