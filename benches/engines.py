#!/usr/bin/env python3
"""Benchmark the heavy step's engines on one data set: polars vs Ballista.

    python3 benches/engines.py                       # the 20M data set of benches/bench.py
    python3 benches/engines.py --data DIR --months 2026-01..2026-03

Builds the release binary with the `distributed` feature, then runs `sla-ledger run` on the
same data, one after the other:
  1. `--engine polars` (the default engine, in process),
  2. `--engine ballista` (a standalone cluster inside the process),
  3. `--engine ballista --scheduler df://127.0.0.1:PORT` against a loopback cluster of one
     scheduler and two executors, each its own `sla-ledger cluster ...` process, the
     machine's cores split between the two executors.
It prints wall time, call rows per second and the client's peak RSS (GNU time) of each, and
checks that the three ledgers, exemptions and quarantine files are byte-identical.
Needs only Python 3 and GNU time; generate the data first with benches/bench.py (or
`sla-ledger generate`).
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


def timed(cmd):
    """Runs cmd; returns (wall seconds, peak RSS bytes) measured by GNU time."""
    with tempfile.NamedTemporaryFile("r") as report:
        full = ["/usr/bin/time", "-f", "%e %M", "-o", report.name] + cmd
        result = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


class LoopbackCluster:
    """One scheduler and two executors, each its own process."""

    def __init__(self, exe, threads, workdir):
        self.members = []
        port = free_port()
        self.url = f"df://127.0.0.1:{port}"
        self.start(exe, ["scheduler", "--bind", f"127.0.0.1:{port}"], workdir / "scheduler.log")
        wait_for(port)
        for i in range(2):
            flight, grpc = free_port(), free_port()
            self.start(exe, [
                "executor", "--scheduler", self.url, "--bind", f"127.0.0.1:{flight}",
                "--grpc-port", str(grpc), "--concurrent-tasks", str(max(1, threads // 2)),
                "--work-dir", str(workdir / f"executor-{i}"),
            ], workdir / f"executor-{i}.log")
            wait_for(flight)
            wait_for(grpc)
        time.sleep(3)  # registration follows the listeners by a heartbeat

    def start(self, exe, args, log):
        self.members.append(subprocess.Popen([exe, "cluster"] + args, stdout=open(log, "w"), stderr=subprocess.STDOUT))

    def peak_rss(self):
        """Sum of the members' peak resident memory, in bytes (Linux)."""
        total = 0
        for member in self.members:
            for line in open(f"/proc/{member.pid}/status"):
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
        return total

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
    args = parser.parse_args()
    if not (args.data / "calls").is_dir():
        sys.exit(f"no data set at {args.data}: run benches/bench.py (or sla-ledger generate) first")
    exe = args.exe or binary()
    work = pathlib.Path(tempfile.mkdtemp(prefix="sla-ledger-engines-"))
    results = {}
    try:
        def run(name, extra):
            out = work / name
            cmd = [exe, "-q", "run", "--data", str(args.data), "--out", str(out), "--months", args.months,
                   "--as-of", args.as_of, "--threads", str(args.threads)] + extra
            wall, rss = timed(cmd)
            manifest = json.load(open(out / "manifest.json"))
            rows = manifest["rows"]["calls"]["read"]
            results[name] = {"wall_s": wall, "peak_rss_bytes": rss, "rows": rows, "rows_per_s": rows / wall}
            print(f"{name:<26} {wall:8.2f} s  {rows / wall / 1e6:7.2f} M rows/s  client peak RSS {rss / 2**30:5.2f} GiB", flush=True)

        run("polars", [])
        run("ballista-standalone", ["--engine", "ballista"])
        cluster = LoopbackCluster(exe, args.threads, work)
        try:
            run("ballista-loopback-2-executors", ["--engine", "ballista", "--scheduler", cluster.url])
            members = cluster.peak_rss()
            results["ballista-loopback-2-executors"]["cluster_peak_rss_bytes"] = members
            print(f"{'':<26} scheduler + executors peak RSS, summed: {members / 2**30:5.2f} GiB")
        finally:
            cluster.stop()
        same = all(
            filecmp.cmp(work / "polars" / f, work / other / f, shallow=False)
            for other in ["ballista-standalone", "ballista-loopback-2-executors"]
            for f in SAME_BYTES
        )
        base = results["polars"]["wall_s"]
        for name, r in results.items():
            print(f"{name:<26} time / polars {r['wall_s'] / base:5.2f}x")
        print(f"ledger, exemptions and quarantine byte-identical across engines: {'yes' if same else 'NO'}")
        json.dump(results, open(args.data / "engines.json", "w"), indent=2)
        if not same:
            sys.exit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
