//! Call logs in an object store (`--data s3://bucket/prefix`), against a real S3 server: the
//! `s3s-fs` binary (crates.io), started on a loopback port with SigV4 keys and stopped after
//! each test. Inputs are uploaded to it with PUT requests, as a provider's exporter would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::support::*;

const ACCESS_KEY: &str = "AKIDLOOPBACKTEST0001";
const SECRET_KEY: &str = "loopback-secret-6f1d9c2e8b7a";

/// The outputs that must be byte-identical whether the inputs are local or in the store.
const SAME_BYTES: [&str; 4] = [
    "ledger.csv",
    "ledger.parquet",
    "exemptions.csv",
    "quarantine.csv",
];

/// The `s3s-fs` binary: on `PATH`, or where `cargo install` puts it.
fn s3s_fs() -> PathBuf {
    let mut places: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        places.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        places.push(PathBuf::from(home).join(".cargo/bin"));
    }
    places
        .into_iter()
        .map(|dir| dir.join("s3s-fs"))
        .find(|p| p.is_file())
        .expect(
            "the S3 tests need the `s3s-fs` server; install it with \
             `cargo install s3s-fs --version 0.14.1 --features binary` (CI's .ci/run does)",
        )
}

/// One `s3s-fs` process serving the folders under its root as buckets.
struct S3Server {
    child: Child,
    port: u16,
    root: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl S3Server {
    fn start(dir: &Path) -> S3Server {
        let root = dir.join("s3-root");
        std::fs::create_dir_all(&root).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("s3s-fs.log")).unwrap();
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("s3s-fs starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        S3Server {
            child,
            port,
            root,
            runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What a run needs in its environment to reach this server.
    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap()
    }

    /// Makes `bucket` (a folder of the server's root, as CreateBucket would).
    fn bucket(&self, bucket: &str) {
        std::fs::create_dir_all(self.root.join(bucket)).unwrap();
    }

    /// PUTs every file under `local` to `bucket` below `prefix`.
    fn upload(&self, local: &Path, bucket: &str, prefix: &str) {
        self.bucket(bucket);
        let store = self.client(bucket);
        let mut files = Vec::new();
        collect_files(local, &mut files);
        for file in files {
            let relative = file.strip_prefix(local).unwrap().to_str().unwrap();
            let key = format!("{prefix}/{relative}");
            let bytes = std::fs::read(&file).unwrap();
            self.runtime
                .block_on(store.put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes)))
                .unwrap_or_else(|e| panic!("cannot upload {key}: {e}"));
        }
    }

    fn delete(&self, bucket: &str, key: &str) {
        let store = self.client(bucket);
        self.runtime
            .block_on(store.delete(&ObjectPath::from(key)))
            .unwrap();
    }

    fn kill(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sla-ledger ARGS` from `cwd` with `env` added.
fn sla_ledger_with(cwd: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the binary runs")
}

fn assert_same_outputs(local: &Path, remote: &Path) {
    for name in SAME_BYTES {
        let (a, b) = (local.join(name), remote.join(name));
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(
            a == b,
            "{name} differs:\n{}",
            line_diff(&String::from_utf8_lossy(&a), &String::from_utf8_lossy(&b))
        );
    }
}

/// A failed run wrote nothing: no output folder, and nothing of ours beside it.
fn assert_nothing_written(out: &Path) {
    assert!(!out.exists(), "{} was written", out.display());
    let leftovers: Vec<String> = entries(out.parent().unwrap())
        .into_iter()
        .filter(|name| name.starts_with(".sla-ledger") || name.starts_with(".out"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// The manifest's inputs, as (path, url, bytes, etag, sha256).
fn manifest_inputs(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["inputs"].as_array().unwrap().clone()
}

/// Runs the sample month-end job locally and with its data in the store; with `extra` (an
/// engine) on both sides.
fn sample_data_from_the_store_gives_the_same_bytes(extra: &[&str]) {
    let dir = TempDir::new("s3-sample");
    let server = S3Server::start(&dir.path);
    server.upload(
        &repo_root().join("sample_data"),
        "ccc-logs",
        "tenant-1/export",
    );
    let local_out = dir.join("local");
    let mut args = vec!["run", "--job", "jobs/month-end.toml", "--out"];
    args.push(local_out.to_str().unwrap());
    args.extend_from_slice(extra);
    assert_success(&sla_ledger(&repo_root(), &args));

    let remote_out = dir.join("remote");
    let mut args = vec![
        "run",
        "--job",
        "jobs/month-end.toml",
        "--data",
        "s3://ccc-logs/tenant-1/export/",
        "--out",
    ];
    args.push(remote_out.to_str().unwrap());
    args.extend_from_slice(extra);
    let output = sla_ledger_with(&repo_root(), &args, &server.env());
    assert_success(&output);
    assert_same_outputs(&local_out, &remote_out);

    // The manifest names each object by URL, with its size, ETag and the SHA-256 of its bytes,
    // which are those of the local file.
    let local_inputs = manifest_inputs(&local_out);
    let remote_inputs = manifest_inputs(&remote_out);
    let calls: Vec<&serde_json::Value> = remote_inputs
        .iter()
        .filter(|i| i["path"].as_str().unwrap().starts_with("calls/"))
        .collect();
    assert!(!calls.is_empty());
    for input in &remote_inputs {
        let path = input["path"].as_str().unwrap();
        if path.contains(':') {
            continue; // the job and policy files, local on both sides
        }
        let url = input["url"].as_str().unwrap();
        assert_eq!(url, format!("s3://ccc-logs/tenant-1/export/{path}"));
        assert!(
            input["etag"].as_str().is_some_and(|e| !e.is_empty()),
            "{input}"
        );
        let twin = local_inputs
            .iter()
            .find(|i| i["path"] == input["path"])
            .unwrap_or_else(|| panic!("{path} is not an input of the local run"));
        assert_eq!(twin["sha256"], input["sha256"], "{path}");
        assert_eq!(twin["bytes"], input["bytes"], "{path}");
    }
    let manifest = std::fs::read_to_string(remote_out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"data\": \"s3://ccc-logs/tenant-1/export\""));
    for secret in [ACCESS_KEY, SECRET_KEY] {
        assert!(!manifest.contains(secret));
        assert!(!text(&output.stderr).contains(secret));
    }
}

#[test]
fn spec_2_the_sample_data_read_from_s3_gives_the_same_ledger_and_manifest_urls() {
    sample_data_from_the_store_gives_the_same_bytes(&[]);
}

#[test]
fn spec_2_call_files_of_several_row_groups_read_from_s3_give_the_local_outputs() {
    // Each chunk of an object is fetched alone; a chunk past the file's first row group must
    // not be decoded against the row groups it did not fetch.
    let dir = TempDir::new("s3-row-groups");
    let data = dir.join("data");
    generate(&data, 4, 800_000, 3, &["--months", "2026-01..2026-01"]);
    let groups = |path: &Path| {
        use polars::prelude::SerReader;
        let file = std::fs::File::open(path).unwrap();
        polars::prelude::ParquetReader::new(file)
            .get_metadata()
            .unwrap()
            .row_groups
            .len()
    };
    let mut files = Vec::new();
    collect_files(&data.join("calls"), &mut files);
    assert!(
        files.iter().any(|f| groups(f) > 1),
        "no generated call file has more than one row group"
    );
    let server = S3Server::start(&dir.path);
    server.upload(&data, "ccc-logs", "big");
    let local = run_ledger(&data, &dir.join("local"), "2026-01", "2026-03-31", &[]);
    assert_success(&local);
    let remote = dir.join("remote");
    let args = run_args(
        Path::new("s3://ccc-logs/big"),
        &remote,
        "2026-01",
        "2026-03-31",
        &[],
    );
    assert_success(&sla_ledger_with(&repo_root(), &args, &server.env()));
    for name in ["ledger.csv", "exemptions.csv"] {
        assert_same_file(
            &dir.join("local").join(name),
            &dir.join("remote").join(name),
        );
    }
}

#[test]
fn spec_2_every_conformance_case_read_from_s3_reproduces_its_local_outputs() {
    let Some(cases) = conformance_cases() else {
        eprintln!("conformance folder `../shared/conformance` is absent: no case was uploaded");
        return;
    };
    let dir = TempDir::new("s3-conformance");
    let server = S3Server::start(&dir.path);
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        server.upload(&case.join("data"), "conformance", &name);
        let args = std::fs::read_to_string(case.join("args")).unwrap();
        let (local, remote) = (
            dir.join(format!("{name}-local")),
            dir.join(format!("{name}-s3")),
        );
        let url = format!("s3://conformance/{name}");
        for (data, out) in [("data", &local), (url.as_str(), &remote)] {
            let mut argv = vec!["run", "--data", data, "--out", out.to_str().unwrap()];
            argv.extend(args.split_whitespace());
            assert_success(&sla_ledger_with(&case, &argv, &server.env()));
        }
        assert_same_outputs(&local, &remote);
        assert_same_file(
            &case.join("expected/ledger.csv"),
            &remote.join("ledger.csv"),
        );
    }
}

#[test]
fn spec_2_validate_and_explain_read_from_s3_as_from_a_folder() {
    let dir = TempDir::new("s3-validate");
    let server = S3Server::start(&dir.path);
    server.upload(&repo_root().join("sample_data"), "ccc-logs", "q1");
    let local = sla_ledger(&repo_root(), &["validate", "--job", "jobs/month-end.toml"]);
    let remote = sla_ledger_with(
        &repo_root(),
        &[
            "validate",
            "--job",
            "jobs/month-end.toml",
            "--data",
            "s3://ccc-logs/q1",
        ],
        &server.env(),
    );
    assert_eq!(
        local.status.code(),
        remote.status.code(),
        "{}",
        text(&remote.stderr)
    );
    let shown = |o: &Output| text(&o.stdout).replace("s3://ccc-logs/q1", "sample_data");
    assert_eq!(shown(&local), shown(&remote));

    let ledger =
        std::fs::read_to_string(repo_root().join("sample_data/subscriptions.csv")).unwrap();
    let customer = ledger
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let explain = |data: &str, env: &[(String, String)]| {
        sla_ledger_with(
            &repo_root(),
            &[
                "explain",
                "--job",
                "jobs/month-end.toml",
                "--data",
                data,
                "--customer",
                &customer,
                "--month",
                "2026-03",
                "--format",
                "json",
            ],
            env,
        )
    };
    let (local, remote) = (
        explain("sample_data", &[]),
        explain("s3://ccc-logs/q1", &server.env()),
    );
    assert_success(&local);
    assert_success(&remote);
    assert_eq!(shown(&local), shown(&remote));
}

#[test]
fn spec_8_a_wrong_secret_key_is_exit_1_naming_the_url_and_the_code_never_the_key() {
    let dir = TempDir::new("s3-wrong-key");
    let server = S3Server::start(&dir.path);
    server.upload(&repo_root().join("sample_data"), "ccc-logs", "q1");
    let out = dir.join("out");
    let mut env = server.env();
    let wrong = "wrong-secret-0000";
    env.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY".into(), wrong.into()));
    let output = sla_ledger_with(
        &repo_root(),
        &[
            "--verbose",
            "run",
            "--job",
            "jobs/month-end.toml",
            "--data",
            "s3://ccc-logs/q1",
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    );
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`s3://ccc-logs/q1/calls`"), "{stderr}");
    assert!(
        stderr.contains("S3 answered 403 SignatureDoesNotMatch"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check `AWS_ACCESS_KEY_ID`"),
        "{stderr}"
    );
    for secret in [wrong, ACCESS_KEY, SECRET_KEY] {
        assert!(!stderr.contains(secret), "{secret} in {stderr}");
    }
    assert_nothing_written(&out);
}

#[test]
fn spec_8_a_missing_bucket_is_exit_1_naming_it() {
    let dir = TempDir::new("s3-no-bucket");
    let server = S3Server::start(&dir.path);
    let out = dir.join("out");
    let output = sla_ledger_with(
        &repo_root(),
        &[
            "run",
            "--job",
            "jobs/month-end.toml",
            "--data",
            "s3://no-such-bucket/q1",
            "--out",
            out.to_str().unwrap(),
        ],
        &server.env(),
    );
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("`s3://no-such-bucket/q1/calls`"),
        "{stderr}"
    );
    assert!(stderr.contains("404 NoSuchBucket"), "{stderr}");
    assert!(stderr.contains("hint: check the bucket"), "{stderr}");
    assert_nothing_written(&out);
}

/// Starts a run over a generated data set in the store, waits until it has listed and
/// checked the call files (the heavy step's stage line), does `meanwhile`, and returns how
/// the run ended.
fn disturbed_run(
    server: &mut S3Server,
    dir: &Path,
    meanwhile: impl FnOnce(&mut S3Server),
) -> (Output, PathBuf) {
    let data = dir.join("data");
    generate(&data, 40, 600_000, 5, &["--months", "2026-01..2026-02"]);
    server.upload(&data, "ccc-logs", "big");
    let job = dir.join("job.toml");
    // Few retries, so a dead server fails the run within seconds.
    std::fs::write(&job, "[s3]\nmax_retries = 1\ntimeout_secs = 5\n").unwrap();
    let out = dir.join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sla-ledger"))
        .args([
            "run",
            "--job",
            job.to_str().unwrap(),
            "--data",
            "s3://ccc-logs/big",
        ])
        .args([
            "--months",
            "2026-01..2026-02",
            "--as-of",
            "2026-04-30",
            "--threads",
            "1",
        ])
        .args(["--out", out.to_str().unwrap()])
        .envs(server.env())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("the run ended before its heavy step: {seen}");
        }
        seen.push_str(&line);
        if line.contains("counting calls") {
            break;
        }
    }
    meanwhile(server);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    seen.push_str(&rest);
    (
        Output {
            status,
            stdout: Vec::new(),
            stderr: seen.into_bytes(),
        },
        out,
    )
}

#[test]
fn spec_8_an_object_deleted_after_listing_fails_the_run_with_nothing_written() {
    let dir = TempDir::new("s3-deleted");
    let mut server = S3Server::start(&dir.path);
    let mut deleted = String::new();
    let (output, out) = disturbed_run(&mut server, &dir.path, |server| {
        let mut files = Vec::new();
        collect_files(&server.root.join("ccc-logs/big/calls"), &mut files);
        let victim = files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap();
        let key = victim.strip_prefix(server.root.join("ccc-logs")).unwrap();
        deleted = key.to_str().unwrap().to_string();
        server.delete("ccc-logs", &deleted);
    });
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("s3://ccc-logs/{deleted}")),
        "{deleted}: {stderr}"
    );
    assert!(
        stderr.contains("hint: an object was deleted or replaced"),
        "{stderr}"
    );
    assert_nothing_written(&out);
}

#[test]
fn spec_8_the_server_killed_mid_run_fails_it_with_nothing_written() {
    let dir = TempDir::new("s3-killed");
    let mut server = S3Server::start(&dir.path);
    let (output, out) = disturbed_run(&mut server, &dir.path, S3Server::kill);
    assert_exit(&output, 1);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no answer from the server"), "{stderr}");
    assert!(stderr.contains("hint: check the endpoint"), "{stderr}");
    assert_nothing_written(&out);
}

#[test]
fn spec_1_a_bad_s3_url_or_setting_is_a_usage_error() {
    for (data, env, expected) in [
        ("s3://Bad_Bucket/x", vec![], "is not a bucket name"),
        ("s3://logs/../x", vec![], "`..` segment"),
        (
            "s3://logs/x",
            vec![("AWS_ALLOW_HTTP".to_string(), "sometimes".to_string())],
            "AWS_ALLOW_HTTP is `sometimes`",
        ),
    ] {
        let output = sla_ledger_with(
            &repo_root(),
            &["run", "--data", data, "--out", "/nonexistent/out"],
            &env,
        );
        assert_exit(&output, 2);
        assert!(
            text(&output.stderr).contains(expected),
            "{}",
            text(&output.stderr)
        );
    }
}

/// The Ballista engine reads the same objects: in process, and through a loopback cluster
/// whose members have only their own environment's keys and no shared disk with the data.
#[cfg(feature = "distributed")]
mod ballista {
    use super::*;
    use crate::distributed::ballista::LoopbackCluster;

    #[test]
    fn spec_2_the_in_process_cluster_reads_s3_with_the_same_bytes() {
        sample_data_from_the_store_gives_the_same_bytes(&["--engine", "ballista"]);
    }

    #[test]
    fn spec_2_a_loopback_cluster_reads_s3_with_the_same_bytes_as_polars() {
        let dir = TempDir::new("s3-cluster");
        let server = S3Server::start(&dir.path);
        let cluster = LoopbackCluster::start_with_env(&dir.path, &server.env());
        // (folder run from, local data, arguments): the sample job and every conformance case.
        let mut cases = vec![(
            repo_root(),
            repo_root().join("sample_data"),
            "--job jobs/month-end.toml".to_string(),
        )];
        for case in conformance_cases().unwrap_or_default() {
            let args = std::fs::read_to_string(case.join("args")).unwrap();
            cases.push((case.clone(), case.join("data"), args));
        }
        for (i, (cwd, data, args)) in cases.iter().enumerate() {
            server.upload(data, "cases", &format!("case-{i}"));
            let url = format!("s3://cases/case-{i}");
            let (polars, remote) = (
                dir.join(format!("{i}-polars")),
                dir.join(format!("{i}-cluster")),
            );
            let mut argv = vec![
                "run",
                "--data",
                url.as_str(),
                "--out",
                polars.to_str().unwrap(),
            ];
            argv.extend(args.split_whitespace());
            assert_success(&sla_ledger_with(cwd, &argv, &server.env()));
            let mut argv = vec![
                "run",
                "--data",
                url.as_str(),
                "--out",
                remote.to_str().unwrap(),
                "--engine",
                "ballista",
                "--scheduler",
                &cluster.scheduler_url,
            ];
            argv.extend(args.split_whitespace());
            assert_success(&sla_ledger_with(cwd, &argv, &server.env()));
            assert_same_outputs(&polars, &remote);
        }
        cluster.shut_down();
    }
}
