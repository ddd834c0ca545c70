"""The feature path on Spark: point-in-time retrieval and materialization, the lake vs Feast on Spark.

Three feature views over three gold Delta tables of N rows each (one key per 50 rows, a
created-timestamp column, 30-day TTL) and an entity frame of N/10 rows, at growing sizes
(``--sizes``, default 300k and 3M; ``--quick`` 20k, under a minute). One local Spark session
(``local[*]``) serves every Spark side; at the first size each Spark side runs once untimed first
(JVM code generation, Python workers starting and importing), then every side is timed once.
``--quick`` skips that warm-up: its figures are cold starts (a smoke check of every side and of
the equality of the answers, not a ratio to quote). Retrieval sides, each ending with the frame written as Parquet by
the executors (or held in memory, for DuckDB):

- ``lake_spark``: ``retrieve(engine="spark")`` (key-hash cogroup, per-partition binary search);
- ``feast_spark``: Feast 0.67's Spark offline store (``feast[spark]``), ``SparkSource`` over the
  same rows as Parquet files, ``get_historical_features(...).to_spark_df()``;
- ``lake_duckdb``: ``retrieve(engine="duckdb")`` with a cold index cache (the first retrieval
  of these versions), the frame in the driver's memory.

Materialization (at the largest size, first view, into Redis): ``lake_spark`` (latest row per
entity on the executors, written to Redis from them) vs stock ``feast materialize`` (Feast's
own DuckDB offline store reading the Delta table, the same Redis).

``ratio`` = lake on Spark / Feast's Spark store at the largest size (target <= 0.25);
``ratio_materialize`` = lake Spark materialization / stock Feast (target <= 0.33);
``ratio_duckdb`` = lake on Spark / lake on DuckDB. The scaling table is in ``sizes``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmarks.common import emit, scratch_dir, timed
from lake import Lake, load_settings

VIEWS = 3
TTL_DAYS = 30
DAYS = 90

REPO = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64, Int64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
'''
VIEW = '''
src_{i} = FileSource(name="src_{i}", path="gold.user_stats_{i}", file_format=DeltaFormat(),
                     timestamp_field="event_timestamp", created_timestamp_column="created")
user_stats_{i} = FeatureView(name="user_stats_{i}", entities=[user], ttl=timedelta(days={ttl}), source=src_{i},
                             online=True,
                             schema=[Field(name="f{i}_a", dtype=Float64), Field(name="f{i}_b", dtype=Int64)])
'''


def source_sql(i: int, rows: int, keys: int) -> str:
    return f"""
        SELECT (hash(r * {i + 3}) % {keys})::BIGINT AS user_id,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((hash(r * 11 + {i}) % {DAYS * 86_400_000_000})::BIGINT) AS event_timestamp,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((hash(r * 13 + {i}) % {(DAYS + 1) * 86_400_000_000})::BIGINT) AS created,
               (hash(r * 17 + {i}) % 100000) / 1000.0 AS f{i}_a,
               (hash(r * 19 + {i}) % 1000)::BIGINT AS f{i}_b
        FROM range({rows}) t(r)"""


def entity_frame(n: int, keys: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    frame = pd.DataFrame({"user_id": rng.integers(0, keys, n).astype("int64"),
                          "event_timestamp": start + pd.to_timedelta(rng.integers(0, DAYS * 86_400, n), unit="s")})
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    return frame


def build(lake: Lake, folder: Path, rows: int, keys: int) -> list[Path]:
    """The Delta tables and the same rows as Parquet files (microsecond timestamps, for Spark)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    paths = []
    for i in range(VIEWS):
        path = folder / f"user_stats_{i}.parquet"
        con.sql(source_sql(i, rows, keys)).write_parquet(str(path))
        lake.table(f"gold.user_stats_{i}").write(pq.read_table(path), mode="overwrite")
        paths.append(path)
    return paths


def feast_spark_store(base: Path, paths: list[Path], spark_conf: dict[str, str]) -> Any:
    from feast import Entity, FeatureStore, FeatureView, Field, RepoConfig, ValueType
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStoreConfig
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.types import Float64, Int64

    repo = base / "feast_spark"
    repo.mkdir(exist_ok=True)
    config = RepoConfig(project="bench_spark", provider="local", registry=str(repo / "registry.db"),
                        online_store={"type": "sqlite", "path": str(repo / "online.db")},
                        offline_store=SparkOfflineStoreConfig(spark_conf=spark_conf),
                        entity_key_serialization_version=3, repo_path=str(repo))
    store = FeatureStore(config=config)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    views = [FeatureView(name=f"user_stats_{i}", entities=[user], ttl=dt.timedelta(days=TTL_DAYS),
                         source=SparkSource(name=f"spark_src_{i}", path=str(paths[i]), file_format="parquet",
                                            timestamp_field="event_timestamp", created_timestamp_column="created"),
                         schema=[Field(name=f"f{i}_a", dtype=Float64), Field(name=f"f{i}_b", dtype=Int64)])
             for i in range(VIEWS)]
    store.apply([user, *views])
    return store


def one_size(rows: int, spark: Any, redis: bool, materialize_too: bool, warm: bool,
             feast_max_rows: int) -> dict[str, Any]:
    from lake.features import pit_index
    from lake.features.apply import apply
    from lake.features.retrieval import retrieve

    base = scratch_dir(f"features-spark-{rows}")
    project = f"benchspark{int(time.time())}"
    feast: dict[str, Any] = {"project": project, "repo": str(base / "repo")}
    if redis:
        feast.update(online_store="redis", redis_url="127.0.0.1:6379")
    settings = load_settings({"root": str(base / "lake"), "feast": feast}, env={}, config_file=False)
    lake = Lake(settings)
    keys = max(1, rows // 50)
    started = time.perf_counter()
    paths = build(lake, base, rows, keys)
    repo = base / "repo"
    repo.mkdir()
    (repo / "views.py").write_text(REPO + "".join(VIEW.format(i=i, ttl=TTL_DAYS) for i in range(VIEWS)))
    apply(lake, repo)
    entities = entity_frame(rows // 10, keys)
    features = [f"user_stats_{i}:{c}" for i in range(VIEWS) for c in (f"f{i}_a", f"f{i}_b")]
    print(f"[{rows:,}] built {VIEWS} x {rows:,} feature rows, {len(entities):,} entity rows "
          f"in {time.perf_counter() - started:.1f}s", flush=True)
    quiet = Lake(settings, catalog=False)  # time the join, not catalog bookkeeping
    fstore = feast_spark_store(base, paths, {})
    out: dict[str, Any] = {}

    def lake_spark() -> None:
        frame = retrieve(quiet, entities, features, engine="spark", spark=spark)
        frame.spark.write.mode("overwrite").parquet(str(base / "out_lake"))

    def feast_spark() -> None:
        job = fstore.get_historical_features(entity_df=entities, features=features)
        job.to_spark_df().write.mode("overwrite").parquet(str(base / "out_feast"))

    def lake_duckdb() -> None:
        shutil.rmtree(quiet.settings.cache_path, ignore_errors=True)  # cold: the first retrieval of these versions
        pit_index.forget()
        out["duckdb"] = retrieve(quiet, entities, features, engine="duckdb").data

    sides = [("lake_spark", lake_spark), ("feast_spark", feast_spark), ("lake_duckdb", lake_duckdb)]
    if rows > feast_max_rows:  # measured here: at 3M rows per view Feast's Spark store ran out of driver heap
        sides = [side for side in sides if side[0] != "feast_spark"]
    if warm:  # one untimed run of each Spark side: JVM code generation, Python workers and their imports
        for _name, fn in sides[:2]:
            fn()
    times: dict[str, float | None] = {}
    for name, fn in sides:
        try:
            times[name] = timed(fn)
        except Exception as exc:  # a side that fails (out of memory) is reported, not hidden
            times[name] = None
            out[f"{name}_error"] = str(exc).splitlines()[0][:200]
        print(f"[{rows:,}]  {name}: " + (f"{times[name]:.2f}s" if times[name] is not None else
                                         f"failed: {out[f'{name}_error']}"), flush=True)
    # Same answers: the Spark frame (its files, in order) equals the DuckDB frame.
    from lake.data import normalized
    from lake.features.training import content_hash

    files = sorted((base / "out_lake").glob("*.parquet"))
    spark_frame = pq.ParquetDataset([str(f) for f in files]).read() if files else None
    same = spark_frame is not None and "duckdb" in out and \
        content_hash(normalized(spark_frame)) == content_hash(normalized(out["duckdb"]))
    feast_rows = pq.ParquetDataset(str(base / "out_feast")).read().num_rows if times.get("feast_spark") else None
    result: dict[str, Any] = {"rows": rows, "entity_rows": len(entities),
                              "seconds": {k: round(v, 2) if v is not None else None for k, v in times.items()},
                              "lake_spark_equals_duckdb": same, "feast_rows": feast_rows,
                              **{k: v for k, v in out.items() if k.endswith("_error")}}
    if materialize_too and redis:
        from lake.features.materialize import materialize
        from lake.features.repo import feature_store

        store = feature_store(lake)

        def lake_mat() -> None:
            materialize(lake, ["user_stats_0"], engine="spark", spark=spark, store=store)

        def feast_mat() -> None:
            store.materialize(start_date=dt.datetime(2023, 12, 1, tzinfo=dt.UTC),
                              end_date=dt.datetime(2024, 6, 1, tzinfo=dt.UTC), feature_views=["user_stats_0"])

        mat = {"lake_spark": timed(lake_mat), "feast_materialize": timed(feast_mat)}
        for name, value in mat.items():
            print(f"[{rows:,}]  materialize {name}: {value:.2f}s", flush=True)
        result["materialize_seconds"] = {k: round(v, 2) for k, v in mat.items()}
        import redis as redis_lib

        client = redis_lib.Redis(host="127.0.0.1", port=6379)
        for key in client.scan_iter(count=10_000):
            if key.endswith(project.encode()):
                client.delete(key)
    shutil.rmtree(base, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="one small size (20k rows per view), no warm-up run: under a minute")
    parser.add_argument("--sizes", default="300000,3000000", help="source rows per view, comma-separated")
    parser.add_argument("--feast-max-rows", type=int, default=1_000_000,
                        help="run Feast's Spark store up to this size (at 3M it ran out of its 2 GB driver heap here)")
    parser.add_argument("--driver-memory", default="2g",
                        help="the Spark driver's heap (local mode: every side's); Feast's Spark store needs more at 3M")
    parser.add_argument("--no-warm", action="store_true",
                        help="no untimed warm-up run at the first size (cold figures; saves a Feast run at large sizes)")
    args = parser.parse_args()
    sizes = [20_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    from lake.config import load_settings as settings_for
    from lake.spark import get_spark
    from tests.services import reachable

    redis = reachable("127.0.0.1", 6379)
    # --quick: as many shuffle partitions as cores (tiny data; each task costs a Python worker round trip)
    partitions = (os.cpu_count() or 2) if args.quick else 8
    spark = get_spark(settings_for({"spark": {"shuffle_partitions": partitions, "driver_memory": args.driver_memory}},
                                   env={}, config_file=False),
                      app_name="bench-features-spark")
    results = []
    for i, rows in enumerate(sizes):
        results.append(one_size(rows, spark, redis, materialize_too=i == len(sizes) - 1, warm=i == 0 and not (args.quick or args.no_warm),
                                feast_max_rows=args.feast_max_rows))
    last = results[-1]
    sec = last["seconds"]
    mat = last.get("materialize_seconds") or {}
    compared = [r for r in results if r["seconds"].get("feast_spark")]

    def fmt(value: float | None) -> str:
        return f"{value:>8.2f}s" if value is not None else "     n/a"

    print("rows/view | entity rows | lake spark | feast spark | lake duckdb")
    for r in results:
        s = r["seconds"]
        print(f"{r['rows']:>10,} | {r['entity_rows']:>10,} | {fmt(s.get('lake_spark'))} | "
              f"{fmt(s.get('feast_spark'))} | {fmt(s.get('lake_duckdb'))}")
    ref = compared[-1]["seconds"] if compared else None
    emit({
        "benchmark": "features_spark", "metric": "retrieval_seconds_spark", "value": sec["lake_spark"], "unit": "s",
        "baseline": "feast_spark_offline_store",
        "ratio": round(ref["lake_spark"] / ref["feast_spark"], 4) if ref and ref.get("lake_spark") else None,
        "ratio_at_rows": compared[-1]["rows"] if compared else None,
        "ratio_duckdb": round(sec["lake_spark"] / sec["lake_duckdb"], 4)
        if sec.get("lake_spark") and sec.get("lake_duckdb") else None,
        "ratio_materialize": round(mat["lake_spark"] / mat["feast_materialize"], 4) if mat else None,
        "sizes": results, "views": VIEWS, "date": dt.date.today().isoformat(), "quick": args.quick,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    })
    spark.stop()


if __name__ == "__main__":
    main()
