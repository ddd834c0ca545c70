"""Materialization into SQLite and Redis: latest values per entity, incremental from the Delta log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from feast.value_type import ValueType

from lake.errors import FeatureError
from lake.features.encoding import encode_values, entity_keys, timestamp_proto
from lake.features.materialize import materialize
from lake.features.online_plan import view_read
from lake.features.repo import feature_store, online_store
from tests.lake.features.conftest import (
    BASE,
    ONLINE_BACKENDS,
    FeatureLake,
    OnlineLake,
    build,
    cleanup_redis,
    driver_stats,
)

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city"]


def _latest(stats: pd.DataFrame) -> pd.DataFrame:
    """The oracle: per driver, the row with the latest (event time, created time)."""
    ordered = stats.sort_values(["event_timestamp", "created", "conv_rate", "trips", "city"], na_position="first")
    return ordered.groupby("driver_id").tail(1).set_index("driver_id").sort_index()


def _online(fl: FeatureLake, drivers: list[int]) -> pd.DataFrame:
    got = feature_store(fl.lake).get_online_features(
        features=FEATURES, entity_rows=[{"driver_id": d} for d in drivers]).to_dict()
    return pd.DataFrame(got).set_index("driver_id")


def test_full_then_incremental(feature_lake: FeatureLake) -> None:
    lake = feature_lake.lake
    stats = driver_stats()
    (full,) = materialize(lake, ["driver_stats"])
    assert full.mode == "full" and full.entities == stats.driver_id.nunique() and full.written == full.entities
    want = _latest(stats.drop_duplicates(["driver_id", "event_timestamp", "created"]))
    got = _online(feature_lake, list(want.index) + [999])
    assert got.loc[999].isna().all()  # a missing entity reads as nulls
    got = got.drop(index=999)
    assert got["trips"].tolist() == want["trips"].tolist()
    assert got["city"].tolist() == want["city"].tolist()
    pd.testing.assert_series_equal(got["conv_rate"], want["conv_rate"].astype(float), check_names=False)

    (same,) = materialize(lake, ["driver_stats"], incremental=True)
    assert same.mode == "unchanged" and same.entities == 0

    # One new file: two drivers get newer values, one gets a late row older than what is online.
    late = BASE + pd.Timedelta(hours=1)
    change = pd.DataFrame({"driver_id": [3, 4, 5], "event_timestamp": [BASE + pd.Timedelta(days=30)] * 2 + [late],
                           "created": [BASE + pd.Timedelta(days=31)] * 3, "conv_rate": [0.5, 0.25, 0.125],
                           "trips": [1000, 2000, 3000], "city": ["x", "y", "z"]})
    lake.table("gold.driver_stats").write(change)
    (inc,) = materialize(lake, ["driver_stats"], incremental=True)
    assert (inc.mode, inc.previous_version, inc.version, inc.files_read) == ("incremental", 0, 1, 1)
    assert inc.entities == 3 and inc.written == 2  # the late, older row did not regress driver 5
    after = _online(feature_lake, [3, 4, 5])
    assert after["trips"].tolist() == [1000, 2000, int(want.loc[5, "trips"])]
    run = lake.catalog.run_info(inc.run_id)
    assert run["stats"]["mode"] == "incremental" and run["stats"]["files_read"] == 1
    assert any(i["name"] == "gold.driver_stats" and i["version"] == 1 for i in run["inputs"])


def test_same_answers_as_stock_feast_materialize(online_lake: OnlineLake) -> None:
    """Feast's own materialize into the same store gives the same online values and bytes (every backend)."""
    lake = online_lake.lake
    stats = driver_stats().drop_duplicates(["driver_id", "event_timestamp", "created"])
    drivers = sorted(stats.driver_id.unique().tolist())
    materialize(lake, ["driver_stats"])
    ours, ours_raw = _online(online_lake, drivers), online_lake.backend.raw(lake)
    store = feature_store(lake)
    view = view_read(store.get_feature_view("driver_stats"))
    online_store(lake).delete(view, entity_keys({"driver_id": pa.array(drivers)}, {"driver_id": ValueType.INT64}))
    assert _online(online_lake, drivers).isna().all().all()  # an empty store for Feast to fill
    store.materialize(start_date=(BASE - pd.Timedelta(days=1)).to_pydatetime(),
                      end_date=(BASE + pd.Timedelta(days=40)).to_pydatetime(), feature_views=["driver_stats"])
    stock = _online(online_lake, drivers)
    pd.testing.assert_frame_equal(ours, stock)
    assert online_lake.backend.raw(lake) == ours_raw


def test_end_bound_and_errors(embedded_lake: FeatureLake) -> None:
    lake = embedded_lake.lake
    stats = driver_stats().drop_duplicates(["driver_id", "event_timestamp", "created"])
    end = BASE + pd.Timedelta(hours=100)
    materialize(lake, ["driver_stats"], end=end.to_pydatetime())
    want = _latest(stats[stats.event_timestamp <= end])
    got = _online(embedded_lake, list(want.index))
    assert got["trips"].tolist() == want["trips"].tolist()
    with pytest.raises(FeatureError, match="no feature view ghost"):
        materialize(lake, ["ghost"])


def test_encoding_matches_feast_bytes() -> None:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values
    from feast.utils import _columns_to_proto_values
    from feast.value_type import ValueType
    from google.protobuf.timestamp_pb2 import Timestamp

    cases = [(pa.array([1.5, None, float("nan"), -2.0]), ValueType.DOUBLE),
             (pa.array([1.5, None, 3.25], pa.float32()), ValueType.FLOAT),
             (pa.array([0, -1, 2**40, None, 300]), ValueType.INT64),
             (pa.array([0, -5, 7, None], pa.int32()), ValueType.INT32),
             (pa.array([True, False, None]), ValueType.BOOL),
             (pa.array(["a", "", "héllo", None, "x" * 200]), ValueType.STRING),
             (pa.array([[1.0, 2.0], None]), ValueType.DOUBLE_LIST)]
    for arr, vt in cases:
        batch = pa.record_batch([arr], names=["c"])
        ref = [v.SerializeToString() for v in _columns_to_proto_values(batch, [("c", vt)], allow_missing=False)["c"]]
        assert encode_values(arr, vt) == ref, vt
    for arr, vt in [(pa.array([1, -3, 2**50]), ValueType.INT64), (pa.array(["a", "bé"]), ValueType.STRING)]:
        ref = [serialize_entity_key(EntityKey(join_keys=["k"], entity_values=python_values_to_proto_values([v], vt)), 3)
               for v in arr.to_pylist()]
        assert entity_keys({"k": arr}, {"k": vt}) == ref
    two = entity_keys({"b": pa.array(["x"]), "a": pa.array([7])}, {"b": ValueType.STRING, "a": ValueType.INT64})
    ref_two = serialize_entity_key(EntityKey(join_keys=["b", "a"], entity_values=[
        *python_values_to_proto_values(["x"], ValueType.STRING), *python_values_to_proto_values([7], ValueType.INT64)]), 3)
    assert two == [ref_two]
    for us in (0, 1_700_000_000_123_456, 1_700_000_000_000_000):
        stamp = Timestamp()
        stamp.FromDatetime(dt.datetime.fromtimestamp(us // 1_000_000, dt.UTC).replace(microsecond=us % 1_000_000))
        assert timestamp_proto(us) == stamp.SerializeToString()


@pytest.mark.spark
@pytest.mark.redis
def test_spark_materialization_same_bytes_as_stock_feast(tmp_path: Path, request: pytest.FixtureRequest,
                                                         spark: Any) -> None:
    """On Spark (latest rows on the executors, written to Redis from them): the same Redis bytes as
    stock `feast materialize` and as the DuckDB path; incremental from the Delta log as well."""
    backend = ONLINE_BACKENDS["redis"]
    backend.require()
    fl = build("redis", tmp_path, request)
    lake = fl.lake
    try:
        stats = driver_stats().drop_duplicates(["driver_id", "event_timestamp", "created"])
        drivers = sorted(stats.driver_id.unique().tolist())
        (full,) = materialize(lake, ["driver_stats"], engine="spark")
        assert full.mode == "full" and full.entities == len(drivers) and full.written == full.entities
        ours_raw = backend.raw(lake)
        run = lake.catalog.run_info(full.run_id)
        assert run["stats"]["engine"] == "spark"
        store = feature_store(lake)
        view = view_read(store.get_feature_view("driver_stats"))
        keys = entity_keys({"driver_id": pa.array(drivers)}, {"driver_id": ValueType.INT64})
        online_store(lake).delete(view, keys)
        store.materialize(start_date=(BASE - pd.Timedelta(days=1)).to_pydatetime(),
                          end_date=(BASE + pd.Timedelta(days=40)).to_pydatetime(), feature_views=["driver_stats"])
        assert backend.raw(lake) == ours_raw  # stock Feast wrote the same bytes
        online_store(lake).delete(view, keys)
        materialize(lake, ["driver_stats"], engine="duckdb")
        assert backend.raw(lake) == ours_raw
        # Incremental: only the new file is read; a late, older row does not regress driver 5.
        late = BASE + pd.Timedelta(hours=1)
        change = pd.DataFrame({"driver_id": [3, 4, 5], "event_timestamp": [BASE + pd.Timedelta(days=30)] * 2 + [late],
                               "created": [BASE + pd.Timedelta(days=31)] * 3, "conv_rate": [0.5, 0.25, 0.125],
                               "trips": [1000, 2000, 3000], "city": ["x", "y", "z"]})
        lake.table("gold.driver_stats").write(change)
        (inc,) = materialize(lake, ["driver_stats"], incremental=True, engine="spark")
        assert (inc.mode, inc.files_read, inc.entities, inc.written) == ("incremental", 1, 3, 2)
        after = _online(fl, [3, 4, 5])
        assert after["trips"].tolist()[:2] == [1000, 2000] and after["trips"].tolist()[2] != 3000
    finally:
        cleanup_redis(fl)


def test_spark_materialization_needs_redis(embedded_lake: FeatureLake) -> None:
    with pytest.raises(FeatureError, match="writes to Redis"):
        materialize(embedded_lake.lake, ["driver_stats"], engine="spark")
