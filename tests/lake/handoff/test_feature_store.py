"""A training dataset saved by the feature store itself is loaded and exported with the same content hash."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lake.handoff import SplitSpec, export, load
from tests.lake.features.conftest import build, entities


@pytest.mark.slow
def test_a_saved_feature_store_dataset_is_handed_over_intact(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from lake.features.training import content_hash, save_training_dataset

    lake = build("embedded", tmp_path, request).lake
    saved = save_training_dataset(lake, "drivers", entities(), feature_service="driver_model")
    ds = load(lake, saved.id[:8])
    meta = ds.metadata
    assert (meta.training_id, meta.table, meta.version, meta.row_count) == (saved.id, "training.drivers", 0, 300)
    assert meta.sources == saved.sources and meta.feature_service == "driver_model"
    assert meta.features == ("driver_stats:conv_rate", "driver_stats:trips", "driver_rating:rating")
    # The recorded hash is the feature store's hash of exactly the rows handed over.
    assert meta.content_hash == saved.content_hash == content_hash(ds.to_arrow())

    result = export(lake, "drivers", str(tmp_path / "out"))
    assert result.manifest["dataset"]["content_hash"] == saved.content_hash
    assert content_hash(pq.read_table(tmp_path / "out" / "data")) == saved.content_hash
    spec = SplitSpec.parse("train=0.7,test=0.3", keys="driver_id")
    parts = {name: ds.to_arrow(splits=spec, split=name) for name in spec.names}
    assert sum(p.num_rows for p in parts.values()) == 300
    drivers = {name: set(p.column("driver_id").to_pylist()) for name, p in parts.items()}
    assert not drivers["train"] & drivers["test"]  # an entity's rows never straddle two splits
