"""The console's pages and JSON endpoints over a real lake and catalog (SQLite), through the ASGI app."""

from __future__ import annotations

import threading
import time

import httpx
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

from lake.cli.main import main
from lake.console.access import TOKEN_COOKIE
from lake.console.app import create_app
from lake.console.serve import server
from lake.lakehouse import Lake
from tests.lake.console.conftest import TokenAccess, as_user

ADMIN, READER, NOBODY = "tok-admin-123", "tok-reader-456", "tok-nobody-789"


def test_search_ranks_filters_and_counts_facets(open_client: TestClient) -> None:
    found = open_client.get("/api/search", params={"q": "ordrs"}).json()  # a typo still finds them
    names = [h["name"] for h in found["hits"]]
    assert set(names) == {"bronze.orders", "silver.orders", "gold.order_totals", "quarantine.bronze_orders",
                          "feature.order_stats", "training.orders_model"}
    assert dict(found["facets"]["layer"]) == {"bronze": 1, "silver": 1, "gold": 1, "quarantine": 1, "feature": 1,
                                              "training": 1}
    assert dict(found["facets"]["tag"])["pii"] == 2
    assert dict(found["facets"]["owner"]).items() >= {"sales-data": 1, "ml-team": 1}.items()
    assert dict(found["facets"]["quality"]) == {"passed": 1, "failed": 1, "unchecked": 4}
    assert dict(found["facets"]["kind"]) == {"table": 4, "feature_view": 1, "training": 1}
    assert {h["name"]: h["kind_label"] for h in found["hits"]}["feature.order_stats"] == "feature view"
    views = open_client.get("/api/search", params={"q": "order", "kind": "feature_view"}).json()
    assert [h["name"] for h in views["hits"]] == ["feature.order_stats"]
    gold = open_client.get("/api/search", params={"q": "orders", "layer": "gold"}).json()
    assert [h["name"] for h in gold["hits"]] == ["gold.order_totals"]
    failed = open_client.get("/api/search", params={"q": "", "quality": "failed"}).json()
    assert [h["name"] for h in failed["hits"]] == ["bronze.orders"]
    tagged = open_client.get("/api/search", params={"tag": "pii", "owner": "sales-data"}).json()
    assert [h["name"] for h in tagged["hits"]] == ["silver.orders"]
    assert [h["name"] for h in open_client.get("/api/search", params={"kind": "external"}).json()["hits"]] == [
        "feeds/scores.csv"]
    page = open_client.get("/", params={"q": "totals"})
    assert page.status_code == 200 and 'href="/datasets/gold.order_totals"' in page.text
    assert "content-security-policy" in page.headers and "script-src 'self'" in page.headers["content-security-policy"]


def test_search_refuses_bad_arguments_with_a_reason(open_client: TestClient) -> None:
    bad = open_client.get("/api/search", params={"q": "x", "limit": "lots"})
    assert bad.status_code == 400 and "limit" in bad.json()["detail"]
    assert open_client.get("/api/search", params={"q": "%' OR 1=1 --"}).json()["hits"] == []


def test_dataset_page_shows_schema_versions_quality_sql_and_datasheet(open_client: TestClient) -> None:
    shown = open_client.get("/api/datasets/silver.orders").json()
    assert [v["version"] for v in shown["timeline"]] == [1, 0]
    assert shown["timeline"][0]["rows"] == 4 and shown["timeline"][0]["schema_changed"] is True
    assert shown["timeline"][0]["job"] == "clean.orders" and shown["timeline"][0]["quality"] == "passed"
    assert shown["timeline"][1]["rows"] == 3 and shown["timeline"][1]["files"] >= 1
    email = next(c for c in shown["schema"] if c["name"] == "email")
    assert email["description"] == "the buyer's e-mail address" and email["tags"] == ["pii"]
    assert shown["sql"] == 'lake sql "SELECT * FROM silver.orders LIMIT 10"'
    page = open_client.get("/datasets/silver.orders")
    assert page.status_code == 200
    for text in ("Orders, cleaned: one row per order", "sales-data", "schema changed", "orders_basic",
                 "Motivation", "Composition", "Collection process", "Preprocessing", "Uses", "Maintenance",
                 "Written by clean.orders", "email ← email (lower-cased)", "Columns tagged sensitive: email",
                 "Used by: feature.order_stats, gold.order_totals"):
        assert text in page.text, text
    old = open_client.get("/api/datasets/silver.orders", params={"version": "0"}).json()
    assert [c["name"] for c in old["schema"]] == ["id", "email", "amount"]
    assert old["sql"].endswith("--version 0")


def test_schema_diff_between_two_versions(open_client: TestClient) -> None:
    diff = open_client.get("/api/datasets/silver.orders/diff", params={"a": "0", "b": "1"}).json()
    assert diff["added"] == [{"name": "country", "type": diff["added"][0]["type"]}]
    assert diff["removed"] == [] and diff["changed"] == [] and diff["unchanged"] == 3
    back = open_client.get("/api/datasets/silver.orders/diff", params={"a": "1", "b": "0"}).json()
    assert [c["name"] for c in back["removed"]] == ["country"]
    missing = open_client.get("/api/datasets/silver.orders/diff", params={"a": "0", "b": "7"})
    assert missing.status_code == 400 and "no recorded version 7" in missing.json()["detail"]
    assert open_client.get("/api/datasets/silver.orders/diff", params={"a": "x", "b": "1"}).status_code == 400


def test_sample_rows_at_any_version(open_client: TestClient) -> None:
    now = open_client.get("/api/datasets/silver.orders/sample").json()
    assert now["columns"] == ["id", "email", "amount", "country"] and len(now["rows"]) == 4
    then = open_client.get("/api/datasets/silver.orders/sample", params={"version": "0", "limit": "2"}).json()
    assert then["columns"] == ["id", "email", "amount"] and then["rows"] == [[1, "a@x.io", 1.0], [2, "b@x.io", 2.0]]
    assert open_client.get("/api/datasets/silver.orders/sample", params={"limit": "100000"}).status_code == 400
    unknown = open_client.get("/api/datasets/silver.nothing/sample")
    assert unknown.status_code == 404


def test_unknown_dataset_is_a_404_page_not_a_500(open_client: TestClient) -> None:
    page = open_client.get("/datasets/gold.nowhere")
    assert page.status_code == 404 and "gold.nowhere" in page.text
    assert open_client.get("/api/datasets/gold.nowhere").status_code == 404
    assert open_client.get("/datasets/silver.orders", params={"version": "-1"}).status_code == 400


def test_edits_and_datasheet_need_write(guarded: tuple[TestClient, TokenAccess], console_lake: Lake) -> None:
    client, access = guarded
    edit = {"description": "Gold totals, daily", "add_owners": ["finance"], "add_tags": ["kpi"]}
    denied = client.post("/api/datasets/gold.order_totals/annotations", json=edit, **as_user(client, READER))
    assert denied.status_code == 403 and "reader may not write gold.order_totals" in denied.json()["detail"]
    assert ("reader", "write", "gold.order_totals", "denied") in access.audited
    done = client.post("/api/datasets/gold.order_totals/annotations", json=edit, **as_user(client, ADMIN))
    assert done.status_code == 200 and done.json()["description"] == "Gold totals, daily"
    shown = console_lake.catalog.show("gold.order_totals")
    assert shown["owners"] == ["finance"] and "kpi" in shown["tags"]
    undo = client.post("/api/datasets/gold.order_totals/annotations", json={"remove_tags": ["kpi"]},
                       **as_user(client, ADMIN))
    assert undo.status_code == 200 and "kpi" not in console_lake.catalog.show("gold.order_totals")["tags"]
    bad = client.post("/api/datasets/gold.order_totals/annotations", json={"add_owners": "x", "drop": 1},
                      **as_user(client, ADMIN))
    assert bad.status_code == 400
    assert client.post("/api/datasets/gold.order_totals/annotations", content=b"{not json",
                       **as_user(client, ADMIN)).status_code == 400
    sheet = {"motivation": "Finance asked for daily revenue.", "uses": "Dashboards; not for billing."}
    assert client.post("/api/datasets/gold.order_totals/datasheet", json=sheet,
                       **as_user(client, READER)).status_code == 403
    saved = client.post("/api/datasets/gold.order_totals/datasheet", json=sheet, **as_user(client, ADMIN))
    assert saved.status_code == 200 and saved.json()["notes"]["uses"] == "Dashboards; not for billing."
    page = client.get("/datasets/gold.order_totals", **as_user(client, READER))
    assert "Finance asked for daily revenue." in page.text and 'id="save-sheet"' not in page.text
    assert client.post("/api/datasets/gold.order_totals/datasheet", json={"secrets": "x"},
                       **as_user(client, ADMIN)).status_code == 400


def test_column_descriptions_are_edited_with_write(guarded: tuple[TestClient, TokenAccess],
                                                  console_lake: Lake) -> None:
    client, access = guarded
    url = "/api/datasets/gold.order_totals/annotations"
    reader_page = client.get("/datasets/gold.order_totals", **as_user(client, READER))
    assert reader_page.status_code == 200 and 'id="columns-form"' not in reader_page.text
    admin_page = client.get("/datasets/gold.order_totals", **as_user(client, ADMIN))
    assert 'id="columns-form"' in admin_page.text and 'data-column="total"' in admin_page.text
    old = client.get("/datasets/gold.order_totals", params={"version": "0"}, **as_user(client, ADMIN))
    assert 'id="columns-form"' not in old.text  # descriptions belong to the current columns
    edit = {"column_descriptions": {"total": "Sum of order amounts, in <b>EUR</b>"}}
    denied = client.post(url, json=edit, **as_user(client, READER))
    assert denied.status_code == 403 and ("reader", "write", "gold.order_totals", "denied") in access.audited
    assert console_lake.catalog.show("gold.order_totals")["schema"][0]["description"] is None
    done = client.post(url, json=edit, **as_user(client, ADMIN))
    assert done.status_code == 200 and ("admin", "write", "gold.order_totals", "annotated") in access.audited
    assert done.json()["schema"] == [{"name": "total", "type": "double", "nullable": True,
                                      "description": "Sum of order amounts, in <b>EUR</b>", "tags": []}]
    page = client.get("/datasets/gold.order_totals", **as_user(client, READER)).text
    assert "Sum of order amounts, in &lt;b&gt;EUR&lt;/b&gt;" in page and "<b>EUR" not in page
    assert [h["name"] for h in client.get("/api/search", params={"q": "amounts eur"},
                                          **as_user(client, READER)).json()["hits"]] == ["gold.order_totals"]
    # an unknown column refuses the whole edit: nothing is written
    before = console_lake.catalog.show("gold.order_totals")["description"]
    unknown = client.post(url, json={"description": "changed?", "column_descriptions": {"total": "x", "totl": "y"}},
                          **as_user(client, ADMIN))
    assert unknown.status_code == 400 and "no column 'totl'" in unknown.json()["detail"]
    shown = console_lake.catalog.show("gold.order_totals")
    assert shown["description"] == before and shown["schema"][0]["description"] == "Sum of order amounts, in <b>EUR</b>"
    for bad in ({"column_descriptions": ["total"]}, {"column_descriptions": {"total": 3}},
                {"column_descriptions": {"total": "x" * 20_001}}, {"column_descriptions": {"": "x"}}):
        assert client.post(url, json=bad, **as_user(client, ADMIN)).status_code == 400
    assert client.post(url, json=edit).status_code == 401  # not signed in
    for raw in ('{"column_descriptions": {"total": "a\\ud800b"}}', '{"description": "\\udfff"}'):  # lone surrogates
        refused = client.post(url, content=raw, headers={"content-type": "application/json"}, **as_user(client, ADMIN))
        assert refused.status_code == 400 and "unicode" in refused.text.lower(), refused.text[:300]
    cleared = client.post(url, json={"column_descriptions": {"total": ""}}, **as_user(client, ADMIN))
    assert cleared.status_code == 200 and cleared.json()["schema"][0]["description"] == ""


def test_masking_for_a_reader_without_unmask(guarded: tuple[TestClient, TokenAccess]) -> None:
    client, access = guarded
    reader = client.get("/api/datasets/silver.orders/sample", **as_user(client, READER)).json()
    email = reader["columns"].index("email")
    assert [r[email] for r in reader["rows"]] == [None] * 4
    assert [r[reader["columns"].index("amount")] for r in reader["rows"]] == [1.0, 2.0, 3.0, 4.0]
    admin = client.get("/api/datasets/silver.orders/sample", **as_user(client, ADMIN)).json()
    assert [r[email] for r in admin["rows"]] == ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
    assert ("reader", "read", "silver.orders", "sample") in access.audited


def test_sign_in_with_a_token(guarded: tuple[TestClient, TokenAccess]) -> None:
    client, _ = guarded
    client.cookies.clear()
    assert client.get("/api/search").status_code == 401
    page = client.get("/datasets/silver.orders")
    assert page.status_code == 303 and page.headers["location"] == "/signin?next=/datasets/silver.orders"
    wrong = client.post("/signin", data={"token": "guess", "next": "/"})
    assert wrong.status_code == 401 and "not valid" in wrong.text and TOKEN_COOKIE not in wrong.headers.get(
        "set-cookie", "")
    ok = client.post("/signin", data={"token": READER, "next": "/datasets/silver.orders"})
    assert ok.status_code == 303 and ok.headers["location"] == "/datasets/silver.orders"
    cookie = ok.headers["set-cookie"].lower()
    assert cookie.startswith(f"{TOKEN_COOKIE}=") and "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/datasets/silver.orders").status_code == 200  # the cookie now signs requests in
    evil = client.post("/signin", data={"token": READER, "next": "//evil.example/x"})
    assert evil.headers["location"] == "/"
    out = client.post("/signout")
    assert out.status_code == 303 and 'lake_token=""' in out.headers["set-cookie"]
    client.cookies.clear()


def test_a_principal_sees_only_what_they_may_read(guarded: tuple[TestClient, TokenAccess]) -> None:
    client, _ = guarded
    assert client.get("/api/search", params={"q": "orders"}, **as_user(client, NOBODY)).json()["hits"] == []
    assert client.get("/api/datasets/silver.orders", **as_user(client, NOBODY)).status_code == 403
    page = client.get("/datasets/silver.orders", **as_user(client, NOBODY))
    assert page.status_code == 403 and "nobody may not read silver.orders" in page.text


def test_lake_ui_serves_on_loopback_only(console_lake: Lake) -> None:
    root = str(console_lake.settings.root)
    assert main(["--root", root, "ui", "--host", "0.0.0.0", "--port", "0"]) == 1
    srv, sock, url = server(console_lake, port=0)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not srv.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert url.startswith("http://127.0.0.1:")
        page = httpx.get(url + "datasets/silver.orders", timeout=10)
        assert page.status_code == 200 and "Orders, cleaned" in page.text
        assert srv.config.timeout_keep_alive == 5 and srv.config.limit_concurrency == 64
    finally:
        srv.should_exit = True
        thread.join(15)
        sock.close()


class DenyAll(TokenAccess):
    """Signed in, allowed nothing."""

    def can(self, principal: str | None, action: str, obj: str) -> bool:
        return False


def test_every_page_and_endpoint_asks_the_access_first(console_lake: Lake) -> None:
    app = create_app(console_lake, DenyAll(console_lake))
    samples = {"name": "silver.orders", "run_id": "x", "target": "bronze.orders", "ref": "orders_model",
               "report_id": "x", "dataset": "gold.scores", "feature": "score"}
    seen = 0
    with TestClient(app, follow_redirects=False) as client:
        for route in app.routes:
            path = getattr(route, "path", "")
            if path.startswith(("/static", "/signin", "/signout")) or not path:
                continue
            url = path
            for key, value in samples.items():
                url = url.replace("{" + key + ":path}", value).replace("{" + key + "}", value)
            for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
                body = {"name": "x", "sql": "SELECT 1"} if method == "POST" else None
                client.cookies.clear()
                anonymous = client.request(method, url, json=body)
                assert anonymous.status_code in (303, 401), (method, url, anonymous.status_code)
                client.cookies.set(TOKEN_COOKIE, "tok-reader-456")
                denied = client.request(method, url, json=body)
                assert denied.status_code in (403, 404), (method, url, denied.status_code)
                seen += 1
    assert seen >= 25


def test_mounted_under_a_prefix_every_address_keeps_it(console_lake: Lake) -> None:
    # as `lake serve` mounts it: Starlette's Mount at /ui
    app = Starlette(routes=[Mount("/ui", app=create_app(console_lake, TokenAccess(console_lake)))])
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/ui/datasets/silver.orders")
        assert page.status_code == 303 and page.headers["location"] == "/ui/signin?next=/ui/datasets/silver.orders"
        form = client.get("/ui/signin", params={"next": "/ui/datasets/silver.orders"})
        assert 'action="/ui/signin"' in form.text and 'href="/ui/static/console.css"' in form.text
        signed = client.post("/ui/signin", data={"token": "tok-reader-456", "next": "/ui/datasets/silver.orders"})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/datasets/silver.orders"
        shown = client.get("/ui/datasets/silver.orders")
        assert shown.status_code == 200 and 'data-base="/ui"' in shown.text
        assert 'href="/ui/lineage/silver.orders"' in shown.text and 'href="/datasets/' not in shown.text
        assert client.get("/ui/static/console.js").status_code == 200
        assert "silver.orders" in {h["name"] for h in client.get("/ui/api/search", params={"q": "orders"}).json()["hits"]}
        home = client.get("/ui/", params={"q": "orders"})
        assert 'href="/ui/datasets/silver.orders"' in home.text
        assert client.post("/ui/signout").headers["location"] == "/ui/signin"
