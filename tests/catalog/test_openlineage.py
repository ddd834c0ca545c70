"""OpenLineage out (catalog, JSON-lines file, HTTP) and in (events from other producers)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.errors import CatalogError
from catalog.openlineage import Emitter, ingest, ingest_lines
from catalog.store import Catalog
from tests.catalog.helpers import airflow_event, build_graph, stored_events
from tests.catalog.ol_schema import validate_run_event
from tests.services import free_port, reachable

EVERY_FACET = {("run", "errorMessage"), ("run", "parent"), ("run", "tags"), ("job", "jobType"),
               ("dataset", "schema"), ("dataset", "dataSource"), ("dataset", "version"), ("dataset", "columnLineage"),
               ("dataset", "dataQualityAssertions"), ("dataset", "dataQualityMetrics"),
               ("output", "outputStatistics")}


def test_runs_emit_valid_start_and_complete_events(catalog_url: str, tmp_path: Path) -> None:
    events_file = tmp_path / "lineage" / "events.jsonl"
    cat = Catalog(catalog_url, emitter=Emitter(file=str(events_file)))
    runs = build_graph(cat)
    with cat.run("check.customers", parent_run_id=runs["clean"]) as r:
        r.input("silver.customers", 0)
        cat.record_quality("silver.customers", 0, "suite", False, run_id=r.run_id,
                           statistics={"rows_checked": 98},
                           results=[{"expectation": "expect_column_values_to_not_be_null", "column": "id",
                                     "success": False, "unexpected_count": 2},
                                    {"expectation": "expect_table_row_count_to_be_between", "success": True}])
        runs["check"] = r.run_id
    with pytest.raises(KeyError), cat.run("broken") as r:
        r.input("silver.customers", 0)
        raise KeyError("missing column")
    stored = stored_events(cat)
    from_file = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(stored) == len(from_file) == 12
    checked = set()
    for event in stored + from_file:
        # Against the official OpenLineage JSON Schemas: the core RunEvent, each facet its own schema.
        checked |= {(c.where, c.key) for c in validate_run_event(event)}
    assert checked == EVERY_FACET  # every facet the catalog emits was checked against its schema
    assert {e["eventType"] for e in stored} == {"START", "COMPLETE", "FAIL"}
    assert [e["eventType"] for e in stored[:2]] == ["START", "COMPLETE"]
    complete = next(e for e in stored if e["eventType"] == "COMPLETE" and e["run"]["runId"] == runs["clean"])
    assert complete["job"] == {"namespace": "lake", "name": "clean.customers", "facets": complete["job"]["facets"]}
    (inp,) = complete["inputs"]
    assert (inp["name"], inp["facets"]["version"]["datasetVersion"]) == ("bronze.customers", "0")
    assert [f["name"] for f in inp["facets"]["schema"]["fields"]] == ["id", "email", "country"]
    assert inp["facets"]["dataSource"]["uri"] == "file:///lake/bronze/customers"
    (out,) = complete["outputs"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 98
    fields = out["facets"]["columnLineage"]["fields"]
    assert fields["country"]["inputFields"] == [{
        "namespace": "lake", "name": "bronze.customers", "field": "country",
        "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION", "description": "upper()",
                             "masking": False}],
    }]
    assert fields["id"]["inputFields"][0]["transformations"][0]["subtype"] == "IDENTITY"
    check = next(e for e in stored if e["eventType"] == "COMPLETE" and e["run"]["runId"] == runs["check"])
    assert check["run"]["facets"]["parent"]["run"]["runId"] == runs["clean"]
    (checked_input,) = check["inputs"]
    assertions = checked_input["facets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"]) for a in assertions] == [
        ("expect_column_values_to_not_be_null", False), ("expect_table_row_count_to_be_between", True)]
    metrics = checked_input["facets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == 98 and metrics["columnMetrics"]["id"]["nullCount"] == 2
    failed = stored[-1]
    assert failed["eventType"] == "FAIL"
    assert "missing column" in failed["run"]["facets"]["errorMessage"]["message"]
    cat.close()


def test_the_schema_check_rejects_broken_events(catalog: Catalog) -> None:
    """The validator used above is not a rubber stamp: each breakage is caught by an official schema."""
    import copy

    import jsonschema

    runs = build_graph(catalog)
    with pytest.raises(KeyError), catalog.run("broken", parent_run_id=runs["clean"]) as r:
        r.input("silver.customers", 0)
        raise KeyError("missing column")
    events = stored_events(catalog)
    good = next(e for e in events if e["eventType"] == "COMPLETE" and e["run"]["runId"] == runs["clean"])
    failed = events[-1]
    validate_run_event(good)
    validate_run_event(failed)
    breakages = [
        lambda e: e["run"].pop("runId"),
        lambda e: e["run"].update(runId="not-a-uuid"),
        lambda e: e.update(eventTime="2024-05-01 10:00"),
        lambda e: e.update(producer="not a uri"),
        lambda e: e.pop("schemaURL"),
        lambda e: e.update(schemaURL="https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"),
        lambda e: e.update(eventType="DONE"),
        lambda e: e["job"].pop("namespace"),
        lambda e: e["job"]["facets"]["jobType"].pop("integration"),
        lambda e: e["outputs"][0]["facets"]["schema"].pop("_producer"),
        lambda e: e["outputs"][0]["facets"]["schema"]["fields"][0].pop("name"),
        lambda e: e["outputs"][0]["facets"]["schema"]["fields"][0].update(type=64),
        lambda e: e["outputs"][0]["outputFacets"]["outputStatistics"].update(rowCount="98"),
        lambda e: e["outputs"][0]["outputFacets"]["outputStatistics"].pop("rowCount"),
        lambda e: e["inputs"][0]["facets"]["version"].pop("datasetVersion"),
        lambda e: e["inputs"][0]["facets"]["dataSource"].update(uri="not a uri"),
        lambda e: e["outputs"][0]["facets"]["columnLineage"].pop("fields"),
        lambda e: e["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0].pop("field"),
        lambda e: e["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0][
            "transformations"][0].pop("type"),
        # A facet under the right key but claiming another facet's schema.
        lambda e: e["outputs"][0]["facets"]["schema"].update(
            _schemaURL="https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json"
                       "#/$defs/DatasourceDatasetFacet"),
        # A standard-looking facet with no vendored schema is not waved through.
        lambda e: e["outputs"][0]["facets"].update(documentation={"_producer": "https://x", "_schemaURL": "https://x"}),
    ]
    fail_breakages = [
        lambda e: e["run"]["facets"]["errorMessage"].pop("programmingLanguage"),
        lambda e: e["run"]["facets"]["errorMessage"].update(message=42),
        lambda e: e["run"]["facets"]["parent"]["run"].update(runId="nope"),
        lambda e: e["run"]["facets"]["parent"].pop("job"),
    ]
    for event, changes in ((good, breakages), (failed, fail_breakages)):
        for breakage in changes:
            broken = copy.deepcopy(event)
            breakage(broken)
            with pytest.raises(jsonschema.ValidationError):
                validate_run_event(broken)


def test_the_schemas_resolve_offline() -> None:
    """Every $ref of the vendored schemas resolves in the local registry; any other URI is refused."""
    import jsonschema
    from referencing.exceptions import Unresolvable

    from tests.catalog.ol_schema import FACET_SCHEMAS, SPEC_DIR, registry

    resolver = registry().resolver()
    for path in sorted(SPEC_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        for ref in _refs(doc):
            target = ref if ref.startswith("http") else doc["$id"] + ref
            assert resolver.lookup(target).contents is not None, (path.name, ref)
    assert set(FACET_SCHEMAS.values()) <= {p.name for p in SPEC_DIR.glob("*.json")}
    with pytest.raises(Unresolvable):
        resolver.lookup("https://openlineage.io/spec/facets/1-0-0/NotVendoredFacet.json")
    validator = jsonschema.Draft202012Validator({"$ref": "https://example.com/elsewhere.json"}, registry=registry())
    with pytest.raises(Unresolvable):
        validator.validate({})


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if isinstance(node.get("$ref"), str) else []) + [
            r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.fixture
def http_catalog(tmp_path: Path) -> Iterator[tuple[str, Catalog]]:
    """Another catalog served over HTTP: an OpenLineage endpoint like Marquez."""
    import uvicorn

    from catalog.server import create_app

    receiver = Catalog(f"sqlite:///{tmp_path}/receiver.db", namespace="remote")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(receiver), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not reachable("127.0.0.1", port) and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", receiver
    server.should_exit = True
    thread.join(10)
    receiver.close()


def test_http_transport_delivers_to_an_openlineage_endpoint(catalog_url: str,
                                                           http_catalog: tuple[str, Catalog]) -> None:
    url, receiver = http_catalog
    cat = Catalog(catalog_url, emitter=Emitter(url=url))
    build_graph(cat)
    # The receiver rebuilt the same graph from the events alone.
    graph = receiver.lineage("gold.churn_features", namespace="lake", direction="upstream")
    assert {n.name for n in graph.nodes} == {"gold.churn_features", "silver.customers", "gold.customer_stats",
                                             "bronze.customers", "raw.customers_csv"}
    assert receiver.runs(job="clean.customers")[0]["status"] == "completed"
    col = receiver.lineage("gold.customer_stats", namespace="lake", column="country", direction="upstream")
    assert ("bronze.customers.country", "silver.customers.country") in col.edges
    cat.close()


def test_http_transport_sends_a_lake_token_to_a_guarded_catalog(tmp_path: Path,
                                                                 http_catalog: tuple[str, Catalog]) -> None:
    url, receiver = http_catalog
    _, token = receiver.create_token("svc:other-lake")
    refused = Catalog(f"sqlite:///{tmp_path}/a.db", emitter=Emitter(url=url))
    with refused.run("not.delivered") as r:  # 401: logged, the job still completes
        r.output("bronze.x", 0)
    sender = Catalog(f"sqlite:///{tmp_path}/b.db",
                     emitter=Emitter(url=url.replace("http://", f"http://token:{token}@")))
    with sender.run("delivered") as r:
        r.output("bronze.y", 0)
    assert receiver.runs(job="delivered")[0]["status"] == "completed"
    assert receiver.runs(job="not.delivered") == [] and refused.runs()[0]["status"] == "completed"
    refused.close()
    sender.close()


def test_unreachable_http_endpoint_never_fails_the_job(catalog_url: str) -> None:
    cat = Catalog(catalog_url, emitter=Emitter(url=f"http://127.0.0.1:{free_port()}"))
    with cat.run("still.works") as r:
        r.output("bronze.x", 0)
    assert cat.runs()[0]["status"] == "completed"
    cat.close()


def test_events_from_other_producers_join_the_graph(catalog: Catalog, tmp_path: Path) -> None:
    build_graph(catalog)
    run_id = "9f0b3b0e-3f4c-4a7e-9c55-1c2d3e4f5a6b"
    lines = [json.dumps(airflow_event("START", run_id)), "", json.dumps(airflow_event("COMPLETE", run_id))]
    assert ingest_lines(catalog, lines) == 2
    graph = catalog.lineage("gold.customer_stats", direction="upstream", depth=10)
    assert "crm.public.accounts" in {n.name for n in graph.nodes}
    run = catalog.run_info(run_id)
    assert (run["job"], run["namespace"], run["status"]) == ("crm_export.extract", "airflow", "completed")
    assert (run["ended_at"] - run["started_at"]).total_seconds() == 300
    col = catalog.lineage("raw.customers_csv", namespace="file", column="id", direction="upstream")
    assert ("crm.public.accounts.account_id", "raw.customers_csv.id") in col.edges
    assert catalog.show("crm.public.accounts", namespace="postgres://crm:5432")["schema"][0]["name"] == "account_id"


def test_bad_events_are_named_by_line(catalog: Catalog) -> None:
    good = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    with pytest.raises(CatalogError, match=r"events.jsonl, line 2: not JSON"):
        ingest_lines(catalog, [json.dumps(airflow_event("START", good)), "{nope"], "events.jsonl")
    with pytest.raises(CatalogError, match="f, line 1: run: missing"):
        ingest_lines(catalog, [json.dumps({"eventType": "START", "job": {"namespace": "a", "name": "b"}})], "f")
    with pytest.raises(CatalogError, match="must be a JSON object"):
        ingest(catalog, [1, 2])
    assert catalog.counts()["runs"] == 0  # the good first line of the first file was not kept either


def test_http_credentials_in_the_url_become_basic_auth(tmp_path: Path) -> None:
    """``http://user:pass@host`` sends an Authorization header; the URL the client sees has no password."""
    import base64
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        emitter = Emitter(url=f"http://lineage:p%40ss@127.0.0.1:{server.server_address[1]}")
        cat = Catalog(f"sqlite:///{tmp_path}/c.db", emitter=emitter)
        with cat.run("auth.check") as r:
            r.output("bronze.x", 0)
        cat.close()
    finally:
        server.shutdown()
    assert [p for p, _ in seen] == ["/api/v1/lineage", "/api/v1/lineage"]
    assert {a for _, a in seen} == {"Basic " + base64.b64encode(b"lineage:p@ss").decode()}
    assert "p%40ss" not in repr(emitter._transports()[0].transport.url)
