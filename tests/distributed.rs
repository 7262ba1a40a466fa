//! The Ballista engine (`--engine ballista`, the `distributed` feature): the same bytes as the
//! polars engine, standalone and on a real multi-process cluster on loopback.

use crate::support::*;

#[test]
fn a_scheduler_without_ballista_or_a_bad_address_is_a_usage_error() {
    let out = TempDir::new("engine-usage");
    let output = run_job(
        "jobs/month-end.toml",
        &out.join("out"),
        &["--scheduler", "df://localhost:50050"],
    );
    assert_exit(&output, 2);
    assert!(text(&output.stderr).contains("--scheduler is for `--engine ballista`"));
    if cfg!(feature = "distributed") {
        let output = run_job(
            "jobs/month-end.toml",
            &out.join("out"),
            &["--engine", "ballista", "--scheduler", "localhost"],
        );
        assert_exit(&output, 2);
        assert!(text(&output.stderr).contains("is not df://HOST:PORT"));
    } else {
        // A build without the feature names the feature instead of failing later.
        for args in [
            vec![
                "run",
                "--job",
                "jobs/month-end.toml",
                "--engine",
                "ballista",
            ],
            vec!["cluster", "scheduler"],
        ] {
            let output = sla_ledger(&repo_root(), &args);
            assert_exit(&output, 2);
            assert!(text(&output.stderr).contains("--features distributed"));
        }
    }
    assert!(!out.join("out").exists());
}

/// What needs a build with the Ballista engine.
#[cfg(feature = "distributed")]
pub(crate) mod ballista {
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output};
    use std::time::{Duration, Instant};

    use crate::support::*;

    /// The outputs both engines must write byte for byte.
    const SAME_BYTES: [&str; 4] = [
        "ledger.csv",
        "ledger.parquet",
        "exemptions.csv",
        "quarantine.csv",
    ];

    fn assert_same_outputs(polars: &Path, ballista: &Path) {
        for name in SAME_BYTES {
            let (a, b) = (polars.join(name), ballista.join(name));
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{name} differs between the engines:\n{}",
                line_diff(
                    &String::from_utf8_lossy(&std::fs::read(&a).unwrap()),
                    &String::from_utf8_lossy(&std::fs::read(&b).unwrap())
                )
            );
        }
    }

    #[test]
    fn every_conformance_case_reproduces_its_expected_ledger_on_ballista() {
        let Some(cases) = conformance_cases() else {
            eprintln!("conformance folder `../shared/conformance` is absent: no case was run");
            return;
        };
        for case in cases {
            let out = TempDir::new("conformance-ballista");
            let args = std::fs::read_to_string(case.join("args")).unwrap();
            let run = |dir: &Path, engine: &[&str]| {
                let mut argv = vec!["run", "--data", "data", "--out", dir.to_str().unwrap()];
                argv.extend(args.split_whitespace());
                argv.extend_from_slice(engine);
                assert_success(&sla_ledger(&case, &argv));
            };
            run(&out.join("ballista"), &["--engine", "ballista"]);
            assert_same_file(
                &case.join("expected/ledger.csv"),
                &out.join("ballista/ledger.csv"),
            );
            assert_same_file(
                &case.join("expected/exemptions.csv"),
                &out.join("ballista/exemptions.csv"),
            );
            run(&out.join("polars"), &[]);
            assert_same_outputs(&out.join("polars"), &out.join("ballista"));
        }
    }

    #[test]
    fn both_engines_write_the_same_bytes_on_the_sample_data() {
        // The sample data has every row defect, conflicting duplicates, windows (announced and
        // not), notices (in time and late), bursts and error codes.
        let out = TempDir::new("engines-sample");
        for (dir, extra) in [
            ("polars", vec![]),
            ("ballista", vec!["--engine", "ballista", "--threads", "2"]),
        ] {
            let output = run_job("jobs/month-end.toml", &out.join(dir), &extra);
            assert_success(&output);
        }
        assert_same_outputs(&out.join("polars"), &out.join("ballista"));
        // The in-process cluster's shuffle files went to a scratch folder that is gone.
        assert_eq!(entries(&out.path), ["ballista", "polars"]);
        let quarantine = std::fs::read_to_string(out.join("ballista/quarantine.csv")).unwrap();
        for reason in ["conflicting_duplicate", "null_request_id", "unknown_status"] {
            assert!(
                quarantine.contains(reason),
                "the sample data lacks {reason}"
            );
        }
    }

    #[test]
    fn spec_2_and_sla_5_7_repeated_ids_and_bursts_count_alike_on_both_engines() {
        // Scenarios whose small id pool makes most request ids repeated (exact copies, and
        // copies that differ and go through SPEC §2's tie-break), whose hot seconds hold
        // bursts (SLA 5.7) with repeated ids in them, and whose defects and windows vary.
        for seed in 0..6 {
            let s = crate::support::scenario::Scenario::random(seed);
            let dir = TempDir::new("engines-scenario");
            let data = dir.join("data");
            s.write(&data);
            for (engine, extra) in [
                ("polars", vec![]),
                ("ballista", vec!["--engine", "ballista", "--threads", "2"]),
            ] {
                let output = run_ledger(&data, &dir.join(engine), &s.months, &s.as_of, &extra);
                assert_success(&output);
            }
            assert_same_outputs(&dir.join("polars"), &dir.join("ballista"));
        }
    }

    /// A free loopback port (bound, then released for a child process to take).
    pub(crate) fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// One `sla-ledger cluster ...` process, stopped when dropped.
    struct Member {
        name: String,
        child: Child,
    }

    impl Member {
        fn start(name: &str, args: &[String], log: &Path, env: &[(String, String)]) -> Member {
            let log = std::fs::File::create(log).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
                .arg("cluster")
                .args(args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("the binary starts");
            Member {
                name: name.to_string(),
                child,
            }
        }

        /// Sends `signal` and waits for the process to end.
        fn stop(&mut self, signal: i32) {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(self.child.id() as i32, signal) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if self.child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.child.kill().ok();
            self.child.wait().ok();
            panic!("{} did not stop within 20 s of signal {signal}", self.name);
        }

        fn running(&mut self) -> bool {
            self.child.try_wait().unwrap().is_none()
        }
    }

    impl Drop for Member {
        fn drop(&mut self) {
            if self.running() {
                self.child.kill().ok();
                self.child.wait().ok();
            }
        }
    }

    /// Waits until something listens on `port`, or panics after `limit`.
    pub(crate) fn wait_for_port(port: u16, limit: Duration, what: &str) {
        let deadline = Instant::now() + limit;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "{what} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A scheduler and two executors, each its own process, on loopback.
    pub(crate) struct LoopbackCluster {
        pub(crate) scheduler_url: String,
        executor_work_dirs: Vec<PathBuf>,
        executors: Vec<Member>,
        scheduler: Member,
    }

    impl LoopbackCluster {
        fn start(dir: &Path) -> LoopbackCluster {
            LoopbackCluster::start_with_env(dir, &[])
        }

        /// A cluster whose members have `env` in their environment (an object store's keys).
        pub(crate) fn start_with_env(dir: &Path, env: &[(String, String)]) -> LoopbackCluster {
            let scheduler_port = free_port();
            let scheduler = Member::start(
                "scheduler",
                &[
                    "scheduler".into(),
                    "--bind".into(),
                    format!("127.0.0.1:{scheduler_port}"),
                    "--executor-timeout-secs".into(),
                    "8".into(),
                ],
                &dir.join("scheduler.log"),
                env,
            );
            wait_for_port(scheduler_port, Duration::from_secs(60), "the scheduler");
            let mut executors = Vec::new();
            let mut executor_work_dirs = Vec::new();
            for i in 0..2 {
                let (port, grpc_port) = (free_port(), free_port());
                let work_dir = dir.join(format!("executor-{i}"));
                executors.push(Member::start(
                    &format!("executor {i}"),
                    &[
                        "executor".into(),
                        "--scheduler".into(),
                        format!("df://127.0.0.1:{scheduler_port}"),
                        "--bind".into(),
                        format!("127.0.0.1:{port}"),
                        "--grpc-port".into(),
                        grpc_port.to_string(),
                        "--concurrent-tasks".into(),
                        "2".into(),
                        "--heartbeat-secs".into(),
                        "2".into(),
                        "--work-dir".into(),
                        work_dir.display().to_string(),
                    ],
                    &dir.join(format!("executor-{i}.log")),
                    env,
                ));
                wait_for_port(port, Duration::from_secs(60), "an executor");
                wait_for_port(grpc_port, Duration::from_secs(60), "an executor");
                executor_work_dirs.push(work_dir);
            }
            // Registration follows the listeners by one heartbeat.
            std::thread::sleep(Duration::from_secs(3));
            LoopbackCluster {
                scheduler_url: format!("df://127.0.0.1:{scheduler_port}"),
                executor_work_dirs,
                executors,
                scheduler,
            }
        }

        pub(crate) fn shut_down(mut self) {
            for executor in &mut self.executors {
                if executor.running() {
                    executor.stop(libc::SIGTERM);
                }
            }
            self.scheduler.stop(libc::SIGTERM);
        }
    }

    /// A generated data set of a few million call rows (built once per test run).
    fn generated_data(dir: &Path) -> PathBuf {
        let data = dir.join("data");
        generate(&data, 200, 2_000_000, 11, &["--months", "2026-01..2026-02"]);
        data
    }

    fn run_generated(data: &Path, out: &Path, extra: &[&str]) -> Output {
        run_ledger(data, out, "2026-01..2026-02", "2026-04-30", extra)
    }

    /// Starts a run whose stdout and stderr go to `log` (a pipe nobody reads could block it).
    fn run_generated_in_background(data: &Path, out: &Path, log: &Path, extra: &[&str]) -> Child {
        let args = run_args(data, out, "2026-01..2026-02", "2026-04-30", extra);
        let log = std::fs::File::create(log).unwrap();
        Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
            .args(&args)
            .current_dir(repo_root())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// The last lines of a log file, for failure messages.
    fn tail(path: &Path) -> String {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn has_files(dir: &Path) -> bool {
        walk(dir).next().is_some()
    }

    fn walk(dir: &Path) -> impl Iterator<Item = PathBuf> {
        let mut stack = vec![dir.to_path_buf()];
        let mut files = Vec::new();
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.into_iter()
    }

    #[test]
    fn a_multi_process_cluster_gives_the_polars_ledger_and_survives_or_reports_a_lost_executor() {
        let dir = TempDir::new("cluster");
        let data = generated_data(&dir.path);
        let polars = dir.join("polars");
        assert_success(&run_generated(&data, &polars, &[]));

        // One scheduler and two executors, each a separate process.
        let cluster = LoopbackCluster::start(&dir.path);
        let remote = dir.join("remote");
        let output = run_generated(
            &data,
            &remote,
            &[
                "--engine",
                "ballista",
                "--scheduler",
                &cluster.scheduler_url,
            ],
        );
        assert_success(&output);
        assert_same_outputs(&polars, &remote);
        for work_dir in &cluster.executor_work_dirs {
            assert!(has_files(work_dir), "an executor did no work: {work_dir:?}");
        }

        // Kill one executor once the job has written shuffle files: Ballista reruns its tasks on
        // the other executor, or the run fails loudly and writes nothing.
        let mut cluster = cluster;
        for work_dir in &cluster.executor_work_dirs {
            std::fs::remove_dir_all(work_dir).ok();
            std::fs::create_dir_all(work_dir).unwrap();
        }
        let killed = dir.join("killed");
        let run_log = dir.join("killed-run.log");
        let mut run = run_generated_in_background(
            &data,
            &killed,
            &run_log,
            &[
                "--engine",
                "ballista",
                "--scheduler",
                &cluster.scheduler_url,
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(300);
        while !has_files(&cluster.executor_work_dirs[0]) {
            assert!(Instant::now() < deadline, "executor 0 never got a task");
            assert!(
                run.try_wait().unwrap().is_none(),
                "the run ended before the kill"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster.executors[0].stop(libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = run.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                run.kill().ok();
                panic!(
                    "the run hung after an executor was killed\n--- run\n{}\n--- scheduler\n{}",
                    tail(&run_log),
                    tail(&dir.join("scheduler.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = std::fs::read_to_string(&run_log).unwrap();
        if status.success() {
            eprintln!("the run completed after executor 0 was killed");
            assert_same_outputs(&polars, &killed);
        } else {
            eprintln!("the run failed after executor 0 was killed:\n{stderr}");
            assert_eq!(status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("Ballista"), "{stderr}");
            assert!(!killed.exists(), "a failed run left {killed:?}");
            let siblings: Vec<String> = entries(&dir.path)
                .into_iter()
                .filter(|name| name.contains("killed") && !name.ends_with(".log"))
                .collect();
            assert!(siblings.is_empty(), "a failed run left {siblings:?}");
        }
        cluster.shut_down();
    }
}
