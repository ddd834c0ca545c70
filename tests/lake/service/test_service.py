"""``lake serve`` against the real parts: grants on every endpoint, masking on every way data leaves, the audit."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import jwt
import pyarrow as pa
import pyarrow.parquet
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from catalog import access as acl
from catalog import models as m
from lake.console.app import create_app as create_console
from lake.errors import LakeError, ServiceError, SplitError
from lake.features.server import create_app as create_feature_server
from lake.features.training import save_training_dataset
from lake.handoff import SplitSpec, load
from lake.lakehouse import Lake
from lake.masking import hash_text
from lake.remote import ServiceClient
from lake.service.access import ServiceAccess
from lake.service.run import build
from tests.lake.features.conftest import entities
from tests.lake.features.test_operations import samples
from tests.lake.service.conftest import SALT, USERS, Team
from tests.lake_server import lake_command, lake_env, running, wait_healthy
from tests.services import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]
Service = tuple[TestClient, ServiceAccess]


def hashed(value: str) -> str:
    digest = hash_text(value, SALT.encode())
    assert digest is not None
    return digest


def test_no_anonymous_access_and_tokens_expired_or_revoked(team: Team, service: Service) -> None:
    client, _ = service
    anonymous = client.get("/api/v1/search")
    assert anonymous.status_code == 401 and "requires a token" in anonymous.json()["detail"]
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/whoami", headers=team.auth("analyst")).json()["principal"] == "analyst"
    assert client.get("/api/v1/search", headers={"Authorization": "Bearer lake_000000000000_" + "x" * 40}
                      ).status_code == 401
    assert client.get("/api/v1/search", headers={"Authorization": "Basic YWxpY2U6cHc="}).status_code == 401
    huge = client.post("/api/v1/sql", headers=team.auth("owner"), content=b"{" + b" " * (9 * 1024 * 1024) + b"}")
    assert huge.status_code == 413 and "bytes" in huge.json()["detail"]
    # An expired token and a revoked one: 401 with the reason.
    cat = team.lake.catalog
    for state in ("expired", "revoked"):
        info, text = cat.create_token("analyst")
        assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {text}"}).status_code == 200
        if state == "expired":
            with cat.writing() as s:
                row = s.get(m.ApiToken, info.id)
                assert row is not None
                row.expires_at = m.utcnow() - dt.timedelta(seconds=1)
        else:
            cat.revoke_token(info.id)
        refused = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {text}"})
        assert refused.status_code == 401 and state in refused.json()["detail"]


def test_catalog_endpoints_check_grants(team: Team, service: Service) -> None:
    client, _ = service
    owner, analyst, training = team.auth("owner"), team.auth("analyst"), team.auth("svc:training")
    names = {h["name"] for h in client.get("/api/v1/search", params={"q": "users"}, headers=owner).json()}
    assert {"bronze.users", "silver.users"} <= names
    seen = {h["name"] for h in client.get("/api/v1/search", params={"q": "users"}, headers=analyst).json()}
    assert "silver.users" in seen and "bronze.users" not in seen  # search lists only what one may read
    denied = client.get("/api/v1/datasets/bronze.users", headers=analyst)
    assert denied.status_code == 403 and "lake grant read bronze.users --to analyst" in denied.json()["detail"]
    shown = client.get("/api/v1/datasets/silver.users", headers=analyst).json()
    assert [c["name"] for c in shown["schema"]] == ["id", "email", "phone", "country"]
    assert "pii (from bronze.users)" in shown["inherited_tags"]
    assert client.get("/api/v1/datasets/silver.nothing", headers=analyst).status_code == 404
    assert client.get("/api/v1/datasets/silver.users/schema", headers=analyst).status_code == 200
    assert client.get("/api/v1/datasets/silver.users/versions", headers=analyst).json()[0]["version"] == 0
    # Lineage: the analyst sees silver and gold, not bronze (left out, counted).
    graph = client.get("/api/v1/lineage/gold.contacts", headers=analyst, params={"direction": "upstream"}).json()
    assert {n["name"] for n in graph["nodes"]} == {"gold.contacts", "silver.users"}
    assert graph["hidden_datasets"] == 1 and all("bronze" not in e["from"] for e in graph["edges"])
    columns = client.get("/api/v1/lineage/gold.contacts", headers=owner,
                         params={"direction": "upstream", "column": "contact"}).json()
    assert any(n["column"] == "email" for n in columns["nodes"])
    # Runs of everything need read on the lake; of a dataset, read on it.
    assert client.get("/api/v1/runs", headers=analyst).status_code == 403
    assert client.get("/api/v1/runs", headers=analyst, params={"dataset": "silver.users"}).status_code == 200
    assert client.get("/api/v1/runs", headers=owner).status_code == 200
    # Feature views and services: what each may read.
    listed = {d["object"] for d in client.get("/api/v1/features", headers=training).json()}
    assert listed == {"feature_view:driver_stats"}
    # Metadata writes: a tag needs manage (a tag can unmask), a description write.
    tag = client.post("/api/v1/datasets/silver.users/tags", headers=analyst, json={"tag": "x"})
    assert tag.status_code == 403
    assert client.put("/api/v1/datasets/silver.users/description", headers=analyst,
                      json={"text": "hi"}).status_code == 403
    assert client.put("/api/v1/datasets/silver.users/description", headers=owner,
                      json={"text": "Users, cleaned"}).status_code == 200
    assert client.get("/api/v1/datasets/silver.users", headers=analyst).json()["description"] == "Users, cleaned"
    # Client mistakes are 4xx with a JSON reason, never a 500.
    for response in (client.get("/api/v1/lineage/silver.users", headers=owner, params={"depth": 0}),
                     client.get("/api/v1/datasets/silver.users", headers=owner, params={"version": "x"}),
                     client.post("/api/v1/grants", headers=owner, json={"principal": "analyst"}),
                     client.post("/api/v1/grants", headers=owner, content=b"{nope",
                                 ),
                     client.post("/api/v1/grants", headers=owner,
                                 json={"principal": "analyst", "privilege": "own", "object": "gold"})):
        assert 400 <= response.status_code < 500 and "detail" in response.json(), response.text


def test_grants_through_the_api_need_manage_and_apply_at_once(team: Team, service: Service) -> None:
    client, _ = service
    owner, analyst = team.auth("owner"), team.auth("analyst")
    body = {"principal": "analyst", "privilege": "read", "object": "bronze.users"}
    assert client.post("/api/v1/grants", headers=analyst, json=body).status_code == 403  # no self-service
    assert client.get("/api/v1/datasets/bronze.users/preview", headers=analyst).status_code == 403
    assert client.post("/api/v1/grants", headers=owner, json=body).status_code == 201
    try:
        preview = client.get("/api/v1/datasets/bronze.users/preview", headers=analyst).json()
        assert preview["columns"] == ["id", "email", "phone", "country"]
        rows = {r[0]: r for r in preview["rows"]}
        assert rows[1][1] == hashed("ann@example.com") and rows[3][1] is None  # pii: salted hash; null stays null
        assert rows[1][2] == "****6 78" and rows[3][2] == "****"  # card: last 4
        assert rows[1][3] == "fr"
        mine = client.get("/api/v1/grants", headers=analyst, params={"principal": "analyst"}).json()
        assert {"bronze.users", "gold"} <= {g["object"] for g in mine}
        assert client.get("/api/v1/grants", headers=analyst, params={"principal": "owner"}).status_code == 403
    finally:
        revoked = client.delete("/api/v1/grants", headers=owner, params=body)
        assert revoked.status_code == 200 and revoked.json()["revoked"]
    assert client.get("/api/v1/datasets/bronze.users/preview", headers=analyst).status_code == 403


def test_previews_and_loads_are_masked_without_unmask(team: Team, service: Service) -> None:
    client, _ = service
    owner, analyst = team.auth("owner"), team.auth("analyst")
    raw = client.get("/api/v1/datasets/gold.contacts/preview", headers=owner).json()
    assert sorted(r[1] for r in raw["rows"] if r[1]) == ["ann@example.com", "bob@example.com"]
    masked = client.get("/api/v1/datasets/gold.contacts/preview", headers=analyst).json()
    assert sorted(r[1] for r in masked["rows"] if r[1]) == sorted([hashed("ann@example.com"), hashed("bob@example.com")])
    # Hand-off load as an Arrow stream and as JSON rows.
    stream = client.get("/api/v1/load/gold.contacts", headers=analyst)
    assert stream.status_code == 200 and stream.headers["content-type"] == "application/vnd.apache.arrow.stream"
    assert stream.headers["x-lake-masked"] == '["contact"]'  # what this answer masks, for split checks
    assert client.get("/api/v1/load/gold.contacts", headers=owner).headers["x-lake-masked"] == "[]"
    assert client.get("/api/v1/load/gold.contacts", headers=analyst,  # only the columns asked for
                      params={"columns": "id"}).headers["x-lake-masked"] == "[]"
    table = pa.ipc.open_stream(stream.content).read_all()
    assert "ann@example.com" not in str(table.to_pydict()) and hashed("ann@example.com") in table["contact"].to_pylist()
    full = pa.ipc.open_stream(client.get("/api/v1/load/gold.contacts", headers=owner).content).read_all()
    assert "ann@example.com" in full["contact"].to_pylist()
    rows = client.get("/api/v1/load/silver.users", headers=analyst, params={"format": "json", "columns": "email"})
    assert rows.json()["columns"] == ["email"] and hashed("bob@example.com") in str(rows.json()["rows"])
    assert client.get("/api/v1/load/bronze.users", headers=analyst).status_code == 403
    assert client.get("/api/v1/load/%2Ftmp%2Fx", headers=owner).status_code in (400, 404)
    # Without read, a table that exists, one that does not and a version that does not all answer 403:
    # nothing is looked up first (no names, versions or locations leak); with read, 404 as usual.
    for path in ("/api/v1/load/bronze.users", "/api/v1/load/bronze.nosuch", "/api/v1/load/bronze.users@7",
                 "/api/v1/load/bronze.users/metadata", "/api/v1/load/bronze.nosuch/metadata",
                 "/api/v1/load/bronze.users@7/metadata", "/api/v1/load/bronze.users/metadata?version=7"):
        denied = client.get(path, headers=analyst)
        assert denied.status_code == 403 and "may not read bronze." in denied.json()["detail"], (path, denied.text)
        assert "s3://" not in denied.text
    assert client.get("/api/v1/load/gold.contacts@0/metadata", headers=analyst).json()["version"] == 0
    assert client.get("/api/v1/load/Gold.Contacts/metadata", headers=analyst).json()["table"] == "gold.contacts"
    assert client.get("/api/v1/load/bronze.nosuch/metadata", headers=owner).status_code == 404
    # A table named in other letter case is the same table (lake.table lower-cases it): masked alike, for a
    # principal whose read reaches it from the root.
    with team.lake.catalog.writing() as s:
        acl.grant(s, "analyst", "read", "lake")
    try:
        for path in ("/api/v1/datasets/Gold.Contacts/preview", "/api/v1/datasets/GOLD.CONTACTS/preview",
                     "/api/v1/load/Gold.Contacts?format=json"):
            answer = client.get(path, headers=analyst)
            assert answer.status_code == 200 and "ann@example.com" not in answer.text, (path, answer.text[:300])
            assert hashed("ann@example.com") in answer.text
    finally:
        with team.lake.catalog.writing() as s:
            acl.revoke(s, "analyst", "read", "lake")
    # unmask on gold lets the training account see it.
    with team.lake.catalog.writing() as s:
        acl.grant(s, "svc:training", "unmask", "gold.contacts")
    try:
        plain = client.get("/api/v1/datasets/gold.contacts/preview", headers=team.auth("svc:training")).json()
        assert "ann@example.com" in str(plain["rows"])
    finally:
        with team.lake.catalog.writing() as s:
            acl.revoke(s, "svc:training", "unmask", "gold.contacts")


def test_sql_through_the_service_masks_inside_the_query(team: Team, service: Service) -> None:
    client, _ = service
    owner, analyst = team.auth("owner"), team.auth("analyst")

    def sql(who: dict[str, str], query: str) -> dict:  # type: ignore[type-arg]
        response = client.post("/api/v1/sql", headers=who, json={"query": query})
        return {"status": response.status_code, **response.json()}

    raw = sql(owner, "SELECT email FROM silver.users WHERE id = 1")
    assert raw["rows"] == [["ann@example.com"]]
    odd = sql(owner, "SELECT 'inf'::DOUBLE AS i, 'nan'::DOUBLE AS n, INTERVAL 1 DAY AS d, uuid() AS u, {'a': 1} AS s, "
                     "[1, 2] AS l, 1::HUGEINT AS h, 'x'::BLOB AS b, TIME '10:00' AS t, 1.5::DECIMAL(4, 2) AS m")
    assert odd["status"] == 200 and odd["rows"][0][:2] == [None, None] and odd["rows"][0][4] == {"a": 1}
    for query in ["SELECT email FROM silver.users WHERE id = 1",
                  "SELECT upper(email) AS e FROM silver.users WHERE id = 1",  # an expression and an alias
                  "SELECT * FROM (SELECT email AS x FROM silver.users) WHERE x LIKE 'ann%'",  # a filter on it
                  "SELECT email FROM lake_at('silver.users', 0) WHERE id = 1"]:  # time travel
        answer = sql(analyst, query)
        assert answer["status"] == 200, answer
        assert "ann@example.com" not in str(answer["rows"]).lower(), query
    assert sql(analyst, "SELECT email FROM silver.users WHERE id = 1")["rows"] == [[hashed("ann@example.com")]]
    assert sql(analyst, "SELECT count(DISTINCT email) AS n FROM silver.users")["rows"] == [[2]]  # joins/counts work
    assert sql(analyst, "SELECT contact FROM gold.contacts WHERE id = 2")["rows"] == [[hashed("bob@example.com")]]
    denied = sql(analyst, "SELECT * FROM bronze.users")
    assert denied["status"] == 403 and "bronze.users" in denied["detail"]
    # Around the views: files, catalog functions, several statements, writes: refused, 4xx.
    for query in ["SELECT * FROM read_parquet('s3://any/*.parquet')",
                  "SELECT * FROM delta_scan('s3://any/bronze/users')",
                  "SELECT * FROM 'bronze/users/part-0.parquet'",
                  "SELECT * FROM duckdb_views()",
                  "SELECT 1; SELECT 2",
                  "CREATE TABLE t AS SELECT 1",
                  "SELECT * FROM (SELECT * FROM read_csv('/etc/passwd'))",
                  "WITH x AS (SELECT * FROM glob('*')) SELECT * FROM x",
                  "SELEC nonsense"]:
        answer = sql(analyst, query)
        assert 400 <= answer["status"] < 500 and answer.get("detail"), (query, answer)


def test_online_features_by_grant_and_masked_across_the_pipeline(team: Team, service: Service) -> None:
    """city is tagged pii on bronze.driver_stats; silver and gold inherit it by name, the feature view by
    column lineage: the training account reads driver_stats:city hashed, the owner in clear."""
    client, access = service
    body = {"features": ["driver_stats:city", "driver_stats:trips"], "entities": {"driver_id": [1, 2]}}
    owner = client.post("/get-online-features", json=body, headers=team.auth("owner"))
    assert owner.status_code == 200, owner.text
    cities = owner.json()["results"][1]["values"]
    assert set(cities) <= {"paris", "lyon", "nice", None} and any(cities)
    training = client.post("/get-online-features", json=body, headers=team.auth("svc:training")).json()
    assert training["results"][1]["values"] == [hashed(c) if c else None for c in cities]
    assert training["results"][2]["values"] == owner.json()["results"][2]["values"]  # trips: not pii
    # The analyst holds the driver_model service, not the view.
    analyst = team.auth("analyst")
    assert client.post("/get-online-features", json=body, headers=analyst).status_code == 403
    service_body = {"feature_service": "driver_model", "entities": {"driver_id": [1]}}
    assert client.post("/get-online-features", json=service_body, headers=analyst).status_code == 200
    assert client.post("/get-online-features", json=service_body, headers=team.auth("svc:training")).status_code == 403
    assert client.post("/get-online-features", json=service_body).status_code == 401
    assert access.policy.masked_columns("feature.driver_stats") == {"city": "hash"}
    # `lake features serve` on its own enforces the same grants and masks.
    standalone = create_feature_server(team.lake)
    try:
        alone = TestClient(standalone, raise_server_exceptions=False)
        assert alone.post("/get-online-features", json=body, headers=analyst).status_code == 403
        masked = alone.post("/get-online-features", json=body, headers=team.auth("svc:training")).json()
        assert masked["results"][1]["values"] == training["results"][1]["values"]
    finally:
        standalone.close()


def test_every_request_is_audited(team: Team, service: Service) -> None:
    client, access = service
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    analyst = team.auth("analyst")
    client.get("/api/v1/datasets/silver.users", headers=analyst)
    client.get("/api/v1/datasets/bronze.users", headers=analyst)
    client.post("/api/v1/sql", headers=analyst, json={"query": "SELECT count(*) FROM gold.contacts"})
    client.post("/api/v1/grants", headers=team.auth("owner"),
                json={"principal": "analyst", "privilege": "read", "object": "silver.x"})
    client.get("/api/v1/search", headers={"Authorization": "Bearer lake_000000000000_" + "y" * 40})
    assert client.get("/api/v1/audit", headers=analyst).status_code == 403
    records = client.get("/api/v1/audit", headers=team.auth("owner"),
                         params={"since": start.isoformat(), "limit": 1000}).json()
    seen = {(r["principal"], r["action"], r["object"], r["outcome"]) for r in records}
    assert ("analyst", "read", "silver.users", "allowed") in seen
    assert ("analyst", "read", "bronze.users", "denied") in seen
    assert ("analyst", "sql", "gold.contacts", "allowed") in seen
    assert ("owner", "grant", "silver.x", "ok") in seen
    assert ("analyst", "audit", "lake", "denied") in seen
    assert any(r["action"] == "token" and r["outcome"] == "denied" for r in records)
    assert all(r["at"] for r in records) and "y" * 40 not in str(records)
    with team.lake.catalog.writing() as s:
        acl.revoke(s, "analyst", "read", "silver.x")
    access.audit_log.flush()
    with team.lake.catalog.reading() as s:
        assert acl.audit_records(s, principal="analyst", obj="bronze", since=start)[0]["outcome"] == "denied"


def test_openlineage_in_needs_write_on_its_outputs(team: Team, service: Service) -> None:
    client, _ = service
    event = {"eventType": "COMPLETE", "eventTime": "2026-12-01T10:00:00Z", "producer": "https://airflow",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
             "run": {"runId": "01936f3c-8f4e-7c6a-9a51-5d2d6c3b9a10"},
             "job": {"namespace": "airflow", "name": "other_team.load"},
             "inputs": [{"namespace": "lake", "name": "silver.users"}],
             "outputs": [{"namespace": "lake", "name": "silver.orders"}]}
    denied = client.post("/api/v1/lineage", json=event, headers=team.auth("analyst"))
    assert denied.status_code == 403 and "silver.orders" in denied.json()["detail"]
    with team.lake.catalog.writing() as s:
        acl.grant(s, "svc:training", "write", "silver.orders")
    try:
        assert client.post("/api/v1/lineage", json=event, headers=team.auth("svc:training")).status_code == 201
    finally:
        with team.lake.catalog.writing() as s:
            acl.revoke(s, "svc:training", "write", "silver.orders")
    assert client.get("/openapi.json", headers=team.auth("analyst")).json()["paths"]["/api/v1/sql"]


class _Issuer:
    """A local OIDC issuer: an RSA key and its JWKS served over HTTP."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub: str, *, exp: float = 300, iss: str = "https://idp.test", aud: str = "lake",
              key: object = None, **claims: object) -> str:
        now = int(time.time())
        return jwt.encode({"sub": sub, "iss": iss, "aud": aud, "iat": now, "exp": now + exp, **claims},
                          key or self.key, algorithm="RS256", headers={"kid": "k1"})


def test_oidc_jwts_from_a_local_issuer(team: Team) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    issuer = _Issuer()
    settings = team.lake.settings.model_copy(update={"service": team.lake.settings.service.model_copy(update={
        "jwks_url": issuer.url, "jwt_issuer": "https://idp.test", "jwt_audience": "lake",
        "jwt_groups_claim": "groups"})})
    app, access, _ = build(Lake(settings))
    client = TestClient(app, raise_server_exceptions=False)
    try:
        def whoami(token: str) -> tuple[int, Any]:
            response = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
            return response.status_code, response.json()

        assert whoami(issuer.token("analyst")) == (200, whoami(issuer.token("analyst"))[1])
        assert whoami(issuer.token("analyst"))[1]["principal"] == "analyst"
        assert client.get("/api/v1/datasets/bronze.users", headers={
            "Authorization": f"Bearer {issuer.token('analyst')}"}).status_code == 403  # the same grants
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for bad, words in [(issuer.token("analyst", exp=-10), "expired"),
                           (issuer.token("analyst", iss="https://evil.test"), "issuer"),
                           (issuer.token("analyst", aud="other"), "audience"),
                           (issuer.token("owner", key=other), "signature"),
                           ("a.b.c", "not valid")]:
            status, body = whoami(bad)
            assert status == 401 and words in body["detail"].lower(), (words, body)
        # Groups from the identity provider: `carol` is no principal of the catalog, but her token says she
        # is in `readers` (a catalog group with read on silver) and in `admins` (no such group: ignored).
        carol = {"Authorization": f"Bearer {issuer.token('carol', groups=['readers', 'admins'])}"}
        assert whoami(issuer.token("carol", groups=["readers", "admins"]))[1]["groups"] == ["carol", "readers"]
        shown = client.get("/api/v1/datasets/silver.users", headers=carol)
        assert shown.status_code == 200 and shown.json()["name"] == "silver.users"
        assert client.get("/api/v1/datasets/gold.contacts", headers=carol).status_code == 403
        sample = client.get("/api/v1/datasets/silver.users/preview", headers=carol).json()
        assert "ann@example.com" not in json.dumps(sample)  # a reader without unmask: masked
        # Without the group, or with a group claim that is not a list of names, nothing is granted.
        alone = {"Authorization": f"Bearer {issuer.token('carol')}"}
        assert client.get("/api/v1/datasets/silver.users", headers=alone).status_code == 403
        status, body = whoami(issuer.token("carol", groups=[{"name": "readers"}]))
        assert status == 401 and "groups" in body["detail"]
        assert whoami(issuer.token("dave", groups="readers, other"))[1]["groups"] == ["dave", "readers"]
        access.audit_log.flush()
        with team.lake.catalog.reading() as s:
            details = [d for (d,) in s.execute(select(m.AuditRecord.detail).where(
                m.AuditRecord.principal == "carol", m.AuditRecord.action == "token"))]
        assert any("groups: readers" in (d or "") for d in details), details
    finally:
        access.close()
        issuer.server.shutdown()


def test_a_remote_load_is_one_read_of_the_service(team: Team, service: Service) -> None:
    """A dataset loaded through the service learns its schema with its metadata: reading it is one load
    (one audited read, one recorded hand-off run), not a peek at its first rows and then the load."""
    from lake.remote import RemoteCatalog

    client, access = service
    service_client = RemoteCatalog("http://testserver")
    service_client.http = TestClient(client.app, headers=team.auth("analyst"))  # the service in process
    remote = Lake(team.lake.settings, catalog=False, remote=service_client)

    def loads() -> int:
        access.audit_log.flush()
        with team.lake.catalog.reading() as s:
            return len(s.execute(select(m.AuditRecord.id).where(
                m.AuditRecord.principal == "analyst", m.AuditRecord.action == "load",
                m.AuditRecord.object == "gold.contacts")).all())

    runs = len(team.lake.catalog.runs(job="handoff.load.gold.contacts", limit=1000))
    before = loads()
    ds = load(remote, "gold.contacts")
    assert ds.schema.names == ["id", "contact"] and ds.schema.field("contact").type == pa.string()
    frame = ds.to_arrow()
    assert frame.num_rows == 3 and frame.schema == ds.schema
    assert loads() - before == 2  # the metadata, then the rows
    assert len(team.lake.catalog.runs(job="handoff.load.gold.contacts", limit=1000)) - runs == 1

def test_jwt_groups_stay_with_their_token(team: Team) -> None:
    """A JWT's groups give their grants to requests made with that token only: not to the same name's lake
    token, nor to another (or a later) JWT of that name without the groups; a JWT naming a group is refused."""
    issuer = _Issuer()
    settings = team.lake.settings.model_copy(update={"service": team.lake.settings.service.model_copy(update={
        "jwks_url": issuer.url, "jwt_issuer": "https://idp.test", "jwt_audience": "lake",
        "jwt_groups_claim": "groups"})})
    lake = Lake(settings)
    access = ServiceAccess(lake)
    app, _, _ = build(lake, access=access, mounts={"/ui": create_console(lake, access)})
    client = TestClient(app, raise_server_exceptions=False)
    try:
        def status(token: str, path: str = "/api/v1/datasets/silver.users") -> int:
            return client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code

        with_group = issuer.token("svc:training", groups=["readers"])  # svc:training: no read on silver
        without = issuer.token("svc:training")
        lake_token = team.tokens["svc:training"]
        assert status(lake_token) == 403
        assert status(with_group) == 200
        assert status(lake_token) == 403  # the JWT's groups are not the name's
        assert status(without) == 403
        assert status(with_group) == 200 and status(without) == 403  # cached tokens alike
        assert status(with_group, "/ui/api/datasets/silver.users") == 200  # the console alike
        assert status(without, "/ui/api/datasets/silver.users") == 403
        assert status(lake_token, "/ui/api/datasets/silver.users") == 403
        assert access.policy.closure("svc:training") == {"svc:training"}  # a bare name claims nothing
        # A JWT whose principal claim names a catalog group does not act as that group.
        assert status(issuer.token("readers")) == 401
        assert status(issuer.token("readers", groups=["readers"])) == 401
    finally:
        access.close()
        issuer.server.shutdown()


def test_lake_serve_as_a_user_starts_it_and_the_cli_through_it(team: Team, tmp_path: Path) -> None:
    settings = team.lake.settings
    assert settings.s3.secret_key is not None and settings.catalog.url is not None
    config = tmp_path / "lake.toml"
    config.write_text(
        f'root = "{settings.root}"\n'
        f'[s3]\nendpoint = "{settings.s3.endpoint}"\naccess_key = "{settings.s3.access_key}"\n'
        f'secret_key = "{settings.s3.secret_key.get_secret_value()}"\n'
        f'[catalog]\nurl = "{settings.catalog.url.get_secret_value()}"\n'
        f'[service]\nmask_salt = "{SALT}"\n[server]\ntoken_cache_seconds = 0\n')
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(["--config", str(config), "serve", "--port", str(port)], port, env=lake_env(),
                 log=tmp_path / "serve.log") as server:
        wait_healthy(base)
        # The console at /ui/, behind the same access: signed in by the lake_token cookie.
        assert httpx.get(base + "/ui/", follow_redirects=False).status_code in (302, 303, 307, 401)
        analyst = {"lake_token": team.tokens["analyst"]}
        page = httpx.get(base + "/ui/datasets/silver.users", cookies=analyst)
        assert page.status_code == 200 and "silver.users" in page.text
        sample = httpx.get(base + "/ui/api/datasets/silver.users/sample", cookies=analyst)
        assert sample.status_code == 200 and "ann@example.com" not in sample.text
        assert httpx.get(base + "/ui/api/datasets/bronze.users", cookies=analyst).status_code == 403
        env = lake_env(LAKE_SERVICE_URL=base, LAKE_SERVICE_TOKEN=team.tokens["analyst"])
        query = subprocess.run(lake_command("sql", "SELECT id, email FROM silver.users ORDER BY id", "--format", "json"),
                               env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert query.returncode == 0, query.stderr
        assert hashed("ann@example.com") in query.stdout and "ann@example.com" not in query.stdout
        denied = subprocess.run(lake_command("catalog", "show", "bronze.users"), env=env, capture_output=True,
                                text=True, timeout=120, cwd=tmp_path)
        assert denied.returncode == 1 and "403" in denied.stderr and "Traceback" not in denied.stderr
        # The Python API against the same service.
        client = ServiceClient(base, team.tokens["analyst"])
        try:
            assert {h.name for h in client.search("users")} >= {"silver.users"}
            assert "bronze.users" not in {h.name for h in client.search("users")}
            assert client.show("silver.users")["versions"][0]["committed_at"].year >= 2026
            graph = client.lineage("gold.contacts", direction="upstream")
            assert {n.name for n in graph.nodes} == {"gold.contacts", "silver.users"}
            assert client.load("gold.contacts")["contact"].to_pylist()[0] == hashed("ann@example.com")
            assert client.sql("SELECT count(*) AS n FROM gold.contacts").to_pylist() == [{"n": 3}]
            assert client.export("gold.contacts", str(tmp_path / "contacts.parquet")) == 3  # hand-off export
            written = pa.parquet.read_table(tmp_path / "contacts.parquet")
            assert hashed("bob@example.com") in written["contact"].to_pylist()
            with pytest.raises(ServiceError, match="403"):
                client.load("bronze.users")
            assert client.runs(dataset="silver.users")[0]["started_at"].year >= 2026
            with pytest.raises(ServiceError, match="403"):
                client.tag("silver.users", "reviewed")  # manage needed
        finally:
            client.close()
        # The Lake object pointed at the service: its catalog and hand-off loads go through it.
        remote = Lake.connect(base, team.tokens["analyst"], settings=team.lake.settings)
        assert "bronze.users" not in {h.name for h in remote.catalog.search("users")}
        assert remote.catalog.show("gold.contacts")["name"] == "gold.contacts"
        ds = load(remote, "gold.contacts")
        assert ds.metadata.table == "gold.contacts" and ds.metadata.row_count == 3
        assert ds.masked == {"contact": "hash"} and ds.metadata.version == 0
        frame = ds.to_pandas()
        assert frame.sort_values("id")["contact"].tolist()[:2] == [hashed(e) for e in USERS["email"].to_pylist()[:2]]
        assert [b.num_rows for b in ds.batches(batch_size=2)] == [2, 1]
        spec = SplitSpec.parse("train=0.5,test=0.5", keys="id")
        local = load(team.lake, "gold.contacts")  # the same split as on the lake itself
        assert ds.split_counts(spec) == local.split_counts(spec)
        assert (sorted(ds.to_arrow(splits=spec, split="train", columns=["id"])["id"].to_pylist())
                == sorted(local.to_arrow(splits=spec, split="train", columns=["id"])["id"].to_pylist()))
        with pytest.raises(SplitError, match="masked"):
            ds.to_arrow(splits=SplitSpec.parse("train=0.5,test=0.5", keys="contact"), split="train")
        with pytest.raises(ServiceError, match="403"):
            load(remote, "bronze.users")
        for refused in (lambda: remote.table("gold.contacts"), lambda: ds.export(str(tmp_path / "x"))):
            with pytest.raises(LakeError, match="lake service"):
                refused()
        owner = ServiceClient(base, team.tokens["owner"])
        try:
            owner.tag("silver.users", "reviewed")
            owner.describe("silver.users", "the users", column="email")
            assert "reviewed" in owner.show("silver.users")["tags"]
            owner.untag("silver.users", "reviewed")
            assert "reviewed" not in owner.show("silver.users")["tags"]
        finally:
            owner.close()
        # SIGTERM while a request is in flight (its headers in, its body not yet): it is still answered.
        body = json.dumps({"query": "SELECT count(*) AS n FROM gold.contacts"}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(b"POST /api/v1/sql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
                         % (team.tokens["analyst"].encode(), len(body), body[:5]))
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.poll() is None, "lake serve quit with a request in flight"
            conn.sendall(body[5:])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b'"n"' in answer, answer[:300]
        server.wait(60)
    with pytest.raises(ServiceError, match="cannot reach"):
        ServiceClient(base, "x", timeout=2).get("/api/v1/whoami")


def test_training_frames_are_masked_without_unmask(team: Team, service: Service) -> None:
    """A saved training frame reads gold.driver_stats: the pii tag propagates to it, and its city is masked."""
    client, access = service
    saved = save_training_dataset(team.lake, "drivers_svc", entities(40), ["driver_stats:city", "driver_stats:trips"])
    access.policy.invalidate()
    assert access.policy.masked_columns("training.drivers_svc") == {"city": "hash"}
    training = client.get("/api/v1/load/training:drivers_svc", headers=team.auth("svc:training"))
    assert training.status_code == 200, training.text
    frame = pa.ipc.open_stream(training.content).read_all()
    clear = saved.frame.data
    cities = [c for c in clear["city"].to_pylist() if c]
    assert cities and not set(cities) & set(frame["city"].to_pylist())
    assert sorted(c for c in frame["city"].to_pylist() if c) == sorted(hashed(c) for c in cities)
    assert frame["trips"].to_pylist() == clear["trips"].to_pylist()
    assert client.get("/api/v1/load/training:drivers_svc", headers=team.auth("analyst")).status_code == 403
    owner = pa.ipc.open_stream(client.get("/api/v1/load/training:drivers_svc", headers=team.auth("owner")).content)
    assert set(cities) <= set(owner.read_all()["city"].to_pylist())


def test_tokens_through_the_api_and_an_app_mounted_beside_the_guard(team: Team, service: Service) -> None:
    client, _ = service
    analyst, owner = team.auth("analyst"), team.auth("owner")
    mine = client.post("/api/v1/tokens", headers=analyst, json={"principal": "analyst", "expires_in_seconds": 3600})
    assert mine.status_code == 201 and mine.json()["expires_at"]
    assert client.post("/api/v1/tokens", headers=analyst, json={"principal": "owner"}).status_code == 403
    token = mine.json()["token"]
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.delete(f"/api/v1/tokens/{team.token_ids['owner']}", headers=analyst).status_code == 403
    assert client.delete(f"/api/v1/tokens/{mine.json()['id']}", headers=analyst).status_code == 200
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/api/v1/principals", headers=analyst).status_code == 403
    assert {p["name"] for p in client.get("/api/v1/principals", headers=owner).json()} >= {"owner", "analyst"}

    # The console is mounted beside the guard and signs people in with the lake_token cookie itself.
    async def console(scope: Any, receive: Any, send: Any) -> None:
        cookies = dict(c.split("=", 1) for c in dict(scope["headers"]).get(b"cookie", b"").decode().split("; ") if c)
        who = access.principal({}, cookies)
        body = json.dumps({"path": scope["path"], "principal": who}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    app, access, _ = build(team.lake, mounts={"/ui": console})
    try:
        mounted = TestClient(app)
        assert mounted.get("/ui/").json()["principal"] is None  # the sign-in page is reachable without a token
        signed = mounted.get("/ui/tables", cookies={"lake_token": team.tokens["analyst"]}).json()
        assert signed["principal"] == "analyst" and signed["path"].endswith("/tables")
        assert mounted.get("/api/v1/search").status_code == 401  # the API behind it keeps its guard
        assert mounted.get("/api/v1/whoami", headers=analyst).json()["principal"] == "analyst"
    finally:
        access.close()


def test_metrics_of_the_service_by_route_and_status(team: Team, service: Service) -> None:
    """``GET /metrics`` needs a token like every endpoint; routes with parameters fold into their
    prefix, made-up paths into ``other``, so a client cannot grow the number of series."""
    client, _ = service
    assert client.get("/metrics").status_code == 401
    before = samples(client.get("/metrics", headers=team.auth("analyst")).text)
    assert client.get("/api/v1/datasets/gold.contacts", headers=team.auth("analyst")).status_code == 200
    assert client.get("/api/v1/datasets/gold.contacts/schema", headers=team.auth("analyst")).status_code == 200
    assert client.get("/api/v1/datasets/bronze.users", headers=team.auth("analyst")).status_code == 403
    assert client.get("/no/such/path-1", headers=team.auth("analyst")).status_code == 404
    after = samples(client.get("/metrics", headers=team.auth("analyst")).text)

    def delta(**labels: str) -> float:
        key = ("lake_http_requests_total", tuple(sorted({"server": "service", **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta(endpoint="/api/v1/datasets", status="200") == 2
    assert delta(endpoint="/api/v1/datasets", status="403") == 1
    assert delta(endpoint="other", status="404") == 1
    assert delta(endpoint="/metrics", status="200") == 1  # the first scrape, counted once it answered
    assert not any("gold.contacts" in str(labels) or "path-1" in str(labels) for _, labels in after)


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/v1/datasets/{}", "/api/v1/datasets/{}/schema", "/api/v1/lineage/{}",
                             "/api/v1/datasets/{}/preview", "/api/v1/training/{}", "/api/v1/load/{}",
                             "/api/v1/grants", "/api/v1/audit", "/api/v1/search", "/api/v1/runs"]),
       name=_TEXT, value=_TEXT, body=st.one_of(st.none(), st.dictionaries(_TEXT, _TEXT, max_size=3)))
def test_hostile_requests_get_a_4xx_never_a_500(team: Team, service: Service, path: str, name: str, value: str,
                                                body: dict[str, str] | None) -> None:
    client, _ = service
    url = path.format(urllib.parse.quote(name, safe="") or "x")
    params = {"q": value, "version": value, "object": value, "since": value, "direction": value, "depth": value}
    for who in ("owner", "analyst"):
        response = client.get(url, params=params, headers=team.auth(who))
        assert response.status_code < 500, (url, params, response.text)
        if response.status_code >= 400:
            assert response.json()["detail"]
    if body is not None:
        for method in ("POST", "PUT", "DELETE"):
            response = client.request(method, url.replace("/schema", "/tags"), json=body, headers=team.auth("owner"))
            assert response.status_code < 500, (method, url, body, response.text)
