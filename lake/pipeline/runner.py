"""Running a job: one catalog run, one numbered batch, atomic commits, an exact report."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from lake.errors import LakeError
from lake.lakehouse import Lake
from lake.pipeline import ledger
from lake.pipeline.spec import FileSource, Job, SqlSource, TableSource
from lake.results import CommitResult
from lake.spark_io import _commit
from lake.table import Table

Progress = Callable[[str], None]


class JobError(LakeError):
    """A job could not run; nothing was committed (the message says why and where)."""


@dataclass
class RunReport:
    """What one run of a job did."""

    job: str
    run_id: str | None
    batch: int
    status: str = "completed"
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    files: int = 0
    version: int | None = None
    quarantine_version: int | None = None
    skipped: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quarantine_name(target: str) -> str:
    """``bronze.orders`` -> ``quarantine.bronze_orders``."""
    return "quarantine." + target.replace(".", "_")


def commit_files(
    table: Table,
    infos: list[dict[str, Any]],
    schema: pa.Schema,
    partition_by: list[str],
    *,
    mode: str,
    txn: tuple[str, int],
    operation: str,
    metrics: dict[str, Any],
    removes: list[str] = (),  # type: ignore[assignment]
) -> CommitResult:
    """Commit Parquet files the executors wrote into ``table`` (created if needed), once."""
    base: DeltaTable | None = table.delta() if table.exists() else None
    if base is not None:
        done = base.transaction_version(txn[0])
        if done is not None and done >= txn[1]:
            return CommitResult(table.name, "SKIPPED", int(base.version()), skipped=True)
        if table.schema().names != schema.names:
            fit = table.check_fit(schema, "merge")
            schema = fit.target
    remove_rows = []
    if removes and base is not None:
        from lake.spark_io import table_files

        wanted = set(removes)
        remove_rows = [f for f in table_files(base) if f["path"] in wanted]
    for info in infos:
        if isinstance(info["partition_values"], str):
            import json

            info["partition_values"] = json.loads(info["partition_values"])
    result = _commit(table, base, infos, remove_rows, schema, partition_by,
                     mode="overwrite" if mode == "overwrite" and base is not None else "append",
                     operation=operation if base is not None else "CREATE", txn=txn, metrics=metrics)
    table.lake.committed(table, result)
    return result


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
        merged = {**job.params, **(params or {})}
        state = ledger.load(self.lake, job.name)
        batch = state.last_batch + 1
        run_params = {"batch": batch, "full_refresh": full_refresh, **merged}
        report = RunReport(job.name, None, batch)
        with self.lake.run(job.name, parameters=run_params, description=job.description) as run:
            report.run_id = run.run_id
            if isinstance(job.source, FileSource):
                from lake.pipeline.files import run_files

                entries = run_files(self, job, state, batch, full_refresh, report, run)
            elif isinstance(job.source, SqlSource):
                from lake.pipeline.sqlsource import run_sql

                entries = run_sql(self, job, state, batch, full_refresh, report, run, merged)
            elif isinstance(job.source, TableSource):
                from lake.pipeline.transform import run_transform

                entries = run_transform(self, job, batch, full_refresh, report, merged)
            else:  # pragma: no cover - the spec types are closed
                raise JobError(f"job {job.name}: unknown source {type(job.source).__name__}")
            ledger.record(self.lake, job.name, batch, entries)
            run.stats.update(rows_read=report.rows_read, rows_written=report.rows_written,
                             rows_quarantined=report.rows_quarantined, files=report.files, batch=batch)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def write_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def suite(self, job: Job) -> Any:
        """The expectation suite guarding the job's target, if any."""
        from lake.pipeline.registry import jobs_folder
        from lake.quality.apply import suite_for

        base = None
        if job.quality:
            base = jobs_folder(self.lake.settings.jobs_dir)
        return suite_for(self.lake, self.lake.table(job.target).name, job.quality, base)

    def gate_failed(self, job: Job, report: RunReport, exc: Any) -> None:
        """A failed gate: record the result (no version was committed) and mark the run's output."""
        from lake.quality.apply import record

        if exc.report is not None:
            record(self.lake, exc.report, self.lake.table(job.target).name, None, report.run_id)
        if report.run_id:
            self.lake.catalog.add_output(report.run_id, self.lake.table(job.target).name)
