"""Saved queries: kept in the catalog, run from the console and `lake sql --saved`, recorded with lineage."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from lake.cli.main import main
from lake.lakehouse import Lake
from lake.queries import run_saved, save_query
from tests.lake.console.conftest import TokenAccess, as_user

ADMIN, READER = "tok-admin-123", "tok-reader-456"


def test_save_and_run_records_lineage(console_lake: Lake) -> None:
    record = save_query(console_lake, "big_orders", "SELECT id, email, amount FROM silver.orders WHERE amount > 1.5 "
                        "ORDER BY id", description="Orders over 1.5")
    assert record["reads"] == {"silver.orders": 1} and [c["name"] for c in record["columns"]] == ["id", "email", "amount"]
    result = run_saved(console_lake, "big_orders", limit=2)
    assert result.data.column("id").to_pylist() == [2, 3] and result.truncated
    info = console_lake.catalog.run_info(result.run_id or "")
    assert info["job"] == "query.big_orders" and info["inputs"] == [
        {"namespace": "lake", "name": "silver.orders", "version": 1}]
    up = console_lake.catalog.lineage("query.big_orders", direction="upstream", depth=1).as_dict()
    assert {"from": "silver.orders", "to": "query.big_orders", "job": "query.big_orders"} in up["edges"]
    shown = console_lake.catalog.show("query.big_orders")
    assert shown["kind"] == "query" and [c["name"] for c in shown["schema"]] == ["id", "email", "amount"]


def test_lake_sql_saved(console_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(console_lake.settings.root)
    assert main(["--root", root, "sql", "--save", "totals", "SELECT total FROM gold.order_totals"]) == 0
    assert "saved totals (dataset query.totals; reads gold.order_totals@0)" in capsys.readouterr().out
    assert main(["--root", root, "sql", "--saved", "totals", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"total": 6.0}]
    assert main(["--root", root, "sql", "--saved", "nothing_here"]) == 1
    assert "no saved query 'nothing_here'" in capsys.readouterr().err
    assert main(["--root", root, "sql", "--save", "Bad Name!", "SELECT 1"]) == 1
    leaky = "SELECT * FROM read_csv('s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/x.csv')"
    assert main(["--root", root, "sql", "--save", "leaky", leaky]) == 1
    assert "looks like a credential" in capsys.readouterr().err
    assert "leaky" not in [q["name"] for q in console_lake.catalog.saved_queries()]


def test_console_saves_runs_and_masks(guarded: tuple[TestClient, TokenAccess]) -> None:
    client, access = guarded
    body = {"name": "emails", "sql": "SELECT id, email FROM silver.orders ORDER BY id", "description": "who ordered"}
    assert client.post("/api/queries", json=body, **as_user(client, READER)).status_code == 403
    saved = client.post("/api/queries", json=body, **as_user(client, ADMIN))
    assert saved.status_code == 200 and saved.json()["reads"] == {"silver.orders": 1}
    listed = client.get("/api/queries", **as_user(client, READER)).json()
    assert "emails" in [q["name"] for q in listed]
    admin = client.post("/api/queries/emails/run", **as_user(client, ADMIN)).json()
    assert admin["rows"][0] == [1, "a@x.io"] and admin["read"] == {"silver.orders": 1}
    reader = client.post("/api/queries/emails/run", **as_user(client, READER)).json()
    assert [r[1] for r in reader["rows"]] == [None] * 4 and [r[0] for r in reader["rows"]] == [1, 2, 3, 4]
    assert ("reader", "read", "query:emails", "ran") in access.audited
    page = client.get("/queries/emails", **as_user(client, READER))
    assert page.status_code == 200 and "lake sql --saved emails" in page.text and "silver.orders" in page.text
    bad = client.post("/api/queries", json={"name": "x", "sql": "SELECT * FROM silver.nothing"},
                      **as_user(client, ADMIN))
    assert bad.status_code == 400 and "silver.nothing" in bad.json()["detail"]
    assert client.post("/api/queries", json={"name": "../x", "sql": "SELECT 1"},
                       **as_user(client, ADMIN)).status_code == 400
    assert client.post("/api/queries/nothing/run", **as_user(client, ADMIN)).status_code == 404
