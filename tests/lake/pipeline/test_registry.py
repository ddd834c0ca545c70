"""Jobs declared in YAML files: discovered, checked, and run end to end through ``lake jobs``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from lake.cli.main import main
from lake.errors import JobSpecError
from lake.pipeline import CsvOptions, FileSource, TableSource
from lake.pipeline.registry import discover_jobs, find_job
from tests.conftest import make_settings
from tests.lake.pipeline.test_files import put

pytestmark = pytest.mark.spark

BRONZE_YAML = """\
name: bronze_readings
description: Meter readings from the landing folder
source:
  kind: files
  path: landing/readings/*.csv
  format: csv
  columns: {meter: VARCHAR, at: TIMESTAMP, kwh: DOUBLE}
  csv:
    delimiter: ";"
    null_values: ["", "-"]
    timestamp_format: "%d/%m/%Y %H:%M"
target: bronze.readings
mode: append
partition_by: [meter]
"""
SILVER_YAML = """\
source:
  kind: tables
  tables: [bronze.readings]
  sql: >-
    SELECT meter, CAST(at AS DATE) AS day, sum(kwh) AS kwh
    FROM bronze.readings WHERE kwh >= {min_kwh} GROUP BY 1, 2
target: silver.daily_usage
mode: overwrite
params: {min_kwh: "0"}
"""
READINGS = [
    "meter;at;kwh",
    "m1;01/05/2024 00:15;1.5",
    "m1;01/05/2024 12:00;2.0",
    "m2;01/05/2024 08:30;-",
    "m2;02/05/2024 09:45;4.25",
    "m1;02/05/2024 23:59;0.5",
    "m3;2024-05-02 10:00;1.0",  # not the declared timestamp format: quarantined
]


def oracle(min_kwh: float) -> tuple[list[tuple[str, dt.datetime, float | None]], dict[tuple[str, str], float]]:
    """The bronze rows and the silver sums, computed in Python from the same text."""
    good = []
    for line in READINGS[1:]:
        meter, at, text = line.split(";")
        try:
            when = dt.datetime.strptime(at, "%d/%m/%Y %H:%M")
        except ValueError:
            continue
        good.append((meter, when, None if text in ("", "-") else float(text)))
    sums: dict[tuple[str, str], float] = {}
    for meter, when, kwh in good:
        if kwh is not None and kwh >= min_kwh:
            key = (meter, when.date().isoformat())
            sums[key] = sums.get(key, 0.0) + kwh
    return good, sums


@pytest.fixture
def jobs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "bronze_readings.yaml").write_text(BRONZE_YAML)
    (folder / "silver_daily_usage.yml").write_text(SILVER_YAML)  # no name: the file's stem
    (folder / "_draft.yaml").write_text("not: [a job")  # files starting with _ are skipped
    return folder


def test_yaml_jobs_are_parsed_into_the_same_declarations(jobs_dir: Path) -> None:
    jobs = discover_jobs(jobs_dir)
    assert sorted(jobs) == ["bronze_readings", "silver_daily_usage"]
    bronze = jobs["bronze_readings"]
    assert bronze.source == FileSource("landing/readings/*.csv", columns={"meter": "VARCHAR", "at": "TIMESTAMP",
                                                                           "kwh": "DOUBLE"},
                                       csv=CsvOptions(delimiter=";", null_values=("", "-"),
                                                      timestamp_format="%d/%m/%Y %H:%M"))
    assert (bronze.target, bronze.mode, list(bronze.partition_by)) == ("bronze.readings", "append", ["meter"])
    silver = find_job(jobs_dir, "silver_daily_usage")
    assert isinstance(silver.source, TableSource) and list(silver.source.tables) == ["bronze.readings"]
    assert (silver.mode, dict(silver.params)) == ("overwrite", {"min_kwh": "0"})


def test_yaml_jobs_run_end_to_end_through_the_cli(jobs_dir: Path, tmp_path: Path, spark: Any,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from lake.lakehouse import Lake

    root = str(tmp_path / "lakehouse")
    monkeypatch.setenv("LAKE_JOBS_DIR", str(jobs_dir))
    monkeypatch.setenv("LAKE_CONFIG", "")
    lake = Lake(make_settings(root=root))
    put(lake, "landing/readings/2024-05.csv", ("\n".join(READINGS) + "\n").encode())

    assert main(["--root", root, "jobs", "list", "--json"]) == 0
    listed = {j["name"]: j for j in json.loads(capsys.readouterr().out)}
    assert (listed["bronze_readings"]["source"], listed["silver_daily_usage"]["source"]) == ("files", "tables")
    assert listed["bronze_readings"]["description"] == "Meter readings from the landing folder"

    assert main(["--root", root, "jobs", "run", "bronze_readings", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    good, sums = oracle(0.0)
    assert (report["rows_read"], report["rows_written"], report["rows_quarantined"]) == (6, len(good), 1) == (6, 5, 1)
    bronze = lake.table("bronze.readings")
    rows = sorted((r["meter"], r["at"].replace(tzinfo=None), r["kwh"]) for r in bronze.to_arrow().to_pylist())
    assert rows == sorted(good)  # the YAML's delimiter, null values and timestamp format were applied
    assert bronze.delta().metadata().partition_columns == ["meter"]
    (bad,) = lake.table("quarantine.bronze_readings").to_arrow().to_pylist()
    assert (bad["line"], bad["column_name"], bad["raw"]) == (7, "at", READINGS[6])

    assert main(["--root", root, "jobs", "run", "silver_daily_usage", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_written"] == len(sums)
    silver = {(r["meter"], r["day"].isoformat()): r["kwh"] for r in lake.table("silver.daily_usage").to_arrow().to_pylist()}
    assert silver == pytest.approx(sums)
    # --param overrides the YAML's default; mode overwrite replaces the table.
    assert main(["--root", root, "jobs", "run", "silver_daily_usage", "--param", "min_kwh=1", "--json"]) == 0
    capsys.readouterr()
    silver = {(r["meter"], r["day"].isoformat()): r["kwh"] for r in lake.table("silver.daily_usage").to_arrow().to_pylist()}
    assert silver == pytest.approx(oracle(1.0)[1]) and ("m1", "2024-05-02") not in silver
    run = lake.catalog.runs(job="silver_daily_usage")[0]
    assert lake.catalog.run_info(run["run_id"])["inputs"][0]["name"] == "bronze.readings"


@pytest.mark.parametrize(("text", "message"), [
    ("name: [unclosed", "is not valid YAML"),
    ("- a\n- list\n", "holds one mapping"),
    ("source: {kind: ftp, path: x}\ntarget: bronze.x\n", "unknown source kind 'ftp'"),
    ("source: {kind: files, path: x, csv: {delimeter: ';'}}\ntarget: bronze.x\n", "delimeter"),
    ("source: {kind: files, path: x}\n", "job broken: .*'target'"),
    ("source: {kind: files, path: x}\ntarget: bronze.x\nmode: upsert\n", "mode must be append, overwrite or merge"),
])
def test_bad_yaml_jobs_are_named_with_the_file_or_job(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "broken.yaml").write_text(text)
    with pytest.raises(JobSpecError, match=message):
        discover_jobs(tmp_path)


def test_two_jobs_with_one_name_are_an_error(jobs_dir: Path) -> None:
    (jobs_dir / "again.yaml").write_text(BRONZE_YAML)
    with pytest.raises(JobSpecError, match="two jobs are named 'bronze_readings'"):
        discover_jobs(jobs_dir)
