//! The operator's side of the command line: help with examples, quiet/verbose/JSON logs on
//! stderr (stdout's summary untouched), shell completions and the man page.

use crate::support::*;

fn run_month_end(dir: &TempDir, name: &str, extra: &[&str]) -> std::process::Output {
    let out = dir.join(name);
    let mut args = vec![
        "run",
        "--job",
        "jobs/month-end.toml",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let output = sla_ledger(&repo_root(), &args);
    assert_success(&output);
    output
}

/// The summary without its last line, which names the output folder.
fn summary_body(output: &std::process::Output) -> String {
    let stdout = text(&output.stdout);
    stdout
        .lines()
        .filter(|l| !l.trim_start().starts_with("written:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn log_modes_change_stderr_only() {
    let dir = TempDir::new("logs");
    let plain = run_month_end(&dir, "plain", &[]);
    let quiet = run_month_end(&dir, "quiet", &["--quiet"]);
    let verbose = run_month_end(&dir, "verbose", &["--verbose"]);
    let json = run_month_end(&dir, "json", &["--log-format", "json", "-v"]);
    for output in [&quiet, &verbose, &json] {
        assert_eq!(summary_body(output), summary_body(&plain));
    }

    // Not a terminal: one plain line per stage, no spinner control characters.
    let stderr = text(&plain.stderr);
    for stage in ["inputs", "service_months", "calls", "price", "write"] {
        assert!(
            stderr.contains(&format!("stage=\"{stage}\"")),
            "no line for stage {stage}\n{stderr}"
        );
    }
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    assert!(
        !stderr.contains("elapsed_ms"),
        "timings only with --verbose"
    );

    assert_eq!(text(&quiet.stderr), "", "--quiet prints nothing on success");

    let stderr = text(&verbose.stderr);
    assert_eq!(
        stderr.matches("DEBUG done stage=").count(),
        5,
        "one timing per stage\n{stderr}"
    );
    for phase in [
        "read",
        "deduplicate",
        "resolve conflicts",
        "attribute exemptions",
    ] {
        assert!(
            stderr.contains(&format!("phase=\"{phase}\" elapsed_ms=")),
            "heavy-step phase {phase}\n{stderr}"
        );
    }
    assert!(stderr.contains("counted=60102"), "{stderr}");

    let stderr = text(&json.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let done: Vec<&serde_json::Value> = events.iter().filter(|e| e["message"] == "done").collect();
    assert_eq!(done.len(), 5, "{stderr}");
    assert!(done
        .iter()
        .all(|e| e["stage"].is_string() && e["counts"].is_string()));
}

#[test]
fn a_failure_in_json_mode_is_one_json_error_line() {
    let output = sla_ledger(
        &repo_root(),
        &[
            "run",
            "--log-format",
            "json",
            "--data",
            "no-such-folder",
            "--out",
            "never-written",
            "--as-of",
            "2026-04-30",
        ],
    );
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["error"].as_str().unwrap().contains("calls/"),
        "{stderr}"
    );
    assert!(!repo_root().join("never-written").exists());
}

#[test]
fn help_gives_an_example_for_the_program_and_every_subcommand() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["validate", "--help"],
        vec!["generate", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
    ] {
        let output = sla_ledger(&repo_root(), &args);
        assert_success(&output);
        let help = text(&output.stdout);
        assert!(
            help.contains("Example") && help.contains("sla-ledger "),
            "{args:?} help has no example\n{help}"
        );
    }
}

#[test]
fn completions_are_generated_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = sla_ledger(&repo_root(), &["completions", shell]);
        assert_success(&output);
        let script = text(&output.stdout);
        for word in ["sla-ledger", "validate", "as-of", "log-format"] {
            assert!(script.contains(word), "{shell} completions lack `{word}`");
        }
    }
    let bad = sla_ledger(&repo_root(), &["completions", "tcsh"]);
    assert_exit(&bad, 2);
}

#[test]
fn bash_loads_the_completion_script_and_completes_subcommands() {
    if !std::path::Path::new("/bin/bash").is_file() {
        eprintln!("skipped: no bash to load the completion script into");
        return;
    }
    let dir = TempDir::new("completions");
    let script = dir.join("sla-ledger.bash");
    let output = sla_ledger(&repo_root(), &["completions", "bash"]);
    assert_success(&output);
    std::fs::write(&script, &output.stdout).unwrap();
    // Ask the loaded completion function what follows `sla-ledger va`.
    let probe = format!(
        "source '{}' && COMP_WORDS=(sla-ledger va) && COMP_CWORD=1 && COMP_LINE='sla-ledger va' \
         && COMP_POINT=${{#COMP_LINE}} \
         && f=$(complete -p sla-ledger | sed -E 's/.*-F ([^ ]+).*/\\1/') \
         && \"$f\" sla-ledger va sla-ledger && echo \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let bash = std::process::Command::new("/bin/bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap();
    assert!(
        text(&bash.stdout)
            .split_whitespace()
            .any(|w| w == "validate"),
        "bash did not complete `va` to `validate`\n--- stdout\n{}\n--- stderr\n{}",
        text(&bash.stdout),
        text(&bash.stderr)
    );
}

#[test]
fn the_man_page_documents_every_subcommand() {
    let output = sla_ledger(&repo_root(), &["man"]);
    assert_success(&output);
    let page = text(&output.stdout);
    assert!(page.contains(".TH sla-ledger 1"), "{page}");
    for section in [
        "SLA-LEDGER RUN",
        "SLA-LEDGER VALIDATE",
        "SLA-LEDGER GENERATE",
    ] {
        assert!(page.contains(section), "man page lacks `{section}`");
    }
    // Flags of `run` are documented with their help text.
    assert!(page.contains("\\-\\-as\\-of"), "{page}");
}

/// Runs `args` with stdout a pipe whose reader is already gone, as `... | head` leaves it.
fn with_stdout_closed(args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(args)
        .current_dir(repo_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly_and_never_hides_a_failure() {
    let dir = TempDir::new("closed-pipe");
    let out = dir.join("out");
    // The reader is gone before the first write, so every write to stdout fails.
    for args in [
        vec!["completions", "bash"],
        vec!["man"],
        vec![
            "run",
            "--job",
            "jobs/month-end.toml",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let output = with_stdout_closed(&args);
        assert_success(&output);
        let stderr = text(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("error:"), "{args:?}: {stderr}");
    }
    assert!(
        out.join("manifest.json").is_file(),
        "the run's output was written"
    );
    // validate's problems decide its status even when nobody reads its report.
    let broken = dir.join("broken");
    copy_dir(&repo_root().join("sample_data"), &broken);
    std::fs::write(broken.join("subscriptions.csv"), "customer_id,start\n1,x\n").unwrap();
    let output = with_stdout_closed(&[
        "validate",
        "--data",
        broken.to_str().unwrap(),
        "--months",
        "2026-01..2026-03",
        "--as-of",
        "2026-04-30",
    ]);
    assert_exit(&output, 1);
    assert!(text(&output.stderr).contains("problem(s)"));
}

#[test]
fn hints_are_printed_once_after_the_error_and_its_causes() {
    let dir = TempDir::new("hint-order");
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let output = sla_ledger(
        &repo_root(),
        &[
            "run",
            "--job",
            "jobs/month-end.toml",
            "--out",
            out.to_str().unwrap(),
            "--force",
        ],
    );
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let error = lines.iter().position(|l| l.starts_with("error: ")).unwrap();
    let hints: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("  hint: "))
        .collect();
    assert_eq!(hints.len(), 1, "{stderr}");
    assert!(hints[0] > error, "{stderr}");
    assert!(
        !lines[error].contains("hint:"),
        "the hint is not part of the message: {stderr}"
    );
}

#[test]
fn help_points_at_sections_of_the_reference_that_exist_and_never_at_the_spec() {
    let reference = std::fs::read_to_string(repo_root().join("docs/reference.md")).unwrap();
    let mut cited = 0;
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["validate", "--help"],
        vec!["explain", "--help"],
        vec!["generate", "--help"],
        vec!["diff", "--help"],
        vec!["post", "--help"],
        vec!["journal", "export", "--help"],
    ] {
        let output = sla_ledger(&repo_root(), &args);
        assert_success(&output);
        let help = text(&output.stdout);
        assert!(
            !help.contains("SPEC"),
            "{args:?} help cites the SPEC\n{help}"
        );
        for (at, _) in help.match_indices("docs/reference.md") {
            let after = &help[at..];
            for section in after
                .split(')')
                .next()
                .unwrap()
                .split('§')
                .skip(1)
                .map(|s| {
                    s.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
            {
                cited += 1;
                assert!(
                    reference.contains(&format!("\n## §{section} ")),
                    "{args:?} help cites §{section}, which docs/reference.md lacks"
                );
            }
        }
    }
    assert!(cited >= 4, "the help cites the reference's sections");
}

/// Runs `args` with stderr a terminal (a pseudo-terminal's far side), stdout a pipe; gives
/// what the terminal showed and the exit status.
fn with_stderr_a_terminal(args: &[&str]) -> (String, std::process::ExitStatus) {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers given; the rest may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened for this test and are owned here alone.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(args)
        .current_dir(repo_root())
        .stdout(std::process::Stdio::null())
        .stderr(slave)
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut shown = Vec::new();
        let mut buffer = [0u8; 4096];
        // Ends with EIO once the child, the last holder of the far side, has exited.
        while let Ok(n) = master.read(&mut buffer) {
            if n == 0 {
                break;
            }
            shown.extend_from_slice(&buffer[..n]);
        }
        shown
    });
    let status = child.wait().unwrap();
    (
        String::from_utf8_lossy(&reader.join().unwrap()).into_owned(),
        status,
    )
}

#[test]
fn on_a_terminal_the_read_shows_a_bar_over_the_call_files_bytes_and_quiet_shows_nothing() {
    let dir = TempDir::new("progress");
    let data = dir.join("data");
    generate(&data, 40, 600_000, 5, &[]);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec![
            "run",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--months",
            "2026-01..2026-03",
            "--as-of",
            "2026-04-30",
        ];
        args.extend(extra);
        let (shown, status) = with_stderr_a_terminal(&args);
        assert!(status.success(), "{shown}");
        shown
    };
    let shown = run("bar", &[]);
    let files: usize = std::fs::read_dir(data.join("calls"))
        .unwrap()
        .map(|month| std::fs::read_dir(month.unwrap().path()).unwrap().count())
        .sum();
    // A frame of the bar: files done of all, rows, bytes of the total, rate, time left.
    let frame = shown
        .split(['\r', '\n'])
        .find(|line| line.contains(&format!("/{files} files, ")) && line.contains(" left"));
    assert!(frame.is_some(), "no progress bar:\n{shown:?}");
    let frame = frame.unwrap();
    assert!(frame.contains(" rows [") && frame.contains("B/"), "{frame}");
    assert!(frame.contains("/s, "), "{frame}");
    // Once read, a line of its own says what was read: every file.
    assert!(
        shown.contains(&format!("calls: read {files}/{files} files, ")),
        "{shown:?}"
    );
    assert!(run("quiet", &["--quiet"]).trim().is_empty());
}
