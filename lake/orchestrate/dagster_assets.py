"""The lake's pipeline as Dagster software-defined assets, sensors and a schedule.

No scheduler of the lake's own: Dagster runs the same plan as ``lake pipeline run``
(:mod:`lake.orchestrate.plan`). Each job's target table is an asset keyed by its lake name
(``bronze.stocks`` -> ``["bronze", "stocks"]``), each online feature view an asset
``["feature", view]``, each declared drift check an asset ``["monitor", name]``; the
dependencies are the tables each reads. Materializing an asset runs the step through the
lake (one catalog run, the Delta commit, the quality gate), and reports the Delta version,
rows and run id as metadata. Freshness comes from the lake: an asset check per table reads
the age of its last commit from the Delta log.

Sensors: ``lake_landing_files`` requests the ingest assets whose sources have files not yet
ingested; ``lake_drift_retrain`` requests the assets a monitor names in ``retrain`` when a
drift report for its table appears in the catalog. The schedule ``lake_pipeline_daily``
materializes everything once a day.

A Dagster code location (``dagster dev -m lake.orchestrate.dagster_assets``) loads
:data:`defs` from the lake's settings.
"""

# No `from __future__ import annotations`: Dagster reads the context parameter's annotation as a type.
import datetime as dt
import json
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext, SensorEvaluationContext

from lake import delta_log
from lake.config import load_settings
from lake.lakehouse import Lake
from lake.orchestrate.plan import Plan, Step, build_plan, staleness
from lake.orchestrate.run import PipelineRunner
from lake.pipeline.spec import FileSource

DEFAULT_MAX_AGE_HOURS = 24.0


def asset_key(step: Step) -> dg.AssetKey:
    """The asset of a step: a job's target table, ``feature/<view>`` or ``monitor/<name>``."""
    if step.kind == "job":
        return dg.AssetKey(step.outputs[0].split("."))
    return dg.AssetKey(["feature" if step.kind == "features" else "monitor", step.name])


def _table_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def _commit_age_hours(lake: Lake, table: str) -> float | None:
    t = lake.table(table)
    if not t.exists():
        return None
    info = delta_log.commit_info(t.storage, t.uri, t.version()) or {}
    stamp = info.get("timestamp")
    if stamp is None:
        return None
    return (dt.datetime.now(dt.UTC).timestamp() * 1000 - stamp) / 3_600_000


def _asset(lake: Lake, plan: Plan, runner: PipelineRunner, step: Step, produced: set[str]) -> dg.AssetsDefinition:
    key = asset_key(step)
    deps = [_table_key(t) for t in step.inputs]
    description = (step.job.description if step.job is not None else None) or f"{step.kind} {step.name}"

    @dg.asset(key=key, deps=deps, description=description, group_name=step.kind.replace("features", "feature"),
              kinds={"delta"} if step.kind == "job" else None,
              metadata={"lake_step": step.key, "lake_reads": ", ".join(step.inputs),
                        "lake_writes": ", ".join(step.outputs)})
    def materialize(context: AssetExecutionContext) -> dg.MaterializeResult:
        result = runner.run_step(step, force=True)
        if result.status != "ran":
            raise dg.Failure(description=f"{step.key} {result.status}: {result.reason}",
                             metadata={"attempts": result.attempts})
        meta: dict[str, Any] = {"attempts": result.attempts, "seconds": result.seconds}
        meta.update({k: v for k, v in result.detail.items() if isinstance(v, str | int | float) and v is not None})
        if step.kind == "job":
            table = lake.table(step.outputs[0])
            meta["delta_version"] = table.version()
            meta["location"] = table.uri
        context.log.info(f"{step.key}: {json.dumps(result.detail, default=str)}")
        return dg.MaterializeResult(metadata=meta)

    return materialize


def _freshness_check(lake: Lake, step: Step, max_age_hours: float) -> dg.AssetChecksDefinition:
    key = asset_key(step)
    table = step.outputs[0]

    @dg.asset_check(asset=key, name="lake_fresh",
                    description=f"the last commit to {table} is at most {max_age_hours:g} hours old (from its Delta log)")
    def fresh() -> dg.AssetCheckResult:
        age = _commit_age_hours(lake, table)
        if age is None:
            return dg.AssetCheckResult(passed=False, metadata={"reason": f"{table} has no commit yet"})
        return dg.AssetCheckResult(passed=age <= max_age_hours,
                                   metadata={"age_hours": round(age, 3), "age_seconds": round(age * 3600, 3),
                                             "max_age_hours": max_age_hours})

    return fresh


def build_definitions(lake: Lake | None = None, *, max_age_hours: float = DEFAULT_MAX_AGE_HOURS) -> dg.Definitions:
    """Assets, checks, sensors and a schedule for the lake's plan (see the module doc)."""
    lake = lake or Lake(load_settings())
    plan = build_plan(lake)
    runner = PipelineRunner(lake, plan)
    produced = {t for s in plan.steps for t in s.outputs}
    assets: list[Any] = [_asset(lake, plan, runner, step, produced) for step in plan.steps]
    external = sorted({t for s in plan.steps for t in s.inputs} - produced)
    assets += [dg.AssetSpec(_table_key(t), description=f"lake table {t} (written outside the pipeline)",
                            group_name="external") for t in external]
    checks = [_freshness_check(lake, s, max_age_hours) for s in plan.steps if s.kind == "job"]
    everything = dg.define_asset_job("lake_pipeline", selection=dg.AssetSelection.all() -
                                     dg.AssetSelection.groups("external"))

    @dg.sensor(name="lake_landing_files", minimum_interval_seconds=60, asset_selection=dg.AssetSelection.all())
    def landing_files(context: SensorEvaluationContext) -> Any:
        requests = []
        for step in plan.steps:
            if step.kind == "job" and step.job is not None and isinstance(step.job.source, FileSource):
                check = staleness(lake, step, plan.project)
                if check.stale:
                    requests.append(dg.RunRequest(run_key=f"{step.name}:{check.reason}:{_latest(lake, step)}",
                                                  asset_selection=[asset_key(step)]))
        return requests or dg.SkipReason("no new files in any landing folder")

    @dg.sensor(name="lake_drift_retrain", minimum_interval_seconds=300, asset_selection=dg.AssetSelection.all())
    def drift_retrain(context: SensorEvaluationContext) -> Any:
        seen = context.cursor or ""
        requests, newest = [], seen
        for step in plan.steps:
            monitor = step.monitor
            if monitor is None or not monitor.retrain:
                continue
            for report in lake.catalog.reports(dataset=lake.table(monitor.current).name, kind="drift", limit=5):
                created = str(report.get("created_at"))
                if created <= seen or report.get("status") != "drift":
                    continue
                newest = max(newest, created)
                keys = [asset_key(plan.step(name)) for name in monitor.retrain]
                requests.append(dg.RunRequest(run_key=f"retrain:{monitor.name}:{report.get('id')}",
                                              asset_selection=keys, tags={"lake/monitor": monitor.name}))
        context.update_cursor(newest)
        return requests or dg.SkipReason("no new drift reports")

    daily = dg.ScheduleDefinition(name="lake_pipeline_daily", job=everything, cron_schedule="0 2 * * *")
    return dg.Definitions(assets=assets, asset_checks=checks, jobs=[everything], sensors=[landing_files, drift_retrain],
                          schedules=[daily])


def _latest(lake: Lake, step: Step) -> int:
    table = lake.table(step.outputs[0])
    return table.version() if table.exists() else -1


def __getattr__(name: str) -> Any:
    # ``defs`` (what ``dagster dev -m`` loads) is built on first access, from the lake's settings.
    if name == "defs":
        return build_definitions()
    raise AttributeError(name)
