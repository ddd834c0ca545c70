"""Loading saved training datasets and curated tables by name, id or version, with their provenance."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lake.errors import LakeError, TableNotFoundError, VersionNotFoundError
from lake.handoff import (
    DatasetRefError,
    SplitError,
    SplitSpec,
    UnknownDatasetError,
    UnknownVersionError,
    load,
)
from lake.lakehouse import Lake
from tests.lake.handoff import build_sources, customers, save_training


@pytest.fixture
def saved(lake: Lake) -> tuple[Lake, dict[str, Any], dict[str, Any]]:
    """gold.customers v0 (1000 rows) -> churn (v0, 600 rows); gold v1 (1500 rows) -> churn (v1, all rows)."""
    build_sources(lake)
    first = save_training(lake, rows=600)
    lake.table("gold.customers").write(customers(1000, 1500))
    second = save_training(lake)
    return lake, first, second


def test_training_dataset_by_name_id_prefix_and_version(saved: tuple[Lake, dict[str, Any], dict[str, Any]]) -> None:
    lake, first, second = saved
    newest = load(lake, "churn")
    meta = newest.metadata
    assert (meta.kind, meta.name, meta.table, meta.version) == ("training", "churn", "training.churn", 1)
    assert meta.training_id == second["id"] and meta.ref == f"training:{second['id']}"
    assert meta.row_count == 1500 and meta.content_hash == second["content_hash"]
    assert meta.sources == {"gold.customers": {"version": 1, "location": lake.table("gold.customers").uri}}
    assert meta.features == ("customers:spend", "customers:churned") and meta.feature_service == "churn_service"
    assert meta.entity_hash == "e" * 64 and meta.entity_location == "/data/entities.parquet"
    assert meta.run_id == second["run_id"] and meta.created_at == second["created_at"]
    assert [c["name"] for c in meta.columns] == ["customer_id", "spend", "churned"]
    assert meta.quality_status is None

    for ref in (first["id"], first["id"][:8], f"training:{first['id']}", "churn@0", "training.churn@0",
                "training:churn@0"):
        assert load(lake, ref).metadata.training_id == first["id"], ref
    assert load(lake, "churn", version=0).metadata.version == 0
    old = load(lake, "churn", version=0)
    frame = old.to_arrow()
    assert frame.num_rows == old.metadata.row_count == 600
    assert sorted(frame.column("customer_id").to_pylist()) == list(range(600))
    assert frame.column_names == ["customer_id", "spend", "churned"]


def test_frames_match_the_table_in_every_format(saved: tuple[Lake, dict[str, Any], dict[str, Any]]) -> None:
    lake, _, _ = saved
    ds = load(lake, "churn")
    oracle = lake.table("training.churn").to_pandas(version=1).sort_values("customer_id", ignore_index=True)
    as_pandas = ds.to_pandas()
    assert isinstance(as_pandas, pd.DataFrame)
    pd.testing.assert_frame_equal(as_pandas.sort_values("customer_id", ignore_index=True), oracle)
    as_polars = ds.to_polars(columns=["customer_id", "spend"])
    assert isinstance(as_polars, pl.DataFrame) and as_polars.columns == ["customer_id", "spend"]
    assert as_polars.sort("customer_id")["spend"].to_list() == oracle["spend"].to_list()
    as_arrow = ds.to_arrow()
    assert isinstance(as_arrow, pa.Table) and as_arrow.equals(ds.to_arrow())  # same order every time
    assert ds.schema.names == ["customer_id", "spend", "churned"]


def test_curated_table_at_a_version_with_lineage_and_quality(saved: tuple[Lake, dict[str, Any], dict[str, Any]]) -> None:
    lake, _, _ = saved
    lake.catalog.record_quality("gold.customers", 0, "gold_customers", True)
    v0 = load(lake, "gold.customers@0")
    meta = v0.metadata
    assert (meta.kind, meta.name, meta.version, meta.row_count) == ("curated", "gold.customers", 0, 1000)
    assert meta.sources == {"bronze.customers": {"version": 0}}  # the inputs of the run that built v0
    assert meta.quality_status == "passed" and meta.training_id is None and meta.ref == "gold.customers@0"
    assert meta.created_at is not None and meta.run_id is not None
    assert len(meta.content_hash) == 64
    assert load(lake, "gold.customers", version=0).metadata.content_hash == meta.content_hash
    latest = load(lake, "gold.customers")
    assert latest.metadata.version == 1 and latest.metadata.row_count == 1500
    assert latest.metadata.content_hash != meta.content_hash
    assert latest.metadata.quality_status is None
    lake.catalog.record_quality("gold.customers", 1, "gold_customers", False)
    assert load(lake, "gold.customers").metadata.quality_status == "failed"
    assert v0.to_arrow().num_rows == 1000


def test_reads_are_catalog_runs_or_inputs_of_the_callers_run(saved: tuple[Lake, dict[str, Any], dict[str, Any]]) -> None:
    lake, _, _ = saved
    ds = load(lake, "churn@0")
    before = {r["run_id"] for r in lake.catalog.runs(limit=500)}
    ds.to_pandas()
    (new,) = [r for r in lake.catalog.runs(limit=500) if r["run_id"] not in before]
    assert new["job"] == "handoff.load.churn" and new["status"] == "completed"
    assert new["stats"] == {"rows": 600} and new["parameters"]["format"] == "pandas"
    info = lake.catalog.run_info(new["run_id"])
    assert info["inputs"] == [{"namespace": "lake", "name": "training.churn", "version": 0}]

    before = {r["run_id"] for r in lake.catalog.runs(limit=500)}
    with lake.run("train.model") as run:
        load(lake, "gold.customers@0").to_arrow(columns=["customer_id"])
    (only,) = [r for r in lake.catalog.runs(limit=500) if r["run_id"] not in before]
    assert only["run_id"] == run.run_id
    assert lake.catalog.run_info(run.run_id)["inputs"] == [{"namespace": "lake", "name": "gold.customers",
                                                           "version": 0}]


def test_unknown_names_and_versions_are_clear_errors(saved: tuple[Lake, dict[str, Any], dict[str, Any]]) -> None:
    lake, first, _ = saved
    with pytest.raises(UnknownDatasetError, match=r"no training dataset 'chrun'.*gold\.chrun"):
        load(lake, "chrun")
    with pytest.raises(UnknownVersionError, match=r"no saved version 7 \(saved: 0, 1\)"):
        load(lake, "churn", version=7)
    with pytest.raises(UnknownVersionError, match=f"{first['id']} is version 0"):
        load(lake, first["id"], version=1)
    with pytest.raises(DatasetRefError, match="version 0 but version=1"):
        load(lake, "churn@0", version=1)
    with pytest.raises(DatasetRefError, match="empty"):
        load(lake, "  ")
    with pytest.raises(TableNotFoundError, match="gold.nope does not exist"):
        load(lake, "gold.nope")
    with pytest.raises(VersionNotFoundError, match="no version 9"):
        load(lake, "gold.customers@9")
    with pytest.raises(LakeError, match="not a table name"):
        load(lake, "gold.a.b")
    ds = load(lake, "churn")
    with pytest.raises(LakeError, match=r"no column\(s\) \['nope'\]"):
        ds.to_arrow(columns=["nope"])
    spec = SplitSpec.parse("train=0.8,test=0.2", keys="customer_id")
    with pytest.raises(SplitError, match="name the split"):
        ds.to_arrow(splits=spec)
    with pytest.raises(SplitError, match="needs the split definition"):
        ds.to_arrow(split="train")
    with pytest.raises(SplitError, match="no split 'dev'"):
        ds.to_arrow(splits=spec, split="dev")
    with pytest.raises(SplitError, match="not in training.churn"):
        ds.to_arrow(splits=SplitSpec.parse("train=1", keys="country"), split="train")
    with pytest.raises(SplitError, match="cannot be a split key"):
        ds.to_arrow(splits=SplitSpec.parse("train=1", keys="spend"), split="train")


def test_a_training_dataset_whose_frame_is_gone(local_lake: Lake) -> None:
    build_sources(local_lake, rows=10)
    recipe = save_training(local_lake)
    local_lake.storage.delete_tree(local_lake.table("training.churn").uri)
    with pytest.raises(UnknownDatasetError, match=f"is gone.*lake training reproduce {recipe['id']}"):
        load(local_lake, "churn")


def test_a_lake_without_catalog_loads_tables_but_not_training_datasets(local_lake: Lake) -> None:
    local_lake.table("gold.customers").write(customers(0, 10))
    bare = Lake(local_lake.settings, catalog=False)
    ds = load(bare, "gold.customers")
    assert ds.to_arrow().num_rows == 10 and ds.metadata.quality_status is None and ds.metadata.sources == {}
    with pytest.raises(LakeError, match="catalog=False"):
        load(bare, "churn")
