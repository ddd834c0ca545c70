"""``make demo``: the backbone end to end on the embedded defaults (``./lakehouse``).

Real public data that ships inside a PyPI package (vega-datasets' monthly stock prices),
so the demo needs no network: landed as yearly CSV files, ingested by the Spark jobs in
``jobs/`` into bronze, cleaned into silver, turned into gold features; then upserts,
time travel, the catalog (search, lineage) and DuckDB queries by table name.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

from lake import Lake, load_settings
from lake.cli.output import print_table
from lake.scaffold import land_stocks

console = Console()


def step(title: str) -> None:
    console.print(Rule(f"[bold]{title}"))


def report_line(report: Any) -> str:
    return (f"{report.job}: batch {report.batch}, {report.rows_read} rows read, {report.rows_written} written, "
            f"{report.rows_quarantined} quarantined -> table v{report.version}"
            + (" (nothing new)" if report.skipped else ""))


def main() -> None:
    started = time.time()
    settings = load_settings()
    if not settings.is_s3 and Path(settings.root_uri).exists():
        shutil.rmtree(settings.root_uri)  # the demo starts from an empty lake every time
    lake = Lake(settings)
    console.print(f"lake root: {lake.storage.root}")
    from lake.pipeline.registry import discover_jobs, jobs_folder
    from lake.pipeline.runner import JobRunner

    jobs = discover_jobs(jobs_folder(settings.jobs_dir))
    runner = JobRunner(lake)
    landing = Path(lake.storage.root) / "landing" / "stocks"

    step("1. Spark job: CSV files -> bronze.stocks (DuckDB parses on the executors, bad lines quarantined)")
    landed = land_stocks(landing, {str(y) for y in range(2000, 2009)})
    (landing / "stocks_broken.csv").write_text(
        "symbol,date,price\nIBM,Jan 1 2011,not-a-price\nIBM,Feb 1 2011\nibm,Mar 1 2011,12.5\nIBM,Apr 1 2011,-3.5\n")
    console.print(f"landed {landed} rows in {len(list(landing.glob('*.csv')))} files (one of them broken); "
                  "quality/bronze_stocks.yaml guards the table (policy: quarantine)")
    console.print(report_line(runner.run(jobs["bronze_stocks"])))
    for row in lake.table("quarantine.bronze_stocks").to_arrow().to_pylist():
        where = f"{Path(row['source_file']).name} line {row['line']}" if row["line"] else row["raw"]
        console.print(f"  quarantined [{row['error_type']}] {where}: {row['reason']}", highlight=False, markup=False)
    shown = lake.catalog.show("bronze.stocks")["quality"][0]
    console.print(f"quality gate on bronze.stocks v0: {shown['statistics']['unsuccessful']} of "
                  f"{shown['statistics']['evaluated']} expectations failed, "
                  f"{shown['statistics']['rows_quarantined']} rows set aside, the rest committed")

    step("2. Incremental: new files arrive; only they are read")
    land_stocks(landing, {"2009", "2010"})
    console.print(report_line(runner.run(jobs["bronze_stocks"])))
    console.print(report_line(runner.run(jobs["bronze_stocks"])))

    step("3. Spark jobs: bronze -> silver (clean) -> gold (features per symbol and month)")
    console.print(report_line(runner.run(jobs["silver_stock_prices"])))
    console.print(report_line(runner.run(jobs["gold_stock_features"])))

    step("4. Upsert into silver from Spark (one MERGE commit), then time travel")
    spark = runner.spark
    silver = lake.table("silver.stock_prices")
    silver.to_spark(spark).createOrReplaceTempView("silver_now")
    corrections = spark.sql(
        "SELECT symbol, date, round(price * 1.01, 2) AS price, 'correction' AS source_file "
        "FROM silver_now WHERE symbol = 'IBM' AND year(date) = 2010 "
        "UNION ALL SELECT 'DEMO', DATE '2010-03-01', 42.0, 'correction'")
    merged = silver.merge(corrections, keys=["symbol", "date"])
    new_version = merged.version or 0
    console.print(f"merge -> v{merged.version}: {merged.metrics['rows_updated']} updated, "
                  f"{merged.metrics['rows_inserted']} inserted, {merged.metrics['files_removed']} files rewritten")
    query = "symbol = 'IBM' AND date >= DATE '2010-01-01'"
    before = silver.to_spark(spark, version=new_version - 1, filter=query).agg({"price": "avg"}).collect()[0][0]
    after = silver.to_spark(spark, filter=query).agg({"price": "avg"}).collect()[0][0]
    console.print(f"average IBM price since 2010: v{new_version - 1} {before:.2f} -> v{new_version} {after:.2f}")
    from lake.errors import SchemaMismatchError

    try:
        silver.write(corrections.selectExpr("symbol", "date", "CAST(price AS STRING) AS price", "source_file"))
    except SchemaMismatchError as exc:
        console.print(f"[yellow]schema enforcement refused a write:[/] {exc.message.splitlines()[-1].strip()}")
    print_table(silver.history(), ["version", "timestamp", "operation", "metrics"], title="silver.stock_prices")

    step("5. Catalog: search (a typo is fine), show, lineage from the landing files to gold")
    catalog = lake.catalog
    catalog.describe("gold.stock_features", "Monthly price features per stock symbol (entity: symbol)")
    catalog.add_owner("gold.stock_features", "quant-team")
    catalog.tag("bronze.stocks", "market-data")
    catalog.define_tag("market-data", propagate=True)
    hits = catalog.search("stok price")
    print_table([{"name": h.name, "layer": h.layer, "version": h.current_version, "tags": h.tags,
                  "matched": h.matched} for h in hits], ["name", "layer", "version", "tags", "matched"])
    shown = catalog.show("gold.stock_features")
    console.print(f"{shown['name']}: v{shown['current_version']}, {shown['version']['rows']} rows, owners "
                  f"{shown['owners']}, inherited tags {shown['inherited_tags']}, upstream {shown['upstream']}",
                  markup=False)
    from catalog.lineage import render

    graph = catalog.lineage("gold.stock_features", direction="upstream", depth=10)
    console.print(render(graph, "text"), highlight=False, markup=False)
    console.print(render(graph, "mermaid"), highlight=False, markup=False)

    step("6. DuckDB by table name, no Spark: `lake sql`")
    from lake.sql import LakeSQL

    db = LakeSQL(lake)
    sql = ("SELECT symbol, count(*) AS months, round(avg(return_1m), 4) AS avg_return, "
           "round(max(volatility_6m), 4) AS max_volatility FROM gold.stock_features GROUP BY 1 ORDER BY 1")
    console.print(sql, markup=False)
    rows = db.sql(sql).fetchall()
    columns = ["symbol", "months", "avg_return", "max_volatility"]
    print_table([dict(zip(columns, r, strict=True)) for r in rows], columns)
    then = db.sql("SELECT count(*) FROM lake_at('bronze.stocks', 0)").fetchone()
    now = db.sql("SELECT count(*) FROM bronze.stocks").fetchone()
    console.print(f"time travel in SQL: bronze.stocks had {then[0] if then else '?'} rows at v0, "
                  f"{now[0] if now else '?'} now")

    step("7. Feature store: Feast definitions over gold, a training set rebuilt exactly, online values")
    features_demo(lake, runner, jobs)

    step("8. Hand-off: the training set exported with its manifest; drift of today's gold against it")
    handoff_demo(lake)

    step("What exists now")
    summary(lake)

    spark.stop()
    console.print(f"[bold green]demo finished in {time.time() - started:.0f} s[/]; try: .venv/bin/lake table ls, "
                  ".venv/bin/lake catalog search stock, .venv/bin/lake catalog lineage gold.stock_features, "
                  ".venv/bin/lake sql")
    # lake ui's default address (lake.console.DEFAULT_PORT)
    console.print("web console: [bold]http://127.0.0.1:8765/[/] (search, lineage graph, runs, features, drift) on "
                  "this lake; open it with: [bold].venv/bin/lake ui --open[/]", highlight=False)


def _at(sources: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{name}@{src['version']}" for name, src in sources.items())


def features_demo(lake: Lake, runner: Any, jobs: dict[str, Any]) -> None:
    """Apply feature_repo/, save a point-in-time training set, move the sources on, reproduce, serve."""
    from lake.features.apply import apply
    from lake.features.materialize import materialize
    from lake.features.online import get_online_features
    from lake.features.training import reproduce, save_training_dataset
    from lake.sql import LakeSQL

    applied = apply(lake, Path("feature_repo"))
    console.print(f"applied feature views {applied.feature_views}, on-demand {applied.on_demand_views}, "
                  f"services {applied.feature_services} (registered in the catalog with lineage)")
    # Labels: did the price rise over the next month? One row per symbol and month, as of mid-month.
    entities = LakeSQL(lake).sql("""
        SELECT symbol, CAST(date AS TIMESTAMP) + INTERVAL 14 DAY AS event_timestamp,
               CAST(lead(price) OVER (PARTITION BY symbol ORDER BY date) > price AS INT) AS label
        FROM silver.stock_prices WHERE symbol <> 'DEMO' QUALIFY label IS NOT NULL""").arrow()
    saved = save_training_dataset(lake, "stock_direction", entities, feature_service="stock_model_v1",
                                  description="Next-month price direction per symbol")
    console.print(f"training set {saved.id[:12]}: {saved.rows} rows x {saved.frame.data.num_columns} columns "
                  f"-> {saved.table} v{saved.version}; sources {_at(saved.sources)}; "
                  f"content hash {saved.content_hash[:16]}", highlight=False)
    print_table(saved.frame.data.slice(100, 3).to_pylist(), saved.frame.data.column_names)
    console.print(report_line(runner.run(jobs["gold_stock_features"])) + " (the source moved on)")
    again = reproduce(lake, saved.id)
    console.print(f"`lake training reproduce {saved.id[:12]}`: rebuilt {again.rows} rows from "
                  f"{_at(again.sources)}, hash "
                  f"{'matches' if again.matches else 'DIFFERS'}", highlight=False)
    for result in materialize(lake) + materialize(lake, incremental=True):
        console.print(f"materialize {result.view} ({result.mode}): {result.entities} entities from "
                      f"{result.table}@{result.version}, {result.files_read} files read")
    online = get_online_features(lake, [{"symbol": s} for s in ("AAPL", "MSFT", "NOPE")],
                                 feature_service="stock_model_v1")
    names = list(online)
    print_table([dict(zip(names, row, strict=True)) for row in zip(*online.values(), strict=True)], names,
                title="online values (NOPE is not an entity: nulls)")


def handoff_demo(lake: Lake) -> None:
    """Export the saved training set for a job elsewhere; compare the current gold table with it."""
    from lake import handoff
    from lake.monitor import METRICS, drift_report

    out = Path(lake.storage.root) / "_exports" / "stock_direction"
    exported = handoff.export(lake, "stock_direction", str(out),
                              splits=handoff.SplitSpec.parse("train=0.8,test=0.2", keys="symbol"), overwrite=True)
    manifest = handoff.read_manifest(str(out))
    console.print(f"exported {manifest['dataset']['row_count']} rows of training.stock_direction "
                  f"v{manifest['dataset']['version']} to {out} ({len(exported.files)} files + manifest.json with "
                  f"sources, content hash and checksums)", highlight=False)
    html = Path(lake.storage.root) / "_reports" / "drift_stock_direction.html"
    html.parent.mkdir(parents=True, exist_ok=True)
    report = drift_report(lake, reference="training:stock_direction", current="gold.stock_features",
                          columns=["price", "return_1m", "volatility_6m"], html=html)
    shown = {m.label: m.column_key for m in METRICS if m.label is not None}
    print_table([{"feature": f.name, "status": f.status, **{label: f.metrics.get(key) for label, key in shown.items()}}
                 for f in report.features], ["feature", "status", *shown],
                title=f"drift: training.stock_direction vs gold.stock_features -> {report.status}")
    console.print(f"HTML report: {html}; stored in the catalog (`lake monitor reports gold.stock_features`)")


def summary(lake: Lake) -> None:
    """Tables, catalog contents, feature views, training sets and reports after the demo."""
    rows = []
    for ref in lake.tables():
        t = lake.table(ref.name)
        rows.append({"table": ref.name, "version": t.version(), "rows": t.details().get("rows")})
    print_table(rows, ["table", "version", "rows"], title="lake tables")
    counts = lake.catalog.counts()
    console.print(f"catalog: {counts['datasets']} datasets, {counts['versions']} versions, {counts['runs']} runs, "
                  f"{counts['edges']} lineage edges; {len(lake.catalog.training_datasets())} training datasets, "
                  f"{len(lake.catalog.reports())} reports", highlight=False)


if __name__ == "__main__":
    main()
