#!/usr/bin/env python3
"""The heavy step as DuckDB SQL: a reference for the benchmark, written from SPEC.md alone.

Reads a SPEC data folder and writes, per customer and service month with counted calls,
`customer_id,service_month,total_calls,system_errors,exempt_errors` (CSV, sorted) to OUT.
Service-month coverage and the notice rules for windows and concurrency notices are
computed here in Python from the small tables; everything over the call logs is SQL:
window-function de-duplication, the coverage join, the four exemption sources, bursts.
"""
import argparse
import csv
import datetime as dt
import pathlib

import duckdb

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NS = 1_000_000_000


def epoch_ns(text):
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * NS


def day_start_ns(day):
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp()) * NS


def month_range(spec):
    first, last = spec.split("..")
    y, m = map(int, first.split("-"))
    ly, lm = map(int, last.split("-"))
    while (y, m) <= (ly, lm):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def coverage(data, months):
    """(customer_id, month, start_ns, end_ns): covered local dates, unioned and cut by month."""
    periods = {}
    for row in csv.DictReader(open(data / "subscriptions.csv")):
        start = dt.date.fromisoformat(row["start_date"])
        end = dt.date.fromisoformat(row["end_date"]) if row["end_date"] else dt.date(9999, 12, 31)
        if start <= end:
            periods.setdefault(int(row["customer_id"]), []).append((start, end))
    rows = []
    for customer, spans in periods.items():
        spans.sort()
        merged = []
        for start, end in spans:
            if merged and start <= merged[-1][1] + dt.timedelta(days=1):
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        for y, m in month_range(months):
            first = dt.date(y, m, 1)
            last = (dt.date(y + m // 12, m % 12 + 1, 1)) - dt.timedelta(days=1)
            for start, end in merged:
                a, b = max(start, first), min(end, last)
                if a <= b:
                    rows.append((customer, f"{y:04d}-{m:02d}", day_start_ns(a), day_start_ns(b + dt.timedelta(days=1))))
    return rows


def read(path):
    return list(csv.DictReader(open(path))) if path.exists() else []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--months", required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    data = args.data

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("CREATE TABLE coverage (customer_id BIGINT, month VARCHAR, start_ns BIGINT, end_ns BIGINT)")
    con.executemany("INSERT INTO coverage VALUES (?, ?, ?, ?)", coverage(data, args.months))
    ex = data / "exemptions"
    con.execute("CREATE TABLE error_codes (error_code VARCHAR)")
    con.executemany("INSERT INTO error_codes VALUES (?)", [(r["error_code"],) for r in read(ex / "error_codes.csv")])
    con.execute("CREATE TABLE exempt_calls (request_id VARCHAR)")
    con.executemany("INSERT INTO exempt_calls VALUES (?)", [(r["request_id"],) for r in read(ex / "calls.csv")])
    con.execute("CREATE TABLE windows (customer_id BIGINT, start_ns BIGINT, end_ns BIGINT)")
    windows = []
    for r in read(ex / "windows.csv"):
        start = epoch_ns(r["start"])
        needs_notice = r["clause"] in ("5.11", "5.12")
        if needs_notice and not (r["announced_at"] and epoch_ns(r["announced_at"]) < start):
            continue
        windows.append((int(r["customer_id"]) if r["customer_id"] else None, start, epoch_ns(r["end"])))
    con.executemany("INSERT INTO windows VALUES (?, ?, ?)", windows)
    con.execute("CREATE TABLE notices (customer_id BIGINT, start_ns BIGINT, end_ns BIGINT)")
    notices = [
        (int(r["customer_id"]), epoch_ns(r["start"]), epoch_ns(r["end"]))
        for r in read(ex / "notices.csv")
        if r["notified_at"] and epoch_ns(r["notified_at"]) < epoch_ns(r["start"])
    ]
    con.executemany("INSERT INTO notices VALUES (?, ?, ?)", notices)

    files = sorted(str(p) for p in (data / "calls").rglob("*.parquet"))
    raw = " UNION ALL ".join(
        f"SELECT request_id, customer_id, epoch_ns(ts) AS ts, api, status, error_code FROM read_parquet('{f}')"
        for f in files
    )
    query = f"""
    WITH raw AS ({raw}),
    valid AS (
        SELECT * FROM raw
        WHERE request_id IS NOT NULL AND customer_id IS NOT NULL AND ts IS NOT NULL
          AND status IN ('success', 'client_error', 'system_error')
    ),
    dedup AS (
        SELECT * FROM valid
        QUALIFY row_number() OVER (
            PARTITION BY request_id
            ORDER BY ts, customer_id, api NULLS FIRST, status, error_code NULLS FIRST) = 1
    ),
    counted AS (
        SELECT d.request_id, d.customer_id, d.ts, d.status, d.error_code, c.month,
               d.ts // {NS} AS sec  -- every ts here is after 1970: integer division is floor
        FROM dedup d JOIN coverage c
          ON d.customer_id = c.customer_id AND d.ts >= c.start_ns AND d.ts < c.end_ns
    ),
    per_second AS (SELECT customer_id, sec, count(*) AS n FROM counted GROUP BY ALL),
    errors AS (
        SELECT e.*, p.n FROM counted e JOIN per_second p USING (customer_id, sec)
        WHERE e.status = 'system_error'
    ),
    attributed AS (
        SELECT customer_id, month, (
            error_code IN (SELECT error_code FROM error_codes)
            OR request_id IN (SELECT request_id FROM exempt_calls)
            OR EXISTS (SELECT 1 FROM windows w
                       WHERE errors.ts >= w.start_ns AND errors.ts < w.end_ns
                         AND (w.customer_id IS NULL OR w.customer_id = errors.customer_id))
            OR (n >= 5 AND NOT EXISTS (SELECT 1 FROM notices o
                       WHERE o.customer_id = errors.customer_id
                         AND errors.ts >= o.start_ns AND errors.ts < o.end_ns))
        ) AS exempt
        FROM errors
    ),
    totals AS (SELECT customer_id, month, count(*) AS total_calls FROM counted GROUP BY ALL),
    error_totals AS (
        SELECT customer_id, month, count(*) AS system_errors,
               count(*) FILTER (WHERE exempt) AS exempt_errors
        FROM attributed GROUP BY ALL
    )
    SELECT t.customer_id, t.month AS service_month, t.total_calls,
           coalesce(e.system_errors, 0) AS system_errors, coalesce(e.exempt_errors, 0) AS exempt_errors
    FROM totals t LEFT JOIN error_totals e USING (customer_id, month)
    ORDER BY 1, 2
    """
    con.execute(f"COPY ({query}) TO '{args.out}' (HEADER, DELIMITER ',')")


if __name__ == "__main__":
    main()
