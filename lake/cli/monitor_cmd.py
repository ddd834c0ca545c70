"""``lake monitor``: drift reports of current data against a reference, and the stored reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lake.cli.context import state
from lake.cli.output import console, print_json, print_table
from lake.errors import LakeError

app = typer.Typer(help="Drift reports: current data (serving logs, new versions) against a reference.",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_STYLE = {"ok": "green", "warn": "yellow", "drift": "bold red"}


@app.command("drift")
def drift(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option("--reference", "-r", help="training:<id|name>, a table, table@VERSION "
                                           "or table@TIME.")],
    current: Annotated[str, typer.Option("--current", "-c", help="A table (e.g. logs.serving_fraud), table@VERSION "
                                         "or table@TIME.")],
    since: Annotated[str | None, typer.Option(help="Window start on the current set: ISO time or a duration "
                                              "before now (7d, 24h).")] = None,
    until: Annotated[str | None, typer.Option(help="Window end (exclusive).")] = None,
    time_column: Annotated[str | None, typer.Option("--time-column", help="Timestamp column of the window "
                                                    "(default: the only one).")] = None,
    columns: Annotated[str | None, typer.Option(help="Columns to compare, comma-separated (default: the training "
                                                "features, else every numeric and categorical column).")] = None,
    threshold: Annotated[list[str] | None, typer.Option("--threshold", "-t", help="NAME=DRIFT, NAME=WARN:DRIFT, "
                                                        "NAME.warn=V or NAME=off (repeat); `lake monitor "
                                                        "metrics` lists the names.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the HTML report here.")] = None,
    as_json: JsonOpt = False,
    fail_on: Annotated[str | None, typer.Option("--fail-on", help="Exit with status 1 when the overall status "
                                                "is at least this: drift or warn.")] = None,
    on_drift: Annotated[str | None, typer.Option("--on-drift", help="When drift is found: run this command (the "
                                                 "report as JSON on its standard input) or POST the JSON to "
                                                 "this http(s):// URL.")] = None,
    retrain: Annotated[str | None, typer.Option("--retrain", help="The training set the hook should refresh "
                                                "(default: the reference's, for training:<id>).")] = None,
    engine: Annotated[str | None, typer.Option(
        help="duckdb, spark (the [spark] master's executors aggregate) or auto (by size); default: [features] "
             "engine. The same statistics either way.")] = None,
) -> int:
    """Compare a current set with a reference; the report is stored in the catalog.

    With --on-drift, a drifted report starts the continuous-training hook; a hook that fails
    (non-zero exit, HTTP error, timeout) makes the command exit with status 1.
    """
    # heavy: lake.monitor (DuckDB, SciPy) is imported only when the command runs
    from lake.monitor import Thresholds, drift_report
    from lake.monitor.hooks import drift_payload, run_hook

    if fail_on is not None and fail_on not in ("drift", "warn"):
        raise LakeError(f"--fail-on {fail_on!r}: use drift or warn")
    limits = Thresholds.parse(threshold or [])
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    from lake.cli.progress import Bars

    with Bars("drift", enabled=not as_json) as bars:  # stderr, on a terminal only: columns compared, rows
        report = drift_report(state(ctx).lake(), reference, current, since=since, until=until,
                              time_column=time_column, columns=wanted, thresholds=limits, html=out, engine=engine,
                              progress=lambda done, total, rows: bars.update(
                                  message="comparing", files=(done, total), unit="columns", rows=rows))
    hook = None
    if on_drift is not None and report.failed("drift"):
        hook = run_hook(on_drift, drift_payload(report, retrain=retrain))
    if as_json:
        print_json({**report.to_dict(), "hook": vars(hook)} if hook else report.to_dict())
    else:
        _print(report)
        if hook is not None:
            shown = "[green]ran[/]" if hook.ok else "[red]failed[/]"
            console.print(f"on-drift hook {shown}: {escape(hook.target)} ({escape(hook.detail)})", highlight=False)
    if hook is not None and not hook.ok:
        return 1
    return 1 if fail_on is not None and report.failed(fail_on) else 0


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _cell(value: Any, fmt: str | None) -> str:
    return "" if value is None else format(value, fmt) if fmt else _fmt(value)


def _print(report: Any) -> None:
    # heavy: lake.monitor (DuckDB, SciPy) is loaded by now: the report was just computed with it
    from lake.monitor import METRICS

    shown = [m for m in METRICS if m.label is not None]
    ref, cur = report.reference, report.current
    table = Table(title=f"{cur['label']} vs {ref['label']}", header_style="bold")
    for name in ("feature", "kind", "status"):
        table.add_column(name, overflow="fold")
    for metric in shown:
        table.add_column(metric.label or metric.name, overflow="fold", justify="right")
    for name in ("distinct", "notes"):
        table.add_column(name, overflow="fold")
    for f in report.features:
        distinct = "" if f.reference.get("distinct") is None else \
            f"{f.reference.get('distinct')} → {_fmt(f.current.get('distinct'))}"
        table.add_row(f.name, f.kind, f"[{_STYLE[f.status]}]{f.status}[/]",
                      *(_cell(f.metrics.get(m.column_key), m.fmt) for m in shown), distinct, "; ".join(f.reasons))
    console.print(table)
    window = f", {cur['window']}" if cur.get("window") else ""
    console.print(f"reference {ref['label']}: {ref['rows']:,} rows; current {cur['label']}: {cur['rows']:,} rows"
                  f"{window}", highlight=False)
    schema = report.schema
    if schema:
        changes = [f"added {', '.join(schema.added)}" if schema.added else "",
                   f"missing {', '.join(schema.removed)}" if schema.removed else "",
                   ", ".join(f"{c} {a} → {b}" for c, a, b in schema.changed)]
        console.print("schema: " + "; ".join(c for c in changes if c), highlight=False)
    console.print(f"status: [{_STYLE[report.status]}]{report.status}[/]"
                  + (f"   report {report.report_id}" if report.report_id else "")
                  + (f"   html {report.location}" if report.location else ""), highlight=False)


@app.command("metrics")
def metrics(as_json: JsonOpt = False) -> None:
    """The drift metrics: threshold names, default levels, what each measures."""
    # heavy: lake.monitor (DuckDB, SciPy) is imported only when the command runs
    from lake.monitor import METRICS

    rows = [{"name": m.name, "warn": m.default.warn, "drift": m.default.drift,
             "trips": "at or below" if m.lower_is_worse else "at or above", "value": m.value_key,
             "description": m.doc} for m in METRICS]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "warn", "drift", "trips", "value", "description"], title="drift metrics")


@app.command("reports")
def reports(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(help="Only reports on this table.")] = None,
    status: Annotated[str | None, typer.Option(help="Only reports with this status: ok, warn or drift.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Stored drift reports, newest first."""
    lake = state(ctx).lake()
    name = lake.table(table).name if table else None
    found = lake.catalog.reports(dataset=name, kind="drift", limit=limit if status is None else max(limit, 500))
    if status is not None:
        if status not in _STYLE:
            raise LakeError(f"--status {status!r}: use ok, warn or drift")
        found = [r for r in found if r["status"] == status][:limit]
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no drift reports" + (f" for {name}" if name else ""))
        return
    rows = [{"id": r["id"][:8], "created": r["created_at"], "dataset": r["dataset"], "version": r["version"],
             "reference": r["reference"], "status": r["status"],
             "drift": ", ".join(r["summary"].get("drift") or []), "warn": ", ".join(r["summary"].get("warn") or []),
             "html": r["location"]} for r in found]
    print_table(rows, ["id", "created", "dataset", "version", "reference", "status", "drift", "warn", "html"])
