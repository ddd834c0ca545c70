"""Feature views and services, the online store's status, and training sets with their recipes."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from catalog import models as m
from lake.console import views
from lake.console.web import Console, Json
from lake.errors import LakeError
from lake.features.repo import online_store
from lake.lakehouse import Lake
from lake.naming import FEATURE_SERVICE_PREFIX, FEATURE_VIEW_PREFIX

FEATURE_KINDS = ("feature_view", "on_demand_feature_view", "feature_service")
MATERIALIZE_JOB = "features.materialize."
"""Materialization jobs are ``features.materialize.<project>.<view>``."""


def _sources(s: Any, ds_id: int) -> list[dict[str, Any]]:
    """What the newest run that produced the dataset read, at which versions."""
    run_id = s.scalar(select(m.RunOutput.run_id).join(m.Run, m.Run.id == m.RunOutput.run_id)
                      .where(m.RunOutput.dataset_id == ds_id).order_by(m.Run.started_at.desc()).limit(1))
    if run_id is None:
        return []
    rows = s.execute(select(m.Dataset.name, m.RunInput.version).join(m.RunInput, m.RunInput.dataset_id == m.Dataset.id)
                     .where(m.RunInput.run_id == run_id).order_by(m.Dataset.name))
    return [{"name": n, "version": None if v == m.UNKNOWN_VERSION else v} for n, v in rows]


def feature_views(lake: Lake) -> list[dict[str, Any]]:
    """Every registered feature view and service: features, owners, sources at versions, freshness."""
    cat = lake.catalog
    now = time.time()
    out = []
    with cat.reading() as s:
        found = list(s.scalars(select(m.Dataset).where(m.Dataset.kind.in_(FEATURE_KINDS)).order_by(m.Dataset.name)))
        runs = s.execute(select(m.Job.name, m.Run.id, m.Run.status, m.Run.ended_at, m.Run.stats)
                         .join(m.Run, m.Run.job_id == m.Job.id).where(m.Job.name.startswith(MATERIALIZE_JOB))
                         .order_by(m.Run.started_at.desc()).limit(2000)).all()
        for ds in found:
            short = ds.name.removeprefix(FEATURE_VIEW_PREFIX).removeprefix(FEATURE_SERVICE_PREFIX)
            cols = list(s.scalars(select(m.Column).where(m.Column.dataset_id == ds.id).order_by(m.Column.position)))
            mine = [r for r in runs if r[0].rsplit(".", 1)[-1] == short] if ds.kind == "feature_view" else []
            done = next((r for r in mine if r[2] == "completed"), None)
            newest_us = (done[4] or {}).get("newest_event_us") if done else None
            out.append({
                "name": ds.name, "short": short, "kind": ds.kind, "kind_label": views.KINDS.get(ds.kind, ds.kind),
                "description": ds.description, "location": ds.location,
                "owners": sorted(s.scalars(select(m.DatasetOwner.owner).where(m.DatasetOwner.dataset_id == ds.id))),
                "features": [{"name": c.name, "type": c.type, "description": c.description} for c in cols],
                "sources": _sources(s, ds.id),
                "materialized": None if done is None else {
                    "run_id": done[1], "ended_at": done[3], "source_version": (done[4] or {}).get("source_version"),
                    "mode": (done[4] or {}).get("mode"), "written": (done[4] or {}).get("written"),
                    "newest_event": dt.datetime.fromtimestamp(newest_us / 1e6, dt.UTC) if newest_us else None,
                    "age_s": round(now - newest_us / 1e6, 1) if newest_us else None},
                "last_materialize_status": mine[0][2] if mine else None,
            })
    return out


def online_status(lake: Lake) -> dict[str, Any]:
    """The online store's kind, place and whether it answers now."""
    try:
        store = online_store(lake)
    except LakeError as exc:
        return {"kind": lake.settings.feast.online_store, "where": None, "ok": False, "error": exc.message}
    started = time.perf_counter()
    try:
        store.health()
    except Exception as exc:  # a status page shows any failure of the store as its status
        return {"kind": store.kind, "where": store.where, "ok": False,
                "error": f"{type(exc).__name__}: {exc}"[:500]}
    return {"kind": store.kind, "where": store.where, "ok": True, "error": None,
            "ms": round((time.perf_counter() - started) * 1000, 1)}


def training_sets(lake: Lake, limit: int = 200) -> list[dict[str, Any]]:
    return lake.catalog.training_datasets(limit=limit)


def training_set(lake: Lake, ref: str) -> dict[str, Any]:
    """A training set's recipe, how to reproduce and export it, and the exports recorded downstream."""
    t = lake.catalog.training_dataset(ref)
    table = f"training.{t['name']}"
    t["table"] = table
    t["reproduce"] = f"lake training reproduce {t['id']}"
    t["export"] = f"lake training export {t['id']} ./export"
    try:
        g = lake.catalog.lineage(table, direction="downstream", depth=2)
        t["downstream"] = [n.name for n in g.nodes if n.depth > 0]
    except LakeError:
        t["downstream"] = []
    with lake.catalog.reading() as s:
        t["exports"] = [n for n, k in s.execute(select(m.Dataset.name, m.Dataset.kind)
                                                .where(m.Dataset.name.in_(t["downstream"])))
                        if k == "export"] if t["downstream"] else []
        quality = s.execute(select(m.QualityResult.success).join(m.Dataset, m.Dataset.id == m.QualityResult.dataset_id)
                            .where(m.Dataset.name == table, m.QualityResult.version == (t["version"] or -1))).all()
    t["quality"] = None if not quality else ("passed" if all(q[0] for q in quality) else "failed")
    checks = [r for r in lake.catalog.runs(job=f"features.reproduce.{t['name']}", limit=50)
              if (r.get("parameters") or {}).get("training_dataset") == t["id"]
              or (r.get("stats") or {}).get("training_dataset") == t["id"]]
    last = checks[0] if checks else None
    t["reproduced"] = None if last is None else {
        "run_id": last["run_id"], "status": last["status"], "at": last["ended_at"] or last["started_at"],
        "matches": (last.get("stats") or {}).get("matches"), "error": last.get("error")}
    return t


def add_routes(app: FastAPI, console: Console) -> None:
    lake = console.lake

    @app.get("/features", response_class=HTMLResponse)
    def features_page(request: Request) -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", "lake")
        found = [f for f in feature_views(lake) if guard.can("read", views.access_object(f["name"], f["kind"]))]
        return console.render(request, guard, "features.html", views_=found, online=online_status(lake))

    @app.get("/api/features")
    def api_features(request: Request) -> Any:
        guard = console.guard(request)
        guard.require("read", "lake")
        found = [f for f in feature_views(lake) if guard.can("read", views.access_object(f["name"], f["kind"]))]
        return Json({"views": found, "online": online_status(lake)})

    @app.get("/training", response_class=HTMLResponse)
    def training_page(request: Request) -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", "lake")
        found = [t for t in training_sets(lake) if guard.can("read", f"training.{t['name']}")]
        return console.render(request, guard, "training.html", sets=found)

    @app.get("/training/{ref}", response_class=HTMLResponse)
    def training_one(request: Request, ref: str) -> HTMLResponse:
        guard = console.guard(request)
        guard.signed_in()
        t = training_set(lake, ref[:200])
        guard.require("read", t["table"])
        return console.render(request, guard, "training_set.html", t=t)

    @app.get("/api/training/{ref}")
    def api_training(request: Request, ref: str) -> Any:
        guard = console.guard(request)
        guard.signed_in()
        t = training_set(lake, ref[:200])
        guard.require("read", t["table"])
        return Json(t)
