"""``lake catalog``: what the lake recorded, searched, shown, annotated and traced from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from lake.cli.main import main
from lake.lakehouse import Lake
from tests.conftest import make_settings


@pytest.fixture
def root(tmp_path: Path) -> str:
    lake = Lake(make_settings(root=str(tmp_path / "lakehouse")))
    with lake.run("ingest.orders"):
        lake.table("bronze.orders").write(pa.table({"id": [1, 2, 3], "email": ["a@x", "b@x", "c@x"],
                                                    "amount": [1.0, 2.0, 3.0]}))
    with lake.run("clean.orders"):
        df = lake.table("bronze.orders").to_pandas()
        lake.table("silver.orders").write(df[["id", "amount"]])
    with lake.run("aggregate.orders"):
        total = lake.table("silver.orders").to_arrow()
        lake.table("gold.order_totals").write(pa.table({"total": [sum(total.column("amount").to_pylist())]}))
    lake.table("silver.orders").merge(pa.table({"id": [3, 4], "amount": [9.0, 4.0]}), keys=["id"])
    return str(tmp_path / "lakehouse")


def run(capsys: pytest.CaptureFixture[str], root: str, *args: str) -> tuple[int, str, str]:
    code = main(["--root", root, "catalog", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_search_show_and_lineage(root: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, root, "search", "ordr", "--json")
    assert code == 0
    assert {h["name"] for h in json.loads(out)} == {"bronze.orders", "silver.orders", "gold.order_totals"}
    code, out, _ = run(capsys, root, "search", "orders", "--layer", "gold", "--json")
    assert [h["name"] for h in json.loads(out)] == ["gold.order_totals"]
    code, out, _ = run(capsys, root, "show", "silver.orders", "--json")
    shown = json.loads(out)
    assert shown["current_version"] == 1 and [v["version"] for v in shown["versions"]] == [1, 0]
    assert shown["version"]["rows"] == 4 and shown["upstream"] == ["bronze.orders"]
    assert shown["downstream"] == ["gold.order_totals"]
    assert {r["job"] for r in shown["runs"]} >= {"clean.orders", "lake.merge.silver.orders", "aggregate.orders"}
    code, out, _ = run(capsys, root, "show", "silver.orders")
    assert code == 0 and "upstream: bronze.orders" in out
    code, out, _ = run(capsys, root, "lineage", "gold.order_totals", "--upstream", "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart LR") and "bronze.orders" in out
    code, out, _ = run(capsys, root, "lineage", "gold.order_totals", "--version", "0", "--format", "json")
    graph = json.loads(out)
    assert {"from": "silver.orders@0", "to": "gold.order_totals@0", "job": "aggregate.orders"} in graph["edges"]
    code, out, _ = run(capsys, root, "lineage", "bronze.orders", "--downstream", "--depth", "1")
    assert code == 0 and "-> silver.orders" in out and "gold.order_totals" not in out


def test_annotate_and_find_by_annotation(root: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, root, "tag", "bronze.orders", "pii", "--column", "email")[0] == 0
    assert run(capsys, root, "propagate", "pii")[0] == 0
    assert run(capsys, root, "describe", "gold.order_totals", "Revenue total across all orders")[0] == 0
    assert run(capsys, root, "owner", "gold.order_totals", "finance")[0] == 0
    code, out, _ = run(capsys, root, "search", "--tag", "pii", "--json")
    assert {h["name"] for h in json.loads(out)} == {"bronze.orders", "silver.orders", "gold.order_totals"}
    code, out, _ = run(capsys, root, "search", "revenue", "--owner", "finance", "--json")
    assert [h["name"] for h in json.loads(out)] == ["gold.order_totals"]
    code, out, _ = run(capsys, root, "search", "", "--column", "email", "--json")
    assert [h["name"] for h in json.loads(out)] == ["bronze.orders"]


def test_runs_and_one_run(root: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, root, "runs", "--json")
    rows = json.loads(out)
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    run_id = next(r["run_id"] for r in rows if r["job"] == "clean.orders")
    code, out, _ = run(capsys, root, "run", run_id, "--json")
    info = json.loads(out)
    assert info["inputs"] == [{"namespace": "lake", "name": "bronze.orders", "version": 0}]
    assert info["outputs"] == [{"namespace": "lake", "name": "silver.orders", "version": 0}]
    assert run(capsys, root, "runs", "--status", "failed", "--json")[1].strip() == "[]"


def test_ingest_and_errors(root: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.catalog.helpers import airflow_event

    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(airflow_event("COMPLETE", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")) + "\n")
    code, out, _ = run(capsys, root, "ingest", str(events))
    assert code == 0 and "ingested 1 events" in out
    events.write_text("{broken\n")
    code, _, err = run(capsys, root, "ingest", str(events))
    assert code == 1 and "line 1: not JSON" in err
    code, _, err = run(capsys, root, "show", "silver.ordrs")
    assert code == 1 and "did you mean silver.orders" in err
    code, _, err = run(capsys, root, "lineage", "silver.orders", "--format", "png")
    assert code == 1 and "unknown lineage format" in err


def test_runs_shows_a_killed_process_run_as_failed(root: str, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from tests.catalog.victim import start_victim

    victim, run_id = start_victim(make_settings(root=root).catalog_url, job="ingest.killed")
    try:
        code, out, _ = run(capsys, root, "runs", "--status", "running", "--json")
        [row] = json.loads(out)
        assert code == 0 and row["run_id"] == run_id and row["pid"] == victim.pid  # alive: left running
    finally:
        victim.kill()
        victim.wait(30)
    reason = f"the process (pid {victim.pid} on host {socket.gethostname()}) ended without finishing the run"
    code, out, _ = run(capsys, root, "runs", "--json")
    rows = {r["run_id"]: r for r in json.loads(out)}
    assert code == 0 and rows[run_id]["status"] == "failed" and rows[run_id]["error"] == reason
    assert run(capsys, root, "runs", "--status", "running", "--json")[1].strip() == "[]"
    code, out, _ = run(capsys, root, "runs", "--job", "ingest.killed")
    assert code == 0 and "failed" in out and f"{victim.pid}@" in out
    code, out, _ = run(capsys, root, "run", run_id)
    assert code == 0 and ": failed" in out and "ended without finishing the run" in out
