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

    from pyspark.sql import functions as F

    step("1. Spark writes a Delta table (executors write Parquet, the driver commits via delta-rs)")
    spark = lake.spark(app_name="lake-demo")
    raw = (
        spark.read.option("header", True).csv(stocks_csv())
        .selectExpr("symbol", "to_date(date, 'MMM d yyyy') as date", "cast(price as double) as price")
    )
    stocks = lake.table("bronze.stocks")
    with lake.run("ingest.stocks", parameters={"source": stocks_csv()}) as run:
        run.input(stocks_csv(), namespace="file", format="csv")
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

    step("6. A gold table built inside a catalog run: its input version is recorded")
    with lake.run("aggregate.stock_stats") as run:
        src = stocks.to_spark(spark)
        stats = src.groupBy("symbol").agg(
            F.min("price").alias("min_price"), F.max("price").alias("max_price"),
            F.avg("price").alias("avg_price"), F.count("*").alias("months"))
        gold = lake.table("gold.stock_stats").write(stats)
        run.column_lineage("gold.stock_stats", {
            "min_price": [("bronze.stocks", "price", "min")], "max_price": [("bronze.stocks", "price", "max")],
            "avg_price": [("bronze.stocks", "price", "avg")], "symbol": [("bronze.stocks", "symbol")]})
    console.print(f"gold.stock_stats v{gold.version}: {gold.rows_written} symbols")
    catalog = lake.catalog
    catalog.describe("gold.stock_stats", "Price statistics per stock symbol over the whole history")
    catalog.add_owner("gold.stock_stats", "quant-team")
    catalog.tag("bronze.stocks", "market-data")
    catalog.define_tag("market-data", propagate=True)

    step("7. Catalog: search (a typo is fine), show, lineage")
    hits = catalog.search("stok prices")
    print_table([{"name": h.name, "layer": h.layer, "version": h.current_version, "tags": h.tags,
                  "matched": h.matched} for h in hits], ["name", "layer", "version", "tags", "matched"])
    shown = catalog.show("gold.stock_stats")
    console.print(f"{shown['name']}: v{shown['current_version']}, {shown['version']['rows']} rows, owners "
                  f"{shown['owners']}, tags {shown['inherited_tags']}, upstream {shown['upstream']}")
    from catalog.lineage import render

    console.print(render(catalog.lineage("gold.stock_stats", direction="upstream"), "text"), highlight=False, markup=False)
    console.print(render(catalog.lineage("gold.stock_stats", direction="upstream"), "mermaid"), highlight=False, markup=False)
    console.print(render(catalog.lineage("gold.stock_stats", column="avg_price", direction="upstream"), "text"),
                  highlight=False)
    spark.stop()

    step("8. DuckDB by catalog name, no Spark: `lake sql`")
    from lake.sql import LakeSQL

    db = LakeSQL(lake)
    query = ("SELECT s.symbol, round(g.avg_price, 2) AS avg_price, max(s.date) AS last_month "
             "FROM bronze.stocks s JOIN gold.stock_stats g USING (symbol) GROUP BY ALL ORDER BY 1")
    console.print(query, markup=False)
    rows = db.sql(query).fetchall()
    print_table([dict(zip(["symbol", "avg_price", "last_month"], r, strict=True)) for r in rows],
                ["symbol", "avg_price", "last_month"])
    then = db.sql("SELECT count(*) FROM lake_at('bronze.stocks', 0)").fetchone()
    now = db.sql("SELECT count(*) FROM bronze.stocks").fetchone()
    console.print(f"time travel in SQL: bronze.stocks had {then[0] if then else '?'} rows at v0, "
                  f"{now[0] if now else '?'} now")
    console.print(f"[bold green]demo finished in {time.time() - started:.0f} s[/]; try: .venv/bin/lake table ls, "
                  ".venv/bin/lake catalog search stock, .venv/bin/lake catalog lineage gold.stock_stats")


if __name__ == "__main__":
    main()
