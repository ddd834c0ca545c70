"""Streaming: exact batches in bounded memory, stable splits across versions, seeded shuffles, runs."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa
import pytest

from lake.handoff import SplitSpec, load
from lake.lakehouse import Lake
from tests.lake.handoff import build_sources, customers, save_training

SPEC = SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys="customer_id")
FILES, PER_FILE = 12, 40_000


@pytest.fixture
def big(local_lake: Lake) -> Lake:
    """gold.events: 12 files of 40,000 rows (ids 0..479,999), ~15 MB in memory."""
    table = local_lake.table("gold.events")
    for i in range(FILES):
        ids = np.arange(i * PER_FILE, (i + 1) * PER_FILE)
        table.write(pa.table({"customer_id": ids, "value": ids * 0.5,
                              "label": pa.array([f"label-{x % 1000:04d}" for x in ids])}))
    return local_lake


def _ids(batches: list[pa.RecordBatch]) -> list[int]:
    return [i for b in batches for i in b.column("customer_id").to_pylist()]


def _peak_growth(reader: pa.RecordBatchReader) -> tuple[int, int]:
    """Rows read and the highest Arrow allocation above the starting point, dropping each batch."""
    gc.collect()
    start = pa.total_allocated_bytes()
    peak = rows = 0
    for batch in reader:
        rows += batch.num_rows
        peak = max(peak, pa.total_allocated_bytes() - start)
        del batch
    return rows, peak


def test_batches_are_exact_and_memory_stays_bounded(big: Lake) -> None:
    ds = load(big, "gold.events")
    full_size = ds.to_arrow().nbytes
    sizes = [b.num_rows for b in ds.batches(batch_size=7_000)]
    assert sum(sizes) == FILES * PER_FILE and set(sizes[:-1]) == {7_000} and 0 < sizes[-1] <= 7_000
    assert sorted(_ids(list(ds.batches(batch_size=7_000)))) == list(range(FILES * PER_FILE))
    for kwargs in ({}, {"splits": SPEC, "split": "train"}, {"shuffle": True, "seed": 3, "buffer_size": 20_000}):
        rows, peak = _peak_growth(ds.batches(batch_size=5_000, **kwargs))  # type: ignore[arg-type]
        assert rows > 0.7 * FILES * PER_FILE
        # A materialised read would need the whole table; the stream holds about two files' worth.
        assert peak < full_size / 4, (kwargs, peak, full_size)


def test_without_shuffle_the_order_is_the_same_every_time(big: Lake) -> None:
    first = _ids(list(load(big, "gold.events").batches(batch_size=10_000, columns=["customer_id"])))
    again = _ids(list(load(big, "gold.events@11").batches(batch_size=3_000, columns=["customer_id"])))
    assert first == again
    table = load(big, "gold.events").to_arrow(columns=["customer_id"])
    assert table.column("customer_id").to_pylist() == first


def test_seeded_shuffle_is_deterministic_and_a_permutation(big: Lake) -> None:
    ds = load(big, "gold.events")
    plain = _ids(list(ds.batches(batch_size=4_096)))
    one = list(ds.batches(batch_size=4_096, shuffle=True, seed=7, buffer_size=30_000))
    two = list(ds.batches(batch_size=4_096, shuffle=True, seed=7, buffer_size=30_000))
    other = _ids(list(ds.batches(batch_size=4_096, shuffle=True, seed=8, buffer_size=30_000)))
    assert [b.num_rows for b in one][:-1] == [4_096] * (len(one) - 1)
    assert _ids(one) == _ids(two)
    assert _ids(one) != other and _ids(one) != plain
    assert sorted(_ids(one)) == sorted(plain) == list(range(FILES * PER_FILE))
    # Rows from several files are mixed inside one batch (not just files reordered).
    assert len({i // PER_FILE for i in one[3].column("customer_id").to_pylist()}) > 1
    assert one[0].schema.names == ["customer_id", "value", "label"]


def test_split_streams_partition_the_rows_and_keys_keep_their_split(lake: Lake) -> None:
    build_sources(lake, rows=3000)
    save_training(lake)
    ds = load(lake, "churn")
    parts = {name: _ids(list(ds.batches(batch_size=256, splits=SPEC, split=name))) for name in SPEC.names}
    assert sorted(i for ids in parts.values() for i in ids) == list(range(3000))
    assert {n: len(ids) for n, ids in parts.items()} == ds.split_counts(SPEC)
    assert abs(len(parts["train"]) / 3000 - 0.8) < 0.04
    oracle = SPEC.labels(pa.table({"customer_id": list(range(3000))})).to_pylist()
    for name, ids in parts.items():
        assert all(oracle[i] == name for i in ids)
    frame = ds.to_pandas(splits=SPEC, split="validation", columns=["spend"])
    assert list(frame.columns) == ["spend"] and len(frame) == len(parts["validation"])
    assert ds.to_arrow(splits=SPEC, split="test").column("customer_id").to_pylist() == parts["test"]

    # A new version with more rows, rewritten in another order: the old keys stay where they were.
    lake.table("gold.customers").write(customers(3000, 4000))
    reordered = lake.table("gold.customers").to_arrow().sort_by([("customer_id", "descending")])
    lake.table("gold.customers").write(reordered, mode="overwrite")
    save_training(lake)
    newer = load(lake, "churn")
    assert newer.metadata.version == 1
    for name in SPEC.names:
        ids = _ids(list(newer.batches(batch_size=999, splits=SPEC, split=name, shuffle=True, seed=1)))
        assert {i for i in ids if i < 3000} == set(parts[name])


def test_streams_are_recorded_runs_even_when_stopped_early(local_lake: Lake) -> None:
    build_sources(local_lake, rows=500)
    save_training(local_lake)
    ds = load(local_lake, "churn")
    before = {r["run_id"] for r in local_lake.catalog.runs(limit=500)}
    assert sum(b.num_rows for b in ds.batches(batch_size=100, splits=SPEC, split="train")) > 0
    reader = ds.batches(batch_size=100)
    next(iter(reader))
    reader.close()
    del reader
    gc.collect()
    runs = [r for r in local_lake.catalog.runs(limit=500) if r["run_id"] not in before]
    assert {r["job"] for r in runs} == {"handoff.load.churn"} and len(runs) == 2
    by_rows = sorted(runs, key=lambda r: r["stats"]["rows"])
    assert by_rows[0]["stats"] == {"rows": 100, "complete": False} and by_rows[0]["status"] == "completed"
    assert by_rows[1]["stats"]["complete"] is True and by_rows[1]["parameters"]["split"] == "train"
    for run in runs:
        assert local_lake.catalog.run_info(run["run_id"])["inputs"] == [
            {"namespace": "lake", "name": "training.churn", "version": 0}]
