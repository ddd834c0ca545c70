"""The HTML rendering of a drift report: one self-contained page.

Inline CSS and inline SVG only: no scripts, no fonts, no images to fetch, so the file
opens offline, in a CI artifact viewer or attached to a ticket.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from lake.monitor.metrics import METRICS
from lake.monitor.results import FeatureDrift
from lake.monitor.sources import SchemaChanges
from lake.monitor.thresholds import Thresholds

__all__ = ["RenderedReport", "render"]


class RenderedReport(Protocol):
    """What the page shows of a report (a :class:`lake.monitor.report.DriftReport`)."""

    @property
    def status(self) -> str: ...
    @property
    def features(self) -> Sequence[FeatureDrift]: ...
    @property
    def schema(self) -> SchemaChanges: ...
    @property
    def reference(self) -> Mapping[str, Any]: ...
    @property
    def current(self) -> Mapping[str, Any]: ...
    @property
    def thresholds(self) -> Thresholds: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def report_id(self) -> str | None: ...

REF_COLOR, CUR_COLOR = "#4c78a8", "#f58518"
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{padding:.3rem .5rem;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;font-size:.75rem;font-weight:600;color:#fff}
.ok{background:#2e7d32}.warn{background:#ef8f00}.drift{background:#c62828}
.meta{color:#555;font-size:.9rem}.feature{margin:1.5rem 0;padding:1rem;border:1px solid #e5e5e5;border-radius:6px}
.feature h3{margin:0 0 .5rem 0}.cols{display:flex;gap:1.5rem;flex-wrap:wrap}.reasons{color:#8a1c1c;font-size:.85rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
code{background:#f3f3f3;padding:0 .2rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return _e(value)


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.2f}%"


def _badge(status: str) -> str:
    return f'<span class="badge {_e(status)}">{_e(status.upper())}</span>'


def render(report: RenderedReport) -> str:
    """The report as one HTML page."""
    ref, cur = report.reference, report.current
    title = f"Drift report: {cur.get('label')} vs {ref.get('label')}"
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Drift report {_badge(report.status)}</h1>",
        f'<p class="meta">Reference <b>{_e(ref.get("label"))}</b> ({_num(ref.get("rows"))} rows) &middot; '
        f'current <b>{_e(cur.get("label"))}</b> ({_num(cur.get("rows"))} rows'
        + (f", {_e(cur.get('window'))}" if cur.get("window") else "") + ") &middot; "
        f"{_e(report.created_at.strftime('%Y-%m-%d %H:%M:%S UTC'))}"
        + (f" &middot; report <code>{_e(report.report_id)}</code>" if report.report_id else "") + "</p>",
        '<p class="legend">' + f'<span style="background:{REF_COLOR}"></span>reference'
        + f'<span style="background:{CUR_COLOR}"></span>current</p>',
        "<h2>Summary</h2>", _summary(report.features), _schema(report), "<h2>Features</h2>",
    ]
    out += [_feature(i, f) for i, f in enumerate(report.features)]
    out += ["<h2>Thresholds</h2>", _thresholds(report), _notes(), "</body></html>"]
    return "\n".join(out)


def _summary(features: Sequence[FeatureDrift]) -> str:
    shown = [m for m in METRICS if m.html_label is not None]
    head = ["feature", "kind", "status", *(m.html_label or "" for m in shown), "null rate ref &rarr; cur",
            "distinct ref &rarr; cur"]
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for i, f in enumerate(features):
        m = f.metrics
        rows.append(
            f'<tr><td><a href="#f{i}">{_e(f.name)}</a></td><td>{_e(f.kind)}</td><td>{_badge(f.status)}</td>'
            + "".join(f'<td class="n">{_num(m.get(metric.column_key))}</td>' for metric in shown)
            + f'<td class="n">{_pct(f.reference.get("null_rate"))} &rarr; {_pct(f.current.get("null_rate"))}</td>'
            f'<td class="n">{_num(f.reference.get("distinct"))} &rarr; {_num(f.current.get("distinct"))}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


def _schema(report: RenderedReport) -> str:
    s = report.schema
    if not s:
        return "<h2>Schema</h2><p>No schema change: same columns and types.</p>"
    items = []
    if s.added:
        items.append(f"<li>added in current: {_e(', '.join(s.added))}</li>")
    if s.removed:
        items.append(f"<li>missing from current: {_e(', '.join(s.removed))}</li>")
    for column, before, after in s.changed:
        items.append(f"<li>type changed: <b>{_e(column)}</b> {_e(before)} &rarr; {_e(after)}</li>")
    return "<h2>Schema changes</h2><ul>" + "".join(items) + "</ul>"


def _feature(index: int, f: FeatureDrift) -> str:
    parts = [f'<section class="feature" id="f{index}"><h3>{_e(f.name)} {_badge(f.status)} '
             f'<small class="meta">{_e(f.kind)}, {_e(f.reference.get("type"))}'
             + (f" &rarr; {_e(f.current.get('type'))}" if f.current.get("type") != f.reference.get("type") else "")
             + "</small></h3>"]
    if f.reasons:
        parts.append('<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in f.reasons) + "</ul>")
    parts.append('<div class="cols">')
    if f.histogram:
        parts.append(_chart(f.histogram))
    parts.append(_metrics_table(f))
    parts.append("</div></section>")
    return "".join(parts)


def _metrics_table(f: FeatureDrift) -> str:
    shown = {k: v for k, v in f.metrics.items() if not isinstance(v, list | dict)}
    rows = "".join(f'<tr><td>{_e(k)}</td><td class="n">{_num(v)}</td></tr>' for k, v in shown.items())
    keys = [k for k in ("rows", "count", "null_rate", "distinct", "min", "median", "max", "mean", "std")
            if k in f.reference or k in f.current]
    sides = "".join(f'<tr><td>{_e(k)}</td><td class="n">{_num(f.reference.get(k))}</td>'
                    f'<td class="n">{_num(f.current.get(k))}</td></tr>' for k in keys)
    return (f"<div><table><tr><th>metric</th><th>value</th></tr>{rows}</table></div>"
            f"<div><table><tr><th></th><th>reference</th><th>current</th></tr>{sides}</table></div>")


def _chart(hist: Mapping[str, Any]) -> str:
    if hist.get("type") == "bins":
        return _bars(hist["edges"], hist["ref"], hist["cur"], bool(hist.get("clipped")))
    labels = [_num(v) if isinstance(v, float) else str(v) for v in hist["values"]]
    return _hbars(labels, hist["ref"], hist["cur"])


def _bars(edges: Sequence[float], ref: Sequence[float], cur: Sequence[float], clipped: bool) -> str:
    width, height, left, bottom, top = 540, 190, 44, 40, 10
    plot_w, plot_h = width - left - 36, height - bottom - top
    peak = max([*ref, *cur, 1e-12])
    n = len(ref)
    step = plot_w / max(n, 1)
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="histogram of reference and current">',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
           f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{_pct(peak)}</text>',
           f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>']
    for i in range(n):
        for j, (values, color) in enumerate(((ref, REF_COLOR), (cur, CUR_COLOR))):
            h = plot_h * values[i] / peak
            x = left + i * step + j * step / 2
            out.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(step / 2 - 0.5, 0.5):.1f}" '
                       f'height="{h:.1f}" fill="{color}"><title>{_pct(values[i])}</title></rect>')
    for pos in (0, n // 2, n):
        x = left + pos * step
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">'
                   f"{_num(edges[pos])}</text>")
    if clipped:
        out.append(f'<text x="{left + plot_w}" y="{height - 4}" font-size="9" text-anchor="end" fill="#777">'
                   "values beyond the 0.5% and 99.5% quantiles are in the end bars</text>")
    out.append("</svg>")
    return "".join(out)


def _hbars(labels: Sequence[str], ref: Sequence[float], cur: Sequence[float]) -> str:
    row, left, width = 24, 150, 520
    height = row * len(labels) + 6
    peak = max([*ref, *cur, 1e-12])
    plot_w = width - left - 60
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="frequencies of reference and current">']
    for i, label in enumerate(labels):
        y = 3 + i * row
        text = label if len(label) <= 22 else label[:21] + "…"
        out.append(f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_e(text)}</text>')
        for j, (values, color) in enumerate(((ref, REF_COLOR), (cur, CUR_COLOR))):
            w = plot_w * values[i] / peak
            out.append(f'<rect x="{left}" y="{y + j * 10}" width="{w:.1f}" height="9" fill="{color}">'
                       f"<title>{_pct(values[i])}</title></rect>"
                       f'<text x="{left + w + 4:.1f}" y="{y + j * 10 + 8}" font-size="9">{_pct(values[i])}</text>')
    out.append("</svg>")
    return "".join(out)


def _thresholds(report: RenderedReport) -> str:
    rows = "".join(f'<tr><td>{_e(name)}</td><td class="n">{_num(v["warn"])}</td><td class="n">{_num(v["drift"])}'
                   "</td></tr>" for name, v in report.thresholds.to_dict().items())
    return f"<table><tr><th>metric</th><th>warn</th><th>drift</th></tr>{rows}</table>"


def _notes() -> str:
    return '<p class="meta">' + "; ".join(m.note for m in METRICS if m.note) + ".</p>"
