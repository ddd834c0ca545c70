"""A small lake with lineage, tags, quality and a drift report, and a test-only access policy."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog.entities import ColumnSpec
from lake.console.access import TOKEN_COOKIE
from lake.console.app import create_app
from lake.lakehouse import Lake
from lake.monitor.report import drift_report
from lake.naming import QUARANTINE_SCHEMA, quarantine_name
from tests.conftest import make_settings

TOKENS = {"tok-admin-123": "admin", "tok-reader-456": "reader", "tok-nobody-789": "nobody"}


class TokenAccess:
    """Test-only: tokens name principals; ``admin`` may do anything, ``reader`` may read (no write,
    no unmask), ``nobody`` may read the lake but no dataset; columns tagged ``pii`` are nulled for
    anyone without ``unmask``. Every decision is kept in ``audited``."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.audited: list[tuple[str | None, str, str, str]] = []

    def principal(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
        token = cookies.get(TOKEN_COOKIE) or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return TOKENS.get(token)

    def can(self, principal: str | None, action: str, obj: str) -> bool:
        if principal == "admin":
            return True
        if principal == "reader":
            return action == "read"
        if principal == "nobody":
            return action == "read" and obj == "lake"
        return False

    def mask(self, principal: str | None, table: str, data: pa.Table) -> pa.Table:
        if self.can(principal, "unmask", table):
            return data
        pii = {c["name"] for c in self.lake.catalog.show(table)["schema"] if "pii" in c["tags"]}
        for i, name in enumerate(data.column_names):
            if name in pii:
                data = data.set_column(i, name, pa.nulls(data.num_rows, data.schema.field(i).type))
        return data

    def audit(self, principal: str | None, action: str, obj: str, outcome: str) -> None:
        self.audited.append((principal, action, obj, outcome))


def build_lake(root: Path) -> Lake:
    lake = Lake(make_settings(root=str(root / "lakehouse")))
    with lake.run("ingest.orders"):
        lake.table("bronze.orders").write(pa.table({"id": [1, 2, 3], "email": ["a@x.io", "b@x.io", "c@x.io"],
                                                    "amount": [1.0, 2.0, 3.0]}))
    with lake.run("clean.orders") as run:
        df = lake.table("bronze.orders").to_pandas()
        lake.table("silver.orders").write(df[["id", "email", "amount"]])
        run.column_lineage("silver.orders", {"amount": [("bronze.orders", "amount", "identity")],
                                             "email": [("bronze.orders", "email", "lower-cased")]})
    with lake.run("aggregate.orders"):
        total = lake.table("silver.orders").to_arrow()
        lake.table("gold.order_totals").write(pa.table({"total": [sum(total.column("amount").to_pylist())]}))
    # a second version of silver.orders with a new column: a schema change to diff
    with lake.run("clean.orders"):
        lake.table("silver.orders").write(pa.table({"id": [1, 2, 3, 4], "email": ["a@x.io", "b@x.io", "c@x.io", "d@x.io"],
                                                    "amount": [1.0, 2.0, 3.0, 4.0], "country": ["FR", "DE", "FR", "IT"]}),
                                          mode="overwrite", schema_mode="merge")
    with lake.run("ingest.orders"):  # a rejected line, as ingestion sets it aside
        lake.table(quarantine_name("bronze.orders")).write(pa.Table.from_pylist([{
            "source_file": "orders-2.csv", "line": 7, "byte_offset": 120, "column_name": "amount",
            "error_type": "cast", "reason": "'abc' is not a double", "raw": "5,e@x.io,abc", "job": "ingest.orders",
            "batch": 2, "quarantined_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}], schema=QUARANTINE_SCHEMA))
    with contextlib.suppress(RuntimeError), lake.run("clean.orders"):
        raise RuntimeError("upstream file missing: orders-3.csv")
    rng = np.random.default_rng(7)
    lake.table("gold.scores").write(pa.table({"score": rng.normal(0, 1, 400), "segment": rng.choice(["a", "b"], 400)}))
    lake.table("gold.scores").write(pa.table({"score": rng.normal(0.1, 1, 400), "segment": rng.choice(["a", "b"], 400)}),
                                    mode="overwrite")
    lake.table("gold.scores").write(pa.table({"score": rng.normal(2, 1, 400), "segment": rng.choice(["a", "c"], 400)}),
                                    mode="overwrite")
    drift_report(lake, "gold.scores@0", "gold.scores@1")
    drift_report(lake, "gold.scores@0", "gold.scores@2")
    cat = lake.catalog
    feed = cat.start_run("partner.import", namespace="partner")  # another producer's dataset feeds gold.scores
    cat.add_input(feed, "feeds/scores.csv", namespace="partner")
    cat.add_output(feed, "gold.scores", 0)
    cat.finish_run(feed)
    cat.register_dataset("feature.order_stats", kind="feature_view", layer="feature", format="feast",
                         location="feast://lake/order_stats", description="Order amounts per customer",
                         columns=[ColumnSpec("id", "Int64", True, "join key"), ColumnSpec("amount", "Float64")],
                         owners=["ml-team"])
    with lake.run("features.materialize.lake.order_stats") as run:
        run.input("silver.orders", 1)
        run.output("feature.order_stats", None, kind="feature_view")
        run.stats.update({"newest_event_us": 1_767_225_600_000_000, "source_version": 1, "mode": "full",
                          "written": 4})
    cat.record_training_dataset("3f2a9c1e-0000-4000-8000-000000000001", "orders_model", version=None,
                                features=["order_stats:amount"], sources={"silver.orders": {"version": 1}},
                                entity_hash="e" * 64, content_hash="c" * 64, row_count=4,
                                columns=[{"name": "id", "type": "int64"}])
    with lake.run("features.reproduce.orders_model") as run:
        run.stats.update({"training_dataset": "3f2a9c1e-0000-4000-8000-000000000001", "matches": True})
    cat.tag("bronze.orders", "pii", column="email")
    cat.tag("silver.orders", "pii", column="email")
    cat.describe("silver.orders", "Orders, cleaned: one row per order")
    cat.describe("silver.orders", "the buyer's e-mail address", column="email")
    cat.add_owner("silver.orders", "sales-data")
    cat.tag("gold.order_totals", "finance")
    cat.record_quality("silver.orders", 1, suite="orders_basic", success=True, statistics={"evaluated": 3})
    cat.record_quality("bronze.orders", 0, suite="orders_basic", success=False, statistics={"evaluated": 3})
    return lake


@pytest.fixture(scope="package")
def console_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return build_lake(tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def open_client(console_lake: Lake) -> Iterator[TestClient]:
    with TestClient(create_app(console_lake)) as client:
        yield client


@pytest.fixture(scope="module")
def guarded(console_lake: Lake) -> Iterator[tuple[TestClient, TokenAccess]]:
    access = TokenAccess(console_lake)
    with TestClient(create_app(console_lake, access), follow_redirects=False) as client:
        yield client, access


def as_user(client: TestClient, token: str) -> dict[str, Any]:
    return {"cookies": {TOKEN_COOKIE: token}}
