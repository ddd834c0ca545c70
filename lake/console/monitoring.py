"""Drift reports: the list, one report with per-feature histograms (reference vs current), a feature's
drift over time against its thresholds. Charts are SVG drawn on the server (no chart library)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from catalog import models as m
from catalog.artifacts import report_dict
from lake.console.web import Console, Json, int_arg
from lake.errors import ConsoleError
from lake.lakehouse import Lake

KIND = "drift"
CHART_W, CHART_H = 360, 110
METRICS = ("psi", "ks", "js", "wasserstein_norm")


def report(lake: Lake, report_id: str) -> dict[str, Any]:
    with lake.catalog.reading() as s:
        row = s.execute(select(m.Report, m.Dataset.name).outerjoin(m.Dataset, m.Dataset.id == m.Report.dataset_id)
                        .where(m.Report.id == report_id, m.Report.kind == KIND)).first()
        if row is None:
            raise ConsoleError(404, f"no drift report {report_id[:40]!r}; the monitoring page lists them")
        out = report_dict(row[0], row[1])
    for f in out["body"].get("features", []):
        f["chart"] = histogram(f.get("histogram"))
    return out


def histogram(h: dict[str, Any] | None) -> dict[str, Any] | None:
    """Bars of reference and current shares, scaled to the chart (both sides share one scale)."""
    if not h:
        return None
    ref, cur = list(h.get("ref") or []), list(h.get("cur") or [])
    if h.get("type") == "categories":
        labels = [str(v) for v in h.get("values") or []]
    else:
        edges = list(h.get("edges") or [])
        labels = [f"{a:.3g} – {b:.3g}" for a, b in zip(edges, edges[1:], strict=False)]
    n = min(len(ref), len(cur), len(labels)) if labels else min(len(ref), len(cur))
    if n == 0:
        return None
    ref, cur = [float(x or 0) for x in ref[:n]], [float(x or 0) for x in cur[:n]]
    top = max(max(ref), max(cur)) or 1.0
    slot = CHART_W / n
    bar = max(slot / 2 - 1, 0.5)
    bars = []
    for i in range(n):
        for j, (side, v) in enumerate((("ref", ref[i]), ("cur", cur[i]))):
            height = v / top * (CHART_H - 10)
            bars.append({"side": side, "x": round(i * slot + j * bar, 2), "y": round(CHART_H - height, 2),
                         "w": round(bar, 2), "h": round(height, 2),
                         "title": f"{labels[i] if i < len(labels) else i}: {side} {v:.3f}"})
    return {"bars": bars, "width": CHART_W, "height": CHART_H, "labels": labels[:n], "ref": ref, "cur": cur,
            "categorical": h.get("type") == "categories"}


def over_time(lake: Lake, dataset: str, feature: str, limit: int = 100) -> dict[str, Any]:
    """A feature's drift metrics in every stored report of ``dataset``, oldest first, with the thresholds."""
    found = lake.catalog.reports(dataset=dataset, kind=KIND, limit=limit)
    points: list[dict[str, Any]] = []
    thresholds: dict[str, Any] = {}
    for r in reversed(found):
        f = next((x for x in r["body"].get("features", []) if x.get("name") == feature), None)
        if f is None:
            continue
        thresholds = r["body"].get("thresholds") or thresholds
        points.append({"report": r["id"], "created_at": r["created_at"], "version": r["version"], "status": f["status"],
                       **{k: f["metrics"].get(k) for k in METRICS if f["metrics"].get(k) is not None}})
    if not points:
        raise ConsoleError(404, f"no drift report of {dataset} compares a feature {feature!r}")
    charts = {}
    for metric in METRICS:
        values = [p.get(metric) for p in points]
        if all(v is None for v in values):
            continue
        limits = thresholds.get(metric) or {}
        top = max([v for v in values if v is not None] + [limits.get("drift") or 0, limits.get("warn") or 0]) or 1.0
        step = CHART_W / max(len(points) - 1, 1)

        def y(v: float, top: float = top) -> float:
            return round(CHART_H - 5 - v / top * (CHART_H - 15), 2)

        dots = [{"x": round(i * step, 2), "y": y(v), "v": v, "status": points[i]["status"]}
                for i, v in enumerate(values) if v is not None]
        charts[metric] = {"path": " ".join(f"{'M' if i == 0 else 'L'}{d['x']},{d['y']}" for i, d in enumerate(dots)),
                          "dots": dots, "warn": y(limits["warn"]) if limits.get("warn") is not None else None,
                          "drift": y(limits["drift"]) if limits.get("drift") is not None else None,
                          "limits": limits, "width": CHART_W, "height": CHART_H}
    return {"dataset": dataset, "feature": feature, "points": points, "charts": charts, "thresholds": thresholds}


def add_routes(app: FastAPI, console: Console) -> None:
    lake = console.lake

    @app.get("/monitoring", response_class=HTMLResponse)
    def monitoring_page(request: Request, dataset: str = "") -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", "lake")
        limit = int_arg(request.query_params.get("limit"), "limit", 100, 1, 1000)
        found = [r for r in lake.catalog.reports(dataset=dataset or None, kind=KIND, limit=limit)
                 if r["dataset"] is None or guard.can("read", r["dataset"])]
        return console.render(request, guard, "monitoring.html", reports=found, dataset=dataset)

    @app.get("/monitoring/reports/{report_id}", response_class=HTMLResponse)
    def report_page(request: Request, report_id: str) -> HTMLResponse:
        guard = console.guard(request)
        guard.signed_in()
        r = report(lake, report_id[:64])
        guard.require("read", r["dataset"] or "lake")
        return console.render(request, guard, "report.html", r=r)

    @app.get("/api/monitoring/reports/{report_id}")
    def api_report(request: Request, report_id: str) -> Any:
        guard = console.guard(request)
        guard.signed_in()
        r = report(lake, report_id[:64])
        guard.require("read", r["dataset"] or "lake")
        return Json(r)

    @app.get("/monitoring/drift/{dataset}/{feature}", response_class=HTMLResponse)
    def drift_over_time(request: Request, dataset: str, feature: str) -> HTMLResponse:
        guard = console.guard(request)
        guard.require("read", dataset)
        return console.render(request, guard, "drift_over_time.html", d=over_time(lake, dataset, feature[:200]))
