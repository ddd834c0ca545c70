"""Fixtures shared by the whole suite: settings, lakes on each storage, Spark, an S3 server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from lake.config import Settings, load_settings
from lake.lakehouse import Lake
from tests.services import S3_KEY, S3_SECRET, S3Server, free_port, reachable, require

os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


def make_settings(**overrides: Any) -> Settings:
    """Settings from explicit values only (no environment, no lake.toml)."""
    return load_settings(overrides, env={}, config_file=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 HTTP endpoint (moto's server) on 127.0.0.1, in its own process.

    Not a thread of the test process: some delta-rs calls hold the GIL while they
    wait for the server, which would deadlock an in-process server.
    """
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while not reachable("127.0.0.1", port):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the S3 test server (moto) did not start on port {port}", pytrace=False)
        time.sleep(0.1)
    yield S3Server(f"http://127.0.0.1:{port}", "127.0.0.1", port)
    proc.terminate()
    proc.wait(10)


def s3_settings(server: S3Server, bucket: str, **overrides: Any) -> Settings:
    overrides.setdefault("cache_dir", tempfile.mkdtemp(prefix="lake-cache-"))  # not ./lakehouse/_cache
    overrides.setdefault("home", tempfile.mkdtemp(prefix="lake-home-"))  # the catalog: not ~/.lake
    return make_settings(
        root=f"s3://{bucket}/lake",
        s3={"endpoint": server.endpoint, "access_key": S3_KEY, "secret_key": S3_SECRET},
        **overrides,
    )


@pytest.fixture
def local_lake(tmp_path: Path) -> Lake:
    return Lake(make_settings(root=str(tmp_path / "lakehouse")))


@pytest.fixture
def s3_lake(s3_server: S3Server, tmp_path: Path) -> Lake:
    return Lake(s3_settings(s3_server, s3_server.new_bucket(), catalog={"url": f"sqlite:///{tmp_path}/catalog.db"}))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest) -> Lake:
    """The same tests on a local folder and on the S3 API."""
    name = "local_lake" if request.param == "local" else "s3_lake"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One local Spark session for the suite (starting one costs seconds)."""
    from lake.spark import get_spark

    settings = make_settings(root=str(tmp_path_factory.mktemp("spark-root")), spark={"shuffle_partitions": 4})
    session = get_spark(settings, app_name="lake-tests")
    yield session
    session.stop()


PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextlib.contextmanager
def pg_database(prefix: str = "lake_test_") -> Iterator[str]:
    """A new, empty PostgreSQL database on 127.0.0.1, dropped afterwards."""
    require("PostgreSQL", "127.0.0.1", 5432)
    name = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    with pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Spark standalone master and worker on 127.0.0.1 (from the pyspark wheel alone)."""
    import json
    import urllib.request
    from pathlib import Path as P

    import pyspark

    from lake.spark import ensure_java

    ensure_java()
    spark_class = str(P(pyspark.__file__).parent / "bin" / "spark-class")
    work = tmp_path_factory.mktemp("spark-cluster")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = {**os.environ, "SPARK_WORKER_DIR": str(work / "worker"), "SPARK_LOCAL_DIRS": str(work / "local"),
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(work / "logs")}
    logs = open(work / "cluster.log", "w")  # noqa: SIM115 - kept open for the processes' lifetime
    master = subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env, stdout=logs, stderr=logs)
    url = f"spark://127.0.0.1:{port}"
    worker = subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                               "--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui)],
                              env=env, stdout=logs, stderr=logs)
    deadline = time.time() + 120
    alive = 0
    while time.time() < deadline and not alive:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as resp:
                alive = int(json.load(resp).get("aliveworkers", 0))
        except OSError:
            pass
        time.sleep(1)
    if not alive:
        master.kill()
        worker.kill()
        pytest.fail(f"the Spark cluster did not start; see {work / 'cluster.log'}", pytrace=False)
    yield url
    for proc in (worker, master):
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    logs.close()
