"""Lineage at dataset and column level, historical by version, and its renderings."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import select

from catalog import models as m
from catalog.entities import ColumnSpec, VersionRecord
from catalog.errors import CatalogError
from catalog.lineage import render
from catalog.store import Catalog
from tests.catalog.helpers import build_graph


def test_upstream_downstream_and_depth(catalog: Catalog) -> None:
    build_graph(catalog)
    up = catalog.lineage("gold.churn_features", direction="upstream", depth=5)
    assert {n.name: n.depth for n in up.nodes} == {
        "gold.churn_features": 0, "silver.customers": -1, "gold.customer_stats": -1,
        "bronze.customers": -2, "raw.customers_csv": -3,
    }
    assert ("silver.customers", "gold.customer_stats") in up.edges
    assert up.jobs[("bronze.customers", "silver.customers")] == "clean.customers"
    shallow = catalog.lineage("gold.churn_features", direction="upstream", depth=1)
    assert {n.name for n in shallow.nodes} == {"gold.churn_features", "silver.customers", "gold.customer_stats"}
    down = catalog.lineage("bronze.customers", direction="downstream", depth=10)
    assert {n.name: n.depth for n in down.nodes} == {
        "bronze.customers": 0, "silver.customers": 1, "gold.customer_stats": 2, "gold.churn_features": 2,
    }
    both = catalog.lineage("silver.customers", depth=2)
    assert {n.name for n in both.nodes} == {"raw.customers_csv", "bronze.customers", "silver.customers",
                                            "gold.customer_stats", "gold.churn_features"}
    with pytest.raises(CatalogError, match="depth"):
        catalog.lineage("silver.customers", depth=0)


def test_cycles_terminate(catalog: Catalog) -> None:
    with catalog.run("a_to_b") as r:
        r.input("x.a")
        r.output("x.b")
    with catalog.run("b_to_a") as r:
        r.input("x.b")
        r.output("x.a")
    graph = catalog.lineage("x.a", direction="upstream", depth=50)
    assert {n.name for n in graph.nodes} == {"x.a", "x.b"}


def test_column_lineage(catalog: Catalog) -> None:
    build_graph(catalog)
    graph = catalog.lineage("gold.customer_stats", column="country", direction="upstream")
    assert graph.root == "gold.customer_stats.country"
    assert set(graph.edges) == {("silver.customers.country", "gold.customer_stats.country"),
                                ("bronze.customers.country", "silver.customers.country")}
    down = catalog.lineage("bronze.customers", column="id", direction="downstream")
    assert ("silver.customers.id", "gold.customer_stats.customers") in down.edges


def test_historical_lineage_survives_new_versions(catalog: Catalog) -> None:
    build_graph(catalog)
    # bronze and silver move on to version 1; gold.customer_stats v0 was built from silver v0.
    for name, job in (("bronze.customers", "ingest.customers"), ("silver.customers", "clean.customers")):
        with catalog.run(job) as r:
            if name == "silver.customers":
                r.input("bronze.customers", 1)
            catalog.record_version(name, VersionRecord(1, [ColumnSpec("id")]), run_id=r.run_id)
    with catalog.run("aggregate.customers") as r:
        r.input("silver.customers", 1)
        catalog.record_version("gold.customer_stats", VersionRecord(1, [ColumnSpec("country")]), run_id=r.run_id)
    v0 = catalog.lineage("gold.customer_stats", version=0)
    assert {(n.name, n.version) for n in v0.nodes} >= {("gold.customer_stats", 0), ("silver.customers", 0),
                                                        ("bronze.customers", 0)}
    assert ("silver.customers@0", "gold.customer_stats@0") in v0.edges
    v1 = catalog.lineage("gold.customer_stats", version=1)
    assert ("silver.customers@1", "gold.customer_stats@1") in v1.edges
    assert ("bronze.customers@1", "silver.customers@1") in v1.edges
    with pytest.raises(CatalogError, match="no recorded version 7"):
        catalog.lineage("gold.customer_stats", version=7)


def test_renderings(catalog: Catalog) -> None:
    build_graph(catalog)
    graph = catalog.lineage("silver.customers", depth=3)
    mermaid = render(graph, "mermaid")
    assert mermaid.startswith("flowchart LR") and '(["silver.customers"])' in mermaid
    assert "-->|clean.customers|" in mermaid
    dot = render(graph, "dot")
    assert dot.startswith("digraph lineage") and '"bronze.customers" -> "silver.customers"' in dot
    as_json = render(graph, "json")
    json.dumps(as_json)
    assert {"from": "bronze.customers", "to": "silver.customers", "job": "clean.customers"} in as_json["edges"]
    text = render(graph, "text")
    assert text.splitlines()[0] == "silver.customers" and "<- bronze.customers" in text
    assert "-> gold.customer_stats" in text
    with pytest.raises(CatalogError, match="unknown lineage format"):
        render(graph, "svg")


def _expected(edges: set[tuple[str, str]], jobs: dict[tuple[str, str], str], root: str, direction: str,
              depth: int) -> tuple[list[tuple[str, int]], list[tuple[str, str]], dict[tuple[str, str], str]]:
    """The lineage by its definition (what the recursive query computed before the walk went breadth first):
    a dataset's distance is the length of the shortest walk of at most ``depth`` hops to it; one reached
    both ways keeps its upstream distance; an edge shows when both ends do and it stays on one side."""
    def reach(step: dict[str, set[str]]) -> dict[str, int]:
        dist, level = {root: 0}, {root}
        for k in range(1, depth + 1):  # every walk of exactly k hops, no pruning
            level = {o for n in level for o in step.get(n, set())}
            for n in level:
                dist.setdefault(n, k)
        return dist

    parents: dict[str, set[str]] = {}
    children: dict[str, set[str]] = {}
    for a, b in edges:
        parents.setdefault(b, set()).add(a)
        children.setdefault(a, set()).add(b)
    dist = {root: 0}
    if direction in ("upstream", "both"):
        dist.update({n: -d for n, d in reach(parents).items()})
    if direction in ("downstream", "both"):
        for n, d in reach(children).items():
            if dist.get(n, 0) == 0:
                dist[n] = d
    on_path = sorted((a, b) for a, b in edges if a in dist and b in dist
                     and ((dist[a] <= 0 and dist[b] <= 0) or (dist[a] >= 0 and dist[b] >= 0)))
    nodes = sorted(dist.items(), key=lambda kv: (kv[1], kv[0]))
    return nodes, on_path, {e: jobs[e] for e in on_path}


def test_dataset_walk_matches_the_definition_on_cycles_and_diamonds(catalog: Catalog) -> None:
    rng = random.Random(11)
    names = [f"g.n{i:02d}" for i in range(22)]
    edges: set[tuple[str, str]] = set()
    for i in range(1, len(names)):  # layered with diamonds: each fed by 1-3 earlier datasets
        edges.update((names[j], names[i]) for j in rng.sample(range(i), min(i, rng.randint(1, 3))))
    for _ in range(6):  # back edges: cycles, some long
        low, high = sorted(rng.sample(range(len(names)), 2))
        edges.add((names[high], names[low]))
    feeds: dict[str, list[str]] = {}
    for src, dst in sorted(edges):
        feeds.setdefault(dst, []).append(src)
    for out, ins in feeds.items():
        with catalog.run(f"make.{out}") as r:
            for name in ins:
                r.input(name)
            r.output(out)
    jobs = {(a, b): f"make.{b}" for a, b in edges}
    for root in ("g.n00", "g.n07", "g.n15", "g.n21"):
        for direction in ("upstream", "downstream", "both"):
            for depth in (1, 2, 3, 5, 50):
                graph = catalog.lineage(root, direction=direction, depth=depth)  # type: ignore[arg-type]
                nodes, on_path, on_path_jobs = _expected(edges, jobs, root, direction, depth)
                assert [(n.name, n.depth) for n in graph.nodes] == nodes, (root, direction, depth)
                assert graph.edges == on_path and graph.jobs == on_path_jobs, (root, direction, depth)
                assert set(graph.ids) == set(graph.kinds) == {n for n, _ in nodes}
    with catalog.reading() as s:
        ids = dict(s.execute(select(m.Dataset.name, m.Dataset.id)).all())
    assert catalog.lineage("g.n21", direction="upstream", depth=2).ids == {
        n: ids[n] for n, _ in _expected(edges, jobs, "g.n21", "upstream", 2)[0]}


def test_historical_lineage_follows_the_newest_run_that_wrote_a_version(catalog: Catalog) -> None:
    cols = [ColumnSpec("x", "int64")]
    with catalog.run("make.b") as r:
        r.input("h.z", 3)
        r.input("h.y", 1)
        catalog.record_version("h.b", VersionRecord(0, cols), run_id=r.run_id)
    with catalog.run("first") as r:
        r.input("h.a", 0)
        catalog.record_version("h.c", VersionRecord(0, cols), run_id=r.run_id)
    with catalog.run("second") as r:  # wrote the same version again, from other inputs: it is the one shown
        r.input("h.b", 0)
        r.input("h.a", 2)
        catalog.record_version("h.c", VersionRecord(0, cols), run_id=r.run_id)
    graph = catalog.lineage("h.c", version=0, depth=5)
    assert [(n.name, n.version, n.depth) for n in graph.nodes] == [
        ("h.y", 1, -2), ("h.z", 3, -2), ("h.a", 2, -1), ("h.b", 0, -1), ("h.c", 0, 0)]
    assert graph.edges == [("h.a@2", "h.c@0"), ("h.b@0", "h.c@0"), ("h.y@1", "h.b@0"), ("h.z@3", "h.b@0")]
    assert graph.jobs == {("h.a@2", "h.c@0"): "second", ("h.b@0", "h.c@0"): "second",
                          ("h.y@1", "h.b@0"): "make.b", ("h.z@3", "h.b@0"): "make.b"}
    assert {n.name for n in catalog.lineage("h.c", version=0, depth=1).nodes} == {"h.a", "h.b", "h.c"}
