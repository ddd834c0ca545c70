"""``make demo``: the backbone end to end on the embedded defaults (``./lakehouse``).

Uses a real public dataset that ships inside a PyPI package (vega-datasets' daily
stock prices) so the demo needs no network.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

from lake import Lake, load_settings
from lake.cli.output import print_table

console = Console()


def stocks_csv() -> str:
    from vega_datasets import local_data

    return str(local_data.stocks.filepath)


def step(title: str) -> None:
    console.print(Rule(f"[bold]{title}"))


def main() -> None:
    started = time.time()
    settings = load_settings()
    lake = Lake(settings)
    if not settings.is_s3 and Path(settings.root_uri).exists():
        shutil.rmtree(settings.root_uri)  # the demo starts from an empty lake every time
    console.print(f"lake root: {lake.storage.root}")

    step("1. Spark writes a Delta table (executors write Parquet, the driver commits via delta-rs)")
    spark = lake.spark(app_name="lake-demo")
    raw = (
        spark.read.option("header", True).csv(stocks_csv())
        .selectExpr("symbol", "to_date(date, 'MMM d yyyy') as date", "cast(price as double) as price")
    )
    stocks = lake.table("bronze.stocks")
    created = stocks.write(raw, partition_by=["symbol"], description="Monthly closing prices (vega-datasets)")
    console.print(f"created {stocks.name} v{created.version}: {created.rows_written} rows, "
                  f"{created.metrics['files_added']} files, partitioned by symbol")

    step("2. Upsert: corrected prices for IBM in 2010 and a new symbol, as one MERGE commit")
    corrections = raw.filter("symbol = 'IBM' and year(date) = 2010").selectExpr(
        "symbol", "date", "round(price * 1.01, 2) as price"
    ).unionByName(spark.createDataFrame([("DEMO", "2010-03-01", 42.0)], "symbol string, date string, price double")
                  .selectExpr("symbol", "to_date(date) as date", "price"))
    merged = stocks.merge(corrections, keys=["symbol", "date"])
    console.print(f"merge -> v{merged.version}: {merged.metrics['rows_updated']} updated, "
                  f"{merged.metrics['rows_inserted']} inserted, {merged.metrics['files_removed']} files rewritten")

    step("3. Time travel: the same query on version 0 and on the latest version")
    query = "symbol = 'IBM' AND date >= DATE '2010-01-01'"
    v0 = stocks.to_spark(spark, version=0, filter=query).agg({"price": "avg"}).collect()[0][0]
    now = stocks.to_spark(spark, filter=query).agg({"price": "avg"}).collect()[0][0]
    console.print(f"average IBM price since 2010: v0 {v0:.2f} -> latest {now:.2f}")

    step("4. Schema enforcement: a write with the wrong type is refused, nothing changes")
    from lake.errors import SchemaMismatchError

    try:
        stocks.write(raw.selectExpr("symbol", "date", "cast(price as string) as price"))
    except SchemaMismatchError as exc:
        console.print(f"[yellow]refused:[/] {exc.message.splitlines()[-1].strip()}")
    console.print(f"table still at v{stocks.version()}")

    step("5. History")
    print_table(stocks.history(), ["version", "timestamp", "operation", "metrics"])
    spark.stop()
    console.print(f"[bold green]demo finished in {time.time() - started:.0f} s[/]; try: "
                  f".venv/bin/lake table ls, .venv/bin/lake table history bronze.stocks")


if __name__ == "__main__":
    main()
