#!/usr/bin/env python3
"""Benchmark the heavy step: `sla-ledger run` vs a DuckDB SQL reference vs a bare decode.

    pip install duckdb polars
    python3 benches/bench.py                 # 20M rows
    python3 benches/bench.py --rows 20000000 --rows 100000000

For each size it generates (once, cached under --data-root) a data set with
`sla-ledger generate`, then runs, one after the other on the same machine and thread count:
  1. `sla-ledger run` (release build) over all generated months,
  2. the same per customer-month counts as DuckDB SQL (benches/duckdb_reference.py),
  3. polars' streaming engine decoding the six columns and nothing else (benches/polars_decode.py),
and prints wall time and peak RSS of each, their ratios, and whether the counts agree.
Results are also written as JSON next to the data.
"""
import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
MONTHS = "2026-01..2026-03"


def timed(cmd, env=None):
    """Runs cmd; returns (wall seconds, peak RSS bytes) measured by GNU time."""
    with tempfile.NamedTemporaryFile("r") as report:
        full = ["/usr/bin/time", "-f", "%e %M", "-o", report.name] + cmd
        result = subprocess.run(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
        wall, rss_kib = report.read().split()[-2:]
    return float(wall), int(rss_kib) * 1024


def binary():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return str(target / "release" / "sla-ledger")


def counts_from_ledger(path):
    rows = {}
    for r in csv.DictReader(open(path)):
        if int(r["total_calls"]) > 0:
            rows[(r["customer_id"], r["service_month"])] = (r["total_calls"], r["system_errors"], r["exempt_errors"])
    return rows


def counts_from_reference(path):
    return {
        (r["customer_id"], r["service_month"]): (r["total_calls"], r["system_errors"], r["exempt_errors"])
        for r in csv.DictReader(open(path))
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append", help="call rows to generate (repeatable)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--data-root", type=pathlib.Path, default=ROOT / "target" / "bench-data")
    parser.add_argument("--skip-reference", action="store_true", help="only run sla-ledger and the decode")
    args = parser.parse_args()
    sizes = args.rows or [20_000_000]
    exe = binary()
    env = dict(os.environ, POLARS_MAX_THREADS=str(args.threads), RAYON_NUM_THREADS=str(args.threads))
    results = []
    for rows in sizes:
        data = args.data_root / f"rows-{rows}"
        if not (data / "subscriptions.csv").exists():
            print(f"generating {rows:,} rows into {data} ...", flush=True)
            subprocess.run([exe, "generate", "--out", str(data), "--customers", str(args.customers),
                            "--months", MONTHS, "--calls", str(rows), "--seed", "1"], check=True)
        size = sum(p.stat().st_size for p in (data / "calls").rglob("*.parquet"))
        out = data.parent / f"out-{rows}"
        ours = timed([exe, "run", "--data", str(data), "--out", str(out), "--months", MONTHS,
                      "--as-of", "2026-06-30", "--threads", str(args.threads), "--force", "--quiet"], env)
        decode = timed([sys.executable, str(ROOT / "benches" / "polars_decode.py"), str(data)], env)
        read = json.loads((out / "manifest.json").read_text())["rows"]["calls"]["read"]
        entry = {"rows": read, "parquet_bytes": size, "threads": args.threads,
                 "sla_ledger": ours, "polars_decode": decode}
        if not args.skip_reference:
            reference_out = data.parent / f"reference-{rows}.csv"
            reference = timed([sys.executable, str(ROOT / "benches" / "duckdb_reference.py"), str(data),
                               str(reference_out), "--months", MONTHS, "--threads", str(args.threads)], env)
            entry["duckdb"] = reference
            a, b = counts_from_ledger(out / "ledger.csv"), counts_from_reference(reference_out)
            entry["agree"] = a == b
            entry["customer_months_compared"] = len(b)
            if a != b:
                diff = sorted(set(a.items()) ^ set(b.items()))[:10]
                print(f"  counts DISAGREE, e.g. {diff}")
        results.append(entry)
        gib = 1024 ** 3
        print(f"\n{read:,} call rows ({size / 1e6:.0f} MB of Parquet), {args.threads} threads, {os.cpu_count()} cores")
        print(f"  {'':<14}{'wall s':>9}{'peak RSS GiB':>15}")
        for name in ("sla_ledger", "duckdb", "polars_decode"):
            if name in entry:
                wall, rss = entry[name]
                print(f"  {name:<14}{wall:>9.2f}{rss / gib:>15.2f}")
        if "duckdb" in entry:
            print(f"  sla-ledger / DuckDB wall: {ours[0] / entry['duckdb'][0]:.2f}x   counts agree: {entry['agree']}"
                  f" ({entry['customer_months_compared']} customer-months)")
        print(f"  sla-ledger / bare decode wall: {ours[0] / decode[0]:.2f}x")
        print(f"  sla-ledger per million rows: {ours[0] / read * 1e6:.3f} s", flush=True)
    if len(results) > 1:
        base = results[0]["sla_ledger"][0] / results[0]["rows"]
        for r in results[1:]:
            print(f"time per row at {r['rows']:,} vs {results[0]['rows']:,}: {r['sla_ledger'][0] / r['rows'] / base:.2f}x")
    (args.data_root / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
