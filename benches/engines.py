#!/usr/bin/env python3
"""Benchmark the heavy step's engines on one data set: polars vs DuckDB vs Ballista.

    python3 benches/engines.py                       # the 20M data set of benches/bench.py
    python3 benches/engines.py --data DIR --months 2026-01..2026-03

Builds the release binary with the `distributed` feature, then runs, one after the other on
the same data and thread count:
  1. `sla-ledger run --engine polars` (the default engine, in process),
  2. the DuckDB SQL reference (benches/duckdb_reference.py, one process; skip with
     --skip-reference),
  3. `--engine ballista` (a standalone cluster inside the process),
  4. `--engine ballista --scheduler df://127.0.0.1:PORT` against a loopback cluster of one
     scheduler and N executors, each its own `sla-ledger cluster ...` process running one task
     at a time, for each N of --executors (default 2 and 1: the scaling figure);
  5. with --s3: the data set served by a real S3 server on loopback (`s3s-fs`, as the tests
     run it; the files are hard links into its folder), read from `s3://` by the polars
     engine and by the first loopback cluster of --executors, whose members reach the server
     with the run's AWS_* settings.
It prints wall time, call rows per second, the client's peak RSS (GNU time) and, for a cluster,
the members' peak RSS summed, and checks that the ledgers, exemptions and quarantine files of
every sla-ledger run are byte-identical. Results go to DATA/engines.json.
Needs Python 3, GNU time and (for the reference) duckdb; generate the data first with
benches/bench.py (or `sla-ledger generate`).
"""
import argparse
import filecmp
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAME_BYTES = ["ledger.csv", "ledger.parquet", "exemptions.csv", "quarantine.csv"]


def binary():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "--features", "distributed"], cwd=ROOT, check=True)
    return str(target / "release" / "sla-ledger")


def timed(cmd, env=None):
    """Runs cmd; returns (wall seconds, peak RSS bytes) measured by GNU time."""
    with tempfile.NamedTemporaryFile("r") as report:
        full = ["/usr/bin/time", "-f", "%e %M", "-o", report.name] + cmd
        result = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if result.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
        wall, rss_kib = report.read().split()[-2:]
    return float(wall), int(rss_kib) * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on port {port}")


class S3Server:
    """`s3s-fs` on a loopback port serving `data` as `s3://bench/data` (hard links)."""

    def __init__(self, data, workdir):
        exe = shutil.which("s3s-fs") or str(pathlib.Path(os.environ.get("CARGO_HOME", pathlib.Path.home() / ".cargo")) / "bin" / "s3s-fs")
        if not os.access(exe, os.X_OK):
            sys.exit("--s3 needs the s3s-fs server: cargo install s3s-fs --version 0.14.1 --features binary --locked")
        root = workdir / "s3-root"
        (root / "bench").mkdir(parents=True)
        shutil.copytree(data, root / "bench" / "data", copy_function=os.link,
                        ignore=shutil.ignore_patterns("engines.json"))
        port = free_port()
        self.url = "s3://bench/data"
        self.env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_REGION="us-east-1",
                        AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret")
        self.process = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port), "--access-key", "bench",
                                         "--secret-key", "bench-secret", str(root)],
                                        stdout=open(workdir / "s3s-fs.log", "w"), stderr=subprocess.STDOUT)
        wait_for(port)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class LoopbackCluster:
    """One scheduler and `executors` executors of `tasks` concurrent tasks, each its own
    process."""

    def __init__(self, exe, executors, tasks, workdir, env=None):
        self.env = env
        self.members = []
        workdir.mkdir(parents=True)
        port = free_port()
        self.url = f"df://127.0.0.1:{port}"
        self.start(exe, ["scheduler", "--bind", f"127.0.0.1:{port}"], workdir / "scheduler.log")
        wait_for(port)
        for i in range(executors):
            flight, grpc = free_port(), free_port()
            self.start(exe, [
                "executor", "--scheduler", self.url, "--bind", f"127.0.0.1:{flight}",
                "--grpc-port", str(grpc), "--concurrent-tasks", str(tasks),
                "--work-dir", str(workdir / f"executor-{i}"),
            ], workdir / f"executor-{i}.log")
            wait_for(flight)
            wait_for(grpc)
        time.sleep(3)  # registration follows the listeners by a heartbeat

    def start(self, exe, args, log):
        self.members.append(subprocess.Popen([exe, "cluster"] + args, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                             env=self.env))

    def peak_rss(self):
        """Each member's peak resident memory in bytes (Linux), scheduler first."""
        peaks = []
        for member in self.members:
            for line in open(f"/proc/{member.pid}/status"):
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) * 1024)
        return peaks

    def stop(self):
        for member in self.members:
            member.terminate()
        for member in self.members:
            member.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=pathlib.Path, default=ROOT / "target" / "bench-data" / "rows-20000000")
    parser.add_argument("--months", default="2026-01..2026-03")
    parser.add_argument("--as-of", default="2026-06-30")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--exe", help="an sla-ledger binary built with --features distributed (default: build one)")
    parser.add_argument("--executors", default="2,1",
                        help="loopback cluster sizes to run, comma separated (default 2,1)")
    parser.add_argument("--tasks", type=int, default=1, help="concurrent tasks per executor (default 1)")
    parser.add_argument("--skip-reference", action="store_true", help="do not run the DuckDB reference")
    parser.add_argument("--s3", action="store_true",
                        help="also read the data from a loopback S3 server (polars, and the first cluster size)")
    args = parser.parse_args()
    if not (args.data / "calls").is_dir():
        sys.exit(f"no data set at {args.data}: run benches/bench.py (or sla-ledger generate) first")
    exe = args.exe or binary()
    work = pathlib.Path(tempfile.mkdtemp(prefix="sla-ledger-engines-"))
    results = {}
    try:
        rows = None

        def report(name, wall, rss):
            results[name] = {"wall_s": wall, "peak_rss_bytes": rss, "rows": rows, "rows_per_s": rows / wall}
            print(f"{name:<30} {wall:8.2f} s  {rows / wall / 1e6:7.2f} M rows/s  peak RSS {rss / 2**30:5.2f} GiB", flush=True)

        def run(name, extra, data=None, env=None):
            nonlocal rows
            out = work / name
            cmd = [exe, "-q", "run", "--data", str(data or args.data), "--out", str(out), "--months", args.months,
                   "--as-of", args.as_of, "--threads", str(args.threads)] + extra
            wall, rss = timed(cmd, env)
            rows = json.load(open(out / "manifest.json"))["rows"]["calls"]["read"]
            report(name, wall, rss)

        run("polars", [])
        if not args.skip_reference:
            wall, rss = timed([sys.executable, str(ROOT / "benches" / "duckdb_reference.py"), str(args.data),
                               str(work / "reference.csv"), "--months", args.months, "--threads", str(args.threads)])
            report("duckdb-reference", wall, rss)
        run("ballista-standalone", ["--engine", "ballista"])
        ballista_runs = ["ballista-standalone"]
        sizes = [int(n) for n in args.executors.split(",")]
        s3 = S3Server(args.data, work) if args.s3 else None
        try:
            if s3:
                run("polars-s3", [], s3.url, s3.env)
            runs = [(n, "") for n in sizes] + ([(sizes[0], "-s3")] if s3 else [])
            for executors, suffix in runs:
                name = f"ballista-loopback-{executors}-executor{'s' if executors > 1 else ''}{suffix}"
                env = s3.env if suffix else None
                cluster = LoopbackCluster(exe, executors, args.tasks, work / f"{name}-members", env)
                try:
                    run(name, ["--engine", "ballista", "--scheduler", cluster.url], s3.url if suffix else None, env)
                    peaks = cluster.peak_rss()
                finally:
                    cluster.stop()
                r = results[name]
                r.update(executors=executors, tasks_per_executor=args.tasks, member_peak_rss_bytes=peaks,
                         cluster_peak_rss_bytes=sum(peaks), rows_per_executor=rows / executors)
                print(f"{'':<30} members' peak RSS (scheduler, executors) "
                      f"{', '.join(f'{p / 2**30:.2f}' for p in peaks)} GiB; summed {sum(peaks) / 2**30:5.2f} GiB")
                ballista_runs.append(name)
        finally:
            if s3:
                s3.stop()
        # Quarantine entries name their file, so a run over s3:// matches the polars run over s3://.
        same = all(
            filecmp.cmp(work / ("polars-s3" if other.endswith("-s3") else "polars") / f, work / other / f,
                        shallow=False)
            for other in ballista_runs
            for f in SAME_BYTES
        ) and all(
            filecmp.cmp(work / "polars" / f, work / "polars-s3" / f, shallow=False)
            for f in ["ledger.csv", "exemptions.csv"] if args.s3
        )
        base = results["polars"]["wall_s"]
        for name, r in results.items():
            print(f"{name:<30} time / polars {r['wall_s'] / base:5.2f}x")
        clusters = {r["executors"]: r for n, r in results.items() if "executors" in r and not n.endswith("-s3")}
        if 1 in clusters and 2 in clusters:
            print(f"scaling: 1 executor / 2 executors wall time {clusters[1]['wall_s'] / clusters[2]['wall_s']:.2f}x")
        print(f"ledger, exemptions and quarantine byte-identical across engines: {'yes' if same else 'NO'}")
        json.dump(results, open(args.data / "engines.json", "w"), indent=2)
        if not same:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
