"""The lake's journal in the catalog: every commit and read, recorded inside a run.

Inside ``with lake.run("job"):`` every table read becomes an input of that run (at
the exact version read) and every commit an output (at the committed version), so
lineage and "which data built which version" come for free. A commit outside any
run gets a run of its own (job ``lake.<operation>.<table>``).

**A commit and its catalog record never silently diverge.** The Delta log is the truth,
and every commit the lake makes carries its run id, operation, metrics and quality
result in its commit info. Before each commit the recorder checks that the catalog is
reachable (if not, nothing is committed) and records every version of the table the log
has and the catalog lacks (:meth:`Recorder.repair`, also run by ``lake catalog repair``).
A commit whose record failed afterwards is therefore recorded by the next write to the
table, with the run that made it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import logging
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from catalog.entities import ColumnSpec, VersionRecord
from lake import delta_log, pending
from lake.config import Settings
from lake.errors import CatalogConnectionError, CatalogUnavailableError
from lake.location import JournalStart, TableLocation
from lake.naming import is_system
from lake.results import CommitResult, normalize_metrics

if TYPE_CHECKING:  # the catalog (SQLAlchemy, Alembic) loads when first opened: `lake sql` may never need it
    from catalog.store import Catalog, RunContext

log = logging.getLogger(__name__)

_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("lake_run", default=None)
CommitListener = Callable[[TableLocation, CommitResult], None]
AUTO_RUN_PREFIX = "lake."
"""A commit outside any run gets a run of its own, job ``lake.<operation>.<table>``."""


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
    # heavy: SQLAlchemy, Alembic and the OpenLineage client load on first use of the catalog
    from catalog.openlineage import Emitter
    from catalog.store import Catalog

    lineage_file = settings.catalog.lineage_file
    if lineage_file is None and not settings.is_s3:
        lineage_file = str(Path(settings.root_uri) / "openlineage.jsonl")
    emitter = Emitter(file=lineage_file, url=settings.catalog.openlineage_url)
    return Catalog(settings.catalog_url, namespace=settings.catalog.namespace, emitter=emitter,
                   heartbeat_interval=settings.catalog.heartbeat_seconds,
                   stale_after=settings.catalog.stale_after_seconds)


def columns_of(schema: pa.Schema) -> list[ColumnSpec]:
    return [ColumnSpec(f.name, str(f.type), f.nullable) for f in schema]


def version_record(table: TableLocation, version: int, operation: str | None = None,
                   metrics: dict[str, Any] | None = None) -> VersionRecord:
    """What the catalog keeps about a committed version: schema, rows, bytes, files."""
    delta = table.delta(version)
    files = pa.table(delta.get_add_actions(flatten=False))
    rows = files.column("num_records").to_pylist() if files.num_rows else []
    sizes = files.column("size_bytes").to_pylist() if files.num_rows else []
    info = delta_log.commit_info(table.storage, table.uri, version) or {}
    committed = dt.datetime.fromtimestamp(info["timestamp"] / 1000, dt.UTC) if info.get("timestamp") else None
    if metrics is None:
        raw = dict(info.get("operationMetrics") or {})
        raw.update(info.get("lake.metrics") or {})
        metrics = normalize_metrics(raw)
    return VersionRecord(
        version=version,
        columns=columns_of(pa.schema(delta.schema().to_arrow())),
        committed_at=committed,
        operation=operation or info.get("lake.operation") or info.get("operation"),
        row_count=int(sum(r or 0 for r in rows)),
        size_bytes=int(sum(sizes)),
        file_count=files.num_rows,
        metrics={k: v for k, v in metrics.items() if isinstance(v, int | float | str)},
    )


def missing_versions(known: set[int], latest: int) -> list[int]:
    """The versions up to ``latest`` the catalog should know and does not.

    Every version from the first one the catalog knows; for a table the catalog has
    never seen, only the latest (history made before the lake met the table is not
    back-filled).
    """
    if not known:
        return [latest]
    return [v for v in range(min(known), latest + 1) if v not in known]


class Recorder:
    """The journal of a lake: records commits and reads in the catalog and tells listeners.

    Args:
        catalog: returns the catalog (opened on first use), or None to record nothing.
        listeners: called with ``(table, result)`` after every commit.
    """

    def __init__(self, catalog: Callable[[], Catalog | None], listeners: list[CommitListener] | None = None) -> None:
        self._catalog = catalog
        self.listeners: list[CommitListener] = listeners if listeners is not None else []
        self._unfinished: list[tuple[str, str, str | None, dict[str, Any]]] = []
        """Runs whose end the catalog could not take (it was down): ended at its next use."""

    @property
    def catalog(self) -> Catalog | None:
        return self._catalog()

    # ------------------------------------------------------------ the journal

    def begin(self, table: TableLocation, latest: int | None) -> JournalStart:
        catalog = self.catalog
        if catalog is None or is_system(table.name):
            return JournalStart()
        run = current_run()
        run_id = run.run_id if run is not None else str(uuid.uuid4())
        try:
            self.finish_unfinished(catalog)
            known = catalog.recorded_versions(table.name)
            # Markers stay: the transaction compares a retry with them, then forgets them.
            repaired = self.repair(table, latest, known, forget_markers=False) if latest is not None else []
        except CatalogConnectionError as exc:
            raise CatalogUnavailableError(
                f"the catalog is unreachable ({exc.message}); nothing was committed to {table.name}. "
                "Retry when it is back (`lake config show` names the catalog).",
                table=table.name,
            ) from exc
        return JournalStart(run_id, tuple(repaired))

    def committed(self, table: TableLocation, result: CommitResult, quality: dict[str, Any] | None) -> None:
        catalog = self.catalog
        if catalog is not None and not (result.skipped or result.version is None or is_system(table.name)):
            record = version_record(table, result.version, result.operation, result.metrics)
            self._record(catalog, table, record, result.run_id, quality)
        for listener in list(self.listeners):
            listener(table, result)

    def read(self, table: TableLocation, version: int) -> None:
        run = current_run()
        if run is not None and not is_system(table.name):
            run.catalog.add_input(run.run_id, table.name, version, location=table.uri, format="delta")

    def quality_failed(self, table: TableLocation, quality: dict[str, Any]) -> None:
        catalog = self.catalog
        if catalog is None:
            return
        run = current_run()
        _record_quality(catalog, table.name, None, quality, run.run_id if run else None)
        if run is not None:  # the run meant to write the table: it shows as its output, with no version
            catalog.add_output(run.run_id, table.name)

    # ----------------------------------------------------------------- repair

    def repair(self, table: TableLocation, latest: int, known: set[int] | None = None, *,
               forget_markers: bool = True) -> list[int]:
        """Record the versions of ``table`` the log has and the catalog lacks; returns them."""
        catalog = self.catalog
        if catalog is None or is_system(table.name):
            return []
        if known is None:
            known = catalog.recorded_versions(table.name)
        done = []
        for version in missing_versions(known, latest):
            info = delta_log.commit_info(table.storage, table.uri, version)
            if info is None:
                continue  # cleaned up from the log: nothing to read it from
            record = version_record(table, version)
            run_id = info.get("lake.run_id")
            self._record(catalog, table, record, run_id if isinstance(run_id, str) else None,
                         info.get("lake.quality") if isinstance(info.get("lake.quality"), dict) else None,
                         repaired=True)
            done.append(version)
        if done:
            log.info("recorded %d version(s) of %s the catalog lacked: %s", len(done), table.name, done)
            if forget_markers:
                pending.forget(table.storage, table.uri, set(done))
        return done

    def _record(self, catalog: Catalog, table: TableLocation, record: VersionRecord, run_id: str | None,
                quality: dict[str, Any] | None, *, repaired: bool = False) -> None:
        run = current_run()
        if run is not None and (run_id is None or run_id == run.run_id) and not repaired:
            catalog.record_version(table.name, record, run_id=run.run_id, location=table.uri, format="delta")
            _record_quality(catalog, table.name, record.version, quality, run.run_id)
            return
        status = catalog.run_status(run_id) if run_id is not None else None
        if run_id is not None and status is not None:
            catalog.record_version(table.name, record, run_id=run_id, location=table.uri, format="delta")
            _record_quality(catalog, table.name, record.version, quality, run_id)
            if repaired and status != "completed" and catalog.run_info(run_id)["job"].startswith(AUTO_RUN_PREFIX):
                # A commit's own run failed only because its record did: now it is recorded.
                catalog.finish_run(run_id, "completed", stats={"repaired": True})
            return
        job = f"{AUTO_RUN_PREFIX}{(record.operation or 'commit').lower()}.{table.name}"
        run_id = catalog.start_run(job, run_id=run_id, code_version=None if repaired else code_version())
        try:
            catalog.record_version(table.name, record, run_id=run_id, location=table.uri, format="delta")
            _record_quality(catalog, table.name, record.version, quality, run_id)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                catalog.finish_run(run_id, "failed", error=str(exc))
            raise
        catalog.finish_run(run_id, "completed", stats={"rows_written": record.metrics.get("rows_written"),
                                                       **({"repaired": True} if repaired else {})})

    # -------------------------------------------------------------------- runs

    def finish_unfinished(self, catalog: Catalog) -> None:
        """End the runs whose end the catalog could not take earlier."""
        while self._unfinished:
            run_id, status, error, stats = self._unfinished[0]
            catalog.finish_run(run_id, status, error=error, stats=stats)
            self._unfinished.pop(0)

    @contextlib.contextmanager
    def run(self, job: str, **kwargs: Any) -> Iterator[RunContext]:
        """A catalog run that the commits and reads inside it belong to."""
        catalog = self.catalog
        assert catalog is not None
        kwargs.setdefault("code_version", code_version())
        outer = current_run()
        if outer is not None:  # a run started inside another is its child (a pipeline's steps)
            kwargs.setdefault("parent_run_id", outer.run_id)
        manager = catalog.run(job, **kwargs)
        ctx = manager.__enter__()
        token = _current.set(ctx)
        try:
            yield ctx
        except BaseException as exc:
            _current.reset(token)
            try:
                manager.__exit__(type(exc), exc, exc.__traceback__)
            except Exception as finish:
                if finish is not exc:  # the catalog went away too: keep the first error
                    log.warning("could not mark run %s failed: %s", ctx.run_id, finish)
                    self._unfinished.append((ctx.run_id, "failed", f"{type(exc).__name__}: {exc}", ctx.stats))
                    raise exc from None
            raise
        _current.reset(token)
        manager.__exit__(None, None, None)


def _record_quality(catalog: Catalog, table: str, version: int | None, quality: dict[str, Any] | None,
                    run_id: str | None) -> None:
    if not quality:
        return
    stats = {**(quality.get("statistics") or {}), "rows_quarantined": quality.get("rows_quarantined", 0)}
    catalog.record_quality(table, version, quality["suite"], bool(quality["success"]), statistics=stats,
                           results=quality.get("results") or [], policy=quality.get("policy"), run_id=run_id)
