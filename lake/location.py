"""Where a Delta table lives and what its log says: the part of a table every layer shares.

A :class:`TableLocation` is a table's name, URI, storage and journal (who hears about its
commits and reads), plus read-only questions about its Delta log: does it exist, which
version, which schema, which files, which history. Writers (:mod:`lake.transaction`,
the Arrow and Spark engines) and readers take one; :class:`lake.table.Table` is the
user-facing subclass with reads and writes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import pyarrow as pa
from deltalake import DeltaTable
from deltalake import exceptions as dlx

from lake import delta_log
from lake.errors import (
    ConcurrentWriteError,
    InvalidPredicateError,
    LakeError,
    SchemaMismatchError,
    TableError,
    TableNotFoundError,
    UnsupportedTableFeatureError,
    VersionNotFoundError,
)
from lake.results import CommitResult, normalize_metrics
from lake.schema import SchemaFit, fit_schema, normalize_schema
from lake.storage import Storage


def parse_when(text: str) -> dt.datetime:
    """An ISO 8601 time (``Z`` allowed); naive times are UTC. Raises LakeError naming the text."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LakeError(f"{text!r} is not a timestamp; use ISO 8601 such as 2024-05-01T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


_PREDICATE_WORDS = ("predicate", "sql", "parse", "no field named", "schema error", "not found in schema",
                    "column", "invalid expression", "cannot infer", "type mismatch")


def wrap_delta_error(exc: Exception, table: str, action: str, predicate: str | None = None) -> LakeError:
    """Translate a delta-rs error into the lake's error tree with a useful message.

    ``predicate``: the SQL predicate the call carried; only then can a failure be the
    predicate's fault (a column-mapped or malformed table is not an invalid predicate).
    """
    if isinstance(exc, LakeError):
        return exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if isinstance(exc, dlx.TableNotFoundError):
        return TableNotFoundError(f"no Delta table {table}: {text}", table=table)
    if isinstance(exc, dlx.SchemaMismatchError):
        return SchemaMismatchError(f"cannot {action} {table}: {text}", table=table)
    if isinstance(exc, dlx.CommitFailedError):
        return ConcurrentWriteError(
            f"{action} on {table} conflicted with a concurrent commit ({text}); re-run it",
            table=table,
        )
    if "deletion vector" in low:
        return UnsupportedTableFeatureError(
            f"cannot {action} {table}: a deletion vector of the table cannot be read ({text}); rather than "
            "return rows it deletes, the read is refused", table=table, feature="deletionVectors")
    if isinstance(exc, dlx.DeltaProtocolError) or "unsupported" in low and "feature" in low:
        return UnsupportedTableFeatureError(f"cannot {action} {table}: {text}", table=table)
    if predicate is not None and ("overflow" in low or "simplify_expressions" in low):
        return InvalidPredicateError(
            f"cannot {action} {table} with predicate {predicate!r}: delta-rs evaluates timestamps in nanoseconds "
            f"and cannot hold a value outside 1677-09-21 to 2262-04-11 ({text}); write the predicate so the "
            "lake can evaluate it (column <op> TIMESTAMP '...'), or read with to_spark() or `lake sql`",
            table=table)
    if predicate is not None and any(w in low for w in _PREDICATE_WORDS):
        return InvalidPredicateError(f"cannot {action} {table} with predicate {predicate!r}: {text}",
                                     table=table)
    return TableError(f"cannot {action} {table}: {text}", table=table)


def _first_of_last_run(versions: list[int]) -> int:
    """The start of the last run of consecutive versions (the oldest reconstructable one)."""
    first = versions[-1]
    for v in reversed(versions):
        if v != first - 1 and v != first:
            break
        first = v
    return first


class Journal(Protocol):
    """Who hears about a table's commits and reads: the catalog (:class:`lake.recording.Recorder`)
    or nobody (:class:`NoJournal`). The transaction calls it around every commit."""

    def begin(self, table: TableLocation, latest: int | None) -> JournalStart:
        """Before a commit to ``table`` (whose latest version is ``latest``, None if new).

        Raises :class:`~lake.errors.CatalogUnavailableError` when the record cannot be kept
        (nothing is committed then); records the versions the log has and the record lacks.
        """
        ...

    def committed(self, table: TableLocation, result: CommitResult, quality: dict[str, Any] | None) -> None:
        """After a commit: record the version (and its quality result). May raise when the
        record cannot be kept; the commit stands and :meth:`begin` repairs it later."""
        ...

    def read(self, table: TableLocation, version: int) -> None:
        """A read of ``table`` at ``version`` (an input of the current run, if any)."""
        ...

    def quality_failed(self, table: TableLocation, quality: dict[str, Any]) -> None:
        """A quality gate stopped a commit: keep its result (no version was made)."""
        ...

    def repair(self, table: TableLocation, latest: int) -> list[int]:
        """Record the versions up to ``latest`` the log has and the record lacks; returns them."""
        ...


class JournalStart:
    """What :meth:`Journal.begin` found: the run to stamp on the commit, the versions repaired."""

    __slots__ = ("repaired", "run_id")

    def __init__(self, run_id: str | None = None, repaired: tuple[int, ...] = ()) -> None:
        self.run_id = run_id
        self.repaired = repaired


class NoJournal:
    """Records nothing (a lake made with ``catalog=False``)."""

    def begin(self, table: TableLocation, latest: int | None) -> JournalStart:
        return JournalStart()

    def committed(self, table: TableLocation, result: CommitResult, quality: dict[str, Any] | None) -> None:
        return None

    def read(self, table: TableLocation, version: int) -> None:
        return None

    def quality_failed(self, table: TableLocation, quality: dict[str, Any]) -> None:
        return None

    def repair(self, table: TableLocation, latest: int) -> list[int]:
        return []


class TableLocation:
    """A Delta table by name and URI, on a storage, with the journal that records its commits.

    Args:
        name: ``layer.name``, or the location when the table is addressed by path.
        uri: the table folder (a local path or ``s3://...``).
        storage: the storage that reaches ``uri``.
        journal: who records commits and reads (the catalog, or nobody).
    """

    def __init__(self, name: str, uri: str, storage: Storage, journal: Journal) -> None:
        self.name = name
        self.uri = uri
        self.storage = storage
        self.journal = journal

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.uri!r})"

    def sibling(self, name: str) -> TableLocation:
        """Another table of the same lake, by ``layer.name`` (e.g. this table's quarantine)."""
        layer, _, rest = name.partition(".")
        return TableLocation(name, self.storage.uri(layer, rest), self.storage, self.journal)

    # ------------------------------------------------------------------ the log

    @property
    def options(self) -> dict[str, str]:
        """delta-rs ``storage_options`` (contains secrets: never log them)."""
        return self.storage.delta_options()

    def exists(self) -> bool:
        """Whether a Delta table is at this location."""
        try:
            return DeltaTable.is_deltatable(self.uri, storage_options=self.options)
        except Exception:  # unreachable storage reads as "no table" here; writes will say why
            return False

    def delta(self, version: int | None = None, as_of: dt.datetime | str | None = None) -> DeltaTable:
        """The delta-rs handle, at the latest version or a past one (by number or time).

        Raises:
            TableNotFoundError: no table at the location.
            VersionNotFoundError: no such version, or one the log can no longer rebuild
                (its commits were cleaned up below a checkpoint); the message says which
                versions can be read.
            TableError: the log of that version cannot be read (a malformed entry); the
                message is delta-rs's.
        """
        try:
            table = DeltaTable(self.uri, version=version, storage_options=self.options)
        except Exception as exc:
            raise self._open_error(exc, version) from None
        if as_of is not None:
            target = self.version_at(as_of, int(table.version()))
            try:
                table.load_as_version(target)
            except Exception as exc:
                raise self._open_error(exc, target) from None
        return table

    def _open_error(self, exc: Exception, version: int | None) -> LakeError:
        if not delta_log.exists(self.storage, self.uri, 0) and not self.storage.list_files(
                f"{self.uri.rstrip('/')}/_delta_log"):
            return TableNotFoundError(
                f"table {self.name} does not exist at {self.uri}; `lake table ls` lists the tables",
                table=self.name, version=version)
        if version is None:
            return wrap_delta_error(exc, self.name, "open")
        readable = delta_log.reconstructable(self.storage, self.uri)
        latest = readable[-1] if readable else None
        if version in readable:  # the log has it: the entry itself is at fault
            return wrap_delta_error(exc, self.name, f"read version {version} of")
        if latest is None or version > latest:
            return VersionNotFoundError(
                f"table {self.name} has no version {version} (versions run up to {latest}); "
                "`lake table history` lists them", table=self.name, version=version)
        oldest = _first_of_last_run(readable)
        return VersionNotFoundError(
            f"table {self.name} has no version {version} any more: its log entries were cleaned up and no "
            f"checkpoint at or below it remains, so it cannot be rebuilt. Versions {oldest} to {latest} can be "
            "read; `lake table history` lists them", table=self.name, version=version)

    def version_at(self, as_of: dt.datetime | str, latest: int) -> int:
        """The version current at a time, by the commit timestamps in the log.

        Not file modification times: object stores keep those to the second only.
        """
        when = as_of if isinstance(as_of, dt.datetime) else parse_when(as_of)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        limit_ms = when.timestamp() * 1000
        match = next(
            (
                info["version"]
                for info in delta_log.commits(self.storage, self.uri, latest)
                if info.get("timestamp", 0) <= limit_ms
            ),
            None,
        )
        if match is None:
            raise VersionNotFoundError(
                f"table {self.name} has no version at or before {when.isoformat()} (it was created "
                f"later); `lake table history {self.name}` lists versions",
                table=self.name,
            )
        return int(match)

    def version(self) -> int:
        """The latest committed version."""
        return int(self.delta().version())

    def schema(self, version: int | None = None) -> pa.Schema:
        """The table's Arrow schema."""
        return pa.schema(self.delta(version).schema().to_arrow())

    @property
    def partition_columns(self) -> list[str]:
        return list(self.delta().metadata().partition_columns)

    def files(self, version: int | None = None) -> pa.Table:
        """The table's data files: path, size, rows, partition values and statistics."""
        return pa.table(self.delta(version).get_add_actions(flatten=True))

    def check_fit(self, data_schema: pa.Schema, schema_mode: str | None, current: pa.Schema | None = None) -> SchemaFit:
        """Check that data with ``data_schema`` fits the table (see :func:`lake.schema.fit_schema`)."""
        return fit_schema(
            current if current is not None else self.schema(), normalize_schema(data_schema),
            evolve=schema_mode == "merge", table_name=self.name,
        )

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp, operation, parameters, metrics and run."""
        out = []
        for entry in delta_log.commits(self.storage, self.uri, self.version(), limit):
            raw = dict(entry.get("operationMetrics") or {})
            raw.update(entry.get("lake.metrics") or {})
            out.append(
                {
                    "version": entry.get("version"),
                    "timestamp": dt.datetime.fromtimestamp(entry["timestamp"] / 1000, dt.UTC)
                    if entry.get("timestamp")
                    else None,
                    "operation": entry.get("lake.operation") or entry.get("operation"),
                    "parameters": entry.get("operationParameters") or {},
                    "metrics": normalize_metrics(raw),
                    "engine": entry.get("engineInfo") or entry.get("clientVersion"),
                    "run_id": entry.get("lake.run_id"),
                }
            )
        return out

    def details(self) -> dict[str, Any]:
        """Location, version, partitioning, file and row counts, size and schema."""
        table = self.delta()
        files = pa.table(table.get_add_actions(flatten=True))
        meta = table.metadata()
        proto = table.protocol()
        rows = files.column("num_records").to_pylist() if files.num_rows else []
        return {
            "name": self.name,
            "location": self.uri,
            "version": table.version(),
            "partition_columns": list(meta.partition_columns),
            "files": files.num_rows,
            "size_bytes": int(sum(files.column("size_bytes").to_pylist())) if files.num_rows else 0,
            "rows": int(sum(r or 0 for r in rows)),
            "created": dt.datetime.fromtimestamp(meta.created_time / 1000, dt.UTC) if meta.created_time else None,
            "description": meta.description,
            "configuration": dict(meta.configuration),
            "protocol": {
                "reader": proto.min_reader_version,
                "writer": proto.min_writer_version,
                "reader_features": list(proto.reader_features or []),
                "writer_features": list(proto.writer_features or []),
            },
            "schema": [
                {"name": f.name, "type": str(f.type), "nullable": f.nullable}
                for f in pa.schema(table.schema().to_arrow())
            ],
        }
