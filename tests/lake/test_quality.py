"""Quality gates (Great Expectations 1.x) under each policy, on local storage and S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from lake.cli.main import main
from lake.lakehouse import Lake
from lake.pipeline import FileSource, Job
from lake.pipeline.runner import JobRunner
from lake.quality.gate import QualityGateError, failing_condition, validate
from lake.quality.suite import Expectation, Suite, SuiteError, parse_suite
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
    # The COMPLETE event carries the assertions, valid against the OpenLineage schema.
    events = [json.loads(line) for line in Path(landed.storage.root, "openlineage.jsonl").read_text().splitlines()] \
        if landed.storage.is_local else []
    for event in events:
        validate_run_event(event)
    if events:
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
