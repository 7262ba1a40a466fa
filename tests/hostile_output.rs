//! Hostile and faulty input (issue 12): what a run may write, replace and leave behind.
//!
//! Items 1 (`--force` never destroys input), 2 (scratch folders that cannot be planted), 8
//! (signals and leftovers of dead runs) and 11 (full disk, read-only parent). The disk tests
//! mount a small tmpfs and so need root; run as another user they say so and pass.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const MONTHS: &str = "2026-01";
const AS_OF: &str = "2026-04-30";
const GENERATED_MONTHS: &str = "2026-01..2026-03";
/// Call rows of a generated data set whose call keys spill under `--memory-budget-mib 1`
/// (about 6 MB of keys) and whose run takes a few seconds.
const GENERATED_CALLS: u64 = 150_000;

/// The small `sla-rules` golden data set.
fn golden_data(dir: &TempDir) -> PathBuf {
    let data = dir.join("data");
    materialise_golden(&repo_root().join("tests/golden/sla-rules"), &data);
    data
}

fn generated_data(dir: &TempDir) -> PathBuf {
    let data = dir.join("data");
    generate(&data, 30, GENERATED_CALLS, 5, &[]);
    data
}

/// Every file and symlink below `dir` with its bytes (a link: its target), to prove a folder
/// was left byte-for-byte as it was.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let shown = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                into.insert(shown, target.to_string_lossy().as_bytes().to_vec());
            } else if meta.is_dir() {
                into.insert(shown, b"<dir>".to_vec());
                walk(root, &path, into);
            } else {
                into.insert(shown, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn assert_stderr_has(output: &std::process::Output, needles: &[&str]) {
    let stderr = text(&output.stderr);
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks `{needle}`:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The scratch folders (any kind) in `dir`.
fn scratch_folders(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.starts_with(".sla-ledger-"))
        .collect()
}

fn spawn_run(data: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(run_args(data, out, GENERATED_MONTHS, AS_OF, extra))
        .current_dir(repo_root())
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Waits until a spill folder in `dir` holds spilled keys, failing if `child` ends first or it
/// takes too long.
fn wait_for_spill_folder(child: &mut Child, dir: &Path) -> PathBuf {
    let started = Instant::now();
    loop {
        if let Some(name) = scratch_folders(dir).into_iter().find(|n| {
            n.starts_with(".sla-ledger-spill-")
                && !n.ends_with(".new")
                && !entries(&dir.join(n)).is_empty()
        }) {
            return dir.join(name);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before its spill folder appeared");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no spill folder in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs of `size` (as `mount -o size=` takes it) at `path`, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `None` (after saying why) when the test does not run as root; as root, a failing mount
    /// fails the test.
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            println!("this test needs root to mount a tmpfs; skipped");
            return None;
        }
        fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(path)
            .status()
            .expect("`mount` runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {}",
            path.display()
        );
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.path)
            .status()
            .expect("`mount` runs");
        assert!(status.success(), "cannot remount {}", self.path.display());
    }

    /// Fills the file system: writes `name` until the disk is full.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut file = fs::File::create(self.path.join(name)).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        file.sync_all().ok();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status()
            .ok();
    }
}

// ---- item 1: `--force` never destroys input -------------------------------------------------

#[test]
fn issue12_item1_force_never_replaces_the_data_folder_its_parent_or_a_folder_inside_it() {
    let dir = TempDir::new("out-is-data");
    let data = golden_data(&dir);
    fs::create_dir_all(dir.join("links")).unwrap();
    std::os::unix::fs::symlink(&data, dir.join("links/data")).unwrap();
    let before = snapshot(&dir.path);
    let cases: [(PathBuf, &str); 5] = [
        (data.clone(), "is the same folder as"),
        (dir.path.clone(), "contains"),
        (data.join("calls/out"), "lies inside"),
        // Through a symlinked parent and a `..` that names the data folder again.
        (dir.join("links/data/out"), "lies inside"),
        (
            dir.join("calls-never-made/../data"),
            "is the same folder as",
        ),
    ];
    for (out, relation) in &cases {
        let output = run_ledger(&data, out, MONTHS, AS_OF, &["--force"]);
        assert_exit(&output, 2);
        assert_stderr_has(&output, &[relation, "--data", "hint:"]);
        assert_eq!(
            snapshot(&dir.path),
            before,
            "--out {} changed the folders",
            out.display()
        );
    }
    // `validate` refuses the same flags.
    let output = sla_ledger(
        &repo_root(),
        &[
            "validate",
            "--data",
            data.to_str().unwrap(),
            "--out",
            data.to_str().unwrap(),
        ],
    );
    assert_exit(&output, 2);
    assert_stderr_has(&output, &["is the same folder as"]);
}

#[test]
fn issue12_item1_diff_never_replaces_its_prior_or_current_ledger() {
    let dir = TempDir::new("diff-out-is-input");
    let data = golden_data(&dir);
    for name in ["prior", "current"] {
        assert_success(&run_ledger(&data, &dir.join(name), MONTHS, AS_OF, &[]));
    }
    let before = snapshot(&dir.path);
    let (prior, current) = (dir.join("prior"), dir.join("current"));
    for out in [&prior, &current, &dir.path] {
        let output = sla_ledger(
            &repo_root(),
            &[
                "diff",
                "--prior",
                prior.to_str().unwrap(),
                "--current",
                current.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--force",
            ],
        );
        assert_exit(&output, 2);
        assert_stderr_has(&output, &["--out", "hint:"]);
        assert_eq!(snapshot(&dir.path), before, "--out {}", out.display());
    }
}

#[test]
fn issue12_item1_no_force_undoes_a_job_files_force() {
    let dir = TempDir::new("no-force");
    let data = golden_data(&dir);
    let out = dir.join("out");
    let job = dir.join("job.toml");
    fs::write(
        &job,
        format!("data = \"data\"\nout = \"out\"\nmonths = \"{MONTHS}\"\nas_of = \"{AS_OF}\"\nforce = true\n"),
    )
    .unwrap();
    assert_success(&run_ledger(&data, &out, MONTHS, AS_OF, &[]));
    let before = snapshot(&out);
    let job_arg = job.to_str().unwrap();
    let output = sla_ledger(&repo_root(), &["run", "--job", job_arg, "--no-force"]);
    assert_exit(&output, 1);
    assert_stderr_has(&output, &["is not empty", "hint:"]);
    assert_eq!(snapshot(&out), before);
    // The job file alone still replaces the earlier output, and the two flags conflict.
    assert_success(&sla_ledger(&repo_root(), &["run", "--job", job_arg]));
    let output = sla_ledger(
        &repo_root(),
        &["run", "--job", job_arg, "--force", "--no-force"],
    );
    assert_exit(&output, 2);
}

#[test]
fn issue12_item1_force_replaces_only_an_earlier_output_of_this_program() {
    let dir = TempDir::new("force-foreign");
    let data = golden_data(&dir);
    let out = dir.join("out");
    fs::create_dir_all(out.join("reports")).unwrap();
    fs::write(out.join("reports/q1.xlsx"), "finance's own work").unwrap();
    for manifest in [
        None,
        Some(r#"{"program":{"name":"other-tool"}}"#),
        Some("{not json"),
    ] {
        if let Some(text) = manifest {
            fs::write(out.join("manifest.json"), text).unwrap();
        }
        let before = snapshot(&out);
        let output = run_ledger(&data, &out, MONTHS, AS_OF, &["--force"]);
        assert_exit(&output, 1);
        assert_stderr_has(
            &output,
            &["holds no `manifest.json` written by sla-ledger", "hint:"],
        );
        assert_eq!(snapshot(&out), before);
        assert_eq!(entries(&dir.path), ["data", "out"]);
    }
    // An empty folder, and an earlier output, are replaced.
    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    assert_success(&run_ledger(&data, &empty, MONTHS, AS_OF, &["--force"]));
    assert_success(&run_ledger(&data, &empty, MONTHS, AS_OF, &["--force"]));
    assert!(empty.join("manifest.json").is_file());
}

#[test]
fn issue12_item1_an_out_that_is_a_file_is_refused_before_any_work() {
    let dir = TempDir::new("out-is-file");
    let data = golden_data(&dir);
    let file = dir.join("ledger");
    fs::write(&file, "not a folder").unwrap();
    std::os::unix::fs::symlink(&file, dir.join("link")).unwrap();
    for (out, needle) in [
        (&file, "a regular file"),
        (&dir.join("link"), "symbolic link"),
    ] {
        for extra in [&[][..], &["--force"][..]] {
            let output = run_ledger(&data, out, MONTHS, AS_OF, extra);
            assert_exit(&output, 1);
            assert_stderr_has(&output, &[needle, "hint:"]);
            assert_eq!(fs::read(&file).unwrap(), b"not a folder");
            assert_eq!(entries(&dir.path), ["data", "ledger", "link"]);
        }
    }
}

// ---- item 2: scratch folders that cannot be planted -----------------------------------------

#[test]
fn issue12_item2_a_planted_spill_folder_at_the_old_names_changes_nothing() {
    let dir = TempDir::new("planted-spill");
    let data = generated_data(&dir);
    let clean = dir.join("clean/out");
    fs::create_dir_all(clean.parent().unwrap()).unwrap();
    let budget = ["--memory-budget-mib", "1"];
    let clean_run = run_ledger(&data, &clean, GENERATED_MONTHS, AS_OF, &budget);
    assert_success(&clean_run);

    // The old spill folder was `.NAME.spill-PID` beside `--out`: plant it, as a symlink to a
    // folder of `bucket-*.keys -> /dev/null`, for the process ids the run will likely get.
    let trap = dir.join("trap");
    fs::create_dir(&trap).unwrap();
    for bucket in 0..1024 {
        std::os::unix::fs::symlink("/dev/null", trap.join(format!("bucket-{bucket}.keys")))
            .unwrap();
    }
    let parent = dir.join("planted");
    fs::create_dir(&parent).unwrap();
    let last_pid: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(std::process::id());
    for pid in last_pid + 1..last_pid + 2000 {
        std::os::unix::fs::symlink(&trap, parent.join(format!(".out.spill-{pid}"))).unwrap();
        fs::create_dir(parent.join(format!(".out.tmp-{pid}"))).unwrap();
    }
    let trap_before = snapshot(&trap);
    let out = parent.join("out");
    let output = run_ledger(&data, &out, GENERATED_MONTHS, AS_OF, &budget);
    assert_success(&output);
    assert_same_file(&clean.join("ledger.csv"), &out.join("ledger.csv"));
    assert_eq!(snapshot(&trap), trap_before, "the trap was written through");
    assert!(
        scratch_folders(&parent).is_empty(),
        "{:?}",
        scratch_folders(&parent)
    );
}

// ---- item 8: signals, and leftovers of dead runs ---------------------------------------------

#[test]
fn issue12_item8_sigint_sigterm_sighup_remove_the_scratch_folders_and_keep_the_old_output() {
    let dir = TempDir::new("signals");
    let data = generated_data(&dir);
    let parent = dir.join("outputs");
    let out = parent.join("out");
    assert_success(&run_ledger(&data, &out, GENERATED_MONTHS, AS_OF, &[]));
    let previous = snapshot(&out);
    for (signal, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGHUP, 129),
    ] {
        let mut child = spawn_run(&data, &out, &["--force", "--memory-budget-mib", "1"]);
        let spill = wait_for_spill_folder(&mut child, &parent);
        let mode = fs::metadata(&spill).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", spill.display());
        // SAFETY: `kill` with a live child's id and a valid signal number.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let output = child.wait_with_output().unwrap();
        assert_exit(&output, code);
        assert_stderr_has(&output, &["interrupted"]);
        assert!(
            scratch_folders(&parent).is_empty(),
            "signal {signal} left {:?}",
            scratch_folders(&parent)
        );
        assert_eq!(entries(&parent), ["out"]);
        assert_eq!(snapshot(&out), previous, "signal {signal}");
    }
}

#[test]
fn issue12_item8_the_next_run_removes_a_dead_runs_leftovers_but_not_a_live_runs() {
    let dir = TempDir::new("leftovers");
    let data = generated_data(&dir);
    let parent = dir.join("nightly");
    fs::create_dir(&parent).unwrap();
    // A live one: this process holds its lock.
    let live =
        sla_ledger::scratch::ScratchDir::beside(&parent.join("2026-04-30"), "spill").unwrap();
    // A run killed outright (no handler runs) leaves its spill folder behind.
    let mut child = spawn_run(
        &data,
        &parent.join("2026-04-29"),
        &["--memory-budget-mib", "1"],
    );
    let dead = wait_for_spill_folder(&mut child, &parent);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dead.is_dir(), "SIGKILL left nothing to clean up");

    let small_dir = TempDir::new("leftovers-small");
    let small = golden_data(&small_dir);
    let output = run_ledger(&small, &parent.join("2026-05-01"), MONTHS, AS_OF, &[]);
    assert_success(&output);
    assert_stderr_has(
        &output,
        &[
            "removed a scratch folder left by an sla-ledger run that is no longer running",
            dead.file_name().unwrap().to_str().unwrap(),
        ],
    );
    assert!(!dead.exists());
    assert!(live.path().is_dir(), "a live run's folder was removed");
    let live_name = live
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    drop(live);
    assert!(!entries(&parent).contains(&live_name));
}

// ---- item 11: full disk and read-only parent -------------------------------------------------

#[test]
fn issue12_item11_a_full_disk_while_spilling_fails_cleanly() {
    let dir = TempDir::new("full-spill");
    let data = generated_data(&dir);
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "3m") else {
        return;
    };
    let out = disk.path.join("out");
    assert_success(&run_ledger(&data, &out, GENERATED_MONTHS, AS_OF, &[]));
    let previous = snapshot(&out);
    // Spill files are buffered and flushed one bucket at a time, so they need little room at
    // once: fill the disk, so that the first bucket flushed finds none.
    disk.fill("filler");
    let output = run_ledger(
        &data,
        &out,
        GENERATED_MONTHS,
        AS_OF,
        &["--force", "--memory-budget-mib", "1"],
    );
    assert_exit(&output, 1);
    assert_stderr_has(
        &output,
        &[
            "No space left on device",
            "spill",
            disk.path.to_str().unwrap(),
            "\n  hint: the spill folder (beside `--out`) needs free space",
        ],
    );
    assert_eq!(snapshot(&out), previous);
    assert_eq!(entries(&disk.path), ["filler", "out"]);
}

#[test]
fn issue12_item11_a_full_disk_while_writing_the_output_fails_cleanly() {
    let dir = TempDir::new("full-write");
    let data = golden_data(&dir);
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "1m") else {
        return;
    };
    let out = disk.path.join("out");
    assert_success(&run_ledger(&data, &out, MONTHS, AS_OF, &[]));
    let previous = snapshot(&out);
    disk.fill("filler");
    let output = run_ledger(&data, &out, MONTHS, AS_OF, &["--force"]);
    assert_exit(&output, 1);
    assert_stderr_has(
        &output,
        &[
            "No space left on device",
            "cannot write",
            disk.path.to_str().unwrap(),
        ],
    );
    assert_eq!(snapshot(&out), previous);
    assert_eq!(entries(&disk.path), ["filler", "out"]);
}

#[test]
fn issue12_item11_a_read_only_parent_fails_cleanly() {
    let dir = TempDir::new("read-only");
    let data = golden_data(&dir);
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "1m") else {
        return;
    };
    let out = disk.path.join("out");
    assert_success(&run_ledger(&data, &out, MONTHS, AS_OF, &[]));
    let previous = snapshot(&out);
    disk.remount("ro");
    let output = run_ledger(&data, &out, MONTHS, AS_OF, &["--force"]);
    assert_exit(&output, 1);
    assert_stderr_has(
        &output,
        &["Read-only file system", disk.path.to_str().unwrap()],
    );
    assert_eq!(snapshot(&out), previous);
    assert_eq!(entries(&disk.path), ["out"]);
}
