"""Every commit and read of the lake, recorded in the catalog inside a run.

Inside ``with lake.run("job"):`` every table read becomes an input of that run (at
the exact version read) and every commit an output (at the committed version), so
lineage and "which data built which version" come for free. A commit outside any
run gets a run of its own (job ``lake.<operation>.<table>``).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from catalog.entities import ColumnSpec, VersionRecord
from catalog.openlineage import Emitter
from catalog.store import Catalog, RunContext
from lake import delta_log
from lake.config import Settings
from lake.results import CommitResult

if TYPE_CHECKING:
    from lake.lakehouse import Lake
    from lake.table import Table

_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("lake_run", default=None)


@functools.cache
def code_version() -> str | None:
    """The git commit of the working directory's repository, when there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def current_run() -> RunContext | None:
    """The run the calling code is inside, if any."""
    return _current.get()


def open_catalog(settings: Settings) -> Catalog:
    """The catalog the settings name, with their OpenLineage transports."""
    lineage_file = settings.catalog.lineage_file
    if lineage_file is None and not settings.is_s3:
        lineage_file = str(Path(settings.root_uri) / "openlineage.jsonl")
    emitter = Emitter(file=lineage_file, url=settings.catalog.openlineage_url)
    return Catalog(settings.catalog_url, namespace=settings.catalog.namespace, emitter=emitter)


def columns_of(schema: pa.Schema) -> list[ColumnSpec]:
    return [ColumnSpec(f.name, str(f.type), f.nullable) for f in schema]


def version_record(table: Table, result: CommitResult) -> VersionRecord:
    """What the catalog keeps about a committed version: schema, rows, bytes, files."""
    assert result.version is not None
    delta = table.delta(result.version)
    files = pa.table(delta.get_add_actions(flatten=False))
    rows = files.column("num_records").to_pylist() if files.num_rows else []
    sizes = files.column("size_bytes").to_pylist() if files.num_rows else []
    info = delta_log.commit_info(table.storage, table.uri, result.version) or {}
    committed = dt.datetime.fromtimestamp(info["timestamp"] / 1000, dt.UTC) if info.get("timestamp") else None
    return VersionRecord(
        version=result.version,
        columns=columns_of(pa.schema(delta.schema().to_arrow())),
        committed_at=committed,
        operation=result.operation,
        row_count=int(sum(r or 0 for r in rows)),
        size_bytes=int(sum(sizes)),
        file_count=files.num_rows,
        metrics={k: v for k, v in result.metrics.items() if isinstance(v, int | float | str)},
    )


class Recorder:
    """Connects a lake to its catalog (installed by :class:`lake.lakehouse.Lake`)."""

    def __init__(self, lake: Lake, catalog: Catalog) -> None:
        self.lake = lake
        self.catalog = catalog

    def committed(self, table: Table, result: CommitResult) -> None:
        if result.skipped or result.version is None or result.operation == "VACUUM" or table.name.startswith("_"):
            return  # system tables (the ingest ledger) are bookkeeping, not datasets
        record = version_record(table, result)
        run = current_run()
        if run is not None:
            self.catalog.record_version(table.name, record, run_id=run.run_id, location=table.uri, format="delta")
            return
        run_id = self.catalog.start_run(f"lake.{result.operation.lower()}.{table.name}", code_version=code_version())
        try:
            self.catalog.record_version(table.name, record, run_id=run_id, location=table.uri, format="delta")
        except BaseException as exc:
            self.catalog.finish_run(run_id, "failed", error=str(exc))
            raise
        self.catalog.finish_run(run_id, "completed", stats={"rows_written": result.metrics.get("rows_written")})

    def read(self, table: Table, version: int) -> None:
        run = current_run()
        if run is not None and not table.name.startswith("_"):
            self.catalog.add_input(run.run_id, table.name, version, location=table.uri, format="delta")

    @contextlib.contextmanager
    def run(self, job: str, **kwargs: Any) -> Iterator[RunContext]:
        kwargs.setdefault("code_version", code_version())
        with self.catalog.run(job, **kwargs) as ctx:
            token = _current.set(ctx)
            try:
                yield ctx
            finally:
                _current.reset(token)
