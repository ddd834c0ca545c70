"""A small lake with lineage, tags, quality and a drift report, and a test-only access policy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from lake.console.access import TOKEN_COOKIE
from lake.console.app import create_app
from lake.lakehouse import Lake
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
    cat = lake.catalog
    cat.tag("bronze.orders", "pii", column="email")
    cat.tag("silver.orders", "pii", column="email")
    cat.describe("silver.orders", "Orders, cleaned: one row per order")
    cat.describe("silver.orders", "the buyer's e-mail address", column="email")
    cat.add_owner("silver.orders", "sales-data")
    cat.tag("gold.order_totals", "finance")
    cat.record_quality("silver.orders", 1, suite="orders_basic", success=True, statistics={"evaluated": 3})
    cat.record_quality("bronze.orders", 0, suite="orders_basic", success=False, statistics={"evaluated": 3})
    return lake


@pytest.fixture(scope="module")
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
