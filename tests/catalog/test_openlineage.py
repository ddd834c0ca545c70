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
from tests.catalog.helpers import airflow_event, build_graph
from tests.catalog.ol_schema import validate_run_event
from tests.services import free_port, reachable


def stored_events(cat: Catalog) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from catalog import models as m

    with cat.reading() as s:
        return [e.payload for e in s.scalars(select(m.LineageEvent).order_by(m.LineageEvent.id))]


def test_runs_emit_valid_start_and_complete_events(catalog_url: str, tmp_path: Path) -> None:
    events_file = tmp_path / "lineage" / "events.jsonl"
    cat = Catalog(catalog_url, emitter=Emitter(file=str(events_file)))
    runs = build_graph(cat)
    cat.record_quality("silver.customers", 0, "suite", False, run_id=runs["clean"],
                       results=[{"expectation": "expect_column_values_to_not_be_null", "column": "id",
                                 "success": False}])
    with pytest.raises(KeyError), cat.run("broken") as r:
        r.input("silver.customers", 0)
        raise KeyError("missing column")
    stored = stored_events(cat)
    from_file = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert len(stored) == len(from_file) == 10
    for event in stored + from_file:
        validate_run_event(event)  # against the OpenLineage JSON Schema
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
    failed = stored[-1]
    assert failed["eventType"] == "FAIL"
    assert "missing column" in failed["run"]["facets"]["errorMessage"]["message"]
    cat.close()


def test_the_schema_check_rejects_broken_events(catalog: Catalog) -> None:
    """The validator used above is not a rubber stamp."""
    import copy

    import jsonschema

    build_graph(catalog)
    good = next(e for e in stored_events(catalog) if e["eventType"] == "COMPLETE" and e["outputs"])
    validate_run_event(good)
    breakages = [
        lambda e: e["run"].pop("runId"),
        lambda e: e["run"].update(runId="not-a-uuid"),
        lambda e: e.update(eventTime="2024-05-01 10:00"),
        lambda e: e.update(producer="not a uri"),
        lambda e: e["outputs"][0]["facets"]["schema"].pop("_producer"),
        lambda e: e["outputs"][0]["facets"]["schema"]["fields"][0].pop("name"),
        lambda e: e["outputs"][0]["outputFacets"]["outputStatistics"].update(rowCount="98"),
        lambda e: e["outputs"][0]["facets"]["version"].pop("datasetVersion"),
        lambda e: e.update(eventType="DONE"),
        lambda e: e["job"].pop("namespace"),
    ]
    for breakage in breakages:
        broken = copy.deepcopy(good)
        breakage(broken)
        with pytest.raises(jsonschema.ValidationError):
            validate_run_event(broken)


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
    with pytest.raises(CatalogError, match=r"events.jsonl, line 2: not JSON"):
        ingest_lines(catalog, [json.dumps(airflow_event("START", "a")), "{nope"], "events.jsonl")
    with pytest.raises(CatalogError, match="line 1: OpenLineage event has no run.runId"):
        ingest_lines(catalog, [json.dumps({"eventType": "START", "job": {"namespace": "a", "name": "b"}})], "f")
    with pytest.raises(CatalogError, match="must be a JSON object"):
        ingest(catalog, [1, 2])  # type: ignore[arg-type]
