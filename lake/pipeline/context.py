"""What every source runner gets and returns: one signature for files, SQL and lake tables.

A source runner is ``run(ctx: SourceRun) -> list[ledger entries]``: it reads its source
(new files, rows above a watermark, lake tables), has the executors write Parquet files
of the target, and commits them with :func:`commit_files` (or a table write). The runners
are registered by source kind in :mod:`lake.pipeline.sources`.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from catalog.store import RunContext
from lake.errors import JobError
from lake.lakehouse import Lake
from lake.pipeline.ledger import JobState
from lake.pipeline.registry import jobs_folder
from lake.pipeline.spec import Job
from lake.quality.apply import SuiteGate, suite_for
from lake.results import CommitResult
from lake.spark_io import table_files
from lake.table import Table
from lake.transaction import DataFile, Transaction

Progress = Callable[[str], None]
"""Told what a run is doing: a message, or a :class:`FilesProgress` (a message too) while files are parsed."""


class FilesProgress(str):
    """How far an ingest is: files parsed of those to ingest, rows they held. A message as well
    (``3/10 file(s) parsed, 1,200 rows read``), so any :data:`Progress` callback can print it."""

    files_done: int
    files: int
    rows: int

    def __new__(cls, files_done: int, files: int, rows: int) -> FilesProgress:
        self = super().__new__(cls, f"{files_done}/{files} file(s) parsed, {rows:,} rows read")
        self.files_done, self.files, self.rows = files_done, files, rows
        return self


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


@dataclass
class SourceRun:
    """One run of one job, as its source runner sees it."""

    lake: Lake
    job: Job
    state: JobState
    """What the job ingested before (files, watermark, last batch)."""
    batch: int
    full_refresh: bool
    params: Mapping[str, str]
    report: RunReport
    run: RunContext
    spark_session: Callable[[], Any]
    progress: Progress

    @property
    def spark(self) -> Any:
        return self.spark_session()

    @property
    def txn(self) -> tuple[str, int]:
        """The app transaction every commit of this run carries: ``(job:<name>, batch)``."""
        return (f"job:{self.job.name}", self.batch)

    @property
    def target(self) -> Table:
        return self.lake.table(self.job.target)

    def write_id(self) -> str:
        return uuid.uuid4().hex[:12]

    def gate(self) -> SuiteGate | None:
        """The quality gate guarding the job's target, if a suite declares one."""
        base = jobs_folder(self.lake.settings.jobs_dir) if self.job.quality else None
        suite = suite_for(self.lake.settings.quality_dir, self.target.name, self.job.quality, base)
        return SuiteGate(suite) if suite is not None else None

    def transaction(self, table: Table | None = None, *, gated: bool = True) -> Transaction:
        """A transaction on the target (or ``table``) with this run's app txn (and gate)."""
        table = table or self.target
        return Transaction(table, txn=self.txn, gate=self.gate() if gated else None, job=self.job.name,
                           batch=self.batch)


def render_sql(template: str, params: Mapping[str, str], quote: Callable[[str], str], *, job: str) -> str:
    """A job's SQL with its ``{name}`` parameters filled in as SQL literals, never as SQL text.

    A placeholder inside a quoted string (``'{day}'``) gets the value escaped for that string;
    anywhere else it becomes a whole literal. ``quote`` is the dialect's literal quoting
    (``lake.duck.literal`` for ANSI databases, ``lake.spark_io.spark_literal`` for Spark).
    """
    out: list[str] = []
    in_string = False
    for text, name, spec, conversion in string.Formatter().parse(template):
        for ch in text:
            if ch == "'":
                in_string = not in_string
        out.append(text)
        if name is None:
            continue
        if name not in params:
            raise JobError(f"job {job}: its SQL uses the parameter {{{name}}} that was not given (--param)", job=job)
        if spec or conversion:
            raise JobError(f"job {job}: parameter {{{name}}} takes no format spec in SQL", job=job)
        value = quote(str(params[name]))
        out.append(value[1:-1] if in_string else value)
    return "".join(out)


def commit_files(
    tx: Transaction,
    files: list[DataFile],
    schema: pa.Schema,
    partition_by: list[str],
    *,
    overwrite: bool,
    metrics: dict[str, Any],
    removes: list[str] = (),  # type: ignore[assignment]
) -> CommitResult:
    """Commit Parquet files the executors wrote into the transaction's table (created if needed).

    The gate (if any) checks them first; ``removes`` names data files (relative paths)
    the commit drops (a source file delivered again replaces its rows).
    """
    table = tx.table
    if tx.skipped:
        return tx.skipped
    base = tx.base
    if base is not None and pa.schema(base.schema().to_arrow()).names != schema.names:
        schema = table.check_fit(schema, "merge", pa.schema(base.schema().to_arrow())).target
    files = tx.gate_files(files, schema, partition_by)
    if tx.quality is not None:
        quarantined = int(tx.quality.get("rows_quarantined") or 0)
        metrics = {**metrics, "rows_written": int(metrics.get("rows_written", 0)) - quarantined,
                   "files_added": len(files)}
    if removes and base is not None:
        wanted = set(removes)
        tx.remove_files([f for f in table_files(base) if f["path"] in wanted])
    tx.add_files(files)
    overwrite = overwrite and base is not None
    tx.set_schema(schema, partition_by, overwrite=overwrite)
    return tx.commit("CREATE" if base is None else "OVERWRITE" if overwrite else "APPEND", metrics=metrics)
