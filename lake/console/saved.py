"""Saved queries in the console: list, save (``write`` on ``query:<name>``), run with masking."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from lake.console import views
from lake.console.web import Console, Json, body_json, int_arg
from lake.errors import ConsoleError
from lake.queries import dataset_of, run_saved, save_query

RESULT_ROWS = 200
"""Rows of a result the console shows."""


def access_object(name: str) -> str:
    return "query:" + name.removeprefix("query.")


def add_routes(app: FastAPI, console: Console) -> None:
    lake, access = console.lake, console.access

    def listing(request: Request) -> list[dict[str, Any]]:
        guard = console.guard(request)
        guard.require("read", "lake")
        return [q for q in lake.catalog.saved_queries() if guard.can("read", access_object(q["name"]))]

    @app.get("/queries", response_class=HTMLResponse)
    def queries_page(request: Request) -> HTMLResponse:
        found = listing(request)
        guard = console.guard(request)
        return console.render(request, guard, "queries.html", queries=found, can_save=guard.can("write", "lake"))

    @app.get("/api/queries")
    def api_queries(request: Request) -> Any:
        return Json(listing(request))

    @app.get("/queries/{name}", response_class=HTMLResponse)
    def query_page(request: Request, name: str) -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", access_object(name))
        q = lake.catalog.saved_query(name[:100])
        shown = views.dataset(lake, dataset_of(q["name"]))
        return console.render(request, guard, "query.html", q=q, ds=shown,
                              can_write=guard.can("write", access_object(q["name"])))

    @app.post("/api/queries")
    async def api_save(request: Request) -> Any:
        guard = console.guard(request)
        guard.signed_in()
        data = await body_json(request)
        name, sql = data.get("name"), data.get("sql")
        description = data.get("description") or None
        if not isinstance(name, str) or not isinstance(sql, str) or not (
                description is None or isinstance(description, str)):
            raise ConsoleError(400, "give name and sql as text (and description, optionally)")
        who = guard.require("write", access_object(name))

        def save() -> dict[str, Any]:
            record = save_query(lake, name, sql, description=description, owner=who)
            denied = [t for t in record["reads"] if not guard.can("read", views.access_object(t))]
            if denied:  # saved only by someone who may read what it reads
                lake.catalog.delete_query(record["name"])
                raise ConsoleError(403, f"{who} may not read {', '.join(denied)}, which this query reads")
            access.audit(who, "write", access_object(name), "saved")
            return record

        return Json(await run_in_threadpool(save))

    @app.post("/api/queries/{name}/run")
    def api_run(request: Request, name: str) -> Any:
        guard = console.guard(request)
        who = guard.require("read", access_object(name))
        limit = int_arg(request.query_params.get("limit"), "limit", RESULT_ROWS, 1, RESULT_ROWS)
        q = lake.catalog.saved_query(name[:100])
        upstream = lake.catalog.lineage(q["dataset"], direction="upstream", depth=1)
        known = [n.name for n in upstream.nodes if n.depth < 0]
        result = run_saved(lake, q["name"], limit=limit) if all(
            guard.can("read", views.access_object(t)) for t in known) else None
        denied = [t for t in (result.read if result else known) if not guard.can("read", views.access_object(t))]
        if result is None or denied:
            raise ConsoleError(403, f"{who} may not read {', '.join(denied)}, which this query reads")
        data = result.data
        for table in [*result.read, q["dataset"]]:
            data = access.mask(who, table, data)
        access.audit(who, "read", access_object(name), "ran")
        return Json({**views.rows_of(data), "read": result.read, "run_id": result.run_id,
                     "truncated": result.truncated})
