"""Redaction: one function masks credentials in everything stored, logged or printed.

Secrets are planted in every field of OpenLineage events, in URLs, settings and error
messages, sent through the Python API, ``lake catalog ingest``, the HTTP endpoint and the
CLI; then the whole catalog database (every table, SQLite and PostgreSQL), the events file,
the logs and the CLI output are searched for them.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from catalog.errors import CatalogError, DatasetNotFoundError
from catalog.openlineage import Emitter, ingest
from catalog.redact import MASK, is_secret_key, redact, redact_text
from catalog.server import create_app
from catalog.store import Catalog
from lake.cli.main import main
from tests.logcapture import all_loggers_at_debug, logged_text


@pytest.mark.parametrize(("raw", "want"), [
    ("postgres://etl:pw@db:5432/sales", "postgres://etl:****@db:5432/sales"),
    ("postgres://etl:p@ss@db:5432/sales", "postgres://etl:****@db:5432/sales"),  # '@' in the password
    ("postgres://etl:pa/ss:w@db/sales", "postgres://etl:****@db/sales"),  # '/' and ':' too
    ("mysql://u:p@h and s3://k:s/x@bucket/a", "mysql://u:****@h and s3://k:****@bucket/a"),
    ("admin:hunter2@db.internal:5432", "admin:****@db.internal:5432"),  # no scheme
    ("s3://bucket/x?secret_key=abc&region=eu", "s3://bucket/x?secret_key=****&region=eu"),
    ("x?pw=abc&pass=def&passwd=g&pwd=h", "x?pw=****&pass=****&passwd=****&pwd=****"),
    ("host=db password='a b' dbname=x", "host=db password=**** dbname=x"),
    ("127.0.0.1:6379,password=s3cr3t,db=0", "127.0.0.1:6379,password=****,db=0"),
    ('{"password": "x\\"y", "author": "ann", "pin": 1234}', '{"password": "****", "author": "ann", "pin": "****"}'),
    ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ****"),
    ("sent Bearer abcdefghijklmnopqrstuvwxyz0123", "sent Bearer ****"),
    ("lake_0123456789ab_9yRkF8Kp2sZx0Q4vT7wLmNcB", "lake_0123456789ab_****"),
    # Left alone: no credential in them.
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", None),
    ("mailto:ann@example.com, ann@example.com", None),
    ("http://localhost:8080/api/v1/lineage?limit=5", None),
    ("author=ann passenger=bob", None),
    ("Bearer token required; the token expired at 10:30", None),
    ("", None),
])
def test_redact_text(raw: str, want: str | None) -> None:
    assert redact_text(raw) == (raw if want is None else want)


def test_secret_keys_by_their_words() -> None:
    secret = ["password", "PW", "pass", "pwd", "dbPassword", "db_pass", "dbpassword", "AWS_SECRET_ACCESS_KEY",
              "x-api-key", "apiKey", "token", "auth_token", "Authorization", "client_secret", "privateKey",
              "credentials", "sessionToken"]
    plain = ["author", "authors", "passenger", "compass", "name", "owner", "path", "keyword", "description", "pwm"]
    assert [k for k in secret if not is_secret_key(k)] == []
    assert [k for k in plain if is_secret_key(k)] == []
    assert redact({"author": "ann", "pw": "x", "nested": [{"token": "t", "url": "http://u:p@h"}], "password": ""}) == {
        "author": "ann", "pw": MASK, "nested": [{"token": MASK, "url": "http://u:****@h"}], "password": ""}


def test_errors_never_carry_a_secret() -> None:
    exc = CatalogError("cannot reach postgres://etl:Zq-9@db/x", url="postgres://etl:Zq-9@db/x")
    assert "Zq-9" not in str(exc) + repr(exc.context)


# ----------------------------------------------------------- planted everywhere

SECRETS = {name: f"Sx{name}{uuid.uuid4().hex[:6]}Q" for name in (
    "producer", "jobns", "jobname", "errmsg", "runfacet", "runpw", "dsns", "dsnsat", "dsname", "uri", "doc",
    "owner", "fielddesc", "colns", "custom", "apikey", "param", "error", "describe", "ownercli", "settingsurl",
    "s3", "redis", "registry", "olurl", "notfound", "tag", "column")}


def planted_event(run_id: str, event_type: str = "COMPLETE") -> dict[str, Any]:
    s = SECRETS
    return {
        "eventType": event_type,
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": f"https://ci:{s['producer']}@producer.example/openlineage",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {
            "errorMessage": {"message": f"connect failed: postgresql://app:{s['errmsg']}@db/x",
                             "programmingLanguage": "python"},
            "vendor": {"auth": {"token": s["runfacet"]}, "pw": s["runpw"], "author": "ann"}}},
        "job": {"namespace": f"postgres://etl:{s['jobns']}@db:5432", "name": f"export?password={s['jobname']}"},
        "inputs": [{"namespace": f"mysql://reader:{s['dsnsat']}@x@mysql:3306", "name": "shop.orders"}],
        "outputs": [{
            "namespace": f"postgres://user:{s['dsns']}@warehouse:5432",
            "name": f"public.orders;pass={s['dsname']}",
            "facets": {
                "dataSource": {"uri": f"s3://AKIA:{s['uri']}/+x@bucket/path"},
                "documentation": {"description": f"loaded with dsn host=db password={s['doc']} port=5432"},
                "ownership": {"owners": [{"name": f"team:{s['owner']}@corp.example"}]},
                "schema": {"fields": [{"name": "id", "type": "int", "description": f"api_key={s['fielddesc']}"}]},
                "columnLineage": {"fields": {"id": {"inputFields": [
                    {"namespace": f"mysql://u:{s['colns']}@mysql:3306", "name": "shop.orders", "field": "id"}]}}},
                "custom": {"credentials": {"password": s["custom"]}, "x-api-key": s["apikey"], "author": "ann"},
            },
        }],
    }


def everything_stored(url: str) -> str:
    """Every row of every table (virtual and shadow tables included), as text."""
    engine = create_engine(url)
    out = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            tables = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))]
        else:
            tables = inspect(engine).get_table_names()
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):  # names from the database itself
                out.append(" ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row))
    engine.dispose()
    return "\n".join(out)


def leaked(haystack: str) -> list[str]:
    return sorted(name for name, secret in SECRETS.items() if secret in haystack)


def test_planted_secrets_never_stored_logged_or_printed(catalog_url: str, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    s = SECRETS
    lake_root = tmp_path / "lakehouse"
    events_file = lake_root / "openlineage.jsonl"
    if catalog_url.startswith("postgresql"):  # trust auth: any password is taken, so plant one in the URL
        catalog_url = catalog_url.replace("postgres@", f"postgres:{s['settingsurl']}@")
    settings_file = tmp_path / "lake.toml"
    settings_file.write_text(
        f'root = "{lake_root}"\n'
        f'[catalog]\nurl = "{catalog_url}"\nlineage_file = "{events_file}"\n'
        f'[s3]\naccess_key = "AKIA1"\nsecret_key = "{s["s3"]}"\n'
        f'[feast]\nredis_url = "127.0.0.1:6379,password={s["redis"]},db=0"\n'
        f'registry = "postgresql+psycopg://feast:{s["registry"]}@127.0.0.1:5432/registry"\n')
    events_in = tmp_path / "in.jsonl"
    run_ids = [str(uuid.uuid4()) for _ in range(3)]
    events_in.write_text(json.dumps(planted_event(run_ids[0], "START")) + "\n"
                         + json.dumps(planted_event(run_ids[0])) + "\n")
    cli = ["--config", str(settings_file)]
    with all_loggers_at_debug(caplog):
        # The CLI: settings shown, events ingested, what they made shown and searched, errors printed.
        assert main([*cli, "config", "show"]) == 0
        assert main([*cli, "config", "show", "--json"]) == 0
        assert main([*cli, "catalog", "ingest", str(events_in)]) == 0
        out_ns = f"postgres://user:{s['dsns']}@warehouse:5432"
        out_name = f"public.orders;pass={s['dsname']}"
        for args in (["show", out_name, "--namespace", out_ns], ["show", out_name, "--namespace", out_ns, "--json"],
                     ["search", "orders"], ["search", "orders", "--json"], ["runs"], ["run", run_ids[0]],
                     ["lineage", out_name, "--namespace", out_ns],
                     ["describe", out_name, f"see postgres://a:{s['describe']}@h/db", "--namespace", out_ns],
                     ["owner", out_name, f"bob:{s['ownercli']}@corp.example", "--namespace", out_ns],
                     ["tag", out_name, f"pii?token={s['tag']}", "--namespace", out_ns]):
            assert main([*cli, "catalog", *args]) == 0, args
        assert main([*cli, "catalog", "show", "nope", "--namespace", f"pg://u:{s['notfound']}@h"]) == 1
        assert main([*cli, "catalog", "show", "nope", "--namespace", f"pg://u:{s['notfound']}@h", "--json"]) == 1
        # The Python API and the HTTP endpoint, with an events file and an unreachable HTTP sink.
        cat = Catalog(catalog_url, emitter=Emitter(file=str(events_file),
                                                   url=f"http://lineage:{s['olurl']}@127.0.0.1:9"))
        ingest(cat, planted_event(run_ids[1]))
        client = TestClient(create_app(cat))
        assert client.post("/api/v1/lineage", json=[planted_event(run_ids[2])]).status_code == 201
        got = client.get("/api/v1/datasets/" + out_name.replace(";", "%3B"), params={"namespace": out_ns})
        assert got.status_code == 200 and MASK in got.text
        assert client.get("/api/v1/datasets/nope", params={"namespace": f"pg://u:{s['notfound']}@h"}).status_code == 404
        with pytest.raises(RuntimeError), cat.run("job.with.secrets", parameters={
                "source": f"postgres://u:{s['param']}@h/db", "password": s["param"]}) as r:
            r.output("bronze.x", 0, location=f"s3://b/x?secret_key={s['param']}")
            raise RuntimeError(f"could not connect to postgres://u:{s['error']}@h/db")
        with pytest.raises(DatasetNotFoundError) as missing:
            cat.show("nope", namespace=f"pg://u:{s['notfound']}@h")
        cat.register_dataset("bronze.cols", columns=[], description=f"token={s['column']}")
        cat.close()
        response_texts = got.text + client.get("/api/v1/search", params={"q": "orders"}).text
    printed = capsys.readouterr()
    # The test's own HTTP client logs the URLs it requested: that is this test, not the server.
    caplog.records[:] = [r for r in caplog.records if not r.name.startswith("httpx")]
    outputs = {
        "database": everything_stored(catalog_url.replace(f":{s['settingsurl']}", "")),
        "events file": events_file.read_text(),
        "logs": logged_text(caplog),
        "CLI output": printed.out + printed.err,
        "HTTP answers": response_texts,
        "errors": str(missing.value) + repr(missing.value.context),
    }
    assert {where: leaked(found) for where, found in outputs.items() if leaked(found)} == {}
    # Redacted, still useful: the rest of each value is there, and a key named author is kept.
    stored = outputs["database"]
    assert "user:****@warehouse:5432" in stored and "etl:****@db:5432" in stored and "reader:****@mysql:3306" in stored
    assert "team:****@corp.example" in stored and "password=**** port=5432" in stored
    assert ('"author": "ann"' in stored or "'author': 'ann'" in stored) and "ci:****@producer.example" in stored
    assert "could not connect to postgres://u:****@h/db" in stored
    assert "not delivered" in outputs["logs"]  # the logs were captured (the HTTP sink is unreachable)
    assert "user:****@warehouse" in outputs["CLI output"]


def test_base64_blobs_are_never_masked() -> None:
    """A serialized protobuf stored as base64 must come back byte for byte: its '=' padding is no value
    and the run of letters before it is no key, whatever words the run happens to spell."""
    rng = random.Random(7)
    for n in range(1, 400):
        blob = base64.b64encode(rng.randbytes(n)).decode()
        assert redact_text(blob) == blob
        assert redact_text(f'{{"definitions": ["{blob}"]}}') == f'{{"definitions": ["{blob}"]}}'
    # The shape that once failed: a run ending in a secret-looking word, then padding.
    assert redact_text("CgwI1aS82AYQmKOKPin==") == "CgwI1aS82AYQmKOKPin=="
    assert redact_text("AYQ/Pw=abc") == "AYQ/Pw=abc"
    # A real key=value still is.
    assert redact_text("x pin=1234 password=hunter2") == "x pin=**** password=****"
