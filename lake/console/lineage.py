"""The lineage page and its JSON: the catalog's graph with kinds, column edges and drift reports.

A node the caller may not read keeps its place in the graph (paths stay whole) but shows no name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.db import among
from catalog.entities import LineageGraph
from lake.console import views
from lake.console.web import Console, Json, int_arg, version_arg
from lake.errors import ConsoleError
from lake.lakehouse import Lake

MAX_DEPTH = 20
"""Hops a page may ask for (the catalog allows 50; a browser cannot draw that usefully)."""
DIRECTIONS = ("both", "upstream", "downstream")


def graph(lake: Lake, name: str, *, direction: str = "both", depth: int = 3, version: int | None = None,
          column: str | None = None, columns: bool = True, namespace: str | None = None,
          can_read: Callable[[str], bool] = lambda _obj: True) -> dict[str, Any]:
    """The lineage around ``name`` as the page draws it.

    Returns ``{"root", "mode", "nodes": [{id, name, label, layer, kind, depth, version, column, href}],
    "edges": [{from, to, job}], "column_edges": [{from, from_column, to, to_column, transformation}],
    "reports": [...]}``; ``mode`` is ``dataset``, ``version`` (which input versions built this version)
    or ``column`` (the lineage of one column).
    """
    if direction not in DIRECTIONS:
        raise ConsoleError(400, f"direction must be one of {', '.join(DIRECTIONS)}, not {direction[:20]!r}")
    cat = lake.catalog
    mode = "version" if version is not None else "column" if column else "dataset"

    def more(s: Session, g: LineageGraph) -> tuple[dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]:
        """Kinds, column edges and the newest drift reports of the nodes (in the graph's transaction)."""
        kinds, ids = _kinds(s, g, cat.namespace)
        column_edges: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        if mode != "dataset" or not ids:
            return kinds, column_edges, reports
        # one query each, the graph's dataset ids bound as one array (PostgreSQL)
        by_id = {i: n for n, i in ids.items()}
        conn = s.connection()
        if columns:
            cl = m.ColumnLineage
            for src, sc, dst, dc, t in conn.execute(
                    select(cl.src_dataset_id, cl.src_column, cl.dst_dataset_id, cl.dst_column, cl.transformation)
                    .where(among(s, cl.src_dataset_id, by_id), among(s, cl.dst_dataset_id, by_id))).all():
                column_edges.append({"from": by_id[src], "from_column": sc, "to": by_id[dst], "to_column": dc,
                                     "transformation": t})
        if direction != "upstream":
            r = m.Report
            newest = (select(r.id, r.dataset_id, r.status, r.created_at, func.row_number().over(
                partition_by=r.dataset_id, order_by=(r.created_at.desc(), r.id.desc())).label("n"))
                .where(among(s, r.dataset_id, by_id), r.kind == "drift").subquery())
            for rid, ds_id, status, created in conn.execute(
                    select(newest.c.id, newest.c.dataset_id, newest.c.status, newest.c.created_at)
                    .where(newest.c.n == 1).order_by(newest.c.created_at.desc(), newest.c.id.desc())).all():
                reports.append({"id": rid, "dataset": by_id[ds_id], "status": status, "created_at": created})
        return kinds, column_edges, reports

    g, (kinds, column_edges, reports) = cat.lineage_and(
        name, more, direction=direction, depth=depth, version=version, column=column, namespace=namespace or None)
    hidden: dict[str, str] = {}
    nodes = []
    for n in g.nodes:
        node_id = _node_id(n.name, n.version if mode == "version" else None, n.column)
        kind = kinds.get(n.name, "table")
        if not can_read(views.access_object(n.name, kind)):
            hidden[node_id] = f"hidden-{len(hidden) + 1}"
            nodes.append({"id": hidden[node_id], "name": None, "label": "(no access)", "layer": None,
                          "kind": "hidden", "depth": n.depth, "version": None, "column": None, "href": None})
            continue
        nodes.append({"id": node_id, "name": n.name, "namespace": n.namespace, "home": n.namespace == cat.namespace,
                      "label": node_id, "layer": n.layer, "kind": kind,
                      "kind_label": views.KINDS.get(kind, kind), "depth": n.depth, "version": n.version,
                      "column": n.column, "href": views.href(
                          n.name, None if n.namespace == cat.namespace else n.namespace,
                          n.version if mode == "version" else None)})

    def shown(node_id: str) -> str:
        return hidden.get(node_id, node_id)

    edges = []
    job_of = g.jobs.get
    for a, b in g.edges:  # thousands on a big graph: no function call per edge that can be avoided
        edge = {"from": hidden.get(a, a), "to": hidden.get(b, b)} if hidden else {"from": a, "to": b}
        job = job_of((a, b))
        if job is not None:
            edge["job"] = job
        edges.append(edge)
    visible = {n["name"] for n in nodes if n["name"]}
    column_edges = [e for e in column_edges if e["from"] in visible and e["to"] in visible]
    reports = [r for r in reports if r["dataset"] in visible]
    return {"root": shown(g.root), "mode": mode, "direction": direction, "depth": depth, "version": version,
            "column": column, "nodes": nodes, "edges": edges, "column_edges": column_edges, "reports": reports}


def _kinds(s: Session, g: LineageGraph, home: str) -> tuple[dict[str, str], dict[str, int]]:
    """Each node's kind (by name) and, for a dataset-level graph, its dataset id (by name)."""
    d = m.Dataset
    if g.ids:  # a dataset-level graph: the catalog found them already
        spaces = {n.name: n.namespace for n in g.nodes}
        return {n: views.kind_of(spaces[n], k, home) for n, k in g.kinds.items()}, dict(g.ids)
    pairs = {(n.namespace, n.name) for n in g.nodes}
    if not pairs:
        return {}, {}
    # namespace IN and name IN (the (namespace, name) index serves both), exact pairs kept here:
    # a row-value IN is planned badly by PostgreSQL, and name alone scans the table
    found = [r for r in s.execute(select(d.id, d.namespace, d.name, d.kind)
                                  .where(d.namespace.in_({ns for ns, _ in pairs}), d.name.in_({n for _, n in pairs})))
             if (r[1], r[2]) in pairs]
    return {n: views.kind_of(ns, k, home) for _, ns, n, k in found}, {n: i for i, _, n, _ in found}


def _node_id(name: str, version: int | None, column: str | None) -> str:
    if column is not None:
        return f"{name}.{column}"
    return name if version is None else f"{name}@{version}"


def add_routes(app: FastAPI, console: Console) -> None:
    lake = console.lake

    def args(request: Request) -> dict[str, Any]:
        q = request.query_params
        return {"direction": q.get("direction", "both"), "depth": int_arg(q.get("depth"), "depth", 3, 1, MAX_DEPTH),
                "version": version_arg(q.get("version")), "column": q.get("column") or None,
                "columns": q.get("columns", "1") != "0", "namespace": q.get("ns") or None}

    def readable(request: Request, name: str) -> dict[str, Any]:
        guard = console.guard(request)
        guard.require("read", views.access_object(name))
        return graph(lake, name, **args(request), can_read=lambda obj: guard.can("read", obj))

    @app.get("/lineage/{name:path}", response_class=HTMLResponse)
    def lineage_page(request: Request, name: str) -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", views.access_object(name))
        a = args(request)
        shown = views.dataset(lake, name, namespace=a["namespace"])
        return console.render(request, guard, "lineage.html", ds=shown, args=a)

    @app.get("/api/lineage/{name:path}")
    def api_lineage(request: Request, name: str) -> Any:
        return Json(readable(request, name))
