"""Tests of the training hand-off; helpers that build a small lake with lineage and saved training datasets."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pyarrow as pa

from lake.lakehouse import Lake


def customers(start: int, stop: int) -> pa.Table:
    """Rows of a customers table: one row per customer id in [start, stop)."""
    ids = list(range(start, stop))
    return pa.table({
        "customer_id": ids,
        "country": [["FR", "DE", "US", "JP"][i % 4] for i in ids],
        "spend": [float(i % 97) * 1.5 for i in ids],
        "churned": [i % 3 == 0 for i in ids],
    })


def build_sources(lake: Lake, rows: int = 1000) -> None:
    """bronze.customers (raw) -> gold.customers, inside a run, so lineage starts at a raw source."""
    lake.table("bronze.customers").write(customers(0, rows))
    with lake.run("build.gold.customers"):
        raw = lake.table("bronze.customers").to_arrow()
        lake.table("gold.customers").write(raw, mode="overwrite")


def save_training(lake: Lake, name: str = "churn", *, rows: int | None = None) -> dict[str, Any]:
    """Write ``training.<name>`` from gold.customers (a new version each time) and record its recipe."""
    gold = lake.table("gold.customers")
    gold_version = gold.version()
    with lake.run(f"features.training.{name}") as run:
        frame = gold.to_arrow(version=gold_version)
        if rows is not None:
            frame = frame.slice(0, rows)
        frame = frame.select(["customer_id", "spend", "churned"])
        result = lake.table(f"training.{name}").write(frame, mode="overwrite")
    content_hash = hashlib.sha256(frame.to_pandas().to_csv(index=False).encode()).hexdigest()
    training_id = str(uuid.uuid4())
    lake.catalog.record_training_dataset(
        training_id, name, version=result.version, features=["customers:spend", "customers:churned"],
        sources={"gold.customers": {"version": gold_version, "location": gold.uri}},
        entity_hash="e" * 64, content_hash=content_hash, row_count=frame.num_rows,
        columns=[{"name": f.name, "type": str(f.type)} for f in frame.schema],
        feature_service="churn_service", entity_location="/data/entities.parquet",
        options={"full_feature_names": False}, run_id=run.run_id)
    return lake.catalog.training_dataset(training_id)
