"""`lake jobs submit` to a real Spark standalone cluster started on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lake.lakehouse import Lake
from tests.conftest import make_settings
from tests.lake.pipeline.test_sql_and_tables import REPO, write_stocks_landing

pytestmark = [pytest.mark.cluster, pytest.mark.spark, pytest.mark.slow]


def test_submit_an_ingestion_job_to_a_standalone_cluster(spark_cluster: str, tmp_path: Path) -> None:
    root = tmp_path / "lakehouse"
    lake = Lake(make_settings(root=str(root)))
    total = write_stocks_landing(lake)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env.update(LAKE_ROOT=str(root), LAKE_CONFIG="", LAKE_JOBS_DIR=str(REPO / "jobs"))
    proc = subprocess.run(
        [sys.executable, "-m", "lake.cli.main", "jobs", "submit", "bronze_stocks", "--master", spark_cluster],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "bronze_stocks batch 1" in proc.stdout  # the driver's log streamed back
    table = Lake(make_settings(root=str(root))).table("bronze.stocks")
    assert table.to_arrow().num_rows == total
    runs = Lake(make_settings(root=str(root))).catalog.runs(job="bronze_stocks")
    assert len(runs) == 1 and runs[0]["status"] == "completed" and runs[0]["stats"]["rows_written"] == total
    # A master that does not answer is refused in seconds, in one line, before spark-submit runs.
    bad = subprocess.run(
        [sys.executable, "-m", "lake.cli.main", "jobs", "submit", "silver_stock_prices", "--master",
         "spark://127.0.0.1:1"], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert bad.returncode == 1 and "the Spark master spark://127.0.0.1:1 does not answer" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
