"""Materialization into Redis: the lake's materializer vs stock ``feast materialize``, same data, same run.

A gold Delta table of ``--rows`` feature rows (default 2M, ``--quick`` 200k) over rows/4
entities, 8 features (doubles, ints, a string), with event and created timestamps. Sides:
``lake.features.materialize`` (DuckDB reduces to the latest row per entity, column-wise
encoding, pipelined Redis writes) and Feast 0.67's own ``FeatureStore.materialize`` over
the same registry and the same Redis, same time range. Then 1% new rows are appended and
the incremental materialization (only the files added since) is timed, to show its cost
follows the change. ``value`` = source rows per second of the full materialization;
``ratio`` = lake full time / Feast time (target: 1/3 or less, i.e. 3x faster).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.common import emit, median_times, parse_args, scratch_dir
from lake import Lake, load_settings

REPO = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64, Int64, String

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
src = FileSource(name="user_src", path="gold.user_profile", file_format=DeltaFormat(),
                 timestamp_field="event_timestamp", created_timestamp_column="created")
user_profile = FeatureView(name="user_profile", entities=[user], ttl=timedelta(days=365), source=src, online=True,
    schema=[Field(name=f"d{i}", dtype=Float64) for i in range(5)]
           + [Field(name=f"n{i}", dtype=Int64) for i in range(2)] + [Field(name="segment", dtype=String)])
'''


def rows_sql(start: int, count: int, keys: int, day: int) -> str:
    doubles = ", ".join(f"(hash(r * {i + 3}) % 100000) / 100.0 AS d{i}" for i in range(5))
    ints = ", ".join(f"(hash(r * {i + 11}) % 1000)::BIGINT AS n{i}" for i in range(2))
    return f"""
        SELECT (hash(r) % {keys})::BIGINT AS user_id,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds((hash(r * 7) % 86400000000)::BIGINT)
                 + INTERVAL {day} DAY AS event_timestamp,
               TIMESTAMPTZ '2024-01-02 00:00:00+00' + INTERVAL {day} DAY AS created,
               {doubles}, {ints}, ['a', 'b', 'c', 'd'][(hash(r * 5) % 4)::INT + 1] AS segment
        FROM range({start}, {start + count}) t(r)"""


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=2_000_000, quick_rows=200_000)
    from tests.services import reachable

    if not reachable("127.0.0.1", 6379):
        raise SystemExit("Redis is not reachable on 127.0.0.1:6379; start it (see README) and re-run")
    base = scratch_dir("features-materialize")
    project = f"benchmat{int(time.time())}"
    settings = load_settings({"root": str(base / "lake"),
                              "feast": {"project": project, "repo": str(base / "repo"), "online_store": "redis",
                                        "redis_url": "127.0.0.1:6379"}}, env={}, config_file=False)
    lake = Lake(settings)
    keys = max(1, args.rows // 4)
    con = duckdb.connect()
    table = lake.table("gold.user_profile")
    table.write(con.sql(rows_sql(0, args.rows, keys, 0)).to_arrow_reader(500_000))
    repo = Path(base / "repo")
    repo.mkdir()
    (repo / "views.py").write_text(REPO)
    from lake.features.apply import apply
    from lake.features.materialize import materialize
    from lake.features.repo import feature_store

    apply(lake, repo)
    store = feature_store(lake)
    start, end = dt.datetime(2023, 12, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    out: dict[str, Any] = {}

    def ours() -> None:
        out["lake"] = materialize(lake, ["user_profile"], store=store)[0]

    def stock() -> None:
        store.materialize(start_date=start, end_date=end, feature_views=["user_profile"])

    times = median_times({"lake_full": ours, "feast_materialize": stock}, args.repeat if args.quick else 1,
                         warmup=args.quick)
    full = out["lake"]
    # Parity: what our writer put online equals what Feast's own writer puts online.
    sample = [{"user_id": k} for k in range(0, keys, max(1, keys // 200))]
    feats = [f"user_profile:{f}" for f in ("d0", "d4", "n1", "segment")]
    materialize(lake, ["user_profile"], store=store)
    ours_online = store.get_online_features(features=feats, entity_rows=sample).to_dict()
    stock()
    same = store.get_online_features(features=feats, entity_rows=sample).to_dict() == ours_online
    # Incremental after a 1% change: only the new file is read.
    change = max(1, args.rows // 100)
    table.write(con.sql(rows_sql(args.rows, change, keys, 1)).to_arrow_reader(500_000))
    t0 = time.perf_counter()
    (inc,) = materialize(lake, ["user_profile"], incremental=True, store=store)
    inc_time = time.perf_counter() - t0
    fraction = inc_time / times["lake_full"]
    emit({
        "benchmark": "features_materialize", "metric": "full_rows_per_s", "value": round(args.rows / times["lake_full"]),
        "unit": "rows/s", "baseline": "feast_materialize",
        "ratio": round(times["lake_full"] / times["feast_materialize"], 4),
        "feast_rows_per_s": round(args.rows / times["feast_materialize"]),
        "seconds": {"lake_full": round(times["lake_full"], 3), "feast_materialize": round(times["feast_materialize"], 3),
                    "lake_incremental_1pct": round(inc_time, 3)},
        "incremental": {"mode": inc.mode, "files_read": inc.files_read, "rows_changed": change,
                        "entities": inc.entities, "written": inc.written,
                        "time_fraction_of_full": round(fraction, 4)},
        "entities": full.entities, "source_rows": args.rows, "features": 8, "online_values_equal_feast": same,
        "target_ratio": 0.3333, "date": dt.date.today().isoformat(),
    })
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    suffix = project.encode()
    for key in client.scan_iter(count=10_000):
        if key.endswith(suffix):
            client.delete(key)


if __name__ == "__main__":
    main()
