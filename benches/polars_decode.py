#!/usr/bin/env python3
"""The floor: decode the six call-log columns with polars' streaming engine, nothing else."""
import pathlib
import sys

import polars as pl

files = sorted((pathlib.Path(sys.argv[1]) / "calls").rglob("*.parquet"))
frames = [
    pl.scan_parquet(f, hive_partitioning=False).select(
        pl.col("request_id").str.len_bytes().cast(pl.Int64).alias("request_id"),
        pl.col("customer_id"),
        pl.col("ts").cast(pl.Int64).alias("ts"),
        pl.col("api").str.len_bytes().cast(pl.Int64).alias("api"),
        pl.col("status").str.len_bytes().cast(pl.Int64).alias("status"),
        pl.col("error_code").str.len_bytes().cast(pl.Int64).alias("error_code"),
    )
    for f in files
]
print(pl.concat(frames).sum().collect(engine="streaming"))
