"""A feature lake: a gold table of driver statistics, a repository over it, applied.

Parametrized over the deployments the issue names: the embedded default (file registry,
SQLite online store, local folder) and production (SQL registry on PostgreSQL, Redis
online store), plus an S3 lake; and over the online store backends alone
(:data:`ONLINE_BACKENDS`, the ``online_lake`` fixture: one suite, every backend).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis

from lake.features.online_redis import RedisStore
from lake.features.online_sqlite import SqliteStore
from lake.features.online_store import OnlineStore
from lake.features.repo import feast_dir
from lake.lakehouse import Lake
from tests.conftest import make_settings, s3_settings
from tests.services import free_port, require

REPO = '''
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
stats_source = FileSource(name="driver_stats_src", path="gold.driver_stats", file_format=DeltaFormat(),
                          timestamp_field="event_timestamp", created_timestamp_column="created")
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(hours=TTL_HOURS), source=stats_source, online=True,
    schema=[Field(name="conv_rate", dtype=Float64, description="conversion rate"),
            Field(name="trips", dtype=Int64), Field(name="city", dtype=String)],
    description="Daily driver statistics", owner="mobility@example.com", tags={"team": "mobility"})
rating_source = FileSource(name="driver_rating_src", path="gold.driver_rating", file_format=DeltaFormat(),
                           timestamp_field="ts")
driver_rating = FeatureView(
    name="driver_rating", entities=[driver], ttl=timedelta(0), source=rating_source,
    schema=[Field(name="rating", dtype=Float64)])
driver_model = FeatureService(name="driver_model", features=[driver_stats[["conv_rate", "trips"]], driver_rating])
'''

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def driver_stats(n: int = 400, drivers: int = 20, seed: int = 0) -> pd.DataFrame:
    """Rows with duplicates, ties on event time broken by created time, nulls and late rows."""
    rng = np.random.default_rng(seed)
    ts = BASE + pd.to_timedelta(rng.integers(0, 240, n), unit="h")
    created = ts + pd.to_timedelta(rng.integers(0, 48, n), unit="h")  # late rows: created well after
    frame = pd.DataFrame({
        "driver_id": rng.integers(0, drivers, n).astype("int64"),
        "event_timestamp": ts, "created": created,
        "conv_rate": rng.random(n).round(4), "trips": rng.integers(0, 50, n).astype("int64"),
        "city": rng.choice(["paris", "lyon", "nice"], n),
    })
    frame.loc[rng.random(n) < 0.05, "conv_rate"] = np.nan
    ties = frame.sample(30, random_state=seed).copy()  # same key and event time, other created time
    ties["created"] = ties["created"] + pd.Timedelta(hours=1)
    ties["conv_rate"] = rng.random(30).round(4)
    return pd.concat([frame, ties], ignore_index=True)


def driver_rating(drivers: int = 20, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = drivers * 5
    return pd.DataFrame({"driver_id": rng.integers(0, drivers, n).astype("int64"),
                         "ts": BASE + pd.to_timedelta(rng.integers(0, 240, n), unit="h"),
                         "rating": rng.random(n).round(3) * 5})


def entities(n: int = 300, drivers: int = 25, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"driver_id": rng.integers(0, drivers, n).astype("int64"),
                         "event_timestamp": BASE + pd.to_timedelta(rng.integers(-24, 300, n), unit="h"),
                         "label": rng.integers(0, 2, n)})


@dataclass
class FeatureLake:
    lake: Lake
    repo: Path
    kind: str

    def apply(self) -> Any:
        from lake.features.apply import apply

        return apply(self.lake, self.repo)


def write_repo(folder: Path, ttl_hours: int = 48) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drivers.py").write_text(REPO.replace("TTL_HOURS", str(ttl_hours)))
    return folder


def _settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    project = "t" + uuid.uuid4().hex[:10]
    feast: dict[str, Any] = {"project": project}
    if kind in ONLINE_BACKENDS:  # the embedded deployment with only the online store swapped
        feast.update(ONLINE_BACKENDS[kind].settings())
        return make_settings(root=str(tmp_path / "lake"), feast=feast)
    if kind == "production":
        require("PostgreSQL", "127.0.0.1", 5432)
        require("Redis", "127.0.0.1", 6379)
        pg = request.getfixturevalue("pg_url")
        feast.update(registry=pg, online_store="redis", redis_url="127.0.0.1:6379")
        return make_settings(root=str(tmp_path / "lake"), feast=feast, catalog={"url": pg})
    if kind == "s3":
        server = request.getfixturevalue("s3_server")
        return s3_settings(server, server.new_bucket(), feast=feast,
                           catalog={"url": f"sqlite:///{tmp_path}/catalog.db"})
    return make_settings(root=str(tmp_path / "lake"), feast=feast)


def build(kind: str, tmp_path: Path, request: pytest.FixtureRequest, ttl_hours: int = 48) -> FeatureLake:
    lake = Lake(_settings(kind, tmp_path, request))
    lake.table("gold.driver_stats").write(driver_stats())
    lake.table("gold.driver_rating").write(driver_rating())
    fl = FeatureLake(lake, write_repo(tmp_path / "repo", ttl_hours), kind)
    fl.apply()
    return fl


def _redis_keys(lake: Lake) -> list[bytes]:
    client = redis.Redis(host="127.0.0.1", port=6379)
    suffix = lake.settings.feast.project.encode()
    return [key for key in client.scan_iter(count=1000) if key.endswith(suffix)]


def cleanup_redis(fl: FeatureLake) -> None:
    """Remove the keys of the lake's Feast project from Redis (a no-op on other stores)."""
    if fl.lake.settings.feast.online_store != "redis":
        return
    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in _redis_keys(fl.lake):
        client.delete(key)


# --------------------------------------------------------------------------- online store backends


class OnlineBackend:
    """How the online store suite sets up, inspects and breaks one backend (ibis-style backend test class)."""

    name: str
    marks: tuple[pytest.MarkDecorator, ...] = ()
    """The markers of the real part the backend needs."""

    def settings(self) -> dict[str, Any]:
        """The ``[feast]`` settings that select this backend."""
        raise NotImplementedError

    def require(self) -> None:
        """Fail (CI) or skip when the backend's server is not reachable."""

    def raw(self, lake: Lake) -> Any:
        """Everything the store holds for the lake's project, in the backend's own layout."""
        raise NotImplementedError

    def unreachable(self, lake: Lake) -> OnlineStore:
        """The same kind of store, pointed where nothing answers."""
        raise NotImplementedError


class SqliteBackend(OnlineBackend):
    name = "sqlite"

    def settings(self) -> dict[str, Any]:
        return {"online_store": "sqlite"}

    def raw(self, lake: Lake) -> Any:
        import sqlite3

        project = lake.settings.feast.project
        with sqlite3.connect(feast_dir(lake) / "online.db") as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                 "ORDER BY name") if r[0].startswith(project + "_")]
            # created_ts is left out: Feast writes the source's created time there, the lake writes NULL;
            # Feast never reads it back (its reads and "newer wins" use event_ts).
            return {t: conn.execute(f'SELECT entity_key, feature_name, value, value_text, event_ts FROM "{t}" '
                                    "ORDER BY entity_key, feature_name").fetchall() for t in tables}

    def unreachable(self, lake: Lake) -> OnlineStore:
        return SqliteStore(feast_dir(lake) / "gone" / "online.db", lake.settings.feast.project)


class RedisBackend(OnlineBackend):
    name = "redis"
    marks = (pytest.mark.redis,)

    def settings(self) -> dict[str, Any]:
        return {"online_store": "redis", "redis_url": "127.0.0.1:6379"}

    def require(self) -> None:
        require("Redis", "127.0.0.1", 6379)

    def raw(self, lake: Lake) -> Any:
        client = redis.Redis(host="127.0.0.1", port=6379)
        return {key: client.hgetall(key) for key in sorted(_redis_keys(lake))}  # type: ignore[arg-type]

    def unreachable(self, lake: Lake) -> OnlineStore:
        return RedisStore(f"127.0.0.1:{free_port()}", lake.settings.feast.project)


ONLINE_BACKENDS: dict[str, OnlineBackend] = {b.name: b for b in (SqliteBackend(), RedisBackend())}
"""Every online store backend the suite runs on (keep in step with ``lake.features.online_backends``)."""


@dataclass
class OnlineLake(FeatureLake):
    backend: OnlineBackend = ONLINE_BACKENDS["sqlite"]


@pytest.fixture(params=[pytest.param(name, marks=b.marks) for name, b in ONLINE_BACKENDS.items()])
def online_lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineLake]:
    """The embedded deployment on each online store backend, applied and empty."""
    backend = ONLINE_BACKENDS[request.param]
    backend.require()
    built = build(request.param, tmp_path, request)
    fl = OnlineLake(built.lake, built.repo, built.kind, backend)
    yield fl
    cleanup_redis(fl)


@pytest.fixture(params=["embedded", pytest.param("production", marks=[pytest.mark.postgres, pytest.mark.redis])])
def feature_lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureLake]:
    """The embedded default and the production deployment, same definitions, same data."""
    fl = build(request.param, tmp_path, request)
    yield fl
    cleanup_redis(fl)


@pytest.fixture
def embedded_lake(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureLake:
    return build("embedded", tmp_path, request)
