"""Filtered reads of a Delta table into Spark through the lake vs Spark's plain Parquet read.

The same files, the same filters, the same aggregation, in one run. The lake reads
the Delta log, skips files by partition values and statistics, and hands Spark only
the files that can match; plain Parquet lets Spark discover and scan the folder.
``ratio`` = lake time / plain Parquet time, summed over the queries.
"""

from __future__ import annotations

import shutil

from benchmarks.common import emit, median_times, parse_args, scratch_dir
from lake import Lake, load_settings

QUERIES = {
    "partition": "region = 3",
    "range": "id BETWEEN 1000000 AND 1200000",
    "combined": "region IN (1, 2) AND amount > 900",
}


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=20_000_000, quick_rows=2_000_000)
    base = scratch_dir("delta-read")
    settings = load_settings({"root": str(base / "lake"), "spark": {"driver_memory": "6g"}}, env={}, config_file=False)
    lake = Lake(settings)
    spark = lake.spark(app_name="bench-delta-read")
    table = lake.table("bench.events")
    df = spark.range(0, args.rows, numPartitions=16).selectExpr(
        "id", "cast(id % 8 as int) as region", "rand(3) * 1000 as amount", "concat('e', id) as ref"
    )
    table.write(df.sortWithinPartitions("id"), partition_by=["region"])
    files = len(table.files())
    print(f"table: {args.rows:,} rows in {files} files")

    def run_lake() -> None:
        for q in QUERIES.values():
            table.to_spark(spark, filter=q).agg({"amount": "sum", "id": "count"}).collect()

    def run_plain() -> None:
        for q in QUERIES.values():
            spark.read.parquet(table.uri).filter(q).agg({"amount": "sum", "id": "count"}).collect()

    for name, q in QUERIES.items():
        a = table.to_spark(spark, filter=q).agg({"id": "count"}).first()[0]
        b = spark.read.parquet(table.uri).filter(q).agg({"id": "count"}).first()[0]
        assert a == b, f"{name}: lake {a} rows, plain {b}"
        print(f"  {name}: {a:,} rows, lake reads {len(table.to_spark(spark, filter=q).inputFiles())}/{files} files")
    times = median_times({"lake_delta": run_lake, "spark_parquet": run_plain}, args.repeat)
    ratio = times["lake_delta"] / times["spark_parquet"]
    spark.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    emit({
        "benchmark": "delta_read",
        "metric": "filtered_read_seconds",
        "value": round(times["lake_delta"], 3),
        "unit": "s",
        "baseline": "spark_parquet",
        "ratio": round(ratio, 3),
        "rows": args.rows,
        "files": files,
        "queries": QUERIES,
        "seconds_spark_parquet": round(times["spark_parquet"], 3),
    })


if __name__ == "__main__":
    main()
