"""The feature path on a real Spark standalone cluster (master + worker on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.features.training import save_training_dataset
from tests.lake.features.conftest import build, entities

pytestmark = [pytest.mark.cluster, pytest.mark.spark, pytest.mark.slow]


def test_training_set_on_the_cluster_reproduces_on_duckdb(spark_cluster: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    """`lake features training --engine spark` on the cluster writes training.<name> from the executors;
    the hash equals the DuckDB engine's, and `lake training reproduce --engine duckdb` matches it."""
    fl = build("embedded", tmp_path, request)
    lake = fl.lake
    ents = tmp_path / "ents.parquet"
    pq.write_table(pa.Table.from_pandas(entities(200), preserve_index=False), ents)
    reference = save_training_dataset(lake, "by_duckdb", entities(200), feature_service="driver_model",
                                      engine="duckdb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env.update(LAKE_ROOT=lake.settings.root_uri, LAKE_CONFIG="", LAKE_SPARK_MASTER=spark_cluster,
               LAKE_FEAST_PROJECT=lake.settings.feast.project, LAKE_FEAST_REPO=str(fl.repo))

    def lake_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lake.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=600, cwd=tmp_path)

    proc = lake_cli("features", "training", str(ents), "-s", "driver_model", "--save", "on_cluster",
                    "--engine", "spark", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = json.loads(proc.stdout)
    assert info["engine"] == "spark" and info["rows"] == 200
    assert info["content_hash"] == reference.content_hash
    proc = lake_cli("training", "reproduce", "on_cluster", "--engine", "duckdb", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads(proc.stdout)["matches"] is True and json.loads(proc.stdout)["stored_matches"] is True


def test_drift_on_the_cluster_equals_duckdb(spark_cluster: str, tmp_path: Path) -> None:
    """`lake monitor drift --engine spark` on the cluster: the executors aggregate, the numbers are DuckDB's."""
    import numpy as np

    from lake.lakehouse import Lake
    from tests.conftest import make_settings

    lake = Lake(make_settings(root=str(tmp_path / "lake")))
    rng = np.random.default_rng(4)
    for name, shift in (("gold.ref", 0.0), ("gold.cur", 1.0)):
        lake.table(name).write(pa.table({"amount": rng.normal(shift, 1, 5000), "qty": rng.integers(0, 20, 5000),
                                         "country": rng.choice(["FR", "DE", "IT"], 5000).tolist()}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env.update(LAKE_ROOT=lake.settings.root_uri, LAKE_CONFIG="", LAKE_SPARK_MASTER=spark_cluster)
    reports = {}
    for engine in ("spark", "duckdb"):
        proc = subprocess.run([sys.executable, "-m", "lake.cli.main", "monitor", "drift", "-r", "gold.ref", "-c",
                               "gold.cur", "--engine", engine, "--json"], env=env, capture_output=True, text=True,
                              timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        reports[engine] = json.loads(proc.stdout)
    assert reports["spark"]["features"] == reports["duckdb"]["features"]  # exact mode: the same numbers
    assert reports["spark"]["features"][0]["name"] == "amount" and reports["spark"]["features"][0]["status"] == "drift"
