"""Analytical queries over a Delta table: `lake sql` (DuckDB by catalog name) vs Spark SQL
vs DuckDB over the raw Parquet files, same tables, same run.

A 20M-row sales table (``--quick``: 2M) partitioned by region, and a 10k-row customer
table. Five queries: a filtered aggregate, two group-bys, a join, a selective lookup.
``ratio`` = lake sql time / DuckDB-on-raw-Parquet time (target 1.2 or less);
``ratio_spark`` = lake sql time / Spark SQL time (target 0.2 or less: 5x faster).
"""

from __future__ import annotations

import shutil

import duckdb

from benchmarks.common import emit, median_times, parse_args, scratch_dir
from lake import Lake, load_settings
from lake.sql import LakeSQL

QUERIES = {
    "filter_agg": "SELECT count(*), avg(amount) FROM bench.sales WHERE region = 3 AND amount > 500",
    "group_by": "SELECT customer % 100 AS c, sum(amount) AS s FROM bench.sales GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "group_by_2": "SELECT region, channel, count(*), avg(amount) FROM bench.sales GROUP BY 1, 2 ORDER BY 1, 2",
    "join": "SELECT c.segment, sum(s.amount) FROM bench.sales s JOIN bench.customers c ON s.customer = c.customer "
            "GROUP BY 1 ORDER BY 1",
    "lookup": "SELECT id, region, customer, amount, channel, day FROM bench.sales WHERE id BETWEEN 1000000 AND 1000100",
}


def build(lake: Lake, rows: int) -> None:
    con = duckdb.connect()
    sales = con.sql(f"""
        SELECT i AS id, (i % 8)::INT AS region, (hash(i) % 10000)::BIGINT AS customer,
               (hash(i * 7) % 100000) / 100.0 AS amount,
               ['web', 'store', 'phone'][(i % 3)::INT + 1] AS channel,
               DATE '2024-01-01' + (i % 365)::INT AS day
        FROM range({rows}) t(i)""")
    lake.table("bench.sales").write(sales.to_arrow_reader(1_000_000), partition_by=["region"])
    customers = con.sql("""SELECT i::BIGINT AS customer, ['consumer', 'smb', 'enterprise'][(i % 3)::INT + 1] AS segment,
                           'customer ' || i AS name FROM range(10000) t(i)""")
    lake.table("bench.customers").write(customers.to_arrow_table())


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=20_000_000, quick_rows=2_000_000)
    base = scratch_dir("sql")
    settings = load_settings({"root": str(base / "lake"), "spark": {"driver_memory": "6g"}}, env={}, config_file=False)
    lake = Lake(settings, catalog=False)
    build(lake, args.rows)
    files = len(lake.table("bench.sales").files())
    print(f"bench.sales: {args.rows:,} rows, {files} files")

    db = LakeSQL(lake)
    raw = duckdb.connect()
    raw.execute("CREATE SCHEMA bench")
    for name in ("sales", "customers"):
        raw.execute(f"CREATE VIEW bench.{name} AS SELECT * FROM read_parquet("
                    f"'{lake.table('bench.' + name).uri}/**/*.parquet', hive_partitioning = true)")
    spark = lake.spark(app_name="bench-sql")
    for name in ("sales", "customers"):
        lake.table(f"bench.{name}").to_spark(spark).createOrReplaceTempView(f"bench_{name}")

    def spark_sql(q: str) -> str:
        return q.replace("bench.sales", "bench_sales").replace("bench.customers", "bench_customers")

    def canon(rows: list) -> list[str]:  # float sums differ in the last digits by summation order
        return sorted(str(tuple(round(v, 2) if isinstance(v, float) else v for v in r)) for r in rows)

    for name, q in QUERIES.items():  # same answers everywhere
        a, b = canon(db.sql(q).fetchall()), canon(raw.sql(q).fetchall())
        c = canon([tuple(r) for r in spark.sql(spark_sql(q)).collect()])
        assert len(a) == len(b) == len(c), name
        assert a == b, f"{name}: lake sql and raw Parquet disagree"
    runs = {
        "lake_sql": lambda: [db.sql(q).fetchall() for q in QUERIES.values()],
        "duckdb_parquet": lambda: [raw.sql(q).fetchall() for q in QUERIES.values()],
        "spark_sql": lambda: [spark.sql(spark_sql(q)).collect() for q in QUERIES.values()],
    }
    times = median_times(runs, args.repeat)
    per_query = {}
    for name, q in QUERIES.items():
        per_query[name] = median_times({
            "lake_sql": lambda q=q: db.sql(q).fetchall(),
            "duckdb_parquet": lambda q=q: raw.sql(q).fetchall(),
        }, args.repeat, warmup=False)
    spark.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    emit({
        "benchmark": "sql",
        "metric": "lake_sql_seconds",
        "value": round(times["lake_sql"], 3),
        "unit": "s",
        "baseline": "duckdb_parquet",
        "ratio": round(times["lake_sql"] / times["duckdb_parquet"], 3),
        "ratio_spark": round(times["lake_sql"] / times["spark_sql"], 3),
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "per_query_seconds": {k: {s: round(t, 4) for s, t in v.items()} for k, v in per_query.items()},
        "rows": args.rows,
        "files": files,
        "targets": {"ratio": 1.2, "ratio_spark": 0.2},
    })


if __name__ == "__main__":
    main()
