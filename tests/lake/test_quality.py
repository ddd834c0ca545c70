"""Quality gates (Great Expectations 1.x) under each policy, on local storage and S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from lake.cli.main import main
from lake.errors import QualityGateError, SuiteError
from lake.lakehouse import Lake
from lake.pipeline import FileSource, Job
from lake.pipeline.runner import JobRunner
from lake.quality.gate import failing_condition, validate
from lake.quality.suite import Expectation, Suite, parse_suite
from tests.catalog.helpers import stored_events
from tests.catalog.ol_schema import validate_run_event
from tests.lake.pipeline.test_files import put

pytestmark = pytest.mark.spark

ROWS = ["id,name,amount,day"] + [f"{i},n{i},{i * 1.5},2024-01-{1 + i % 28:02d}" for i in range(100)]
# Known bad rows: a negative amount (rows 10, 20), a lowercase-free name (row 30), a null name (row 40).
ROWS[11] = "10,n10,-1.0,2024-01-11"
ROWS[21] = "20,n20,-5.0,2024-01-21"
ROWS[31] = "30,BAD NAME,45.0,2024-01-03"
ROWS[41] = "40,,60.0,2024-01-13"
BAD_IDS = {10, 20, 30, 40}


def suite_file(tmp_path: Path, policy: str, extra: str = "") -> str:
    path = tmp_path / f"orders_{policy}.yaml"
    path.write_text(f"""
suite: orders_{policy}
table: bronze.orders
policy: {policy}
expectations:
  - expect_column_values_to_not_be_null: {{column: name}}
  - expect_column_values_to_match_regex: {{column: name, regex: "^n[0-9]+$"}}
  - expect_column_values_to_be_between: {{column: amount, min_value: 0}}
  - expect_column_values_to_be_unique: {{column: id}}
  - expect_table_row_count_to_be_between: {{min_value: 1, max_value: 1000}}
{extra}""")
    return str(path)


def job(path: str) -> Job:
    return Job(name="orders", target="bronze.orders", quality=path, source=FileSource(
        "landing/orders/*.csv", columns={"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE", "day": "DATE"}))


@pytest.fixture
def landed(lake: Lake) -> Lake:
    put(lake, "landing/orders/a.csv", ("\n".join(ROWS) + "\n").encode())
    return lake


def test_policy_fail_commits_nothing_and_says_why(landed: Lake, spark: Any, tmp_path: Path) -> None:
    runner = JobRunner(landed, spark=spark)
    with pytest.raises(QualityGateError) as err:
        runner.run(job(suite_file(tmp_path, "fail")))
    text = str(err.value)
    assert "expect_column_values_to_be_between on column amount: 2 rows failed" in text
    assert "expect_column_values_to_not_be_null on column name: 1 rows failed" in text
    assert "-1.0" in text or "-5.0" in text  # examples
    assert not landed.table("bronze.orders").exists()  # the version did not move (no table at all)
    failed = landed.catalog.runs(status="failed")
    assert len(failed) == 1
    # Nothing was left behind in the table folder either.
    leftovers = [f for f in landed.storage.list_files(landed.table("bronze.orders").uri) if f.path.endswith(".parquet")]
    assert leftovers == []


def test_policy_quarantine_sets_bad_rows_aside_with_the_expectation(landed: Lake, spark: Any, tmp_path: Path) -> None:
    runner = JobRunner(landed, spark=spark)
    report = runner.run(job(suite_file(tmp_path, "quarantine")))
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (100, 96, 4)
    ids = set(landed.table("bronze.orders").to_arrow().column("id").to_pylist())
    assert ids == set(range(100)) - BAD_IDS
    q = landed.table("quarantine.bronze_orders").to_arrow().to_pylist()
    by_id = {json.loads(r["raw"])["id"]: r for r in q}
    assert set(by_id) == BAD_IDS
    assert by_id[10]["error_type"] == "EXPECTATION" and "expect_column_values_to_be_between" in by_id[10]["reason"]
    assert "match_regex" in by_id[30]["reason"] and "not_be_null" in by_id[40]["reason"]
    shown = landed.catalog.show("bronze.orders")
    assert shown["quality_status"] == "failed" and shown["quality"][0]["policy"] == "quarantine"
    assert shown["quality"][0]["statistics"]["rows_quarantined"] == 4
    # The COMPLETE event carries the assertions, valid against the official OpenLineage schemas
    # (the catalog's copy on any storage, and the JSON-lines file beside a local lake).
    events = stored_events(landed.catalog)
    if landed.storage.is_local:
        events += [json.loads(line) for line in Path(landed.storage.root, "openlineage.jsonl").read_text().splitlines()]
    checked = set()
    for event in events:
        checked |= {(c.where, c.key) for c in validate_run_event(event)}
    assert {("dataset", "dataQualityAssertions"), ("dataset", "dataQualityMetrics")} <= checked
    complete = next(e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == "orders")
    out = next(o for o in complete["outputs"] if o["name"] == "bronze.orders")
    assertions = out["facets"]["dataQualityAssertions"]["assertions"]
    assert any(a["assertion"] == "expect_column_values_to_be_between" and a["column"] == "amount"
               and a["success"] is False for a in assertions)
    metrics = out["facets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == 100 and metrics["columnMetrics"]["name"]["nullCount"] == 1


def test_policy_warn_commits_and_records(landed: Lake, spark: Any, tmp_path: Path) -> None:
    report = JobRunner(landed, spark=spark).run(job(suite_file(tmp_path, "warn")))
    assert report.rows_written == 100 and report.rows_quarantined == 0
    assert [h.name for h in landed.catalog.search("", quality="failed")] == ["bronze.orders"]


def test_policy_fail_on_an_existing_table_leaves_its_version(landed: Lake, spark: Any, tmp_path: Path) -> None:
    runner = JobRunner(landed, spark=spark)
    first = runner.run(job(suite_file(tmp_path, "warn")))  # commits version 0 (the failures are only recorded)
    t = landed.table("bronze.orders")
    assert (first.version, t.version(), first.rows_written) == (0, 0, 100)
    files_before = sorted(f.path for f in landed.storage.list_files(t.uri))
    rows_before = sorted(t.to_arrow().column("id").to_pylist())
    more = ["id,name,amount,day"] + [f"{i},n{i},{-2.0 if i in (105, 107) else 1.0},2024-02-01" for i in range(100, 110)]
    put(landed, "landing/orders/b.csv", ("\n".join(more) + "\n").encode())
    # The job path (Spark): the gate fails, nothing is committed.
    with pytest.raises(QualityGateError, match="expect_column_values_to_be_between on column amount: 2 rows failed"):
        runner.run(job(suite_file(tmp_path, "fail")))
    assert t.version() == 0
    assert sorted(t.to_arrow().column("id").to_pylist()) == rows_before
    assert sorted(f.path for f in landed.storage.list_files(t.uri)) == files_before  # no orphans, no new commit
    assert landed.catalog.runs(job="orders")[0]["status"] == "failed"
    # A Spark DataFrame written to the existing table through the API: the same.
    strict = Suite("s", "bronze.orders", "fail", (
        Expectation("expect_column_values_to_be_between", {"column": "amount", "min_value": 0}),))
    bad = spark.createDataFrame([(200, "n200", -1.0)], "id long, name string, amount double").selectExpr(
        "id", "name", "amount", "date'2024-03-01' AS day")
    with pytest.raises(QualityGateError, match="1 rows failed"):
        t.write(bad, quality=strict)
    assert t.version() == 0
    assert sorted(f.path for f in landed.storage.list_files(t.uri)) == files_before
    # The refused file was not marked as ingested: the next run (warn) reads it, and only it.
    again = runner.run(job(suite_file(tmp_path, "warn")))
    assert (again.files, again.rows_written, again.version, t.version()) == (1, 10, 1, 1)


def test_a_failing_freshness_expectation_stops_the_commit(landed: Lake, spark: Any, tmp_path: Path) -> None:
    # The landed rows are dated January 2024: older than 30 days, fresher than 100 000.
    stale = suite_file(tmp_path, "fail").replace(".yaml", "_stale.yaml")
    Path(stale).write_text("suite: orders_fresh\ntable: bronze.orders\npolicy: fail\nexpectations:\n"
                           "  - expect_column_values_to_be_fresh: {column: day, max_age_days: 30}\n")
    runner = JobRunner(landed, spark=spark)
    with pytest.raises(QualityGateError, match="expect_column_values_to_be_fresh on column day: observed") as err:
        runner.run(job(stale))
    (result,) = err.value.report.results  # type: ignore[union-attr]
    assert result["success"] is False and result["error"] is None  # a real failure, not a broken check
    assert str(result["observed_value"]).startswith("2024-01-28")  # the newest day in the data
    assert not landed.table("bronze.orders").exists()
    # Table-level: a quarantine suite cannot set rows aside for it, so nothing is committed either.
    Path(stale).write_text(Path(stale).read_text().replace("policy: fail", "policy: quarantine"))
    with pytest.raises(QualityGateError, match="about the whole table"):
        runner.run(job(stale))
    assert not landed.table("bronze.orders").exists()
    # The same check with a generous bound passes and commits.
    Path(stale).write_text(Path(stale).read_text().replace("max_age_days: 30", "max_age_days: 100000"))
    assert runner.run(job(stale)).rows_written == 100


def test_cli_validate_a_past_version_with_a_suite_file(local_lake: Lake, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t = local_lake.table("gold.prices")
    t.write(pa.table({"id": [1, 2, 3], "price": [1.0, 2.0, 3.0],
                      "updated": [now - dt.timedelta(days=1)] * 3}))  # version 0: fresh and valid
    t.write(pa.table({"id": [1, 2, 3], "price": [1.0, -2.0, 3.0],
                      "updated": [dt.datetime(2020, 1, 1, tzinfo=dt.UTC)] * 3}), mode="overwrite")  # version 1
    suite = tmp_path / "prices_suite.yaml"
    suite.write_text("suite: prices\ntable: gold.prices\nexpectations:\n"
                     "  - expect_column_values_to_be_between: {column: price, min_value: 0}\n"
                     "  - expect_column_values_to_be_fresh: {column: updated, max_age_days: 7}\n")
    monkeypatch.setenv("LAKE_CONFIG", "")
    monkeypatch.setenv("LAKE_QUALITY_DIR", str(tmp_path / "no_quality_folder"))  # only --suite names a suite
    root = local_lake.storage.root
    assert main(["--root", root, "quality", "validate", "gold.prices", "--version", "0", "--suite", str(suite),
                 "--json"]) == 0
    passed = json.loads(capsys.readouterr().out)
    assert (passed["version"], passed["suite"], passed["success"]) == (0, "prices", True)
    assert main(["--root", root, "quality", "validate", "gold.prices", "--version", "1", "--suite", str(suite),
                 "--json"]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert (failed["version"], failed["success"]) == (1, False)
    by_type = {r["expectation"]: r for r in failed["results"]}
    assert by_type["expect_column_values_to_be_between"]["unexpected_count"] == 1
    assert by_type["expect_column_values_to_be_fresh"]["success"] is False
    assert str(by_type["expect_column_values_to_be_fresh"]["observed_value"]).startswith("2020-01-01")
    # Each result is attached to the version it was about; the table itself did not change.
    assert local_lake.catalog.show("gold.prices", version=0)["quality_status"] == "passed"
    assert local_lake.catalog.show("gold.prices", version=1)["quality_status"] == "failed"
    assert t.version() == 1
    assert main(["--root", root, "quality", "validate", "gold.prices", "--version", "1"]) == 1
    assert "no suite for gold.prices" in capsys.readouterr().err  # without --suite: the (empty) quality folder


def test_table_level_failures_cannot_be_quarantined(landed: Lake, spark: Any, tmp_path: Path) -> None:
    path = suite_file(tmp_path, "quarantine", "  - expect_table_row_count_to_be_between: {min_value: 5000}\n")
    with pytest.raises(QualityGateError, match="about the whole table"):
        JobRunner(landed, spark=spark).run(job(path))
    assert not landed.table("bronze.orders").exists()


def test_python_writes_are_gated_too(local_lake: Lake) -> None:
    suite = Suite("s", "silver.scores", "quarantine", (
        Expectation("expect_column_values_to_be_between", {"column": "score", "min_value": 0, "max_value": 1}),
        Expectation("expect_column_values_to_be_in_set", {"column": "grade", "value_set": ["A", "B"]}),
    ))
    data = pa.table({"id": [1, 2, 3, 4], "score": [0.5, 1.5, 0.2, None], "grade": ["A", "B", "Z", "A"]})
    t = local_lake.table("silver.scores")
    t.write(data, quality=suite)
    assert sorted(t.to_arrow().column("id").to_pylist()) == [1, 4]  # NULL passes a range check, as in GE
    assert local_lake.table("quarantine.silver_scores").to_arrow().num_rows == 2
    strict = Suite("s", "silver.scores", "fail", suite.expectations)
    with pytest.raises(QualityGateError, match="expect_column_values_to_be_in_set on column grade: 1 rows"):
        t.write(data, quality=strict)
    assert t.version() == 0


def test_row_conditions_agree_with_great_expectations(spark: Any) -> None:
    """The rows the gate quarantines are exactly the ones GE counts as unexpected."""
    pdf = pd.DataFrame({"a": [1, 2, 2, None, 5, 7], "b": [0, 3, 1, 1, None, 2],
                        "s": ["x1", "y2", None, "x3", "zz", "x10"]})
    df = spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None))
    exps = [
        Expectation("expect_column_values_to_not_be_null", {"column": "s"}),
        Expectation("expect_column_values_to_be_between", {"column": "a", "min_value": 2, "max_value": 5}),
        Expectation("expect_column_values_to_be_in_set", {"column": "s", "value_set": ["x1", "x3"]}),
        Expectation("expect_column_values_to_not_be_in_set", {"column": "s", "value_set": ["zz"]}),
        Expectation("expect_column_values_to_match_regex", {"column": "s", "regex": "^x[0-9]$"}),
        Expectation("expect_column_values_to_be_unique", {"column": "a"}),
        Expectation("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "a", "column_B": "b"}),
        Expectation("expect_column_value_lengths_to_be_between", {"column": "s", "min_value": 2, "max_value": 2}),
    ]
    report = validate(df, Suite("agree", "t.t", "warn", tuple(exps)))
    from pyspark.sql import functions as F

    for exp, result in zip(exps, report.results, strict=True):
        ours = df.select(F.expr(f"CASE WHEN {failing_condition(exp)} THEN 1 ELSE 0 END").alias("f")).groupBy().sum("f")
        assert (ours.collect()[0][0] or 0) == result["unexpected_count"], exp.describe()


def test_suite_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="policy must be"):
        parse_suite({"table": "a.b", "policy": "maybe", "expectations": []}, "x.yaml")
    with pytest.raises(SuiteError, match="not a Great Expectations expectation"):
        parse_suite({"table": "a.b", "expectations": [{"expect_the_moon": {}}]}, "x.yaml")
    with pytest.raises(SuiteError, match="expectation 1 must be one"):
        parse_suite({"table": "a.b", "expectations": ["oops"]}, "x.yaml")


def test_cli_validate_profile_docs(local_lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    local_lake.table("gold.prices").write(pa.table({"id": [1, 2, 3], "price": [1.0, 2.0, -3.0],
                                                   "kind": ["a", "b", "a"]}))
    root = local_lake.storage.root
    assert main(["--root", root, "quality", "profile", "gold.prices"]) == 0
    proposed = capsys.readouterr().out
    assert "expect_column_values_to_be_unique" in proposed and "value_set" in proposed
    qdir = tmp_path / "quality"
    qdir.mkdir()
    (qdir / "prices.yaml").write_text(proposed.replace("min_value: -3.0", "min_value: 0.0"))
    monkeypatch.setenv("LAKE_QUALITY_DIR", str(qdir))
    monkeypatch.setenv("LAKE_CONFIG", "")
    assert main(["--root", root, "quality", "validate", "gold.prices", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["success"] is False and result["statistics"]["unsuccessful"] == 1
    assert main(["--root", root, "catalog", "show", "gold.prices", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quality_status"] == "failed"
    assert main(["--root", root, "quality", "docs", "--out", str(tmp_path / "docs")]) == 0
    site = capsys.readouterr().out
    index = Path(site.split("Data Docs:", 1)[1].strip().replace("file://", ""))
    assert index.is_file() and "prices" in index.read_text()


def test_row_conditions_quote_values_and_names_exactly_in_both_dialects(spark: Any) -> None:
    """Values with quotes and backslashes, and odd column names, mean the same in Spark and DuckDB."""
    import duckdb

    rows = [{"na`me's": "it's", "co de": "123"}, {"na`me's": "plain", "co de": "12a"},
            {"na`me's": "a\\b", "co de": "7"}]
    frame = pd.DataFrame(rows)
    expectations = [
        Expectation("expect_column_values_to_be_in_set", {"column": "na`me's", "value_set": ["it's", "a\\b"]}),
        Expectation("expect_column_values_to_match_regex", {"column": "co de", "regex": r"^\d+$"}),
    ]
    for exp, failing in zip(expectations, [["plain"], ["plain"]], strict=True):
        spark_rows = spark.createDataFrame(frame).filter(failing_condition(exp, "spark")).collect()
        assert [r["na`me's"] for r in spark_rows] == failing
        duck_rows = duckdb.sql(f"SELECT * FROM frame WHERE {failing_condition(exp, 'duckdb')}").fetchall()
        assert [r[0] for r in duck_rows] == failing


def test_profile_of_a_table_named_by_a_sql_keyword(local_lake: Lake) -> None:
    """The table name reaches DuckDB quoted: `silver.order` (a keyword) profiles like any other."""
    from lake.monitor.profile import propose

    local_lake.table("silver.order").write(pa.table({"id": [1, 2, 3], "kind": ["a", "b", "a"]}))
    suite = propose(local_lake, "silver.order", engine="duckdb")
    import yaml

    parsed = yaml.safe_load(suite)
    assert parsed["table"] == "silver.order"
    assert {"expect_column_values_to_be_unique": {"column": "id"}} in parsed["expectations"]
    assert {"expect_column_values_to_be_in_set": {"column": "kind", "value_set": ["a", "b"]}} in parsed["expectations"]
