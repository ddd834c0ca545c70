"""Pipelines that keep themselves fresh: jobs ordered by the tables they read and write, only
what is stale, then the feature views and drift checks downstream, under one parent run."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from lake.errors import JobSpecError, PipelineError, StorageError
from lake.features.apply import apply
from lake.lakehouse import Lake
from lake.orchestrate import build_plan, pipeline_status, run_pipeline
from lake.orchestrate.run import PipelineRunner
from lake.pipeline import FileSource, Job, TableSource
from tests.conftest import make_settings
from tests.lake.features.conftest import driver_rating, driver_stats, write_repo
from tests.lake.pipeline.test_files import put

pytestmark = pytest.mark.spark

STATS_CSV = "driver_id,event_timestamp,created,conv_rate,trips,city\n" + "".join(
    f"{d},2024-01-0{1 + i % 5}T00:00:00Z,2024-01-0{1 + i % 5}T00:00:00Z,{0.1 * (d % 7):.2f},{d * 3 + i},c{d % 3}\n"
    for i, d in enumerate(range(1, 21)))

JOBS = {
    "bronze_stats.yaml": """
name: bronze_stats
source: {kind: files, path: landing/stats/*.csv, format: csv,
         columns: {driver_id: BIGINT, event_timestamp: TIMESTAMPTZ, created: TIMESTAMPTZ, conv_rate: DOUBLE,
                   trips: BIGINT, city: VARCHAR}}
target: bronze.driver_stats
""",
    "gold_stats.yaml": """
name: gold_stats
source: {kind: tables, tables: [bronze.driver_stats],
         sql: "SELECT driver_id, event_timestamp, created, conv_rate, trips, city FROM bronze.driver_stats"}
target: gold.driver_stats
mode: overwrite
""",
}


@pytest.fixture
def project(tmp_path: Path, spark: Any) -> tuple[Lake, Path]:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for name, text in JOBS.items():
        (jobs / name).write_text(text)
    monitors = tmp_path / "monitors"
    monitors.mkdir()
    script = tmp_path / "retrain.py"
    script.write_text(f"import sys, pathlib\npathlib.Path({str(tmp_path / 'hook.json')!r}).write_text(sys.stdin.read())\n")
    (monitors / "stats.yaml").write_text(
        f"name: stats_drift\ncurrent: gold.driver_stats\nreference: gold.driver_stats@0\ncolumns: [conv_rate, trips]\n"
        f"thresholds: {{psi: [0.0001, 0.0002]}}\non_drift: {sys.executable} {script}\n")
    repo = write_repo(tmp_path / "repo")
    lake = Lake(make_settings(root=str(tmp_path / "lake"), jobs_dir=str(jobs), monitors_dir=str(monitors),
                              feast={"project": "p" + uuid.uuid4().hex[:8], "repo": str(repo)}))
    lake.table("gold.driver_rating").write(driver_rating())
    lake.table("gold.driver_stats").write(driver_stats())  # the first version, before any job ran
    apply(lake, repo)
    put(lake, "landing/stats/a.csv", STATS_CSV.encode())
    return lake, tmp_path


def statuses(report: Any) -> dict[str, str]:
    return {s.step: s.status for s in report.steps}


def test_a_pipeline_runs_what_is_stale_in_order_under_one_run(project: tuple[Lake, Path], spark: Any) -> None:
    lake, tmp = project
    plan = build_plan(lake)
    keys = [s.key for s in plan.steps]
    assert keys.index("job:bronze_stats") < keys.index("job:gold_stats") < keys.index("features:driver_stats")
    assert keys.index("job:gold_stats") < keys.index("monitor:stats_drift")
    first = run_pipeline(lake, spark=spark)
    assert statuses(first) == {"job:bronze_stats": "ran", "job:gold_stats": "ran", "features:driver_stats": "ran",
                               "features:driver_rating": "ran", "monitor:stats_drift": "ran"}
    assert lake.table("gold.driver_stats").to_arrow().num_rows == 20
    monitor = next(s for s in first.steps if s.step == "monitor:stats_drift")
    assert monitor.detail["status"] == "drift" and monitor.detail["hook"]["ok"]  # v0 was other data
    payload = json.loads((tmp / "hook.json").read_text())
    assert payload["event"] == "drift" and payload["monitor"] == "stats_drift" and payload["drifted"]
    status = pipeline_status(lake)
    assert status["run"]["run_id"] == first.run_id and status["run"]["status"] == "completed"
    children = {s["job"] for s in status["steps"]}
    assert {"bronze_stats", "gold_stats", "monitor.stats_drift"} <= children
    assert all(s["parent_run_id"] == first.run_id for s in status["steps"])
    # Nothing moved: nothing runs.
    again = run_pipeline(lake, spark=spark)
    assert set(statuses(again).values()) == {"skipped"}, [(s.step, s.status, s.reason) for s in again.steps]
    # New data lands: everything downstream of it runs again, and the drift check calls its hook.
    header, rows = STATS_CSV.split("\n", 1)
    put(lake, "landing/stats/b.csv", (header + "\n" + rows.replace(",c", ",z").replace(",0.", ",9.")).encode())
    third = run_pipeline(lake, spark=spark)
    assert statuses(third) == {"job:bronze_stats": "ran", "job:gold_stats": "ran", "features:driver_stats": "ran",
                               "features:driver_rating": "skipped", "monitor:stats_drift": "ran"}
    assert json.loads((tmp / "hook.json").read_text())["current"]["version"] == third.steps[1].detail["version"]


def test_targets_bring_their_upstream_and_failures_block_downstream(project: tuple[Lake, Path], spark: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lake, _ = project
    plan = build_plan(lake)
    assert [s.key for s in plan.select(["bronze_stats"])] == ["job:bronze_stats"]
    chosen = [s.key for s in plan.select(["gold.driver_stats"])]
    assert chosen[:2] == ["job:bronze_stats", "job:gold_stats"] and "monitor:stats_drift" in chosen
    runner = PipelineRunner(lake, plan, spark=spark, backoff=0.01)
    calls = {"n": 0}
    real = runner.jobs.run

    def flaky(job: Job, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("the object store hiccuped")
        return real(job, **kwargs)

    monkeypatch.setattr(runner.jobs, "run", flaky)
    result = runner.run_step(plan.step("bronze_stats"))
    assert result.status == "ran" and result.attempts == 2
    # A deterministic failure is not retried, and blocks what depends on it.
    put(lake, "landing/stats/c.csv", b"driver_id,event_timestamp,created,conv_rate,trips,city,extra\n1,x,x,1,1,a,b\n")
    with pytest.raises(PipelineError, match="job:bronze_stats failed.*new column") as err:
        run_pipeline(lake, ["gold_stats"], spark=spark)
    got = statuses(err.value.report)
    assert got["job:bronze_stats"] == "failed" and got["job:gold_stats"] == "blocked"
    assert lake.catalog.run_info(err.value.report.run_id)["status"] == "failed"


def test_cycles_are_refused_and_backfill_runs_each_day(tmp_path: Path, spark: Any) -> None:
    lake = Lake(make_settings(root=str(tmp_path / "lake")))
    cyclic = {
        "a": Job(name="a", source=TableSource(tables=["silver.b"], sql="SELECT * FROM silver.b"), target="silver.a"),
        "b": Job(name="b", source=TableSource(tables=["silver.a"], sql="SELECT * FROM silver.a"), target="silver.b"),
    }
    with pytest.raises(JobSpecError, match="cycle: job:a -> job:b -> job:a"):
        build_plan(lake, cyclic)
    put(lake, "landing/days/x.csv", b"n\n1\n")
    jobs = {
        "raw": Job(name="raw", source=FileSource("landing/days/*.csv", columns={"n": "BIGINT"}), target="bronze.raw"),
        "daily": Job(name="daily", params={"day": "2024-01-01"}, target="silver.daily",
                     source=TableSource(tables=["bronze.raw"],
                                        sql="SELECT n, DATE '{day}' AS day FROM bronze.raw")),
    }
    report = run_pipeline(lake, plan=build_plan(lake, jobs), backfill=("2024-05-01", "2024-05-03"), spark=spark)
    daily = next(s for s in report.steps if s.step == "job:daily")
    assert daily.status == "ran" and daily.detail == {"days": 3}
    days = sorted(str(d) for d in lake.table("silver.daily").to_pandas()["day"])
    assert days == ["2024-05-01", "2024-05-02", "2024-05-03"]
