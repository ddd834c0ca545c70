"""Runs and jobs: status, duration, inputs and outputs at their versions, rows, errors; quarantined rows."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from catalog import models as m
from catalog.entities import RUN_STATUSES
from lake.console import views
from lake.console.web import Console, Json, int_arg
from lake.errors import ConsoleError
from lake.lakehouse import Lake
from lake.naming import QUARANTINE_LAYER, quarantine_name

ROW_STATS = ("rows_read", "rows_written", "rows_quarantined")


def jobs(lake: Lake, limit: int = 200) -> list[dict[str, Any]]:
    """Every job with its number of runs, its last run's status and time, newest activity first."""
    with lake.catalog.reading() as s:
        last = (select(m.Run.job_id, func.max(m.Run.started_at).label("last"), func.count().label("runs"))
                .group_by(m.Run.job_id).subquery())
        rows = s.execute(select(m.Job.name, last.c.last, last.c.runs).join(last, last.c.job_id == m.Job.id)
                         .order_by(last.c.last.desc()).limit(limit)).all()
        status = {}
        if rows:
            for name, st in s.execute(select(m.Job.name, m.Run.status).join(m.Run, m.Run.job_id == m.Job.id)
                                      .join(last, (last.c.job_id == m.Job.id) & (last.c.last == m.Run.started_at))):
                status[name] = st
    return [{"job": n, "last_run": t, "runs": c, "status": status.get(n)} for n, t, c in rows]


def run_detail(lake: Lake, run_id: str) -> dict[str, Any]:
    """One run: the catalog's record, rows per output version, rows read/written/quarantined."""
    info = lake.catalog.run_info(run_id)
    with lake.catalog.reading() as s:
        for side in ("inputs", "outputs"):
            for item in info[side]:
                if item["version"] is None:
                    continue
                v = s.execute(select(m.DatasetVersion.row_count, m.DatasetVersion.size_bytes)
                              .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                              .where(m.Dataset.namespace == item["namespace"], m.Dataset.name == item["name"],
                                     m.DatasetVersion.version == item["version"])).first()
                item["rows"], item["bytes"] = (v[0], v[1]) if v else (None, None)
    stats = info.get("stats") or {}
    info["rows"] = {k: stats[k] for k in ROW_STATS if k in stats}
    if "rows_written" not in info["rows"] and info["outputs"]:
        written = [o.get("rows") for o in info["outputs"] if o.get("rows") is not None]
        if written:
            info["rows"]["rows_in_outputs"] = sum(written)
    targets = [o["name"] for o in info["outputs"] if o["namespace"] == lake.catalog.namespace
               and not o["name"].startswith(QUARANTINE_LAYER + ".") and views.is_table_name(o["name"])]
    info["quarantine"] = [{"target": t, "table": quarantine_name(t)} for t in targets
                          if lake.table(quarantine_name(t)).exists()]
    return info


def quarantined(lake: Lake, target: str, limit: int) -> pa.Table:
    """The newest rows set aside for ``target`` (``bronze.orders``), with where they came from and why."""
    table = lake.existing(quarantine_name(target))
    data = table.to_arrow()
    if "quarantined_at" in data.column_names:
        data = data.sort_by([("quarantined_at", "descending")])
    return data.slice(0, limit)


def add_routes(app: FastAPI, console: Console) -> None:
    lake, access = console.lake, console.access

    @app.get("/runs", response_class=HTMLResponse)
    def runs_page(request: Request, job: str = "", status: str = "", dataset: str = "") -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", "lake")
        if status and status not in RUN_STATUSES:
            raise ConsoleError(400, f"status must be one of {', '.join(RUN_STATUSES)}, not {status[:20]!r}")
        limit = int_arg(request.query_params.get("limit"), "limit", 100, 1, 1000)
        runs = lake.catalog.runs(job=job or None, status=status or None, dataset=dataset or None, limit=limit)
        return console.render(request, guard, "runs.html", runs=runs, jobs=[] if job else jobs(lake),
                              job=job, status=status, dataset=dataset, statuses=RUN_STATUSES)

    @app.get("/api/runs")
    def api_runs(request: Request, job: str = "", status: str = "") -> Any:
        console.guard(request).require("read", "lake")
        limit = int_arg(request.query_params.get("limit"), "limit", 100, 1, 1000)
        return Json(lake.catalog.runs(job=job or None, status=status or None, limit=limit))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", "lake")
        info = run_detail(lake, run_id[:64])
        return console.render(request, guard, "run.html", run=info)

    @app.get("/api/runs/{run_id}")
    def api_run(request: Request, run_id: str) -> Any:
        console.guard(request).require("read", "lake")
        return Json(run_detail(lake, run_id[:64]))

    @app.get("/quarantine/{target}", response_class=HTMLResponse)
    def quarantine_page(request: Request, target: str) -> HTMLResponse:
        guard = console.guard(request)
        who = guard.require("read", target)
        limit = int_arg(request.query_params.get("limit"), "limit", 100, 1, 1000)
        data = quarantined(lake, target, limit)
        masked = access.mask(who, quarantine_name(target), data)
        if "raw" in masked.column_names and not guard.can("unmask", target):
            # the raw text of a rejected row holds the target's values, masked columns included
            i = masked.column_names.index("raw")
            masked = masked.set_column(i, "raw", pa.nulls(masked.num_rows, pa.string()))
        access.audit(who, "read", quarantine_name(target), "quarantine")
        return console.render(request, guard, "quarantine.html", target=target, data=views.rows_of(masked))
