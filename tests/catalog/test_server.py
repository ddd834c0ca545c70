"""The catalog's HTTP API: OpenLineage in, search, datasets, lineage; tokens, limits and 4xx at its boundary.

On SQLite and PostgreSQL, through the ASGI app; and ``lake catalog serve`` started as a user
starts it (a subprocess), refusing a public address without tokens, then requiring them.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.guard import Limits
from catalog.server import create_app
from catalog.store import Catalog
from tests.catalog.helpers import airflow_event, build_graph
from tests.lake_server import lake_command, lake_env, running, wait_healthy
from tests.services import free_port
from tests.tcp_proxy import TcpProxy

RUN = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def client_for(catalog: Catalog, **kwargs: Any) -> TestClient:
    kwargs.setdefault("authenticator", catalog.authenticator(cache_seconds=0))
    return TestClient(create_app(catalog, **kwargs))


def test_http_api(catalog: Catalog) -> None:
    build_graph(catalog)
    client = client_for(catalog)
    assert client.get("/health").json()["datasets"] == 5
    resp = client.post("/api/v1/lineage", json=airflow_event("COMPLETE", RUN))
    assert resp.status_code == 201 and resp.json() == {"ingested": 1, "runs": [RUN]}
    bad = client.post("/api/v1/lineage", json={"eventType": "START"})
    assert bad.status_code == 422 and bad.json()["detail"] == "run: missing (an object is required); nothing was stored"
    hits = client.get("/api/v1/search", params={"q": "custmer", "layer": "silver"}).json()
    assert [h["name"] for h in hits] == ["silver.customers"]
    shown = client.get("/api/v1/datasets/silver.customers").json()
    assert shown["upstream"] == ["bronze.customers"]
    missing = client.get("/api/v1/datasets/nope.nope")
    assert missing.status_code == 404 and "no dataset 'nope.nope'" in missing.json()["detail"]
    graph = client.get("/api/v1/lineage/gold.customer_stats", params={"direction": "upstream", "depth": 10}).json()
    assert {"from": "crm.public.accounts", "to": "raw.customers_csv", "job": "crm_export.extract"} in graph["edges"]


# ------------------------------------------------------------------- tokens


def test_tokens_are_required_once_one_exists(catalog: Catalog) -> None:
    build_graph(catalog)
    client = client_for(catalog)
    assert client.get("/api/v1/search", params={"q": "customers"}).status_code == 200  # no token yet: loopback use
    info, token = catalog.create_token("svc:airflow", description="lineage from Airflow")
    anonymous = client.post("/api/v1/lineage", json=airflow_event("COMPLETE", RUN))
    assert anonymous.status_code == 401 and "requires a token" in anonymous.json()["detail"]
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/v1/datasets/silver.customers").status_code == 401
    assert client.get("/health").json() == {"status": "ok"}  # public, but no counts without a token
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/health", headers=auth).json()["datasets"] == 5
    assert client.post("/api/v1/lineage", json=airflow_event("COMPLETE", RUN), headers=auth).status_code == 201
    assert catalog.tokens()[0].last_used_at is not None
    for header, words in [
        (f"Bearer {token[:-1]}x", "not valid"),
        ("Bearer lake_000000000000_" + token.split("_", 2)[2], "not valid"),
        ("Bearer hunter2", "not a lake token"),
        (f"Basic {token}", "not 'Basic'"),
        ("", "requires a token"),
    ]:
        refused = client.get("/api/v1/search", headers={"Authorization": header})
        assert refused.status_code == 401 and words in refused.json()["detail"], (header, refused.text)
        assert token not in refused.text
    catalog.revoke_token(info.id)
    revoked = client.get("/api/v1/search", headers=auth)
    assert revoked.status_code == 401 and f"token {info.id} is revoked" in revoked.json()["detail"]
    # The last token revoked: no token exists, anonymous requests work again (a public bind stays closed:
    # see test_lake_catalog_serve_as_a_user_starts_it).
    assert client.get("/api/v1/search").status_code == 200


def test_expired_tokens_and_required_mode(catalog: Catalog) -> None:
    client = client_for(catalog, authenticator=catalog.authenticator(mode="required", cache_seconds=0))
    assert client.get("/api/v1/search").status_code == 401  # required, even with no token at all
    info, token = catalog.create_token("alice", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/search", headers=auth).status_code == 200
    time.sleep(1.2)
    expired = client.get("/api/v1/search", headers=auth)
    assert expired.status_code == 401 and "is expired" in expired.json()["detail"]
    assert [t.status() for t in catalog.tokens()] == ["expired"]


def test_only_the_hash_of_a_token_is_stored(catalog: Catalog) -> None:
    from sqlalchemy import select

    from catalog import models as m
    from catalog.tokens import digest

    info, token = catalog.create_token("alice")
    assert token.startswith(f"lake_{info.id}_") and len(token) > 50
    with catalog.reading() as s:
        row = s.scalars(select(m.ApiToken)).one()
        assert row.secret_hash == digest(token) and token not in repr(vars(row))
    assert token not in json.dumps([t.as_dict() for t in catalog.tokens()], default=str)


def test_token_cache_keeps_requests_off_the_database(catalog: Catalog) -> None:
    from catalog.tokens import Authenticator

    now = [0.0]
    authenticator = Authenticator(catalog, cache_seconds=5, clock=lambda: now[0])
    info, token = catalog.create_token("alice")
    header = f"Bearer {token}"
    assert authenticator.authenticate(header).name == "alice"
    catalog.revoke_token(info.id)
    assert authenticator.cached(header) is not None  # trusted for cache_seconds...
    now[0] = 5.0
    assert authenticator.cached(header) is None  # ...then asked again, and refused
    with pytest.raises(PermissionError, match="revoked"):
        authenticator.authenticate(header)


# --------------------------------------------------------- limits and 4xx


def test_body_size_and_json_depth_limits(catalog: Catalog) -> None:
    client = client_for(catalog, limits=Limits(max_body_bytes=64 * 1024, max_json_depth=20))
    big = client.post("/api/v1/lineage", content=b"[" + b"1," * 50_000 + b"1]",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and "65536" in big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(100):
            yield b" " * 1024

    chunked = client.post("/api/v1/lineage", content=chunks())
    assert chunked.status_code == 413
    deep = client.post("/api/v1/lineage", content=b"[" * 30 + b"]" * 30)
    assert deep.status_code == 400 and "nests more than 20 levels" in deep.json()["detail"]
    deeper = client.post("/api/v1/lineage", content=b"[" * 100_000 + b"]" * 100_000)  # past Python's recursion
    assert deeper.status_code in (400, 413)
    assert client.post("/api/v1/lineage", content=b"{nope").status_code == 400
    assert client.post("/api/v1/lineage", content=b'{"eventTime": NaN}').status_code == 400
    assert client.post("/api/v1/lineage", content=b"\xff\xfe").status_code == 400
    assert client.post("/api/v1/lineage", json=[]).status_code == 422
    assert client.get("/api/v1/search", params={"limit": "many"}).status_code == 422
    assert client.get("/api/v1/lineage/x", params={"depth": 10_000}).status_code == 422
    assert catalog.counts()["runs"] == 0


def event_with(change: Any) -> dict[str, Any]:
    event = airflow_event("COMPLETE", RUN)
    event["outputs"][0]["facets"]["version"] = {"datasetVersion": "3"}
    change(event)
    return event


MALFORMED: list[tuple[str, Any, str]] = [
    ("bad eventTime", lambda e: e.update(eventTime="yesterday at noon"),
     "eventTime: 'yesterday at noon' is not an ISO 8601 date-time"),
    ("eventTime a number", lambda e: e.update(eventTime=1714557600), "eventTime: must be a string, not a number"),
    ("eventTime out of range", lambda e: e.update(eventTime="9999-12-31T23:59:59-14:00"), "eventTime: "),
    ("facet a string", lambda e: e["outputs"][0]["facets"].update(schema="id int"),
     "outputs[0].facets.schema: must be an object, not a string"),
    ("facet a list", lambda e: e["run"].update(facets=[1]), "run.facets: must be an object, not a list"),
    ("fields an object", lambda e: e["inputs"][0]["facets"]["schema"].update(fields={"name": "x"}),
     "inputs[0].facets.schema.fields: must be a list, not an object"),
    ("column name a number", lambda e: e["inputs"][0]["facets"]["schema"]["fields"][0].update(name=7),
     "inputs[0].facets.schema.fields[0].name: must be a string, not a number"),
    ("huge datasetVersion", lambda e: e["outputs"][0]["facets"]["version"].update(datasetVersion="9" * 40),
     "outputs[0].facets.version.datasetVersion: '999999999999999999999999999999999999... is larger than"),
    ("datasetVersion an object", lambda e: e["outputs"][0]["facets"]["version"].update(datasetVersion={}),
     "must be a string or a number, not an object"),
    ("huge rowCount", lambda e: e["outputs"][0].update(outputFacets={"outputStatistics": {"rowCount": 10**30}}),
     "outputs[0].outputFacets.outputStatistics.rowCount: 1000000000000000000000000000000 is out of range"),
    ("NUL in a name", lambda e: e["outputs"][0].update(name="raw.\x00customers"),
     "outputs[0].name: contains a NUL character"),
    ("NUL deep in a facet", lambda e: e["run"].update(facets={"x": {"y": ["ok", "a\x00b"]}}),
     "run.facets.x.y[1]: contains a NUL character"),
    ("NUL in a key", lambda e: e["run"].update(facets={"x": {"a\x00": 1}}), "run.facets.x: has a key with a NUL"),
    ("missing run", lambda e: e.pop("run"), "run: missing"),
    ("missing runId", lambda e: e["run"].pop("runId"), "run.runId: missing"),
    ("runId not a UUID", lambda e: e["run"].update(runId="r" * 100), "run.runId: 'rrrrrrrrr"),
    ("missing job name", lambda e: e["job"].pop("name"), "job.name: missing"),
    ("blank dataset name", lambda e: e["outputs"][0].update(name="  "), "outputs[0].name: must not be blank"),
    ("dataset name too long", lambda e: e["outputs"][0].update(name="x" * 600),
     "outputs[0].name: dataset name is 600 characters long; the catalog keeps at most 512"),
    ("unknown eventType", lambda e: e.update(eventType="DONE"), "eventType: 'DONE' is not one of"),
    ("inputs an object", lambda e: e.update(inputs={"a": 1}), "inputs: must be a list, not an object"),
    ("owners a string", lambda e: e["outputs"][0]["facets"].update(ownership={"owners": "ann"}),
     "outputs[0].facets.ownership.owners: must be a list, not a string"),
    ("columnLineage source without field",
     lambda e: e["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0].pop("field"),
     "inputFields[0].field: missing"),
]


@pytest.mark.parametrize(("change", "reason"), [(c, r) for _, c, r in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_malformed_events_are_422_with_the_reason_and_store_nothing(catalog: Catalog, change: Any,
                                                                     reason: str) -> None:
    client = client_for(catalog)
    response = client.post("/api/v1/lineage", json=event_with(change))
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    assert catalog.counts() == {"datasets": 0, "versions": 0, "runs": 0, "edges": 0}


def test_batches_are_all_or_nothing(catalog: Catalog) -> None:
    client = client_for(catalog)
    good = [event_with(lambda e: None), airflow_event("START", str(uuid.uuid4()))]
    bad = event_with(lambda e: e.update(eventTime="soon"))
    response = client.post("/api/v1/lineage", json=[*good, bad])
    assert response.status_code == 422 and response.json()["detail"].startswith("event 2: eventTime: 'soon'")
    assert catalog.counts()["runs"] == 0  # the good ones were not kept either
    response = client.post("/api/v1/lineage", json=good)
    assert response.status_code == 201 and response.json()["ingested"] == 2
    assert catalog.counts()["runs"] == 2 and catalog.show("raw.customers_csv", namespace="file")["current_version"] == 3


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=20)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["eventTime", "run", "job", "inputs", "outputs", "producer",
                                           "eventType", "run.runId", "run.facets", "job.name", "outputs.0",
                                           "outputs.0.facets", "outputs.0.facets.version",
                                           "outputs.0.facets.schema.fields", "inputs.0.namespace"]), JSON),
                max_size=3))
def test_mangled_events_never_give_a_5xx(catalog: Catalog, changes: list[tuple[str, Any]]) -> None:
    event: Any = copy.deepcopy(event_with(lambda e: None))
    for path, value in changes:
        node = event
        *parents, last = path.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) and key.isdigit() and int(key) < len(node) else (
                node.get(key) if isinstance(node, dict) else None)
        if isinstance(node, dict):
            node[last] = value
    response = client_for(catalog).post("/api/v1/lineage", json=event)
    assert response.status_code in (201, 422), response.text


@pytest.mark.postgres
def test_database_down_is_503_and_back(pg_url: str) -> None:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        cat = Catalog(pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "?connect_timeout=3")
        client = client_for(cat)
        assert client.get("/api/v1/search").status_code == 200
        proxy.stop()
        for response in (client.post("/api/v1/lineage", json=airflow_event("START", RUN)),
                         client.get("/api/v1/search", params={"q": "x"}), client.get("/health")):
            assert response.status_code == 503 and "cannot reach the catalog database" in response.text
        proxy.resume()
        assert client.post("/api/v1/lineage", json=airflow_event("START", RUN)).status_code == 201
        cat.close()


# ------------------------------------------------- as a user starts it


def test_lake_catalog_serve_as_a_user_starts_it(tmp_path: Path, catalog_url: str) -> None:
    root = str(tmp_path / "lakehouse")
    port = free_port()
    env = lake_env(LAKE_CATALOG_URL=catalog_url)
    # No token: loopback is served; a public address is refused with the reason and what to do.
    refused = subprocess.run(lake_command("--root", root, "catalog", "serve", "--host", "0.0.0.0", "--port",
                                          str(port)), env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "refusing to serve the catalog on 0.0.0.0" in refused.stderr and "lake token create" in refused.stderr
    base = f"http://127.0.0.1:{port}"
    with running(["--root", root, "catalog", "serve", "--port", str(port)], port, env=env):
        wait_healthy(base)
        assert httpx.post(base + "/api/v1/lineage", json=airflow_event("START", RUN)).status_code == 201
    created = subprocess.run(lake_command("--root", root, "token", "create", "--principal", "svc:airflow", "--json"),
                             env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    with running(["--root", root, "catalog", "serve", "--host", "0.0.0.0", "--port", str(port)], port,
                 env={**env, "LAKE_SERVER_TOKEN_CACHE_SECONDS": "0"}):
        wait_healthy(base)
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(base + "/api/v1/search").status_code == 401
        event = airflow_event("COMPLETE", RUN)
        assert httpx.post(base + "/api/v1/lineage", json=event, headers=auth).status_code == 201
        huge = httpx.post(base + "/api/v1/lineage", content=b"[" + b"0," * (5 * 1024 * 1024) + b"0]",
                          headers={**auth, "content-type": "application/json"}, timeout=60)
        assert huge.status_code == 413
        bad = httpx.post(base + "/api/v1/lineage", json=event_with(lambda e: e.update(eventTime="x")), headers=auth)
        assert bad.status_code == 422
        token_id = token.split("_")[1]
        revoked = subprocess.run(lake_command("--root", root, "token", "revoke", token_id), env=env,
                                 capture_output=True, text=True, timeout=120)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert httpx.get(base + "/api/v1/search", headers=auth).status_code == 401
        # Bound beyond loopback, it stays closed with no active token left.
        assert httpx.get(base + "/api/v1/search").status_code == 401
    cat = Catalog(catalog_url)
    assert cat.run_info(RUN)["status"] == "completed"
    cat.close()
