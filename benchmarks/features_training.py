"""Point-in-time training retrieval: the lake vs Feast's stock offline stores vs pandas
``merge_asof``, same data, same run.

Three feature views over three gold Delta tables of ``--rows`` rows each (default 10M,
``--quick`` 1M), keyed by ``user_id`` (one key per 50 rows), with a created-timestamp
column (ties broken by it) and a 30-day TTL; an entity frame of rows/10 rows (1M, quick
100k). Sides: ``lake.features.retrieve`` twice: ``lake_first`` with an empty cache (the
first retrieval against these table versions builds the per-version point-in-time
indexes from the Delta tables) and ``lake`` as a new training process would run it (the
indexes read back from the cache folder); Feast 0.67's ``file`` offline store (its
default), Feast's DuckDB offline store, and pandas ``merge_asof`` per view after reading
each table with delta-rs. The headline metric is output rows per second of ``lake``
(target: at least 1M rows/s); ``ratio`` = lake time / Feast file-store time,
``ratio_first`` the same for the first retrieval.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from benchmarks.common import emit, median_times, parse_args, scratch_dir
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
                             schema=[Field(name="f{i}_a", dtype=Float64), Field(name="f{i}_b", dtype=Int64)])
'''


def build(lake: Lake, rows: int, keys: int) -> None:
    con = duckdb.connect()
    for i in range(VIEWS):
        data = con.sql(f"""
            SELECT (hash(r * {i + 3}) % {keys})::BIGINT AS user_id,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((hash(r * 11 + {i}) % {DAYS * 86_400_000_000})::BIGINT) AS event_timestamp,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((hash(r * 13 + {i}) % {(DAYS + 1) * 86_400_000_000})::BIGINT) AS created,
                   (hash(r * 17 + {i}) % 100000) / 1000.0 AS f{i}_a,
                   (hash(r * 19 + {i}) % 1000)::BIGINT AS f{i}_b
            FROM range({rows}) t(r)""")
        lake.table(f"gold.user_stats_{i}").write(data.to_arrow_reader(1_000_000))


def entity_frame(n: int, keys: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return pd.DataFrame({"user_id": rng.integers(0, keys, n).astype("int64"),
                         "event_timestamp": start + pd.to_timedelta(rng.integers(0, DAYS * 86_400, n), unit="s")})


def merge_asof_all(lake: Lake, entities: pd.DataFrame) -> pd.DataFrame:
    """What a user writes by hand: read each table, sort, merge_asof, apply the TTL."""
    out = entities.reset_index(names="__pos").sort_values("event_timestamp", kind="stable")
    for i in range(VIEWS):
        src = lake.table(f"gold.user_stats_{i}").delta().to_pandas()
        src["event_timestamp"] = src["event_timestamp"].astype(out["event_timestamp"].dtype)
        src["created"] = src["created"].astype(out["event_timestamp"].dtype)
        src = src.sort_values(["event_timestamp", "created"], kind="stable").rename(
            columns={"event_timestamp": f"__ts{i}"}).drop(columns=["created"])
        out = pd.merge_asof(out, src, left_on="event_timestamp", right_on=f"__ts{i}", by="user_id")
        stale = out[f"__ts{i}"] < out["event_timestamp"] - pd.Timedelta(days=TTL_DAYS)
        out.loc[stale, [f"f{i}_a", f"f{i}_b"]] = None
        out = out.drop(columns=[f"__ts{i}"])
    return out.sort_values("__pos").drop(columns="__pos")


def feast_store(lake: Lake, kind: str) -> Any:
    from feast import FeatureStore, RepoConfig
    from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig

    from lake.features.repo import repo_config

    base = repo_config(lake)
    offline = DaskOfflineStoreConfig() if kind == "file" else DuckDBOfflineStoreConfig()
    config = RepoConfig(project=base.project, provider="local", registry=base.registry,
                        online_store=base.online_store, offline_store=offline, entity_key_serialization_version=3,
                        repo_path=base.repo_path)
    return FeatureStore(config=config)


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=10_000_000, quick_rows=1_000_000)
    base = scratch_dir("features-training")
    settings = load_settings({"root": str(base / "lake"), "feast": {"project": "bench", "repo": str(base / "repo")}},
                             env={}, config_file=False)
    lake = Lake(settings)
    keys = max(1, args.rows // 50)
    started = time.perf_counter()
    build(lake, args.rows, keys)
    repo = Path(base / "repo")
    repo.mkdir()
    (repo / "views.py").write_text(REPO + "".join(VIEW.format(i=i, ttl=TTL_DAYS) for i in range(VIEWS)))
    from lake.features import pit_index
    from lake.features.apply import apply
    from lake.features.retrieval import retrieve

    apply(lake, repo)
    entities = entity_frame(args.rows // 10, keys)
    features = [f"user_stats_{i}:{c}" for i in range(VIEWS) for c in (f"f{i}_a", f"f{i}_b")]
    print(f"built {VIEWS} x {args.rows:,} feature rows, {len(entities):,} entity rows "
          f"in {time.perf_counter() - started:.1f}s")
    lake_cat = Lake(settings, catalog=False)  # time the join, not catalog bookkeeping

    results: dict[str, Any] = {}

    def ours() -> None:  # a new training process: the indexes are read from the cache folder
        pit_index.forget()
        results["lake"] = retrieve(lake_cat, entities, features).data

    def ours_first() -> None:  # the first retrieval against these table versions builds the indexes
        shutil.rmtree(lake_cat.settings.cache_path, ignore_errors=True)
        pit_index.forget()
        results["lake_first"] = retrieve(lake_cat, entities, features).data

    def pandas_side() -> None:
        results["pandas"] = merge_asof_all(lake_cat, entities)

    file_store, duck_store = feast_store(lake, "file"), feast_store(lake, "duckdb")

    def feast_file() -> None:
        results["feast_file"] = file_store.get_historical_features(entity_df=entities, features=features).to_df()

    def feast_duckdb() -> None:
        results["feast_duckdb"] = duck_store.get_historical_features(entity_df=entities, features=features).to_df()

    sides = {"lake_first": ours_first, "lake": ours, "pandas_merge_asof": pandas_side, "feast_file": feast_file, "feast_duckdb": feast_duckdb}
    times = median_times(sides, args.repeat if args.quick else 1, warmup=args.quick)
    assert results["lake"].equals(results["lake_first"])
    got = results["lake"].to_pandas()
    want = results["pandas"]
    agree = {c: bool(np.allclose(got[c].astype(float).fillna(-1).to_numpy(), want[c].astype(float).fillna(-1).to_numpy()))
             for c in got.columns if c.startswith("f")}
    rows = len(entities)
    emit({
        "benchmark": "features_training", "metric": "output_rows_per_s", "value": round(rows / times["lake"]),
        "unit": "rows/s", "baseline": "feast_file_offline_store",
        "ratio": round(times["lake"] / times["feast_file"], 4),
        "ratio_pandas_merge_asof": round(times["lake"] / times["pandas_merge_asof"], 4),
        "ratio_feast_duckdb": round(times["lake"] / times["feast_duckdb"], 4),
        "rows_per_s_first": round(rows / times["lake_first"]),
        "ratio_first": round(times["lake_first"] / times["feast_file"], 4),
        "ratio_first_feast_duckdb": round(times["lake_first"] / times["feast_duckdb"], 4),
        "seconds": {k: round(v, 3) for k, v in times.items()},
        "entity_rows": rows, "feature_rows_per_view": args.rows, "views": VIEWS, "keys": keys,
        "lake_matches_merge_asof": all(agree.values()), "target_rows_per_s": 1_000_000,
        "date": dt.date.today().isoformat(),
    })


if __name__ == "__main__":
    main()
