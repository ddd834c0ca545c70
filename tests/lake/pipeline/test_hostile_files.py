"""Landing files are written by other people: hostile or broken bytes never run code, never
stop a job with a parser traceback, and never lose a row (read = written + quarantined).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lake.lakehouse import Lake
from lake.pipeline import FileSource, Job
from lake.pipeline.runner import JobRunner
from tests.lake.pipeline.test_files import csv_job, put

pytestmark = pytest.mark.spark


@pytest.fixture
def runner(local_lake: Lake, spark: Any) -> JobRunner:
    return JobRunner(local_lake, spark=spark)


def files_outside(root: Path, before: set[str]) -> set[str]:
    return {str(p) for p in root.rglob("*")} - before


def quarantined(lake: Lake, target: str = "bronze.orders") -> list[dict[str, Any]]:
    table = lake.table("quarantine." + target.replace(".", "_"))
    return table.to_arrow().to_pylist() if table.exists() else []


def test_crafted_csv_headers_and_json_keys_run_no_sql(runner: JobRunner, local_lake: Lake, tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    crafted = [
        f"x\" AS x, 1 AS y FROM (SELECT 1); COPY (SELECT 42) TO '{evil}.csv'; --",
        f"a'); COPY (SELECT 1) TO '{evil}2.csv'; --",
        "c\"\"; DROP TABLE good; --",
        "it's",
        "semi;colon",
    ]
    header = ",".join('"' + c.replace('"', '""') + '"' for c in crafted)
    put(local_lake, "landing/crafted/a.csv", (header + "\n" + ",".join(["1"] * len(crafted)) + "\n").encode())
    report = runner.run(Job(name="crafted", source=FileSource("landing/crafted/*.csv"), target="bronze.crafted"))
    assert report.rows_written == 1 and report.rows_quarantined == 0
    assert lake_columns(local_lake, "bronze.crafted") == crafted
    keys = {f"k' || (SELECT 1) || '{i}": i for i in range(3)} | {"it's": "o'clock", 'q"uote': 1, "x'); --": 2}
    put(local_lake, "landing/keys/a.json", (json.dumps(keys) + "\n" + json.dumps({"it's": "ok"}) + "\n").encode())
    report = runner.run(Job(name="keys", source=FileSource("landing/keys/*.json", format="json"),
                            target="bronze.keys"))
    assert report.rows_read == 2 and report.rows_written + report.rows_quarantined == 2
    got = local_lake.table("bronze.keys").to_arrow().to_pylist()
    assert any(r["it's"] == "o'clock" and r['q"uote'] == 1 for r in got)
    assert not list(tmp_path.glob("evil*"))  # no statement from a header or key ever ran


def lake_columns(lake: Lake, name: str) -> list[str]:
    return [c for c in lake.table(name).schema().names if not c.startswith("_")]


def test_an_empty_file_commits_nothing_and_is_recorded(runner: JobRunner, local_lake: Lake) -> None:
    put(local_lake, "landing/orders/0-empty.csv", b"")
    report = runner.run(csv_job(source=FileSource("landing/orders/*.csv")))
    assert report.rows_read == 0 and report.files == 1 and "empty" in " ".join(report.notes)
    assert not local_lake.table("bronze.orders").exists()  # no table with a phantom column
    put(local_lake, "landing/orders/1-real.csv", b"id,name,amount,day\n1,a,1.5,2024-01-02\n")
    report = runner.run(csv_job(source=FileSource("landing/orders/*.csv")))
    assert report.rows_written == 1 and report.files == 1  # the empty file was not read again
    assert lake_columns(local_lake, "bronze.orders") == ["id", "name", "amount", "day"]
    assert runner.run(csv_job(source=FileSource("landing/orders/*.csv"))).skipped


def test_garbage_long_lines_and_broken_quotes_are_quarantined_with_reasons(runner: JobRunner,
                                                                           local_lake: Lake) -> None:
    good = b"id,name,amount,day\n1,a,1.5,2024-01-02\n2,b,2.5,2024-01-03\n"
    put(local_lake, "landing/orders/a-good.csv", good)
    put(local_lake, "landing/orders/b-garbage.csv", os.urandom(3000).replace(b"\n", b"\x00") + b"\n" + os.urandom(500))
    long_value = b"x" * 3_000_000
    put(local_lake, "landing/orders/c-long.csv",
        b"id,name,amount,day\n10,a,1.0,2024-01-02\n11," + long_value + b",2.0,2024-01-02\n12,c,3.0,2024-01-04\n")
    put(local_lake, "landing/orders/d-quote.csv",
        b'id,name,amount,day\n20,a,1.0,2024-01-02\n21,"unterminated,2.0,2024-01-02\n22,c,3.0,2024-01-04\n'
        b"23,d,4.0,2024-01-05\n")
    put(local_lake, "landing/orders/e-mixed.csv",
        b"id,name,amount,day\r\n30,a,1.0,2024-01-02\n\r\n31,\xff\xfe,2.0,2024-01-03\r\n32,c,3.0,2024-01-04\n")
    report = runner.run(csv_job())
    assert report.rows_read == report.rows_written + report.rows_quarantined
    ids = sorted(local_lake.table("bronze.orders").to_arrow().column("id").to_pylist())
    assert ids == [1, 2, 10, 12, 20, 22, 23, 30, 32]
    bad = quarantined(local_lake)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for row in bad:
        by_file.setdefault(Path(row["source_file"]).name, []).append(row)
    assert all(r["reason"] for r in bad)
    assert {r["line"] for r in by_file["c-long.csv"]} == {3}
    assert [r["line"] for r in by_file["d-quote.csv"]] == [3] and "quot" in by_file["d-quote.csv"][0]["reason"]
    assert [r["line"] for r in by_file["e-mixed.csv"]] == [4]
    assert by_file["e-mixed.csv"][0]["error_type"] == "INVALID ENCODING"
    garbage = by_file["b-garbage.csv"]
    assert garbage and all(r["error_type"] == "HEADER" for r in garbage)
    assert report.rows_quarantined == len(bad) == 1 + 1 + 1 + len(garbage)
    assert report.rows_written == 9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(names=st.lists(st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t and "\n" not in t
                                                               and "\r" not in t and t.strip() == t),
                      min_size=1, max_size=4, unique_by=str.lower),
       values=st.lists(st.text(max_size=30), min_size=1, max_size=4))
def test_any_column_name_round_trips_through_csv_ingest(runner: JobRunner, local_lake: Lake, names: list[str],
                                                        values: list[str], tmp_path_factory: Any) -> None:
    """Arbitrary unicode as column names (quotes, backslashes, semicolons, comments): the data
    round-trips and no file appears outside the lake."""
    import csv
    import io
    import uuid

    values = (values * len(names))[:len(names)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    writer.writerow(values)
    folder = f"landing/fuzz_{uuid.uuid4().hex[:8]}"
    put(local_lake, f"{folder}/a.csv", buf.getvalue().encode())
    root = Path(local_lake.storage.root).parent
    before = {str(p) for p in root.rglob("*")}
    target = f"bronze.f{uuid.uuid4().hex[:8]}"
    declared = {n: "VARCHAR" for n in names}
    report = runner.run(Job(name=target.split(".")[1], source=FileSource(f"{folder}/*.csv", columns=declared),
                            target=target))
    assert report.rows_read == 1 and report.rows_written + report.rows_quarantined == 1
    if report.rows_written:
        row = local_lake.table(target).to_arrow().to_pylist()[0]
        nulls = {"", "NA", "N/A", "null", "NULL"}
        assert [row[n] for n in names] == [None if v in nulls else v for v in values]
    outside = {p for p in files_outside(root, before) if not p.startswith(str(Path(local_lake.storage.root)))}
    assert outside == set()
