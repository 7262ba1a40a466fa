//! Hostile and faulty input (issue 12): the heavy step's memory, spill files and reads.
//!
//! Each attack is built here with polars (no binary blobs) and run through the binary: it must
//! end in exit 0 with a complete, consistent output or exit 1 naming the file, with nothing
//! left beside `--out`, never a panic, a signal or a hang.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::*;

use crate::support::*;

/// A small valid data folder (the `sla-rules` golden case) to add a hostile file to.
fn valid_data(dir: &TempDir) -> PathBuf {
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    data
}

fn write_frame(path: &Path, mut frame: DataFrame) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    ParquetWriter::new(fs::File::create(path).unwrap())
        .finish(&mut frame)
        .unwrap();
}

/// `rows` calls of customer 1 in January 2026, ids `r-0..`, one second apart, each with the
/// given status and error code. Both strings are repeated as one value (`new_from_index`),
/// so that a 10 KB string on 100k rows costs this process 10 KB, not 1 GB.
fn calls_frame(rows: usize, status: &str, error_code: Option<&str>) -> DataFrame {
    let repeated =
        |name: &str, value: Option<&str>| Column::new(name.into(), [value]).new_from_index(0, rows);
    let january_ms = 1_767_225_600_000i64 + 86_400_000;
    let ts = Int64Chunked::from_iter_values(
        "ts".into(),
        (0..rows as i64).map(|i| january_ms + i * 1000),
    )
    .into_datetime(TimeUnit::Milliseconds, None);
    DataFrame::new(
        rows,
        vec![
            Column::new(
                "request_id".into(),
                (0..rows).map(|i| format!("r-{i}")).collect::<Vec<_>>(),
            ),
            Column::new("customer_id".into(), vec![1i64; rows]),
            ts.into_series().into(),
            Column::new("api".into(), vec!["DescribeTelCdr"; rows]),
            repeated("status", Some(status)),
            repeated("error_code", error_code),
        ],
    )
    .unwrap()
}

/// What a child run gave: exit code (None for a signal), both streams, and its peak RSS.
struct Finished {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    peak_rss_kib: u64,
}

impl Finished {
    fn describe(&self) -> String {
        format!(
            "exit {:?}, signal {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.signal, self.stdout, self.stderr
        )
    }
}

/// Spawns the binary with `args`, streams captured to files (so a full pipe cannot stall it).
fn spawn(args: &[&str], logs: &Path) -> Child {
    fs::create_dir_all(logs).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(args)
        .current_dir(repo_root())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(fs::File::create(logs.join("stdout")).unwrap())
        .stderr(fs::File::create(logs.join("stderr")).unwrap())
        .spawn()
        .expect("the binary starts")
}

/// Waits for `child` (killing it after `limit`: a hang fails the caller) and reaps it with
/// `wait4`, which also gives the child's peak resident memory.
fn finish(child: Child, logs: &Path, limit: Duration) -> Finished {
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + limit;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 only writes the two out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: as above; WNOHANG returns at once, 0 while the child still runs.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4 failed");
        if reaped == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: the child is ours and not yet reaped, so the pid is still its own.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // SAFETY: as above, blocking until the killed child is reaped.
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            panic!(
                "the run did not end within {limit:?}: a hang\n{}",
                read(&logs.join("stderr"))
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(child);
    let exited = libc::WIFEXITED(status);
    Finished {
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: read(&logs.join("stdout")),
        stderr: read(&logs.join("stderr")),
        peak_rss_kib: usage.ru_maxrss as u64,
    }
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

fn run_measured(data: &Path, out: &Path, logs: &Path) -> Finished {
    let args = run_args(data, out, "2026-01", "2026-04-30", &[]);
    finish(spawn(&args, logs), logs, Duration::from_secs(120))
}

#[test]
fn issue12_item3_memory_grows_with_distinct_strings_not_rows_times_length() {
    let dir = TempDir::new("heavy-memory");
    let data = valid_data(&dir);
    // 100k system errors sharing one 10 KB error code: polars writes a repeated string
    // dictionary-encoded, so the file is small while rows × length is 1 GB. The ids come in
    // pairs at different times, so each is also a conflicting duplicate whose versions are
    // re-read for the tie-break: both the error details and the re-read versions are tested.
    let code = "E".repeat(10_240);
    let file = data.join("calls/hostile/one-code.parquet");
    let mut frame = calls_frame(100_000, "system_error", Some(&code));
    let ids: Vec<String> = (0..100_000).map(|i| format!("r-{}", i / 2)).collect();
    frame
        .with_column(Column::new("request_id".into(), ids))
        .unwrap();
    write_frame(&file, frame);
    let bytes = fs::metadata(&file).unwrap().len();
    assert!(bytes < 1 << 20, "the hostile file is {bytes} bytes");
    let out = dir.join("out/ledger");
    fs::create_dir_all(dir.join("out")).unwrap();
    let run = run_measured(&data, &out, &dir.join("logs"));
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let manifest = fs::read_to_string(out.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let duplicates = manifest["rows"]["calls"]["duplicates"].as_u64().unwrap();
    assert!(duplicates >= 50_000, "{}", manifest["rows"]);
    let peak_mib = run.peak_rss_kib / 1024;
    eprintln!("peak RSS {peak_mib} MiB for a {bytes}-byte calls file");
    assert!(peak_mib < 400, "peak RSS {peak_mib} MiB");
}

/// A reader of Thrift's compact protocol, just enough to find the Parquet footer's row counts.
struct Thrift<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Thrift<'_> {
    fn byte(&mut self) -> u8 {
        self.at += 1;
        self.bytes[self.at - 1]
    }

    fn varint(&mut self) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let b = self.byte();
            value |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return value;
            }
        }
    }

    /// Visits the fields of a struct: `visit(reader, field id, type)` must read the value or
    /// call `skip`.
    fn fields(&mut self, visit: &mut dyn FnMut(&mut Self, i16, u8)) {
        let mut last = 0i16;
        loop {
            let header = self.byte();
            if header == 0 {
                return;
            }
            let (delta, kind) = ((header >> 4) as i16, header & 0x0f);
            last = if delta == 0 {
                let z = self.varint();
                ((z >> 1) as i64 ^ -((z & 1) as i64)) as i16
            } else {
                last + delta
            };
            visit(self, last, kind);
        }
    }

    /// The size and element type of a list or set.
    fn list(&mut self) -> (u64, u8) {
        let header = self.byte();
        let size = u64::from(header >> 4);
        let size = if size == 15 { self.varint() } else { size };
        (size, header & 0x0f)
    }

    fn skip(&mut self, kind: u8) {
        match kind {
            1 | 2 => {}
            3 => self.at += 1,
            4..=6 => {
                self.varint();
            }
            7 => self.at += 8,
            8 => {
                let n = self.varint() as usize;
                self.at += n;
            }
            9 | 10 => {
                let (size, element) = self.list();
                for _ in 0..size {
                    if element == 1 || element == 2 {
                        self.at += 1;
                    } else {
                        self.skip(element);
                    }
                }
            }
            11 => {
                let size = self.varint();
                if size > 0 {
                    let kinds = self.byte();
                    for _ in 0..size {
                        self.skip(kinds >> 4);
                        self.skip(kinds & 0x0f);
                    }
                }
            }
            12 => self.fields(&mut |t, _, kind| t.skip(kind)),
            other => panic!("compact type {other} at byte {}", self.at),
        }
    }
}

/// A byte range `start..end` of a footer.
type Span = (usize, usize);

/// The byte ranges of the row counts in a Parquet footer: the file's `num_rows` (field 3 of
/// FileMetaData) and each row group's (field 3 of RowGroup, in field 4's list).
fn footer_row_counts(footer: &[u8]) -> (Vec<Span>, Vec<Span>) {
    let (mut file_level, mut groups) = (Vec::new(), Vec::new());
    let mut reader = Thrift {
        bytes: footer,
        at: 0,
    };
    reader.fields(&mut |t, id, kind| match (id, kind) {
        (3, 6) => {
            let start = t.at;
            t.varint();
            file_level.push((start, t.at));
        }
        (4, 9) => {
            let (size, _) = t.list();
            for _ in 0..size {
                t.fields(&mut |t, id, kind| {
                    if (id, kind) == (3, 6) {
                        let start = t.at;
                        t.varint();
                        groups.push((start, t.at));
                    } else {
                        t.skip(kind);
                    }
                });
            }
        }
        _ => t.skip(kind),
    });
    (file_level, groups)
}

/// Zigzag varint of `value`, as compact Thrift writes an i64.
fn zigzag_varint(value: i64) -> Vec<u8> {
    let mut z = ((value << 1) ^ (value >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Rewrites, in place, the footer's row counts in `ranges` to `rows` (same encoded length, so
/// the footer keeps its size and the file stays readable).
fn patch_row_counts(file: &[u8], ranges: &[Span], rows: i64) -> Vec<u8> {
    let footer_len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    let footer_start = file.len() - 8 - footer_len as usize;
    let mut patched = file.to_vec();
    for &(start, end) in ranges {
        let bytes = zigzag_varint(rows);
        assert_eq!(
            bytes.len(),
            end - start,
            "the new count must encode in as many bytes"
        );
        patched[footer_start + start..footer_start + end].copy_from_slice(&bytes);
    }
    patched
}

fn footer(file: &[u8]) -> &[u8] {
    let footer_len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    &file[file.len() - 8 - footer_len as usize..file.len() - 8]
}

/// Runs on `data` into `dir/out/ledger`; asserts exit 1, that stderr holds every needle and no
/// panic, and that nothing was left beside `--out`.
fn assert_refused(dir: &TempDir, data: &Path, needles: &[&str]) {
    let out_parent = dir.join("out");
    fs::create_dir_all(&out_parent).unwrap();
    let run = run_measured(data, &out_parent.join("ledger"), &dir.join("logs"));
    assert_eq!(run.code, Some(1), "{}", run.describe());
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "stderr lacks `{needle}`:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        entries(&out_parent).is_empty(),
        "left behind: {:?}",
        entries(&out_parent)
    );
}

#[test]
fn issue12_item5_a_footer_that_counts_fewer_rows_than_the_file_holds_is_refused() {
    let dir = TempDir::new("heavy-footer");
    let data = valid_data(&dir);
    let file = data.join("calls/hostile/lying.parquet");
    write_frame(&file, calls_frame(1000, "success", None));
    // The lie is made honestly: the footer polars wrote is walked as compact Thrift and its
    // file-level `num_rows` rewritten in place (a varint of the same length), so the file
    // stays readable and its one row group still holds the 1000 rows. Lowered a lot, the run
    // used to panic; lowered a little, it miscounted duplicates.
    let bytes = fs::read(&file).unwrap();
    let (file_level, groups) = footer_row_counts(footer(&bytes));
    assert_eq!((file_level.len(), groups.len()), (1, 1));
    for rows in [950, 100] {
        fs::write(&file, patch_row_counts(&bytes, &file_level, rows)).unwrap();
        let counts = format!("the file's footer counts {rows} rows, its row groups 1000");
        assert_refused(
            &dir,
            &data,
            &[
                "`calls/hostile/lying.parquet`",
                "rows 1..1000",
                &counts,
                "hint: the file's metadata does not match its data",
            ],
        );
    }
}

#[test]
fn issue12_item3_a_long_status_writes_a_bounded_quarantine_detail() {
    let dir = TempDir::new("heavy-status");
    let data = valid_data(&dir);
    let status = format!("\u{1b}]0;owned\u{7}{}", "S".repeat(10_240));
    let file = data.join("calls/hostile/long-status.parquet");
    write_frame(&file, calls_frame(10_000, &status, None));
    let out = dir.join("out/ledger");
    fs::create_dir_all(dir.join("out")).unwrap();
    let run = run_measured(&data, &out, &dir.join("logs"));
    assert_eq!(run.code, Some(0), "{}", run.describe());
    let csv = out.join("quarantine.csv");
    let bytes = fs::metadata(&csv).unwrap().len();
    // 10k entries of at most a few hundred bytes (it was 10 KB each: 100 MB).
    assert!(bytes < 4 << 20, "quarantine.csv is {bytes} bytes");
    let text = fs::read_to_string(&csv).unwrap();
    let detail = format!(
        "request_id r-0: status `{status}`; expected success, client_error or system_error"
    );
    let note = format!("… ({} bytes in all)", detail.len());
    let line = text
        .lines()
        .find(|l| l.contains(",r-0") || l.contains("r-0:"))
        .unwrap();
    assert!(line.contains(&note), "{line}");
    assert!(line.contains("\\u{1b}]0;owned\\u{7}"), "{line}");
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached quarantine.csv"
    );
}

/// A deterministic generator (xorshift64*): the same 500 mutations on every run.
struct Mutations(u64);

impl Mutations {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// One mutation of `file`: cut at an offset, or 1–4 bytes flipped in the footer (its
    /// Thrift, length and magic) or in the pages before it.
    fn mutate(&mut self, file: &[u8]) -> (String, Vec<u8>) {
        let footer_start = file.len() - 8 - footer(file).len();
        let mut bytes = file.to_vec();
        match self.below(3) {
            0 => {
                let at = self.below(file.len());
                bytes.truncate(at);
                (format!("cut at {at}"), bytes)
            }
            kind => {
                let (from, to) = if kind == 1 {
                    (footer_start, file.len())
                } else {
                    (4, footer_start)
                };
                let mut flipped = Vec::new();
                for _ in 0..1 + self.below(4) {
                    let at = from + self.below(to - from);
                    let mask = 1u8 << self.below(8);
                    bytes[at] ^= mask;
                    flipped.push(format!("{at}^{mask:#04x}"));
                }
                let region = if kind == 1 { "footer" } else { "pages" };
                (format!("{region} flipped {}", flipped.join(",")), bytes)
            }
        }
    }
}

/// The small valid calls file the fuzz test mutates: 400 rows in 8 row groups, with system
/// errors and codes, duplicates and conflicting duplicates, so that every path of the read
/// (quarantine, de-duplication, re-reads for the tie-break, error details) sees its bytes.
fn fuzz_calls_file() -> Vec<u8> {
    let rows = 400;
    let mut frame = calls_frame(rows, "success", None);
    let statuses: Vec<&str> = (0..rows)
        .map(|i| ["success", "system_error", "client_error", "success"][i % 4])
        .collect();
    let codes: Vec<Option<&str>> = (0..rows)
        .map(|i| (i % 4 == 1).then_some(["InternalError", "FailedOperation.CalleeInvalid"][i % 2]))
        .collect();
    let ids: Vec<String> = (0..rows).map(|i| format!("r-{}", i % 370)).collect();
    frame
        .with_column(Column::new("status".into(), statuses))
        .unwrap();
    frame
        .with_column(Column::new("error_code".into(), codes))
        .unwrap();
    frame
        .with_column(Column::new("request_id".into(), ids))
        .unwrap();
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_row_group_size(Some(50))
        .finish(&mut frame)
        .unwrap();
    bytes
}

/// A data folder holding only what a run needs, the call file at `calls/fuzz.parquet`.
fn fuzz_data(dir: &TempDir) -> PathBuf {
    let data = dir.join("data");
    fs::create_dir_all(data.join("calls")).unwrap();
    fs::write(
        data.join("subscriptions.csv"),
        "customer_id,start_date,end_date\n1,2025-06-01,\n",
    )
    .unwrap();
    data
}

/// Why one run's outcome is not allowed (`None`: it is): exit 0 with a complete output whose
/// row accounting adds up, or exit 1 naming the file with nothing left beside `--out`.
fn fuzz_verdict(run: &Finished, out_parent: &Path) -> Option<String> {
    let out = out_parent.join("ledger");
    if run.stderr.contains("panicked") || run.code == Some(101) {
        return Some("a panic".into());
    }
    match run.code {
        Some(0) => {
            let Ok(manifest) = fs::read_to_string(out.join("manifest.json")) else {
                return Some("exit 0 without a manifest".into());
            };
            let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
            if !out.join("ledger.csv").is_file() || entries(out_parent) != ["ledger"] {
                return Some(format!("incomplete output: {:?}", entries(out_parent)));
            }
            let calls = &manifest["rows"]["calls"];
            let n = |k: &str| calls[k].as_u64().unwrap_or(u64::MAX / 8);
            let parts = n("quarantined") + n("duplicates") + n("counted") + n("not_counted");
            (n("read") != parts).then(|| format!("row accounting does not add up: {calls}"))
        }
        Some(1) if !run.stderr.contains("`calls/fuzz.parquet`") => {
            Some("exit 1 without naming the file".into())
        }
        Some(1) if !entries(out_parent).is_empty() => {
            Some(format!("left behind: {:?}", entries(out_parent)))
        }
        Some(1) => None,
        _ => Some("neither exit 0 nor 1".into()),
    }
}

#[test]
fn issue12_tests_fuzzed_call_files_end_in_a_ledger_or_a_named_error() {
    let valid = fuzz_calls_file();
    let mut mutations = Mutations(0x5EED_1212);
    let cases: Vec<(String, Vec<u8>)> = (0..500).map(|_| mutations.mutate(&valid)).collect();
    let started = Instant::now();
    // Two workers (the machines this runs on have two cores), each with its own data folder
    // into which every mutation is swapped in turn.
    let (failures, ledgers): (Vec<Vec<String>>, Vec<usize>) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let cases = &cases;
                scope.spawn(move || {
                    let dir = TempDir::new(&format!("heavy-fuzz-{worker}"));
                    let data = fuzz_data(&dir);
                    let out_parent = dir.join("out");
                    let out = out_parent.join("ledger");
                    let logs = dir.join("logs");
                    let (mut failures, mut ledgers) = (Vec::new(), 0);
                    for (name, bytes) in cases.iter().skip(worker).step_by(2) {
                        fs::write(data.join("calls/fuzz.parquet"), bytes).unwrap();
                        fs::create_dir_all(&out_parent).unwrap();
                        let args = run_args(&data, &out, "2026-01", "2026-04-30", &[]);
                        let run = finish(spawn(&args, &logs), &logs, Duration::from_secs(30));
                        if let Some(why) = fuzz_verdict(&run, &out_parent) {
                            failures.push(format!("{name}: {why}\n{}", run.describe()));
                        } else if run.code == Some(0) {
                            ledgers += 1;
                        }
                        fs::remove_dir_all(&out_parent).unwrap();
                    }
                    (failures, ledgers)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let failures: Vec<String> = failures.concat();
    eprintln!(
        "500 mutations run in {:?}: {} ledgers, {} refused",
        started.elapsed(),
        ledgers.iter().sum::<usize>(),
        500 - failures.len() - ledgers.iter().sum::<usize>()
    );
    assert!(
        failures.is_empty(),
        "{} of 500 mutations failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
