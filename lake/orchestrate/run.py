"""Running the plan: stale steps only, upstream first, retried with backoff, under one parent run."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from lake.errors import (
    CatalogUnavailableError,
    ConcurrentWriteError,
    LakeError,
    PipelineError,
    SparkError,
    StorageError,
)
from lake.features.materialize import materialize
from lake.lakehouse import Lake
from lake.monitor.hooks import drift_payload, run_hook
from lake.monitor.report import drift_report
from lake.orchestrate.plan import MONITOR_JOB, Plan, Step, build_plan, staleness
from lake.pipeline.runner import JobRunner

PIPELINE_JOB = "pipeline"
"""Catalog job name of a pipeline run (the parent of its steps' runs)."""
TRANSIENT = (CatalogUnavailableError, ConcurrentWriteError, SparkError, StorageError, ConnectionError, TimeoutError)
"""Failures worth a retry; anything else (a schema change, a quality gate) fails at once."""
Progress = Callable[[str], None]


@dataclass
class StepResult:
    """What one step did in a pipeline run."""

    step: str
    status: str
    """``ran``, ``skipped`` (not stale), ``failed`` or ``blocked`` (an upstream step failed)."""
    reason: str = ""
    attempts: int = 0
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineReport:
    run_id: str | None
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(s.status in ("ran", "skipped") for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ok": self.ok, "steps": [asdict(s) for s in self.steps]}


def dates(start: str, end: str) -> list[str]:
    """Every day from ``start`` to ``end`` inclusive (ISO dates)."""
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        raise LakeError(f"--from/--to take ISO dates (2024-05-01), not {start!r}/{end!r}") from None
    if last < first:
        raise LakeError(f"--to {end} is before --from {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


class PipelineRunner:
    """Runs a plan's stale steps (see :func:`run_pipeline`)."""

    def __init__(self, lake: Lake, plan: Plan, *, spark: Any | None = None, retries: int = 2,
                 backoff: float = 2.0, progress: Progress | None = None) -> None:
        self.lake = lake
        self.plan = plan
        self.jobs = JobRunner(lake, spark=spark, progress=progress)
        self.retries = retries
        self.backoff = backoff
        self.progress = progress or (lambda message: None)

    def run_step(self, step: Step, *, full_refresh: bool = False, params: dict[str, str] | None = None,
                 force: bool = False) -> StepResult:
        """One step, when stale (or ``force``), retried on transient failures."""
        check = staleness(self.lake, step, self.plan.project)
        if not (force or full_refresh or check.stale):
            return StepResult(step.key, "skipped", check.reason)
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                detail = self._execute(step, full_refresh=full_refresh, params=params or {})
                return StepResult(step.key, "ran", check.reason, attempt, round(time.perf_counter() - started, 3),
                                  detail)
            except TRANSIENT as exc:
                if attempt > self.retries:
                    return StepResult(step.key, "failed", _short(exc), attempt,
                                      round(time.perf_counter() - started, 3))
                wait = self.backoff * 2 ** (attempt - 1)
                self.progress(f"{step.key}: {_short(exc)}; retrying in {wait:g} s")
                time.sleep(wait)
            except LakeError as exc:
                return StepResult(step.key, "failed", _short(exc), attempt, round(time.perf_counter() - started, 3))

    def _execute(self, step: Step, *, full_refresh: bool, params: dict[str, str]) -> dict[str, Any]:
        if step.kind == "job":
            assert step.job is not None
            done = self.jobs.run(step.job, full_refresh=full_refresh, params=params)
            return {"version": done.version, "rows_written": done.rows_written,
                    "rows_quarantined": done.rows_quarantined, "run_id": done.run_id}
        if step.kind == "features":
            (result,) = materialize(self.lake, [step.name], incremental=not full_refresh)
            return {"mode": result.mode, "written": result.written, "version": result.version}
        monitor = step.monitor
        assert monitor is not None
        report = drift_report(self.lake, monitor.reference, monitor.current, since=monitor.since,
                              time_column=monitor.time_column, columns=list(monitor.columns) or None,
                              thresholds=dict(monitor.thresholds) or None, job=MONITOR_JOB + monitor.name)
        detail: dict[str, Any] = {"status": report.status, "report_id": report.report_id}
        if monitor.on_drift and report.failed("drift"):
            hook = run_hook(monitor.on_drift, drift_payload(report, monitor=monitor.name))
            detail["hook"] = {"target": hook.target, "ok": hook.ok, "detail": hook.detail}
        return detail


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def run_pipeline(
    lake: Lake,
    targets: list[str] | None = None,
    *,
    plan: Plan | None = None,
    full_refresh: bool = False,
    backfill: tuple[str, str] | None = None,
    backfill_param: str = "day",
    retries: int = 2,
    backoff: float = 2.0,
    spark: Any | None = None,
    progress: Progress | None = None,
) -> PipelineReport:
    """Run the stale steps of the plan (or of ``targets`` and what they need), upstream first.

    Every step's run is a child of one ``pipeline`` run in the catalog. A failed step blocks
    the steps downstream of it; the others go on. ``backfill=(from, to)`` runs each job that
    has the parameter ``backfill_param`` once per day of the range (forced), then the rest.
    """
    plan = plan or build_plan(lake)
    steps = plan.select(targets or [])
    runner = PipelineRunner(lake, plan, spark=spark, retries=retries, backoff=backoff, progress=progress)
    results: list[StepResult] = []
    failed_outputs: set[str] = set()
    parameters = {"targets": targets or [], "full_refresh": full_refresh,
                  **({"backfill": list(backfill)} if backfill else {})}
    with lake.run(PIPELINE_JOB, parameters=parameters) as parent:
        for step in steps:
            blocked = set(step.inputs) & failed_outputs
            if blocked:
                results.append(StepResult(step.key, "blocked", f"upstream failed: {', '.join(sorted(blocked))}"))
                failed_outputs |= set(step.outputs)
                continue
            (progress or (lambda m: None))(f"{step.key} ...")
            if backfill and step.kind == "job" and step.job is not None and backfill_param in step.job.params:
                day_results = [runner.run_step(step, params={backfill_param: day}, force=True)
                               for day in dates(*backfill)]
                bad = [r for r in day_results if r.status == "failed"]
                result = StepResult(step.key, "failed" if bad else "ran",
                                    bad[0].reason if bad else f"backfilled {len(day_results)} day(s)",
                                    sum(r.attempts for r in day_results), round(sum(r.seconds for r in day_results), 3),
                                    {"days": len(day_results)})
            else:
                result = runner.run_step(step, full_refresh=full_refresh)
            results.append(result)
            if result.status == "failed":
                failed_outputs |= set(step.outputs)
        parent.stats.update(steps=len(results), ran=sum(r.status == "ran" for r in results),
                            failed=sum(r.status in ("failed", "blocked") for r in results))
        report = PipelineReport(parent.run_id, results)
        if not report.ok:
            bad = [s for s in report.steps if s.status in ("failed", "blocked")]
            raise PipelineError("pipeline: " + "; ".join(f"{s.step} {s.status}: {s.reason}" for s in bad),
                                report=report, run=report.run_id)
    return report


def pipeline_status(lake: Lake, run_id: str | None = None) -> dict[str, Any]:
    """The last (or a given) pipeline run and each of its steps' runs."""
    if run_id is None:
        runs = lake.catalog.runs(job=PIPELINE_JOB, limit=1)
        if not runs:
            raise LakeError("no pipeline has run yet; `lake pipeline run` starts one")
        run_id = runs[0]["run_id"]
    parent = lake.catalog.run_info(run_id)
    children = lake.catalog.runs(parent=run_id, limit=1000)
    return {"run": parent, "steps": list(reversed(children))}
