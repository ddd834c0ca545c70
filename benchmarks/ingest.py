"""Ingest a CSV with malformed lines through a job vs plain Spark read.csv -> write.parquet.

A generated 10M-row CSV (``--quick``: 1M) where about 3% of the lines are malformed
(a missing field, a value that is not a number, an impossible date). The job parses it on
the executors with DuckDB, quarantines every bad line with its line number and reason,
commits the table and the quarantine table, updates the ledger and the catalog. The
baseline, plain Spark with the same declared schema, neither quarantines (bad fields
become NULL) nor commits. ``ratio`` = job time / baseline time (target 1.3 or less).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import duckdb

from benchmarks.common import emit, parse_args, scratch_dir
from lake import Lake, load_settings
from lake.pipeline import CsvOptions, FileSource, Job
from lake.pipeline.runner import JobRunner

COLUMNS = {"id": "BIGINT", "customer": "VARCHAR", "amount": "DOUBLE", "quantity": "BIGINT",
           "day": "DATE", "channel": "VARCHAR"}


def generate(path: str, rows: int) -> int:
    """Write the CSV; returns how many lines are malformed."""
    con = duckdb.connect()
    con.execute(f"""
        COPY (
            SELECT 'id,customer,amount,quantity,day,channel' AS line
            UNION ALL
            SELECT CASE
                WHEN i % 97 = 0 THEN i || ',c' || (i % 1000) || ',' || (i % 500) / 10.0 || ',' || (i % 7)   -- missing fields
                WHEN i % 89 = 0 THEN i || ',c' || (i % 1000) || ',oops,' || (i % 7) || ',2024-03-01,web'    -- not a number
                WHEN i % 83 = 0 THEN i || ',c' || (i % 1000) || ',1.5,' || (i % 7) || ',2024-02-31,web'     -- no such date
                ELSE i || ',c' || (i % 1000) || ',' || (i % 500) / 10.0 || ',' || (i % 7) || ',' ||
                     strftime(DATE '2024-01-01' + (i % 366)::INT, '%Y-%m-%d') || ',' ||
                     ['web', 'store', 'phone'][(i % 3)::INT + 1]
            END FROM range(1, {rows} + 1) t(i)
        ) TO '{path}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')""")
    return int(con.sql(f"SELECT count(*) FROM range(1, {rows} + 1) t(i) "
                       "WHERE i % 97 = 0 OR i % 89 = 0 OR i % 83 = 0").fetchone()[0])  # type: ignore[index]


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=10_000_000, quick_rows=1_000_000)
    base = scratch_dir("ingest")
    landing = base / "landing"
    landing.mkdir()
    csv_path = str(landing / "orders.csv")
    bad = generate(csv_path, args.rows)
    print(f"generated {args.rows:,} rows, {bad:,} malformed, {(landing / 'orders.csv').stat().st_size / 1e6:.0f} MB")
    settings = load_settings({"root": str(base / "lake"), "spark": {"driver_memory": "4g"}}, env={}, config_file=False)
    lake = Lake(settings)
    spark = lake.spark(app_name="bench-ingest")
    ddl = "id BIGINT, customer STRING, amount DOUBLE, quantity BIGINT, day DATE, channel STRING"

    def baseline() -> None:
        out = base / "spark-parquet"
        shutil.rmtree(out, ignore_errors=True)
        spark.read.option("header", True).schema(ddl).csv(csv_path).write.parquet(str(out))

    counter = {"n": 0}

    def project() -> Any:
        counter["n"] += 1
        job = Job(name=f"orders_{counter['n']}", target=f"bronze.orders_{counter['n']}",
                  source=FileSource(csv_path, columns=COLUMNS, csv=CsvOptions()))
        return JobRunner(lake, spark=spark).run(job)

    baseline()  # warm-up
    project()
    job_times, spark_times, report = [], [], None
    for _ in range(args.repeat):
        t = time.perf_counter()
        report = project()
        job_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        baseline()
        spark_times.append(time.perf_counter() - t)
    print("  job:", ", ".join(f"{v:.2f}s" for v in job_times))
    print("  spark:", ", ".join(f"{v:.2f}s" for v in spark_times))
    assert report is not None
    assert report.rows_quarantined == bad, (report.rows_quarantined, bad)
    assert report.rows_written + report.rows_quarantined == args.rows
    job_s, spark_s = sorted(job_times)[len(job_times) // 2], sorted(spark_times)[len(spark_times) // 2]
    spark.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    emit({
        "benchmark": "ingest",
        "metric": "ingest_rows_per_s",
        "value": round(args.rows / job_s),
        "unit": "rows/s",
        "baseline": "spark_csv_to_parquet",
        "ratio": round(job_s / spark_s, 3),
        "rows": args.rows,
        "malformed": bad,
        "quarantined": report.rows_quarantined,
        "seconds_job": round(job_s, 3),
        "seconds_spark": round(spark_s, 3),
        "target_ratio": 1.3,
    })


if __name__ == "__main__":
    main()
