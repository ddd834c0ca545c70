"""Batch work records its metrics and publishes them (textfile or Pushgateway) when it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lake.lakehouse import Lake
from lake.monitor import drift_report
from lake.pipeline import FileSource, Job
from lake.pipeline.runner import JobRunner
from tests.conftest import make_settings
from tests.lake.pipeline.test_files import put


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


@pytest.mark.spark
def test_jobs_quality_gates_and_drift_publish_metrics(tmp_path: Path, spark: Any) -> None:
    textfile = tmp_path / "metrics" / "lake.prom"
    suite = tmp_path / "suite.yaml"
    suite.write_text("table: bronze.m\npolicy: quarantine\nexpectations:\n"
                     "  - expect_column_values_to_be_between: {column: n, min_value: 0}\n")
    lake = Lake(make_settings(root=str(tmp_path / "lake"), metrics={"textfile": str(textfile)}))
    put(lake, "landing/m/a.csv", b"n\n1\n2\n-3\n")
    job = Job(name="metrics_job", source=FileSource("landing/m/*.csv", columns={"n": "BIGINT"}), target="bronze.m",
              quality=str(suite))
    JobRunner(lake, spark=spark).run(job)
    got = samples(textfile)
    assert got[("lake_job_runs_total", (("job", "metrics_job"), ("outcome", "completed")))] >= 1
    assert got[("lake_job_rows_total", (("job", "metrics_job"), ("kind", "written")))] >= 2
    assert got[("lake_job_rows_total", (("job", "metrics_job"), ("kind", "quarantined")))] >= 1
    assert got[("lake_quality_gate_total", (("outcome", "quarantined"), ("table", "bronze.m")))] >= 1
    assert got[("lake_job_last_success_timestamp_seconds", (("job", "metrics_job"),))] > 0
    lake.table("gold.ref").write(pd.DataFrame({"x": [float(i) for i in range(200)]}))
    lake.table("gold.cur").write(pd.DataFrame({"x": [float(i) + 500 for i in range(200)]}))
    report = drift_report(lake, "gold.ref", "gold.cur")
    assert report.status == "drift"
    got = samples(textfile)
    assert got[("lake_drift_status", (("table", "gold.cur"),))] == 2
    assert got[("lake_drift_features", (("status", "drift"), ("table", "gold.cur")))] == 1
