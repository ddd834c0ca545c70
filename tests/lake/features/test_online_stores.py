"""One suite, every online store backend (SQLite and a real Redis): the OnlineStore contract.

Write, read back, keep-the-newer, delete, health, missing keys, and the bytes in the
store compared with what stock Feast writes for the same rows. Each test runs once per
backend in ``ONLINE_BACKENDS`` (see ``conftest.py``); a new backend is added there.
"""

from __future__ import annotations

import types

import pandas as pd
import pyarrow as pa
import pytest
from feast.value_type import ValueType

from lake.errors import FeatureError, OnlineStoreError
from lake.features.encoding import encode_values, entity_keys
from lake.features.online_backends import BACKENDS, open_online_store
from lake.features.online_plan import view_read
from lake.features.online_store import OnlineStore, ViewRead
from lake.features.online_values import decode
from lake.features.repo import feast_dir, feature_store, online_store
from tests.lake.features.conftest import BASE, OnlineLake

TYPES = {"conv_rate": ValueType.DOUBLE, "trips": ValueType.INT64, "city": ValueType.STRING}
KEY = {"driver_id": ValueType.INT64}


def _frame(drivers: list[int], hours: list[int], seed: int = 0) -> pd.DataFrame:
    n = len(drivers)
    return pd.DataFrame({
        "driver_id": pd.array(drivers, dtype="int64"),
        "event_timestamp": [BASE + pd.Timedelta(hours=h) for h in hours],
        "created": [BASE + pd.Timedelta(days=60)] * n,
        "conv_rate": [round(0.1 * (i + 1) + seed, 4) for i in range(n)],
        "trips": [10 * (i + 1) + seed for i in range(n)],
        "city": [f"city-{i}-{seed}" for i in range(n)]})


def _keys(drivers: list[int]) -> list[bytes]:
    return entity_keys({"driver_id": pa.array(drivers, pa.int64())}, KEY)


def _write(fl: OnlineLake, frame: pd.DataFrame, view: str = "driver_stats") -> int:
    """Write a frame through the backend's writer, as materialization does."""
    store = feature_store(fl.lake)
    fv = store.get_feature_view(view)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    values = {f.name: encode_values(table.column(f.name).combine_chunks(), f.dtype.to_value_type())
              for f in fv.features}
    times = table.column("event_timestamp" if view == "driver_stats" else "ts")
    ts = pa.compute.cast(pa.compute.cast(times, pa.timestamp("us", "UTC")), pa.int64())
    writer = online_store(fl.lake).writer(store.config, fv)
    try:
        return writer.write(_keys(frame["driver_id"].tolist()), values, ts.to_pylist())
    finally:
        writer.close()


def _view(fl: OnlineLake, name: str = "driver_stats", features: list[str] | None = None) -> ViewRead:
    return view_read(feature_store(fl.lake).get_feature_view(name), features)


def _us(when: pd.Timestamp) -> tuple[int, int]:
    us = when.value // 1000
    return us // 1_000_000, us % 1_000_000 * 1000


def test_the_configured_backend_is_chosen(online_lake: OnlineLake) -> None:
    store = online_store(online_lake.lake)
    assert store.kind == online_lake.backend.name == online_lake.lake.settings.feast.online_store
    assert type(store) is type(BACKENDS[store.kind](online_lake.lake.settings.feast, feast_dir(online_lake.lake)))
    unknown = types.SimpleNamespace(online_store="cassandra", project="p", redis_url="")
    with pytest.raises(FeatureError, match="'cassandra' is not a known online store; use one of redis, sqlite"):
        open_online_store(unknown, feast_dir(online_lake.lake))  # type: ignore[arg-type]


def test_write_then_read_back(online_lake: OnlineLake) -> None:
    frame = _frame([3, 1, 2], [5, 6, 7])
    assert _write(online_lake, frame) == 3
    store: OnlineStore = online_store(online_lake.lake)
    view = _view(online_lake)
    (rows,) = store.read([(view, _keys([1, 999, 3, 2]))])
    assert rows[1] == (None, [None, None, None])  # a missing key
    by_driver = {d: r for d, r in zip([1, 999, 3, 2], rows, strict=True)}
    for _, row in frame.iterrows():
        ts, raws = by_driver[int(row.driver_id)]
        assert ts == _us(row.event_timestamp)
        assert [decode(r) for r in raws] == [row[f] for f in view.features]
        assert raws == [encode_values(pa.array([row[f]]), TYPES[f])[0] for f in view.features]


def test_reads_a_subset_and_several_views_at_once(online_lake: OnlineLake) -> None:
    _write(online_lake, _frame([1, 2], [5, 6]))
    _write(online_lake, pd.DataFrame({"driver_id": pd.array([2], dtype="int64"), "ts": [BASE], "rating": [4.5]}),
           "driver_rating")
    store = online_store(online_lake.lake)
    some, rating = _view(online_lake, features=["city", "trips"]), _view(online_lake, "driver_rating")
    assert some.features == ("trips", "city")  # the view's order
    stats, ratings = store.read([(some, _keys([2, 1])), (rating, _keys([1, 2]))])
    assert [[decode(v) for v in raws] for _, raws in stats] == [[20, "city-1-0"], [10, "city-0-0"]]
    assert ratings[0] == (None, [None]) and [decode(v) for v in ratings[1][1]] == [4.5]
    assert store.read([]) == [] and store.read([(some, [])]) == [[]]


def test_newer_values_are_kept_equal_times_overwrite(online_lake: OnlineLake) -> None:
    first = _frame([1, 2], [10, 10])
    _write(online_lake, first)
    older = _frame([1, 2], [5, 10], seed=100)  # driver 1: older, kept out; driver 2: same time, a correction
    older.loc[1, "event_timestamp"] = first.loc[1, "event_timestamp"]
    assert _write(online_lake, older) == 1
    (rows,) = online_store(online_lake.lake).read([(_view(online_lake), _keys([1, 2]))])
    assert decode(rows[0][1][1]) == 10 and decode(rows[1][1][1]) == 120


def test_delete(online_lake: OnlineLake) -> None:
    _write(online_lake, _frame([1, 2, 3], [5, 6, 7]))
    _write(online_lake, pd.DataFrame({"driver_id": pd.array([1, 2], dtype="int64"), "ts": [BASE] * 2,
                                      "rating": [1.0, 2.0]}), "driver_rating")
    store = online_store(online_lake.lake)
    stats, rating = _view(online_lake), _view(online_lake, "driver_rating")
    assert store.delete(stats, _keys([1, 2, 999])) == 2
    assert store.delete(stats, _keys([1])) == 0 and store.delete(stats, []) == 0
    got, ratings = store.read([(stats, _keys([1, 2, 3])), (rating, _keys([1, 2]))])
    assert [ts is None for ts, _ in got] == [True, True, False]
    assert [decode(r[1][0]) for r in ratings] == [1.0, 2.0]  # the other view's values of the same keys stay
    assert _write(online_lake, _frame([1], [1])) == 1  # a deleted key takes any value again


def test_health(online_lake: OnlineLake) -> None:
    _write(online_lake, _frame([1], [1]))
    online_store(online_lake.lake).health()
    gone = online_lake.backend.unreachable(online_lake.lake)
    assert gone.kind == online_lake.backend.name
    with pytest.raises(OnlineStoreError, match="online store") as info:
        gone.health()
    assert info.value.status == 503
    with pytest.raises(OnlineStoreError, match="online store"):
        gone.read([(_view(online_lake), _keys([1]))])


def test_bytes_equal_what_stock_feast_writes(online_lake: OnlineLake) -> None:
    """The same rows written by Feast's own online write and by the lake leave identical bytes."""
    frame = _frame([4, 1, 2, 3], [5, 6, 7, 8])
    frame.loc[2, "conv_rate"] = 0.1 + 0.2  # a double whose text needs all 17 digits
    frame.loc[1, "trips"] = -(2**40)
    frame.loc[3, "city"] = "é" * 70  # a string longer than 127 bytes
    frame["event_timestamp"] += pd.to_timedelta([0, 123_456, 999_999, 1], unit="us")  # SQLite keeps whole seconds
    fl, store = online_lake, feature_store(online_lake.lake)
    store.write_to_online_store("driver_stats", frame)
    stock = fl.backend.raw(fl.lake)
    assert stock and any(stock.values())
    online_store(fl.lake).delete(_view(fl), _keys([4, 1, 2, 3]))
    assert not any(fl.backend.raw(fl.lake).values())
    _write(fl, frame)
    assert fl.backend.raw(fl.lake) == stock


def test_sdk_reads_what_the_lake_wrote(online_lake: OnlineLake) -> None:
    frame = _frame([1, 2], [5, 6])
    _write(online_lake, frame)
    got = feature_store(online_lake.lake).get_online_features(
        features=["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city"],
        entity_rows=[{"driver_id": 2}, {"driver_id": 1}]).to_dict()
    assert got == {"driver_id": [2, 1], "conv_rate": [0.2, 0.1], "trips": [20, 10], "city": ["city-1-0", "city-0-0"]}
