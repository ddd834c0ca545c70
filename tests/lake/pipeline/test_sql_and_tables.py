"""SQL database sources (PostgreSQL for real), table transforms, the example pipeline, the CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from lake.cli.main import main
from lake.lakehouse import Lake
from lake.pipeline import Job, SqlSource, TableSource
from lake.pipeline.runner import JobError, JobRunner
from tests.logcapture import all_loggers_at_debug, logged_text

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def orders_db(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database with an orders table (1000 rows) behind a password-bearing URL."""
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INT PRIMARY KEY, customer TEXT, amount NUMERIC(10, 2), "
                          "updated_at TIMESTAMPTZ NOT NULL)"))
        conn.execute(text("INSERT INTO orders SELECT i, 'c' || (i % 37), i * 1.25, "
                          "TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '1 minute' FROM generate_series(1, 1000) i"))
    engine.dispose()
    yield pg_url


@pytest.mark.postgres
def test_sql_source_full_partitioned_then_incremental(local_lake: Lake, spark: Any, orders_db: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PG_PASSWORD", "not-needed-but-secret-Zq1")
    url = orders_db.replace("postgres@", "postgres:${PG_PASSWORD}@")
    job = Job(name="orders_pg", target="bronze.orders_pg", source=SqlSource(
        url=url, table="orders", watermark="updated_at", partition_column="id", partitions=4))
    runner = JobRunner(local_lake, spark=spark)
    with all_loggers_at_debug(caplog):
        _incremental_runs(local_lake, runner, job, orders_db)
    # The password never reached the logs (every logger at DEBUG) nor the terminal (capfd: the
    # process's stdout and stderr file descriptors, so also what native code prints).
    logs = logged_text(caplog)
    assert "orders_pg" in logs  # the logs were captured (the runs log their job)
    assert "not-needed-but-secret-Zq1" not in logs
    printed = capfd.readouterr()
    assert "not-needed-but-secret-Zq1" not in printed.out + printed.err


def _incremental_runs(local_lake: Lake, runner: JobRunner, job: Job, orders_db: str) -> None:
    first = runner.run(job)
    assert first.rows_written == 1000 and first.files >= 4  # four ranges read in parallel
    t = local_lake.table("bronze.orders_pg").to_arrow()
    assert sorted(t.column("id").to_pylist()) == list(range(1, 1001))
    assert str(t.schema.field("amount").type).startswith("decimal128")
    assert runner.run(job).skipped  # nothing above the watermark
    engine = create_engine(orders_db)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO orders SELECT i, 'new', 1, now() FROM generate_series(1001, 1010) i"))
        conn.execute(text("UPDATE orders SET amount = 0, updated_at = now() WHERE id = 5"))
    engine.dispose()
    third = runner.run(job)
    assert third.rows_written == 11  # 10 new rows and the updated one
    assert local_lake.table("bronze.orders_pg").to_arrow().num_rows == 1011
    # The password never reached the catalog, the events or the table.
    everything = json.dumps(local_lake.catalog.runs(), default=str) + json.dumps(
        [local_lake.catalog.run_info(r["run_id"]) for r in local_lake.catalog.runs()], default=str)
    everything += Path(local_lake.storage.root, "openlineage.jsonl").read_text()
    everything += str(local_lake.table("bronze.orders_pg").to_arrow().column("_source").unique())
    assert "not-needed-but-secret-Zq1" not in everything


def test_unreachable_database_and_bad_urls_are_one_message(local_lake: Lake, spark: Any) -> None:
    runner = JobRunner(local_lake, spark=spark)
    with pytest.raises(JobError, match=r"cannot read postgresql\+psycopg://u:\*\*\*\*@127.0.0.1:1/x"):
        runner.run(Job(name="down", target="bronze.x", source=SqlSource(
            url="postgresql+psycopg://u:pw@127.0.0.1:1/x", table="t")))
    with pytest.raises(JobError, match="bad source URL|cannot read"):
        runner.run(Job(name="bad", target="bronze.x", source=SqlSource(url="nosuchdialect://x/y", table="t")))
    with pytest.raises(JobError, match="LAKE_NOPE_VAR"):
        runner.run(Job(name="env", target="bronze.x", source=SqlSource(url="sqlite:///${LAKE_NOPE_VAR}", table="t")))


def write_stocks_landing(lake: Lake) -> int:
    from vega_datasets import local_data

    rows = list(csv.reader(Path(local_data.stocks.filepath).read_text(encoding="utf-8").splitlines()))
    landing = Path(lake.storage.root, "landing", "stocks")
    landing.mkdir(parents=True)
    years: dict[str, list[list[str]]] = {}
    for r in rows[1:]:
        years.setdefault(r[1].split()[-1], []).append(r)
    for year, rs in years.items():
        with open(landing / f"stocks_{year}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(rows[0])
            w.writerows(rs)
    return len(rows) - 1


def test_example_pipeline_bronze_silver_gold(local_lake: Lake, spark: Any) -> None:
    from lake.pipeline.registry import discover_jobs

    total = write_stocks_landing(local_lake)
    jobs = discover_jobs(REPO / "jobs")
    runner = JobRunner(local_lake, spark=spark)
    bronze = runner.run(jobs["bronze_stocks"])
    assert (bronze.rows_read, bronze.rows_written, bronze.rows_quarantined) == (total, total, 0)
    silver = runner.run(jobs["silver_stock_prices"])
    gold = runner.run(jobs["gold_stock_features"])
    assert silver.rows_written == gold.rows_written == total
    feats = local_lake.table("gold.stock_features").to_pandas()
    ibm = feats[feats.symbol == "IBM"].sort_values("event_timestamp")
    assert ibm["return_1m"].isna().sum() == 1  # the first month has no previous price
    assert abs(ibm["return_1m"].iloc[1] - (ibm["price"].iloc[1] / ibm["price"].iloc[0] - 1)) < 1e-12
    graph = local_lake.catalog.lineage("gold.stock_features", direction="upstream", depth=5)
    assert ("bronze.stocks", "silver.stock_prices") in graph.edges
    assert ("silver.stock_prices", "gold.stock_features") in graph.edges
    run = local_lake.catalog.run_info(gold.run_id)
    assert run["inputs"] == [{"namespace": "lake", "name": "silver.stock_prices", "version": 0}]
    # A retried transform with the same batch is not applied twice.
    assert runner.run(jobs["silver_stock_prices"]).version == 1


def test_transform_with_a_function_and_merge(local_lake: Lake, spark: Any) -> None:
    import pyarrow as pa

    local_lake.table("silver.src").write(pa.table({"k": [1, 2, 3], "v": [10, 20, 30]}))

    def double(spark: Any, inputs: dict[str, Any], params: dict[str, str]) -> Any:
        factor = int(params.get("factor", "2"))
        return inputs["silver.src"].selectExpr("k", f"v * {factor} AS v")

    job = Job(name="doubled", target="gold.doubled", mode="merge", keys=["k"],
              source=TableSource(tables=["silver.src"], transform=double))
    runner = JobRunner(local_lake, spark=spark)
    runner.run(job)
    local_lake.table("silver.src").write(pa.table({"k": [4], "v": [40]}))
    runner.run(job, params={"factor": "3"})
    rows = sorted(local_lake.table("gold.doubled").to_arrow().to_pylist(), key=lambda r: r["k"])
    assert rows == [{"k": 1, "v": 30}, {"k": 2, "v": 60}, {"k": 3, "v": 90}, {"k": 4, "v": 120}]
    with pytest.raises(JobError, match="Spark SQL failed"):
        runner.run(Job(name="bad_sql", target="gold.x", source=TableSource(tables=["silver.src"],
                                                                           sql="SELECT nope FROM silver.src")))


def test_cli_jobs_list_run_status_and_ingest(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, spark: Any) -> None:
    root = tmp_path / "lakehouse"
    monkeypatch.setenv("LAKE_JOBS_DIR", str(REPO / "jobs"))
    monkeypatch.setenv("LAKE_CONFIG", "")
    assert main(["--root", str(root), "jobs", "list", "--json"]) == 0
    names = {j["name"] for j in json.loads(capsys.readouterr().out)}
    assert names >= {"bronze_stocks", "silver_stock_prices", "gold_stock_features"}
    write_stocks_landing(Lake(__import__("tests.conftest", fromlist=["make_settings"]).make_settings(root=str(root))))
    assert main(["--root", str(root), "jobs", "run", "bronze_stocks", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_written"] == 560 and report["batch"] == 1
    assert main(["--root", str(root), "jobs", "status", report["run_id"], "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "completed" and status["stats"]["rows_written"] == 560
    assert main(["--root", str(root), "jobs", "run", "no_such_job"]) == 1
    assert "no job named 'no_such_job'" in capsys.readouterr().err
    assert main(["--root", str(root), "jobs", "run", "bronze_stocks", "--param", "oops"]) == 1
    assert "key=value" in capsys.readouterr().err
    extra = tmp_path / "drop"
    extra.mkdir()
    (extra / "a.csv").write_text("id,v\n1,a\n2,b\n3\n")
    assert main(["--root", str(root), "ingest", str(extra / "*.csv"), "--table", "bronze.dropped", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["rows_written"], got["rows_quarantined"]) == (2, 1)
    assert main(["--root", str(root), "ingest", str(extra / "*.csv"), "--table", "bronze.dropped", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] is True
