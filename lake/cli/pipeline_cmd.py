"""``lake pipeline``: run what is stale, in order; show the plan and the last run's steps."""

from __future__ import annotations

from typing import Annotated

import typer

from lake.cli.context import state
from lake.cli.output import console, err_console, print_json, print_table
from lake.errors import PipelineError

app = typer.Typer(help="Pipelines: jobs, feature views and drift checks in order, only what is stale.",
                  no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command("plan")
def plan(ctx: typer.Context, targets: Annotated[list[str] | None, typer.Argument(help="Steps or tables.")] = None,
         as_json: JsonOpt = False) -> None:
    """The steps in order, what each reads and writes, and whether it is stale now."""
    # deferred: loads the jobs and the feature repository
    from lake.orchestrate.plan import build_plan, staleness

    lake = state(ctx).lake()
    built = build_plan(lake)
    rows = []
    for step in built.select(list(targets or [])):
        check = staleness(lake, step, built.project)
        rows.append({"step": step.key, "reads": ", ".join(step.inputs), "writes": ", ".join(step.outputs),
                     "stale": check.stale, "why": check.reason})
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["step", "reads", "writes", "stale", "why"], title="pipeline plan")


@app.command("run")
def run(
    ctx: typer.Context,
    targets: Annotated[list[str] | None, typer.Argument(help="Steps or tables (default: everything).")] = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild every step from scratch.")] = False,
    backfill: Annotated[bool, typer.Option("--backfill", help="Run dated jobs once per day of --from..--to.")] = False,
    start: Annotated[str | None, typer.Option("--from", help="First day of the backfill (ISO date).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day of the backfill (ISO date).")] = None,
    param: Annotated[str, typer.Option("--param-name", help="The jobs' date parameter.")] = "day",
    retries: Annotated[int, typer.Option(help="Retries of a step after a transient failure.")] = 2,
    as_json: JsonOpt = False,
) -> int:
    """Run the stale steps (and those of TARGETs), upstream first, under one catalog run."""
    from lake.errors import LakeError
    from lake.orchestrate.run import run_pipeline  # deferred: loads the engines

    if backfill and not (start and end):
        raise LakeError("--backfill needs --from DAY and --to DAY")
    lake = state(ctx).lake(write=True)
    try:
        report = run_pipeline(lake, list(targets or []), full_refresh=full_refresh,
                              backfill=(start, end) if backfill and start and end else None,
                              backfill_param=param, retries=retries,
                              progress=lambda m: err_console.print(m, style="dim", highlight=False,
                                                                                  markup=False))
        code = 0
    except PipelineError as exc:
        if exc.report is None:
            raise
        report, code = exc.report, 1
    rows = [{"step": s.step, "status": s.status, "why": s.reason, "attempts": s.attempts, "seconds": s.seconds}
            for s in report.steps]
    if as_json:
        print_json(report.as_dict())
    else:
        print_table(rows, ["step", "status", "why", "attempts", "seconds"], title=f"pipeline run {report.run_id}")
        if code:
            console.print("[red]some steps failed[/]: `lake pipeline status` shows each step's run")
    return code


@app.command("status")
def status(ctx: typer.Context, run_id: Annotated[str | None, typer.Argument(help="A pipeline run.")] = None,
           as_json: JsonOpt = False) -> None:
    """The last pipeline run (or RUN_ID) and each step's run: status, duration, error."""
    from lake.orchestrate.run import pipeline_status  # deferred

    info = pipeline_status(state(ctx).lake(), run_id)
    if as_json:
        print_json(info)
        return
    run = info["run"]
    console.print(f"[bold]pipeline[/] run {run['run_id']}: {run['status']} "
                  f"({run['duration_s'] if run['duration_s'] is not None else '-'} s)")
    print_table([{"step": s["job"], "status": s["status"], "started": s["started_at"], "seconds": s["duration_s"],
                  "error": (s["error"] or "")[:120]} for s in info["steps"]],
                ["step", "status", "started", "seconds", "error"])
