"""Running a job: one catalog run, one numbered batch, atomic commits, an exact report."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from catalog.access import AuditEntry, Policy, write_audit
from lake import metrics
from lake.errors import JobError, LakeError
from lake.lakehouse import Lake
from lake.pipeline import ledger
from lake.pipeline.context import Progress, RunReport, SourceRun
from lake.pipeline.sources import runner_for
from lake.pipeline.spec import Job
from lake.spark import spark_error

__all__ = ["JobError", "JobRunner", "RunReport", "authorize"]


def authorize(lake: Lake, job: Job) -> None:
    """Once principals exist, the job's service account needs write on its target and read on its inputs.

    The decision is audited. An embedded lake without principals runs every job (whoever can
    write the files and the catalog can do anything anyway; see SECURITY.md).

    Raises:
        JobError: no service account is named, or it lacks a grant.
    """
    if lake.recorder is None:
        return
    policy = Policy(lake.catalog, cache_seconds=0)
    if not policy.enforced():
        return
    who = job.principal or lake.settings.service.job_principal
    if not who:
        raise JobError(f"job {job.name}: principals are defined, so a job runs as a service account: set "
                       "`principal:` in its spec or [service] job_principal", job=job.name)
    needs = [("write", job.target)] + [("read", t) for t in getattr(job.source, "tables", ())]
    missing = [f"{action} on {obj}" for action, obj in needs if not policy.allows(who, action, obj)]
    with lake.catalog.writing() as s:
        write_audit(s, [AuditEntry(who, "job", job.target, "denied" if missing else "allowed",
                                   detail=f"job {job.name}" + (f": no {', '.join(missing)}" if missing else ""))])
    if missing:
        raise JobError(f"job {job.name}: {who} lacks {', '.join(missing)}; an owner grants it with "
                       f"`lake grant ... --to {who}`", job=job.name)


class JobRunner:
    """Runs declared jobs against a lake (locally or on the cluster the Spark session reaches)."""

    def __init__(self, lake: Lake, *, spark: Any | None = None, progress: Progress | None = None) -> None:
        self.lake = lake
        self._spark = spark
        self.progress = progress or (lambda message: None)

    @property
    def spark(self) -> Any:
        if self._spark is None:
            self._spark = self.lake.spark(app_name="lake-jobs")
        return self._spark

    def run(self, job: Job, *, full_refresh: bool = False, params: Mapping[str, str] | None = None) -> RunReport:
        """Run ``job`` once as a catalog run; see :class:`RunReport`."""
        started = time.perf_counter()
        authorize(self.lake, job)
        merged = {**job.params, **(params or {})}
        state = ledger.load(self.lake, job.name)
        batch = state.last_batch + 1
        run_params = {"batch": batch, "full_refresh": full_refresh, **merged}
        report = RunReport(job.name, None, batch)
        source_runner = runner_for(job.source)
        try:
            with self.lake.run(job.name, parameters=run_params, description=job.description) as run:
                report.run_id = run.run_id
                ctx = SourceRun(self.lake, job, state, batch, full_refresh, merged, report, run,
                                lambda: self.spark, self.progress)
                try:
                    entries = source_runner(ctx)
                except Exception as exc:  # a Spark failure is its cause and a hint, here and on the run
                    short = spark_error(exc)
                    if short is None:
                        raise
                    raise short from None
                if entries or not report.skipped:  # a run with nothing to do uses up no batch number
                    ledger.record(self.lake, job.name, batch, entries)
                run.stats.update(rows_read=report.rows_read, rows_written=report.rows_written,
                                 rows_quarantined=report.rows_quarantined, files=report.files, batch=batch)
        except BaseException:
            report.status = "failed"
            raise
        finally:
            report.seconds = round(time.perf_counter() - started, 3)
            self._measure(report)
        if job.description and report.version is not None:
            self._describe_target(job)
        return report

    def _describe_target(self, job: Job) -> None:
        """The job's description becomes its target table's in the catalog, unless the table has one."""
        try:
            catalog = self.lake.catalog
            if not catalog.show(job.target).get("description"):
                catalog.describe(job.target, job.description or "")
        except LakeError:
            pass  # a description is not worth failing a committed run over

    def _measure(self, report: RunReport) -> None:
        """The run in the lake's metrics, published for Prometheus (see :mod:`lake.metrics`)."""
        outcome = report.status if report.status == "failed" else "skipped" if report.skipped else "completed"
        metrics.JOB_RUNS.labels(report.job, outcome).inc()
        metrics.JOB_SECONDS.labels(report.job).observe(report.seconds)
        for kind, rows in (("read", report.rows_read), ("written", report.rows_written),
                           ("quarantined", report.rows_quarantined)):
            metrics.JOB_ROWS.labels(report.job, kind).inc(rows)
        if outcome != "failed":
            metrics.JOB_LAST_SUCCESS.labels(report.job).set_to_current_time()
        settings = self.lake.settings.metrics
        metrics.publish(settings.pushgateway, settings.textfile)
