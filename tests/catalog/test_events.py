"""OpenLineage events from other producers: checked, named by line, stored all or nothing; fuzzed.

``lake catalog ingest FILE`` prints one line per bad event (file and line number), never a
traceback, and stores nothing from a file with a bad event. Hypothesis feeds the event
checker and the ingest path arbitrary JSON within a fixed budget (CI-sized).
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.errors import CatalogError, LineageEventError
from catalog.events import parse_event
from catalog.openlineage import ingest, ingest_lines
from catalog.store import Catalog
from lake.cli.main import main
from tests.catalog.helpers import airflow_event

FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
"""The fuzzing budget: at most 60 examples of at most 2 s each per test."""


def good(run_id: str | None = None, event_type: str = "COMPLETE") -> dict[str, Any]:
    event = airflow_event(event_type, run_id or str(uuid.uuid4()))
    event["outputs"][0]["facets"]["version"] = {"datasetVersion": "2"}
    return event


def test_cli_ingest_names_every_bad_line_and_stores_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "lakehouse")
    bad_time = good()
    bad_time["eventTime"] = "tomorrow"
    huge = good()
    huge["outputs"][0]["facets"]["version"]["datasetVersion"] = "1" * 30
    nul = good()
    nul["job"]["name"] = "a\x00b"
    wrong_facet = good()
    wrong_facet["inputs"][0]["facets"]["schema"] = ["account_id"]
    lines = [json.dumps(good()), json.dumps(bad_time), "", "{not json", json.dumps(huge), json.dumps(nul),
             "[" * 100_000 + "]" * 100_000, json.dumps(wrong_facet), '{"eventTime": NaN}', json.dumps(good())]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    code = main(["--root", root, "catalog", "ingest", str(events)])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.err + out.out
    named = [line.strip() for line in out.err.splitlines() if f"{events}, line " in line]
    assert [line.split(", line ")[1].split(":")[0] for line in named] == ["2", "4", "5", "6", "7", "8", "9"]
    assert "7 bad events" in out.err and "nothing was stored" in out.err
    for words in ("eventTime: 'tomorrow' is not an ISO 8601 date-time", "not JSON", "larger than the largest version",
                  "job.name: contains a NUL character", "nested too deeply",
                  "inputs[0].facets.schema: must be an object, not a list", "NaN is not a JSON value"):
        assert words in out.err, words
    cat = Catalog(f"sqlite:///{root}/catalog.db")
    assert cat.counts() == {"datasets": 0, "versions": 0, "runs": 0, "edges": 0}
    events.write_text(json.dumps(good()) + "\n" + json.dumps(good()) + "\n")
    assert main(["--root", root, "catalog", "ingest", str(events)]) == 0
    assert "ingested 2 events" in capsys.readouterr().out
    assert cat.counts()["runs"] == 2
    cat.close()


def test_many_bad_lines_are_counted_past_the_first_twenty(catalog: Catalog) -> None:
    lines = ["{nope"] * 30 + [json.dumps(good())]
    with pytest.raises(LineageEventError) as info:
        ingest_lines(catalog, lines, "big.jsonl")
    message = info.value.message
    assert "30 bad events in big.jsonl" in message and "big.jsonl, line 20:" in message
    assert "big.jsonl, line 21:" not in message and "... and 10 more" in message
    assert info.value.context["line"] == 1 and catalog.counts()["runs"] == 0


def test_nul_is_refused_the_same_way_on_both_backends(catalog: Catalog) -> None:
    event = good()
    event["outputs"][0]["facets"]["documentation"] = {"description": "a\x00b"}
    with pytest.raises(LineageEventError, match=r"outputs\[0\].facets.documentation.description: contains a NUL"):
        ingest(catalog, event)
    with pytest.raises(CatalogError, match="cannot store a NUL character"):
        catalog.register_dataset("bronze.x", description="a\x00b")  # the Python API too
    assert catalog.counts()["datasets"] == 0


# --------------------------------------------------------------------- fuzzing

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25)
PATHS = ["eventTime", "eventType", "producer", "run", "run.runId", "run.facets", "run.facets.parent",
         "run.facets.errorMessage", "job", "job.namespace", "job.name", "inputs", "outputs", "inputs.0",
         "inputs.0.name", "inputs.0.facets", "inputs.0.facets.schema", "inputs.0.facets.schema.fields",
         "outputs.0.namespace", "outputs.0.facets", "outputs.0.facets.columnLineage",
         "outputs.0.facets.columnLineage.fields", "outputs.0.facets.version.datasetVersion", "outputs.0.outputFacets",
         "outputs.0.facets.ownership.owners", "outputs.0.facets.documentation.description"]


def mangle(event: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    for path, value in changes:
        node: Any = event
        *parents, last = path.split(".")
        for key in parents:
            if isinstance(node, list) and key.isdigit():
                node = node[int(key)] if int(key) < len(node) else None
            elif isinstance(node, dict):
                node = node.setdefault(key, {})
        if isinstance(node, dict):
            node[last] = value
        elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
    return event


@FUZZ
@given(JSON)
def test_fuzz_the_checker_takes_any_json(value: Any) -> None:
    try:
        parse_event(value)
    except LineageEventError as exc:
        assert exc.message and "\n" not in exc.message


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=4))
def test_fuzz_mangled_events_are_stored_whole_or_refused_whole(catalog: Catalog, changes: list[tuple[str, Any]]) -> None:
    event = mangle(good(), changes)
    before = catalog.counts()
    try:
        ingest(catalog, event)
    except CatalogError as exc:
        assert exc.message
        assert catalog.counts() == before  # nothing of a refused event is kept
        return
    run_id = str(uuid.UUID(str(event["run"]["runId"])))
    assert catalog.run_info(run_id)["run_id"] == run_id


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_json_lines_of_any_text(catalog: Catalog, text: str) -> None:
    try:
        count = ingest_lines(catalog, text.splitlines(), "fuzz.jsonl")
    except LineageEventError as exc:
        assert "fuzz.jsonl, line " in exc.message
        assert catalog.counts()["runs"] == 0
        return
    assert count == 0  # arbitrary text holds no valid event (or only blank lines)
