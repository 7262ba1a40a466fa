#!/usr/bin/env python3
"""Open a ledger.parquet with pyarrow, DuckDB and polars; check each agrees with ledger.csv.

    pip install pyarrow duckdb polars
    python3 benches/check_parquet_readers.py out/month-end/ledger.parquet
    python3 benches/check_parquet_readers.py LEDGER.parquet --csv OTHER/ledger.csv

For each reader it prints the types it gives the string columns, the row count and, per
currency, the sums of `monthly_fee`, `compensation` and `payout`, and checks them against
`ledger.csv` (beside the Parquet file unless `--csv` is given): string columns must read as
plain strings (pyarrow `string`, not `string_view`; DuckDB `VARCHAR`; polars `String`), the
row count must be the CSV's, and every total must equal the CSV's exactly (decimals, never
floats). Exits 1 naming each disagreement, 0 when all three readers agree with the CSV.
A reader that is not installed is reported and counts as a failure.
"""
import argparse
import csv
import pathlib
import sys
from collections import defaultdict
from decimal import Decimal

STRING_COLUMNS = ["service_month", "currency", "claim_status", "claim_id", "status"]
MONEY_COLUMNS = ["monthly_fee", "compensation", "payout"]


def csv_facts(path):
    """Row count and per-currency money sums of ledger.csv (rows with a currency only)."""
    totals = defaultdict(lambda: [Decimal(0)] * len(MONEY_COLUMNS))
    rows = 0
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows += 1
            if not row["currency"]:
                continue
            sums = totals[row["currency"]]
            for i, column in enumerate(MONEY_COLUMNS):
                sums[i] += Decimal(row[column])
    return rows, {c: tuple(s) for c, s in totals.items()}


def read_pyarrow(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    types = {name: str(table.schema.field(name).type) for name in STRING_COLUMNS}
    totals = defaultdict(lambda: [Decimal(0)] * len(MONEY_COLUMNS))
    columns = {name: table.column(name).to_pylist() for name in ["currency"] + MONEY_COLUMNS}
    for i, currency in enumerate(columns["currency"]):
        if currency is None:
            continue
        for j, column in enumerate(MONEY_COLUMNS):
            totals[currency][j] += columns[column][i]
    return types, table.num_rows, {c: tuple(s) for c, s in totals.items()}


def read_duckdb(path):
    import duckdb

    con = duckdb.connect()
    source = "read_parquet(?)"
    described = con.execute(f"DESCRIBE SELECT * FROM {source}", [str(path)]).fetchall()
    types = {name: kind for name, kind, *_ in described if name in STRING_COLUMNS}
    rows = con.execute(f"SELECT count(*) FROM {source}", [str(path)]).fetchone()[0]
    sums = ", ".join(f"sum({c})" for c in MONEY_COLUMNS)
    totals = {
        currency: tuple(Decimal(v) for v in values)
        for currency, *values in con.execute(
            f"SELECT currency, {sums} FROM {source} WHERE currency IS NOT NULL GROUP BY currency",
            [str(path)],
        ).fetchall()
    }
    return types, rows, totals


def read_polars(path):
    import polars as pl

    frame = pl.read_parquet(path)
    types = {name: str(frame.schema[name]) for name in STRING_COLUMNS}
    grouped = (
        frame.filter(pl.col("currency").is_not_null())
        .group_by("currency")
        .agg([pl.col(c).sum() for c in MONEY_COLUMNS])
    )
    totals = {
        currency: tuple(Decimal(v) for v in values) for currency, *values in grouped.rows()
    }
    return types, frame.height, totals


PLAIN_STRING = {"pyarrow": "string", "DuckDB": "VARCHAR", "polars": "String"}
READERS = [("pyarrow", read_pyarrow), ("DuckDB", read_duckdb), ("polars", read_polars)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parquet", type=pathlib.Path, help="a ledger.parquet")
    parser.add_argument("--csv", type=pathlib.Path, help="the ledger.csv to compare with")
    args = parser.parse_args()
    csv_path = args.csv or args.parquet.with_name("ledger.csv")
    expected_rows, expected_totals = csv_facts(csv_path)
    print(f"{csv_path}: {expected_rows} rows")
    for currency, sums in sorted(expected_totals.items()):
        print(f"  {currency}: " + ", ".join(f"{c} {v}" for c, v in zip(MONEY_COLUMNS, sums)))

    problems = []
    for name, read in READERS:
        try:
            types, rows, totals = read(args.parquet)
        except ImportError as e:
            problems.append(f"{name}: not installed ({e}); pip install pyarrow duckdb polars")
            continue
        wrong = {c: t for c, t in types.items() if t != PLAIN_STRING[name]}
        agree = rows == expected_rows and totals == expected_totals and not wrong
        print(f"{name}: {rows} rows, string columns {sorted(set(types.values()))}: "
              + ("agrees with the CSV" if agree else "DISAGREES"))
        if wrong:
            problems.append(f"{name}: string columns read as {wrong}, not {PLAIN_STRING[name]}")
        if rows != expected_rows:
            problems.append(f"{name}: {rows} rows, the CSV has {expected_rows}")
        if totals != expected_totals:
            problems.append(f"{name}: totals {totals} differ from the CSV's {expected_totals}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
