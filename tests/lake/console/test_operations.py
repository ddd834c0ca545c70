"""Runs and jobs, quarantined rows, features, training sets and drift reports in the console."""

from __future__ import annotations

from fastapi.testclient import TestClient

from lake.lakehouse import Lake
from tests.lake.console.conftest import TokenAccess, as_user


def test_runs_jobs_and_one_run(open_client: TestClient, console_lake: Lake) -> None:
    runs = open_client.get("/api/runs", params={"job": "clean.orders"}).json()
    assert [r["status"] for r in runs] == ["failed", "completed", "completed"]
    assert runs[0]["error"] == "RuntimeError: upstream file missing: orders-3.csv"
    page = open_client.get("/runs")
    assert page.status_code == 200 and "upstream file missing" in page.text and 'id="jobs"' in page.text
    assert "/runs?job=clean.orders" in page.text
    ok = runs[1]["run_id"]
    info = open_client.get(f"/api/runs/{ok}").json()
    assert [(i["name"], i["version"]) for i in info["inputs"]] == [("silver.orders", 0)] or info["inputs"] == []
    assert [(o["name"], o["version"], o["rows"]) for o in info["outputs"]] == [("silver.orders", 1, 4)]
    assert info["duration_s"] is not None
    html = open_client.get(f"/runs/{ok}")
    assert html.status_code == 200 and "silver.orders" in html.text
    ingest = open_client.get("/api/runs", params={"job": "ingest.orders"}).json()
    with_quarantine = next(r for r in ingest if open_client.get(f"/api/runs/{r['run_id']}").json()["quarantine"])
    detail = open_client.get(f"/api/runs/{with_quarantine['run_id']}").json()
    assert detail["quarantine"] == [{"target": "bronze.orders", "table": "quarantine.bronze_orders"}]
    assert open_client.get("/runs/not-a-run").status_code == 404
    assert open_client.get("/runs", params={"status": "exploded"}).status_code == 400


def test_quarantined_rows_with_reasons_and_masking(guarded: tuple[TestClient, TokenAccess]) -> None:
    client, _ = guarded
    admin = client.get("/quarantine/bronze.orders", **as_user(client, "tok-admin-123"))
    assert admin.status_code == 200
    assert "&#39;abc&#39; is not a double" in admin.text and "orders-2.csv" in admin.text and "5,e@x.io,abc" in admin.text
    reader = client.get("/quarantine/bronze.orders", **as_user(client, "tok-reader-456"))
    assert reader.status_code == 200 and "is not a double" in reader.text and "e@x.io" not in reader.text


def test_features_page_shows_sources_freshness_and_the_online_store(open_client: TestClient) -> None:
    data = open_client.get("/api/features").json()
    view = next(v for v in data["views"] if v["name"] == "feature.order_stats")
    assert view["sources"] == [{"name": "silver.orders", "version": 1}]
    assert view["materialized"]["source_version"] == 1 and view["materialized"]["newest_event"].startswith("2026-01-01")
    assert view["materialized"]["age_s"] > 0 and view["owners"] == ["ml-team"]
    assert [f["name"] for f in view["features"]] == ["id", "amount"]
    assert set(data["online"]) >= {"kind", "ok", "where"} and data["online"]["kind"] == "sqlite"
    page = open_client.get("/features")
    assert page.status_code == 200 and "order_stats" in page.text and "silver.orders@1" in page.text


def test_training_sets_with_sources_hashes_and_reproduce(open_client: TestClient) -> None:
    page = open_client.get("/training")
    assert page.status_code == 200 and "orders_model" in page.text and "silver.orders@1" in page.text
    t = open_client.get("/api/training/orders_model").json()
    assert t["content_hash"] == "c" * 64 and t["sources"] == {"silver.orders": {"version": 1}}
    assert t["reproduce"] == "lake training reproduce 3f2a9c1e-0000-4000-8000-000000000001"
    assert t["reproduced"]["matches"] is True and t["reproduced"]["status"] == "completed"
    one = open_client.get("/training/3f2a9c1e")
    assert one.status_code == 200 and "lake training reproduce 3f2a9c1e-0000-4000-8000-000000000001" in one.text
    assert "reproduced, same content hash" in one.text
    assert open_client.get("/training/nothing-like-it").status_code == 404


def test_drift_reports_histograms_and_drift_over_time(open_client: TestClient) -> None:
    page = open_client.get("/monitoring")
    assert page.status_code == 200 and "gold.scores" in page.text
    reports = [r for r in open_client.app.state.console.lake.catalog.reports(dataset="gold.scores", kind="drift")]  # type: ignore[attr-defined]
    assert len(reports) == 2
    newest = reports[0]
    r = open_client.get(f"/api/monitoring/reports/{newest['id']}").json()
    assert r["status"] == "drift"
    score = next(f for f in r["body"]["features"] if f["name"] == "score")
    chart = score["chart"]
    assert len(chart["bars"]) == 2 * len(chart["ref"]) and abs(sum(chart["ref"]) - 1) < 0.01
    assert abs(sum(chart["cur"]) - 1) < 0.01 and max(b["h"] for b in chart["bars"]) > 90
    segment = next(f for f in r["body"]["features"] if f["name"] == "segment")
    assert segment["chart"]["categorical"] and "c" in segment["chart"]["labels"]
    html = open_client.get(f"/monitoring/reports/{newest['id']}")
    assert html.status_code == 200 and html.text.count('class="bar ref"') == len(chart["ref"]) + len(
        segment["chart"]["ref"]) and "Thresholds" in html.text
    over = open_client.get("/monitoring/drift/gold.scores/score")
    assert over.status_code == 200 and over.text.count("/monitoring/reports/") == 2
    assert open_client.get("/monitoring/drift/gold.scores/nothing").status_code == 404
    assert open_client.get("/monitoring/reports/nope").status_code == 404
