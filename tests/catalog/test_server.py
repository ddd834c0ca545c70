"""The catalog's HTTP API (FastAPI): OpenLineage in, search, datasets, lineage."""

from __future__ import annotations

from fastapi.testclient import TestClient

from catalog.server import create_app
from catalog.store import Catalog
from tests.catalog.helpers import airflow_event, build_graph


def test_http_api(catalog: Catalog) -> None:
    build_graph(catalog)
    client = TestClient(create_app(catalog))
    assert client.get("/health").json()["datasets"] == 5
    resp = client.post("/api/v1/lineage", json=airflow_event("COMPLETE", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"))
    assert resp.status_code == 201 and resp.json()["ingested"] == 1
    bad = client.post("/api/v1/lineage", json={"eventType": "START"})
    assert bad.status_code == 400 and "runId" in bad.json()["detail"]
    hits = client.get("/api/v1/search", params={"q": "custmer", "layer": "silver"}).json()
    assert [h["name"] for h in hits] == ["silver.customers"]
    shown = client.get("/api/v1/datasets/silver.customers").json()
    assert shown["upstream"] == ["bronze.customers"]
    assert client.get("/api/v1/datasets/nope.nope").status_code == 404
    graph = client.get("/api/v1/lineage/gold.customer_stats", params={"direction": "upstream", "depth": 10}).json()
    assert {"from": "crm.public.accounts", "to": "raw.customers_csv", "job": "crm_export.extract"} in graph["edges"]
