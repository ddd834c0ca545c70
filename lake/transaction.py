"""The one way anything is committed to a lake table.

Every writer (Arrow/pandas/Polars writes, Spark DataFrame writes, merges, deletes,
overwrites, job batches, quarantine tables, training sets, serving logs, maintenance)
opens a :class:`Transaction` on the table, stages its work, and commits once::

    with Transaction(table, txn=("job:bronze_orders", 7), gate=suite_gate) as tx:
        if tx.skipped:                       # this (app id, batch) already committed
            return tx.skipped
        files = tx.gate_files(files, schema, partition_by)   # the quality gate, a step
        tx.add_files(files)
        tx.set_schema(schema, partition_by)
        result = tx.commit("APPEND", metrics={"rows_written": n})

In order, a transaction:

1. **begins**: loads the table's latest version, skips an app transaction that already
   committed, and asks the table's journal (the catalog) to begin: the catalog must be
   reachable (else :class:`~lake.errors.CatalogUnavailableError`, nothing committed) and
   records any version the log has and it lacks (see :mod:`lake.recording`);
2. **gates** staged data through a :class:`Gate` when one is given (the quality suite);
3. **commits once** through delta-rs, the commit info carrying the lake's commit id, the
   operation, the run id, the metrics and the quality result;
4. **records** the version through the journal. If that fails the commit stands (the
   Delta log is the truth), a marker with the data's fingerprint is left beside the table
   (:mod:`lake.pending`) and :class:`~lake.errors.CommitNotRecordedError` says so; the next
   transaction on the table repairs the record, and recognizes a retry of the same call
   (:meth:`Transaction.retry_of`) instead of writing the rows twice.

A transaction that ends with an exception before its commit deletes the files it staged.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake import Transaction as AppTransaction
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from lake import delta_log, pending, protocol
from lake.errors import CommitNotRecordedError, LakeError
from lake.location import JournalStart, TableLocation, wrap_delta_error
from lake.results import CommitResult, normalize_metrics

Txn = tuple[str, int]
DataFile = dict[str, Any]
"""A Parquet file written into the table folder and not yet committed: ``path`` (relative to
the table, not URI-encoded), ``size``, ``partition_values`` (column -> string or None),
``stats`` (Delta statistics JSON) and ``rows``."""


@dataclass(frozen=True)
class GateContext:
    """What a gate knows about the commit it guards."""

    table: TableLocation
    job: str
    """The job (or ``write.<table>``) the rows it sets aside are attributed to."""
    batch: int


class Gate(Protocol):
    """A check run on staged data before the commit (the quality gate implements it).

    Each method returns what to commit (the data or files, possibly without rows it set
    aside) and the quality result as plain JSON (``suite``, ``policy``, ``success``,
    ``statistics``, ``results``, ``rows_quarantined``), or raises to stop the commit.
    """

    def check_arrow(self, data: pa.Table, ctx: GateContext) -> tuple[pa.Table, dict[str, Any]]: ...

    def check_rows(self, frame: Any, ctx: GateContext) -> tuple[Any, dict[str, Any]]: ...

    def check_frame(
        self, frame: Any, write: Callable[[Any], list[DataFile]], ctx: GateContext
    ) -> tuple[list[DataFile], dict[str, Any]]: ...

    def check_files(
        self, files: list[DataFile], schema: pa.Schema, partition_by: list[str], ctx: GateContext
    ) -> tuple[list[DataFile], dict[str, Any]]: ...


def now_ms() -> int:
    return int(time.time() * 1000)


def commit_properties(operation: str, txn: Txn | None, extra: dict[str, Any] | None = None) -> tuple[CommitProperties, str]:
    """Commit properties stamped with a fresh commit id, the lake operation and the app txn."""
    commit_id = uuid.uuid4().hex
    meta: dict[str, Any] = {"lake.commit_id": commit_id, "lake.operation": operation}
    meta.update({k: v for k, v in (extra or {}).items() if v is not None})
    apps = [AppTransaction(app_id=txn[0], version=txn[1])] if txn else None
    return CommitProperties(custom_metadata=meta, app_transactions=apps), commit_id


def committed_version(table: TableLocation, commit_id: str, since: int | None) -> tuple[int, dict[str, Any]] | None:
    """The version our commit landed at (others may have committed since) and its metrics,
    or None when the operation made no commit (e.g. nothing to compact)."""
    latest = table.version()
    for entry in delta_log.commits(table.storage, table.uri, latest, 64):
        if since is not None and int(entry["version"]) <= since:
            break
        if entry.get("lake.commit_id") == commit_id:
            raw = dict(entry.get("operationMetrics") or {})
            raw.update(entry.get("lake.metrics") or {})
            return int(entry["version"]), normalize_metrics(raw)
    return None


def discard_files(table: TableLocation, files: list[DataFile]) -> None:
    """Delete staged files that will not be committed (vacuum removes any left behind)."""
    for info in files:
        with contextlib.suppress(OSError):
            table.storage.delete_file(f"{table.uri}/{info['path']}")


class Transaction:
    """One commit to one table: begin, stage, gate, commit once, record (see the module doc).

    Args:
        table: the table (need not exist yet).
        txn: ``(application id, version)``: when that application already committed this
            version or a later one, the transaction is :attr:`skipped` and commits nothing.
        gate: checked on staged data before the commit.
        job, batch: who a gate attributes set-aside rows to (default ``write.<table>``).
    """

    def __init__(self, table: TableLocation, *, txn: Txn | None = None, gate: Gate | None = None,
                 job: str | None = None, batch: int | None = None) -> None:
        self.table = table
        self.txn = txn
        self.gate = gate
        self.base: DeltaTable | None = None
        """The table at the start (None when it does not exist yet)."""
        self.base_version: int | None = None
        self.skipped: CommitResult | None = None
        """Set when ``txn`` had already committed: nothing is to be done."""
        self.result: CommitResult | None = None
        self.quality: dict[str, Any] | None = None
        self._job = job or (txn[0] if txn else f"write.{table.name}")
        self._batch = batch if batch is not None else (txn[1] if txn else now_ms())
        self._start = JournalStart()
        self._pending: list[pending.PendingCommit] = []
        self._fingerprint: Callable[[], str | None] | None = None
        self._adds: list[DataFile] = []
        self._removes: list[DataFile] = []
        self._schema: pa.Schema | None = None
        self._partition_by: list[str] = []
        self._replace_schema = False
        self._overwrite = False
        self._description: str | None = None
        self._configuration: dict[str, str] | None = None
        self._operation: Callable[[CommitProperties], Any] | None = None
        self._begun = False

    # ------------------------------------------------------------------- begin

    def __enter__(self) -> Transaction:
        self.begin()
        return self

    def begin(self) -> None:
        """Load the table, skip a done app transaction, let the journal check and repair."""
        if self._begun:
            return
        self._begun = True
        self.base = self.table.delta() if self.table.exists() else None
        latest = int(self.base.version()) if self.base is not None else None
        self.base_version = latest  # the handle moves on when delta-rs commits through it
        if self.txn is not None and self.base is not None:
            done = self.base.transaction_version(self.txn[0])
            if done is not None and done >= self.txn[1]:
                self.skipped = CommitResult(self.table.name, "SKIPPED", latest, skipped=True,
                                            metrics={"app_id": self.txn[0], "txn_version": done})
        self._start = self.table.journal.begin(self.table, latest)
        if self._start.repaired:
            repaired = set(self._start.repaired)
            self._pending = [p for p in pending.pending(self.table.storage, self.table.uri) if p.version in repaired]

    @property
    def run_id(self) -> str | None:
        """The run the commit is stamped with."""
        return self._start.run_id

    def retry_of(self, fingerprint: Callable[[], str | None]) -> CommitResult | None:
        """The earlier commit this call repeats, if its record had failed; else None.

        ``fingerprint`` digests the data about to be written; it is only computed when a
        commit the catalog had not recorded is pending (and if this commit's record fails).
        """
        self._fingerprint = fingerprint
        if not self._pending:
            return None
        digest = fingerprint()
        for commit in self._pending:
            if digest is not None and commit.fingerprint == digest:
                self._pending = []
                pending.forget(self.table.storage, self.table.uri, {commit.version})
                self.result = CommitResult(self.table.name, commit.operation, commit.version, skipped=True,
                                           metrics={"retry_of": commit.version}, commit_id=commit.commit_id)
                return self.result
        return None

    # -------------------------------------------------------------------- gate

    def _context(self) -> GateContext:
        return GateContext(self.table, self._job, self._batch)

    def gate_arrow(self, data: pa.Table) -> pa.Table:
        """Run the gate on Arrow data about to be written; returns what to write."""
        if self.gate is None:
            return data
        data, self.quality = self.gate.check_arrow(data, self._context())
        return data

    def gate_rows(self, frame: Any) -> Any:
        """Run the gate on a (Spark) frame about to be merged; returns the rows to use."""
        if self.gate is None:
            return frame
        frame, self.quality = self.gate.check_rows(frame, self._context())
        return frame

    def gate_frame(self, frame: Any, write: Callable[[Any], list[DataFile]]) -> list[DataFile]:
        """Write a (Spark) frame with ``write`` while the gate checks it; returns the files to commit."""
        if self.gate is None:
            return write(frame)
        files, self.quality = self.gate.check_frame(frame, write, self._context())
        return files

    def gate_files(self, files: list[DataFile], schema: pa.Schema, partition_by: list[str]) -> list[DataFile]:
        """Run the gate on files written but not committed; returns the files to commit."""
        if self.gate is None:
            return files
        try:
            files, self.quality = self.gate.check_files(files, schema, partition_by, self._context())
        except BaseException:
            discard_files(self.table, files)
            raise
        return files

    # ----------------------------------------------------------------- staging

    def add_files(self, files: list[DataFile]) -> None:
        """Stage data files (written into the table folder) to add."""
        self._adds.extend(files)

    def remove_files(self, files: list[DataFile]) -> None:
        """Stage committed data files to remove (``path``, ``size``, ``partition_values``)."""
        self._removes.extend(files)

    def set_schema(self, schema: pa.Schema, partition_by: list[str], *, replace: bool = False,
                   overwrite: bool = False, description: str | None = None,
                   configuration: dict[str, str] | None = None) -> None:
        """The schema the staged files have. ``replace`` swaps the table's schema (with
        ``overwrite``); ``overwrite`` removes every current file; new nullable columns join."""
        self._schema, self._partition_by = schema, list(partition_by)
        self._replace_schema, self._overwrite = replace, overwrite
        self._description, self._configuration = description, configuration

    def run(self, operation: Callable[[CommitProperties], Any]) -> None:
        """Stage a delta-rs operation that commits by itself (write, merge, delete, optimize),
        called once at :meth:`commit` with the commit properties to pass on."""
        if self._operation is not None:
            raise LakeError("a transaction commits one delta-rs operation")
        self._operation = operation

    # ------------------------------------------------------------------ commit

    def commit(self, operation: str, *, metrics: dict[str, Any] | None = None,
               schema_changed: bool = False) -> CommitResult:
        """Commit what is staged, once, and record it. Returns the commit made."""
        if self.result is not None:
            return self.result
        self.begin()
        metrics = dict(metrics or {})
        if self.quality is not None:
            metrics.setdefault("rows_quarantined", self.quality.get("rows_quarantined", 0))
        props, commit_id = commit_properties(operation, self.txn, {
            "lake.metrics": metrics or None, "lake.run_id": self.run_id, "lake.quality": self.quality,
        })
        try:
            if self._operation is not None:
                self._operation(props)
            else:
                self._commit_files(props)
        except BaseException as exc:
            discard_files(self.table, self._adds)
            if isinstance(exc, Exception):
                raise wrap_delta_error(exc, self.table.name, "commit to") from exc
            raise
        self._adds = []
        before = self.base_version
        found = committed_version(self.table, commit_id, before)
        if found is None:
            self.result = CommitResult(self.table.name, operation, before, metrics, skipped=True)
            return self.result
        version, log_metrics = found
        merged = {**log_metrics, **metrics}
        self.result = CommitResult(self.table.name, operation, version, merged, commit_id=commit_id,
                                   schema_changed=schema_changed, run_id=self.run_id)
        self._record()
        return self.result

    def _commit_files(self, props: CommitProperties) -> None:
        if self._schema is None:
            raise LakeError(f"nothing staged to commit to {self.table.name}")
        if self.base is not None:  # files the lake's executors wrote (jobs too): the staged files are discarded
            protocol.check_write(protocol.table_protocol(self.base), protocol.SPARK_WRITER, self.table.name,
                                 changes_data=bool(self._removes) or self._overwrite)
        schema, partition_by = self._schema, self._partition_by or None
        adds = [
            # delta-rs takes the plain relative path and URI-encodes it in the log itself.
            AddAction(f["path"], int(f["size"]), f["partition_values"], now_ms(), True, f["stats"])
            for f in self._adds
        ]
        if self.base is None or (self._overwrite and self._replace_schema):
            # A new table, or a replaced schema: one create-or-replace commit swaps metadata and files.
            create_table_with_add_actions(
                self.table.uri, DeltaSchema.from_arrow(schema), adds,
                mode="overwrite" if self.base is not None else "append", partition_by=partition_by,
                description=self._description if self.base is None else None,
                configuration=self._configuration if self.base is None else None,
                storage_options=self.table.options, commit_properties=props,
            )
            return
        current = {f.name for f in pa.schema(self.base.schema().to_arrow())}
        added = [f for f in schema if f.name not in current]
        if added:
            # delta-rs commits file actions without a metadata change, so new (nullable)
            # columns join the table first; a reader in between sees them as null.
            self.base.alter.add_columns(list(DeltaSchema.from_arrow(pa.schema(added)).fields))
        removes = [RemoveAction(f["path"], True, now_ms(), int(f["size"]), f["partition_values"])
                   for f in self._removes]
        self.base.create_write_transaction(
            [*adds, *removes], "overwrite" if self._overwrite else "append", schema,
            partition_by=partition_by, commit_properties=props,
        )

    def _record(self) -> None:
        assert self.result is not None
        try:
            self.table.journal.committed(self.table, self.result, self.quality)
        except Exception as exc:
            self._remember_unrecorded(exc)
        if self._pending:  # repaired before this commit and not a retry: forget them
            pending.forget(self.table.storage, self.table.uri, {p.version for p in self._pending})
            self._pending = []

    def _remember_unrecorded(self, exc: Exception) -> None:
        result = self.result
        assert result is not None and result.version is not None
        digest = None
        if self._fingerprint is not None:
            with contextlib.suppress(Exception):
                digest = self._fingerprint()
        pending.remember(self.table.storage, self.table.uri, pending.PendingCommit(
            result.version, result.commit_id or "", result.operation, digest, self.run_id))
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        retry = ("A retry of the same call will not write the rows again." if digest is not None or self.txn
                 else "Do not retry this call: the data is in the table.")
        raise CommitNotRecordedError(
            f"{self.table.name} was committed as version {result.version}, but the catalog could not record it "
            f"({reason}). The Delta log keeps the commit: the catalog records it the next time the lake writes "
            f"{self.table.name}, or with `lake catalog repair {self.table.name}`. {retry}",
            table=self.table.name, version=result.version,
        ) from exc

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            if self.result is None:
                discard_files(self.table, self._adds)
            return
        if self.result is None and self.skipped is None and (self._adds or self._removes or self._operation):
            self.commit("WRITE")


def fingerprint_arrow(data: pa.Table) -> str:
    """A digest of an Arrow table's content (its IPC stream), for recognizing a retried write."""
    digest = hashlib.blake2b(digest_size=16)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    digest.update(sink.getvalue())
    return "arrow:" + digest.hexdigest()
