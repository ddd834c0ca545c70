"""The per-version point-in-time index: answers checked by brute force, every key kind, the cache."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lake.errors import FeatureError
from lake.features import pit_index
from lake.features.pit_index import Source
from lake.lakehouse import Lake
from tests.conftest import make_settings

BASE = pd.Timestamp("2024-01-01", tz="UTC")
TTL = dt.timedelta(hours=30)


def _source(n: int, key_kind: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 12, n)
    keys = {
        "int": {"k": ids.astype("int64")},
        "sparse": {"k": (ids * 1_000_003_019 - 6_000_000_000_000_000_000).astype("int64")},  # hashed-looking ids
        "string": {"k": np.array([f"user-{i:03d}" for i in ids])},
        "pair": {"k": np.array([f"c{i % 3}" for i in ids]), "k2": (ids // 3).astype("int32")},
    }[key_kind]
    frame = pd.DataFrame({**keys,
                          "ts": BASE + pd.to_timedelta(rng.integers(0, 100, n), unit="h"),
                          "created": BASE + pd.to_timedelta(rng.integers(0, 5, n), unit="h"),
                          "v": rng.integers(0, 1000, n).astype("int64"),
                          "w": rng.random(n).round(3)})
    frame.loc[rng.random(n) < 0.1, "w"] = np.nan
    return frame


def _entities(source: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    key_cols = [c for c in ("k", "k2") if c in source.columns]
    picked = source[key_cols].sample(n, replace=True, random_state=seed).reset_index(drop=True)
    picked.loc[rng.random(n) < 0.1, key_cols[0]] = source[key_cols[0]].iloc[0] if key_cols == ["k2"] else (
        "absent" if source["k"].dtype == object else 42)  # some keys the source never saw
    picked["event_timestamp"] = BASE + pd.to_timedelta(rng.integers(-10, 130, n), unit="h")
    return picked


def _brute_force(source: pd.DataFrame, ents: pd.DataFrame, ttl: dt.timedelta | None) -> list[tuple]:
    """For each entity row: the latest source row at or before its time (then latest created, then
    greatest values), within the TTL; ``None`` if there is none."""
    key_cols = [c for c in ("k", "k2") if c in source.columns]
    out = []
    for _, e in ents.iterrows():
        rows = source
        for c in key_cols:
            rows = rows[rows[c] == e[c]]
        rows = rows[rows["ts"] <= e["event_timestamp"]]
        if ttl is not None:
            rows = rows[rows["ts"] >= e["event_timestamp"] - ttl]
        if rows.empty:
            out.append(None)
            continue
        best = rows.sort_values(["ts", "created", "v"]).iloc[-1]
        out.append((int(best["v"]), None if pd.isna(best["w"]) else float(best["w"])))
    return out


def _lookup(lake: Lake, name: str, frame: pd.DataFrame, ents: pd.DataFrame, ttl: dt.timedelta | None) -> list:
    table = lake.table(name)
    key_cols = [c for c in ("k", "k2") if c in frame.columns]
    source = Source(table, table.version(), table.uri, {c: c for c in key_cols}, "ts", "created", {"v": "v", "w": "w"})
    index = pit_index.load(lake, source)
    keys = pa.table({c: pa.array(ents[c]) for c in key_cols})
    time = ents["event_timestamp"].astype("int64").to_numpy() // 1000
    ttl_us = ttl // dt.timedelta(microseconds=1) if ttl else None
    order = pit_index.entity_order(keys, time)
    match = index.lookup(keys, time, ttl_us, order)
    unhinted = index.lookup(keys, time, ttl_us)
    assert np.array_equal(match.inverse >= 0, unhinted.inverse >= 0)
    v, w = index.gather("v", match).to_pylist(), index.gather("w", match).to_pylist()
    return [None if a is None else (a, b) for a, b in zip(v, w, strict=True)]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(make_settings(root=str(tmp_path / "lake")), catalog=False)


@pytest.mark.parametrize("key_kind", ["int", "sparse", "string", "pair"])
@pytest.mark.parametrize("ttl", [TTL, None])
def test_answers_match_brute_force(lake: Lake, key_kind: str, ttl: dt.timedelta | None) -> None:
    frame = _source(400, key_kind, seed=3)
    ties = frame.sample(60, random_state=1).assign(v=lambda f: f["v"] + 1)  # same key, time and created time
    late = frame.sample(40, random_state=2).assign(created=lambda f: f["created"] + pd.Timedelta(hours=9))
    frame = pd.concat([frame, ties, late], ignore_index=True)
    # Two commits in an order unlike the answer's: the index must not depend on file order.
    lake.table("gold.src").write(frame.iloc[200:])
    lake.table("gold.src").write(frame.iloc[:200], mode="append")
    ents = _entities(frame, 300, seed=4)
    got = _lookup(lake, "gold.src", frame, ents, ttl)
    assert got == _brute_force(frame, ents, ttl)
    assert sum(g is not None for g in got) > 100


def test_wide_time_ranges_search_on_time_ranks(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _source(300, "int", seed=5)
    lake.table("gold.src").write(frame)
    ents = _entities(frame, 200, seed=6)
    want = _brute_force(frame, ents, TTL)
    monkeypatch.setattr(pit_index, "INT_LIMIT", 1000)  # as if keys x time span overflowed int64
    pit_index.forget()
    assert _lookup(lake, "gold.src", frame, ents, TTL) == want
    folder = next((Path(lake.settings.cache_path) / "feature_index").glob("*/v*"))
    assert (folder / "times.npy").exists()


def test_a_far_future_row_stays_in_the_future(lake: Lake) -> None:
    """A 9999-12-31 sentinel widens the time span past int64: still exact to the microsecond."""
    far = pd.Timestamp("9999-12-31 23:59:59.999999", tz="UTC")
    frame = pd.DataFrame({"k": np.arange(40, dtype="int64").tolist() + [0],
                          "ts": [BASE] * 40 + [far], "created": [BASE] * 41, "v": np.arange(41), "w": 0.5})
    frame["ts"] = pa.array(frame["ts"].tolist(), pa.timestamp("us", "UTC")).to_pandas()
    lake.table("gold.src").write(pa.Table.from_pandas(frame, preserve_index=False))
    table = lake.table("gold.src")
    index = pit_index.load(lake, Source(table, 0, table.uri, {"k": "k"}, "ts", "created", {"v": "v"}))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    before, at = (far.to_pydatetime() - epoch) // dt.timedelta(microseconds=1) - 1, None
    at = before + 1
    keys = pa.table({"k": pa.array([0, 0], pa.int64())})
    got = index.gather("v", index.lookup(keys, np.array([before, at]), None)).to_pylist()
    assert got == [0, 40]


@pytest.mark.parametrize("kind", ["wide-int", "wide-pair"])
def test_keys_spanning_the_whole_int64_range(lake: Lake, kind: str) -> None:
    """Hashed ids span more than 2**63: codes must not wrap around, pairs must not collide."""
    big = [-(2**62) * 2 + 5, -3, 0, 2**62 + 7, 2**63 - 1]
    if kind == "wide-int":
        frame = pd.DataFrame({"k": big})
    else:
        frame = pd.DataFrame({"k": [1, 1, 2, 2, 3], "k2": big})
    frame = frame.assign(ts=BASE, created=BASE, v=np.arange(len(frame)), w=1.0)
    lake.table("gold.src").write(frame)
    ents = frame.drop(columns=["ts", "created", "v", "w"]).assign(event_timestamp=BASE + pd.Timedelta(hours=1))
    assert _lookup(lake, "gold.src", frame, ents, TTL) == [(i, 1.0) for i in range(len(frame))]


def test_categorical_entity_keys(lake: Lake) -> None:
    frame = _source(200, "string", seed=12)
    lake.table("gold.src").write(frame)
    ents = _entities(frame, 100, seed=13)
    want = _brute_force(frame, ents, TTL)
    table = lake.table("gold.src")
    index = pit_index.load(lake, Source(table, 0, table.uri, {"k": "k"}, "ts", "created", {"v": "v", "w": "w"}))
    keys = pa.table({"k": pa.array(ents["k"]).dictionary_encode()})
    time = ents["event_timestamp"].astype("int64").to_numpy() // 1000
    match = index.lookup(keys, time, int(TTL / dt.timedelta(microseconds=1)), pit_index.entity_order(keys, time))
    got = [None if a is None else (a, b) for a, b in zip(index.gather("v", match).to_pylist(),
                                                         index.gather("w", match).to_pylist(), strict=True)]
    assert got == want


def test_a_broken_cache_folder_is_rebuilt(lake: Lake) -> None:
    frame = _source(100, "int", seed=14)
    lake.table("gold.src").write(frame)
    ents = _entities(frame, 30, seed=15)
    want = _lookup(lake, "gold.src", frame, ents, TTL)
    folder = next((Path(lake.settings.cache_path) / "feature_index").glob("*/v*"))
    (folder / "values.arrow").unlink()  # as if another process were half-way through removing it
    pit_index.forget()
    assert _lookup(lake, "gold.src", frame, ents, TTL) == want
    assert (folder / "values.arrow").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith((".tmp", ".trash"))]


def test_a_huge_ttl_is_no_ttl(lake: Lake) -> None:
    frame = _source(100, "int", seed=16)
    lake.table("gold.src").write(frame)
    ents = _entities(frame, 50, seed=17)
    assert _lookup(lake, "gold.src", frame, ents, dt.timedelta.max) == _brute_force(frame, ents, None)


def test_index_is_built_once_per_version_and_named_by_the_table_identity(lake: Lake) -> None:
    frame = _source(200, "int", seed=7)
    lake.table("gold.src").write(frame)
    ents = _entities(frame, 50, seed=8)
    first = _lookup(lake, "gold.src", frame, ents, TTL)
    cache = Path(lake.settings.cache_path) / "feature_index"
    built = sorted(cache.glob("*/v*"))
    assert len(built) == 1
    stamp = (built[0] / "search.npy").stat()
    pit_index.forget()  # a new process: read back from the folder, not rebuilt
    assert _lookup(lake, "gold.src", frame, ents, TTL) == first
    again_stamp = (built[0] / "search.npy").stat()
    assert sorted(cache.glob("*/v*")) == built
    assert (again_stamp.st_ino, again_stamp.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)
    # The same name and version number on a re-created table is another table: a new index.
    shutil.rmtree(lake.table("gold.src").uri)
    other = frame.assign(v=frame["v"] + 5000)
    lake.table("gold.src").write(other)
    again = _lookup(lake, "gold.src", other, ents, TTL)
    assert again == _brute_force(other, ents, TTL) and again != first
    assert len(list(cache.glob("*/v*"))) == 2


def test_old_indexes_are_pruned(lake: Lake) -> None:
    frame = _source(100, "int", seed=9)
    ents = _entities(frame, 20, seed=10)
    for _ in range(pit_index.KEEP_VERSIONS + 2):
        lake.table("gold.src").write(frame, mode="append")
        _lookup(lake, "gold.src", frame, ents, TTL)
    families = list((Path(lake.settings.cache_path) / "feature_index").iterdir())
    assert len(families) == 1
    kept = sorted(int(p.name[1:].split("-")[0]) for p in families[0].glob("v*"))
    assert kept == [2, 3, 4]


def test_entity_key_of_another_type_is_a_clear_error(lake: Lake) -> None:
    frame = _source(50, "int", seed=11)
    lake.table("gold.src").write(frame)
    table = lake.table("gold.src")
    index = pit_index.load(lake, Source(table, 0, table.uri, {"k": "k"}, "ts", None, {"v": "v"}))
    keys = pa.table({"k": pa.array(["driver-1", "driver-2"])})
    with pytest.raises(FeatureError, match="entity column for key 'k' has type string.*int64"):
        index.lookup(keys, np.zeros(2, dtype=np.int64), None)


def test_entity_times_in_microseconds_floor_every_unit() -> None:
    from lake.features.retrieval import epoch_us

    def us(array: pa.Array) -> list[int]:
        return list(epoch_us(pa.chunked_array([array])))

    # Just before 1970 in nanoseconds must not round up onto a row stamped at the epoch.
    assert us(pa.array([-500, 10_500, 0], pa.timestamp("ns", "UTC"))) == [-1, 10, 0]
    assert us(pa.array([-2, 3], pa.timestamp("s"))) == [-2_000_000, 3_000_000]
    assert us(pa.array([7], pa.timestamp("ms", "Europe/Paris"))) == [7_000]
    assert us(pa.array([dt.date(1970, 1, 2)], pa.date32())) == [86_400_000_000]
