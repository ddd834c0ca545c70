"""The lineage JSON and page: both directions, depth, column edges, versions, drift report leaves, access."""

from __future__ import annotations

from fastapi.testclient import TestClient

from lake.lakehouse import Lake
from tests.lake.console.conftest import TokenAccess, as_user


def test_lineage_both_ways_with_column_edges(open_client: TestClient) -> None:
    g = open_client.get("/api/lineage/silver.orders").json()
    assert g["root"] == "silver.orders" and g["mode"] == "dataset"
    depths = {n["id"]: n["depth"] for n in g["nodes"]}
    assert depths == {"bronze.orders": -1, "silver.orders": 0, "gold.order_totals": 1, "feature.order_stats": 1}
    assert {(e["from"], e["to"], e.get("job")) for e in g["edges"]} == {
        ("bronze.orders", "silver.orders", "clean.orders"), ("silver.orders", "gold.order_totals", "aggregate.orders"),
        ("silver.orders", "feature.order_stats", "features.materialize.lake.order_stats")}
    assert {(c["from"], c["from_column"], c["to"], c["to_column"], c["transformation"]) for c in g["column_edges"]} == {
        ("bronze.orders", "amount", "silver.orders", "amount", "identity"),
        ("bronze.orders", "email", "silver.orders", "email", "lower-cased")}
    assert {n["id"]: n["kind"] for n in g["nodes"]}["feature.order_stats"] == "feature_view"
    assert all(n["href"] == f"/datasets/{n['name']}" for n in g["nodes"])
    up = open_client.get("/api/lineage/gold.order_totals", params={"direction": "upstream", "depth": "1"}).json()
    assert {n["id"] for n in up["nodes"]} == {"silver.orders", "gold.order_totals"}


def test_lineage_of_a_version_names_the_input_versions(open_client: TestClient) -> None:
    g = open_client.get("/api/lineage/gold.order_totals", params={"version": "0"}).json()
    assert g["mode"] == "version" and g["root"] == "gold.order_totals@0"
    assert {"from": "silver.orders@0", "to": "gold.order_totals@0", "job": "aggregate.orders"} in g["edges"]
    assert {"from": "bronze.orders@0", "to": "silver.orders@0", "job": "clean.orders"} in g["edges"]
    assert next(n for n in g["nodes"] if n["id"] == "silver.orders@0")["href"] == "/datasets/silver.orders?version=0"


def test_column_lineage(open_client: TestClient) -> None:
    g = open_client.get("/api/lineage/silver.orders", params={"column": "email"}).json()
    assert g["mode"] == "column" and [(e["from"], e["to"]) for e in g["edges"]] == [
        ("bronze.orders.email", "silver.orders.email")]


def test_lineage_arguments_are_checked(open_client: TestClient) -> None:
    assert open_client.get("/api/lineage/silver.orders", params={"depth": "99"}).status_code == 400
    assert open_client.get("/api/lineage/silver.orders", params={"direction": "sideways"}).status_code == 400
    assert open_client.get("/api/lineage/nowhere.x").status_code == 404
    page = open_client.get("/lineage/silver.orders", params={"depth": "2"})
    assert page.status_code == 200 and 'data-root="silver.orders"' in page.text and "/static/lineage.js" in page.text


def test_drift_reports_are_leaves_and_hidden_nodes_keep_paths(console_lake: Lake,
                                                              guarded: tuple[TestClient, TokenAccess]) -> None:
    client, access = guarded
    console_lake.catalog.record_report("drift", "gold.order_totals", 0, status="drift",
                                       summary={"drifted": 1}, body={"features": {}}, reference="gold.order_totals@0")
    g = client.get("/api/lineage/silver.orders", **as_user(client, "tok-admin-123")).json()
    assert [(r["dataset"], r["status"]) for r in g["reports"]] == [("gold.order_totals", "drift")]
    original = access.can

    def no_bronze(principal: str | None, action: str, obj: str) -> bool:
        return obj != "bronze.orders" and original(principal, action, obj)

    access.can = no_bronze  # type: ignore[method-assign]
    try:
        g = client.get("/api/lineage/silver.orders", **as_user(client, "tok-reader-456")).json()
    finally:
        access.can = original  # type: ignore[method-assign]
    hidden = next(n for n in g["nodes"] if n["depth"] == -1)
    assert hidden["id"] == "hidden-1" and hidden["name"] is None and hidden["label"] == "(no access)"
    assert {"from": "hidden-1", "to": "silver.orders", "job": "clean.orders"} in g["edges"]
    assert "bronze.orders" not in str(g)


def test_external_datasets_from_other_producers(open_client: TestClient) -> None:
    found = open_client.get("/api/search", params={"q": "scores", "kind": "external"}).json()
    assert [(h["name"], h["kind"], h["href"]) for h in found["hits"]] == [
        ("feeds/scores.csv", "external", "/datasets/feeds/scores.csv?ns=partner")]
    page = open_client.get("/datasets/feeds/scores.csv", params={"ns": "partner"})
    assert page.status_code == 200 and "external dataset" in page.text and "namespace partner" in page.text
    g = open_client.get("/api/lineage/gold.scores", params={"direction": "upstream"}).json()
    feed = next(n for n in g["nodes"] if n["name"] == "feeds/scores.csv")
    assert feed["kind"] == "external" and feed["home"] is False and feed["href"].endswith("?ns=partner")
    walked = open_client.get("/api/lineage/feeds/scores.csv", params={"ns": "partner", "direction": "downstream"})
    assert walked.status_code == 200 and {n["name"] for n in walked.json()["nodes"]} >= {"gold.scores"}
