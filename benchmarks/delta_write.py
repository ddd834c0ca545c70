"""Append a Spark DataFrame as a Delta table through the lake vs Spark's plain Parquet writer.

Both write the same cached DataFrame (mixed types) to local disk in the same run;
the lake also collects file statistics and commits through delta-rs.
``ratio`` = lake time / plain Parquet time (target: 1.15 or less).
"""

from __future__ import annotations

import shutil

from benchmarks.common import emit, median_times, parse_args, scratch_dir
from lake import Lake, load_settings


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=20_000_000, quick_rows=2_000_000)
    base = scratch_dir("delta-write")
    settings = load_settings({"root": str(base / "lake"), "spark": {"driver_memory": "6g"}}, env={}, config_file=False)
    lake = Lake(settings)
    spark = lake.spark(app_name="bench-delta-write")
    df = spark.range(0, args.rows).selectExpr(
        "id",
        "cast(id % 1000 as int) as customer",
        "rand(7) * 1000 as amount",
        "concat('order-', id) as order_ref",
        "timestamp_micros(1704067200000000 + id * 1000) as ts",
        "date_add(date'2024-01-01', cast(id % 365 as int)) as day",
        "id % 3 = 0 as flag",
    ).cache()
    print(f"rows: {df.count():,} cached, {df.rdd.getNumPartitions()} partitions")
    counter = {"n": 0}

    def plain() -> None:
        out = base / "parquet"
        shutil.rmtree(out, ignore_errors=True)
        df.write.mode("overwrite").parquet(str(out))

    def project() -> None:
        counter["n"] += 1
        lake.table(f"bench.write_{counter['n']}").write(df)

    times = median_times({"lake_delta": project, "spark_parquet": plain}, args.repeat)
    ratio = times["lake_delta"] / times["spark_parquet"]
    check = lake.table("bench.write_1").to_spark(spark).count()
    assert check == args.rows, f"wrote {check} rows, expected {args.rows}"
    spark.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    emit({
        "benchmark": "delta_write",
        "metric": "delta_write_rows_per_s",
        "value": round(args.rows / times["lake_delta"]),
        "unit": "rows/s",
        "baseline": "spark_parquet",
        "ratio": round(ratio, 3),
        "rows": args.rows,
        "seconds_lake": round(times["lake_delta"], 3),
        "seconds_spark_parquet": round(times["spark_parquet"], 3),
        "target_ratio": 1.15,
    })


if __name__ == "__main__":
    main()
