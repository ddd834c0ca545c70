"""Concurrent writers, a driver killed mid-write, and what vacuum cleans up afterwards."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pyarrow as pa
import pytest

from lake.config import Settings
from lake.lakehouse import Lake

WRITERS = 4
COMMITS_EACH = 5
ROWS = 50


def _append_many(settings_json: str, name: str, writer: int) -> None:
    lake = Lake(Settings.model_validate_json(settings_json))
    table = lake.table(name)
    for i in range(COMMITS_EACH):
        start = (writer * COMMITS_EACH + i) * ROWS
        table.write(pa.table({"id": list(range(start, start + ROWS)), "writer": [writer] * ROWS}))


def _settings_json(lake: Lake) -> str:
    """The lake's settings with the secret in clear, for a child process."""
    data = lake.settings.model_dump(mode="json")
    if lake.settings.s3.secret_key is not None:
        data["s3"]["secret_key"] = lake.settings.s3.secret_key.get_secret_value()
    data["catalog"]["url"] = lake.settings.catalog_url
    return json.dumps(data)


def test_concurrent_writer_processes_lose_nothing(lake: Lake) -> None:
    table = lake.table("bronze.concurrent")
    table.write(pa.table({"id": pa.array([], pa.int64()), "writer": pa.array([], pa.int64())}))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(_settings_json(lake), table.name, w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * WRITERS  # no writer saw an error
    ids = table.to_arrow().column("id").to_pylist()
    assert sorted(ids) == list(range(WRITERS * COMMITS_EACH * ROWS))
    assert table.version() == WRITERS * COMMITS_EACH
    assert len(table.history()) == WRITERS * COMMITS_EACH + 1
    # The catalog, written by the same 4 processes at once, kept every version exactly once.
    shown = lake.catalog.show(table.name)
    assert shown["current_version"] == WRITERS * COMMITS_EACH
    assert lake.catalog.counts()["versions"] == WRITERS * COMMITS_EACH + 1
    assert len(lake.catalog.runs(dataset=table.name, limit=100)) == WRITERS * COMMITS_EACH + 1


@pytest.mark.spark
def test_concurrent_spark_writers_lose_nothing(lake: Lake, spark: Any) -> None:
    table = lake.table("bronze.concurrent_spark")
    table.write(spark.range(0, 0).selectExpr("id", "cast(0 as long) as writer"))
    errors: list[BaseException] = []

    def run(writer: int) -> None:
        try:
            for i in range(3):
                start = (writer * 3 + i) * ROWS
                table.write(spark.range(start, start + ROWS).selectExpr("id", f"cast({writer} as long) as writer"))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert errors == []
    assert sorted(table.to_arrow().column("id").to_pylist()) == list(range(WRITERS * 3 * ROWS))
    assert table.version() == WRITERS * 3


def _env_for(lake: Lake) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env["LAKE_ROOT"] = lake.storage.root
    env["LAKE_CATALOG_URL"] = lake.settings.catalog_url
    s3 = lake.settings.s3
    if s3.endpoint:
        env.update(
            LAKE_S3_ENDPOINT=s3.endpoint,
            LAKE_S3_ACCESS_KEY=s3.access_key or "",
            LAKE_S3_SECRET_KEY=s3.secret_key.get_secret_value() if s3.secret_key else "",
        )
    env["LAKE_SPARK_SHUFFLE_PARTITIONS"] = "4"
    env["LAKE_CONFIG"] = ""
    return env


@pytest.mark.spark
@pytest.mark.slow
def test_killed_spark_driver_leaves_previous_version_and_vacuum_cleans(lake: Lake) -> None:
    table = lake.table("bronze.crash")
    table.write(pa.table({"id": [1, 2, 3], "tag": ["before"] * 3}))
    before = {f.path for f in lake.storage.list_files(table.uri) if not f.path.startswith("_delta_log")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.lake.crash_writer", table.name],
        env=_env_for(lake),
        cwd=os.getcwd(),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 240
    orphans: set[str] = set()
    try:
        while time.time() < deadline and proc.poll() is None:
            now = {f.path for f in lake.storage.list_files(table.uri) if f.path.endswith(".parquet")}
            orphans = {p for p in now - before if not p.startswith("_delta_log")}
            if orphans:
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=60)[0]
    assert orphans, f"the writer never wrote a file before the deadline:\n{out[-3000:]}"
    assert "committed" not in out
    # The table is at its previous version, with exactly its previous rows.
    assert table.version() == 0
    assert sorted(table.to_arrow().column("id").to_pylist()) == [1, 2, 3]
    removed = table.vacuum(retention_hours=0, force=True)
    assert removed
    left = {f.path for f in lake.storage.list_files(table.uri) if not f.path.startswith("_delta_log")}
    assert left == before
    assert sorted(table.to_arrow().column("id").to_pylist()) == [1, 2, 3]
