"""A Delta table of the lake: reads, writes, merges, deletes, time travel, maintenance.

Python data (Arrow, pandas, Polars) is written by delta-rs directly; Spark
DataFrames go through :mod:`lake.spark_io`, where executors write the Parquet
files and the driver commits one Delta transaction. Either way the table is a
standard Delta table that delta-spark, DuckDB, Polars and Trino read.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake import exceptions as dlx

from lake import delta_log
from lake import predicate as pred
from lake.data import conform, is_spark_dataframe, normalized, to_arrow
from lake.errors import (
    ConcurrentWriteError,
    InvalidPredicateError,
    LakeError,
    MergeError,
    RetentionError,
    SchemaMismatchError,
    TableError,
    TableExistsError,
    TableNotFoundError,
    VersionNotFoundError,
)
from lake.results import CommitResult
from lake.schema import fit_schema, normalize_schema

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    from lake.lakehouse import Lake
    from lake.quality.suite import Suite

WriteMode = Literal["append", "overwrite", "error", "ignore"]
SchemaMode = Literal["merge", "overwrite"] | None
Txn = tuple[str, int]
DEFAULT_RETENTION_HOURS = 168
STAGING_DIR = "_lake_staging"


def commit_properties(operation: str, txn: Txn | None, extra: dict[str, Any] | None = None) -> tuple[CommitProperties, str]:
    """Commit properties stamped with a fresh commit id, the lake operation and the txn."""
    commit_id = uuid.uuid4().hex
    meta: dict[str, Any] = {"lake.commit_id": commit_id, "lake.operation": operation}
    meta.update(extra or {})
    apps = [Transaction(app_id=txn[0], version=txn[1])] if txn else None
    return CommitProperties(custom_metadata=meta, app_transactions=apps), commit_id


def wrap_delta_error(exc: Exception, table: str, action: str) -> LakeError:
    """Translate a delta-rs error into the lake's error tree with a useful message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, dlx.TableNotFoundError):
        return TableNotFoundError(f"no Delta table {table}: {text}", table=table)
    if isinstance(exc, dlx.SchemaMismatchError):
        return SchemaMismatchError(f"cannot {action} {table}: {text}", table=table)
    if isinstance(exc, dlx.CommitFailedError):
        return ConcurrentWriteError(
            f"{action} on {table} conflicted with a concurrent commit ({text}); re-run it",
            table=table,
        )
    if "predicate" in text.lower() or "sql" in text.lower() or "column" in text.lower():
        return InvalidPredicateError(f"cannot {action} {table}: {text}", table=table)
    return TableError(f"cannot {action} {table}: {text}", table=table)


class Table:
    """One Delta table, addressed by name (``bronze.events``) or location."""

    def __init__(self, lake: Lake, name: str, uri: str) -> None:
        self.lake = lake
        self.name = name
        self.uri = uri
        self.storage = lake.storage

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {self.uri!r})"

    # ------------------------------------------------------------------ metadata

    @property
    def options(self) -> dict[str, str]:
        return self.storage.delta_options()

    def exists(self) -> bool:
        """Whether a Delta table is at this location."""
        try:
            return DeltaTable.is_deltatable(self.uri, storage_options=self.options)
        except Exception:  # unreachable storage reads as "no table" here; writes will say why
            return False

    def delta(self, version: int | None = None, as_of: dt.datetime | str | None = None) -> DeltaTable:
        """The delta-rs handle, at the latest version or a past one."""
        try:
            table = DeltaTable(self.uri, version=version, storage_options=self.options)
        except dlx.TableNotFoundError:
            raise TableNotFoundError(
                f"table {self.name} does not exist at {self.uri}"
                + (f" (or has no version {version})" if version is not None else "")
                + "; `lake table ls` lists the tables",
                table=self.name,
                version=version,
            ) from None
        except Exception as exc:
            if version is not None and self.exists():
                latest = DeltaTable(self.uri, storage_options=self.options).version()
                raise VersionNotFoundError(
                    f"table {self.name} has no version {version} (versions run up to {latest}, older ones "
                    "may have been cleaned up); `lake table history` lists them",
                    table=self.name,
                    version=version,
                ) from None
            raise wrap_delta_error(exc, self.name, "open") from exc
        if as_of is not None:
            when = as_of if isinstance(as_of, dt.datetime) else parse_when(as_of)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            # Resolve by the commit timestamps in the log, not file modification times
            # (object stores keep those to the second only).
            limit_ms = when.timestamp() * 1000
            match = next(
                (
                    info["version"]
                    for info in delta_log.commits(self.storage, self.uri, int(table.version()))
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
            table.load_as_version(int(match))
        return table

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

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first: version, timestamp, operation, parameters and metrics."""
        out = []
        for entry in delta_log.commits(self.storage, self.uri, self.version(), limit):
            raw = dict(entry.get("operationMetrics") or {})
            raw.update(entry.get("lake.metrics") or {})
            metrics = _normalize_metrics(raw)
            out.append(
                {
                    "version": entry.get("version"),
                    "timestamp": dt.datetime.fromtimestamp(entry["timestamp"] / 1000, dt.UTC)
                    if entry.get("timestamp")
                    else None,
                    "operation": entry.get("lake.operation") or entry.get("operation"),
                    "parameters": entry.get("operationParameters") or {},
                    "metrics": metrics,
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

    # --------------------------------------------------------------------- reads

    def to_batches(
        self,
        *,
        version: int | None = None,
        as_of: dt.datetime | str | None = None,
        columns: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> pa.RecordBatchReader:
        """Stream the table (or a past version) as Arrow record batches, bounded memory.

        ``filter`` is a SQL predicate; files that cannot match are skipped through
        partition values and statistics.
        """
        table = self.delta(version, as_of)
        cols = list(columns) if columns else None
        if filter is not None:
            pred.check_columns(filter, [f.name for f in pa.schema(table.schema().to_arrow())], self.name)
        self.lake.read(self, int(table.version()))
        try:
            if filter is None:
                dataset = table.to_pyarrow_dataset()
                return dataset.scanner(columns=cols).to_reader()
            return pa.RecordBatchReader.from_stream(table.scan(columns=cols, predicate=filter))
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "read") from exc

    def to_arrow(self, **kwargs: Any) -> pa.Table:
        """The table as one Arrow table (same arguments as :meth:`to_batches`)."""
        return self.to_batches(**kwargs).read_all()

    def to_pandas(self, **kwargs: Any) -> pd.DataFrame:
        """The table as a pandas DataFrame (same arguments as :meth:`to_batches`)."""
        return self.to_arrow(**kwargs).to_pandas()

    def to_polars(self, **kwargs: Any) -> pl.DataFrame:
        """The table as a Polars DataFrame (same arguments as :meth:`to_batches`)."""
        import polars as pl

        return pl.from_arrow(self.to_arrow(**kwargs))  # type: ignore[return-value]

    def to_spark(
        self,
        spark: SparkSession,
        *,
        version: int | None = None,
        as_of: dt.datetime | str | None = None,
        columns: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> SparkDataFrame:
        """The table as a Spark DataFrame; only files that can match ``filter`` are read."""
        from lake.spark_io import read_spark

        return read_spark(self, spark, version=version, as_of=as_of, columns=columns, filter=filter)

    # -------------------------------------------------------------------- writes

    def write(
        self,
        data: Any,
        mode: WriteMode = "append",
        *,
        partition_by: Sequence[str] | None = None,
        replace_where: str | None = None,
        schema_mode: SchemaMode = None,
        txn: Txn | None = None,
        description: str | None = None,
        configuration: dict[str, str] | None = None,
        quality: Suite | None = None,
    ) -> CommitResult:
        """Write data as one atomic Delta commit.

        Args:
            data: a Spark DataFrame (written by the executors) or Arrow/pandas/Polars data.
            mode: ``append``; ``overwrite`` (whole table, or the rows ``replace_where``
                selects); ``error`` or ``ignore`` when the table already exists.
            partition_by: partition columns when the table is created.
            replace_where: with ``overwrite``, a SQL predicate: only matching rows are
                replaced, and every new row must match it.
            schema_mode: ``merge`` adds new columns as nullable; ``overwrite`` (with mode
                ``overwrite``) replaces the schema. Default: the schema must fit.
            txn: ``(application id, batch version)``; a write whose pair (or a later
                version of the same application) already committed is skipped.
            description: the table description when it is created.
            configuration: Delta table properties when it is created.
            quality: an expectation suite checked before the commit (see :mod:`lake.quality`).

        Returns:
            The commit made, or the skip.

        Raises:
            SchemaMismatchError: the data does not fit; nothing was written.
            TableExistsError: mode ``error`` and the table exists.
        """
        if mode not in ("append", "overwrite", "error", "ignore"):
            raise LakeError(f"unknown write mode {mode!r}: use append, overwrite, error or ignore")
        if replace_where is not None and mode != "overwrite":
            raise LakeError("replace_where needs mode='overwrite'")
        exists = self.exists()
        if exists and mode == "error":
            raise TableExistsError(f"table {self.name} already exists at {self.uri}", table=self.name)
        if exists and mode == "ignore":
            return CommitResult(self.name, "IGNORE", self.version(), skipped=True)
        if exists:
            current = self.partition_columns
            if partition_by is not None and list(partition_by) != current and schema_mode != "overwrite":
                raise SchemaMismatchError(
                    f"table {self.name} is partitioned by {current or 'nothing'}, not {list(partition_by)}",
                    table=self.name,
                )
        skipped = self._already_committed(txn) if exists else None
        if skipped is not None:
            return skipped
        gate = None
        concurrent: dict[str, Any] = {}
        spark_gate = None
        if quality is not None and is_spark_dataframe(data) and replace_where is None:
            from lake.quality.apply import concurrent_gate

            job, batch = txn if txn else (f"write.{self.name}", int(time.time() * 1000))
            spark_gate = concurrent_gate(self.lake, quality, self, job=job, batch=batch, holder=concurrent)
        elif quality is not None:
            data, gate = self._gate(data, quality, txn)
        if is_spark_dataframe(data):
            from lake.spark_io import write_spark

            result = write_spark(
                self,
                data,
                mode="overwrite" if mode == "overwrite" else "append",
                partition_by=list(partition_by or []),
                replace_where=replace_where,
                schema_mode=schema_mode,
                txn=txn,
                description=description,
                configuration=configuration,
                gate=spark_gate,
            )
            if concurrent:
                gate = (concurrent["report"], concurrent["quarantined"])
        else:
            result = self._write_arrow(
                to_arrow(data), mode, list(partition_by or []), replace_where, schema_mode, txn,
                description, configuration, exists,
            )
        self.lake.committed(self, result)
        if gate is not None and self.lake.recorder is not None:
            from lake.quality.apply import record
            from lake.recording import current_run

            run = current_run()
            record(self.lake, gate[0], self.name, result.version, run.run_id if run else None, gate[1])
        return result

    def _gate(self, data: Any, suite: Suite, txn: Txn | None) -> tuple[Any, tuple[Any, int]]:
        from lake.quality.apply import gate_arrow, gate_frame

        job, batch = txn if txn else (f"write.{self.name}", int(time.time() * 1000))
        if is_spark_dataframe(data):
            data, report, quarantined = gate_frame(self.lake, suite, data, job=job, batch=batch)
        else:
            table = normalized(to_arrow(data))
            data, report, quarantined = gate_arrow(
                self.lake, suite, table.read_all() if isinstance(table, pa.RecordBatchReader) else table,
                job=job, batch=batch)
        return data, (report, quarantined)

    def _already_committed(self, txn: Txn | None) -> CommitResult | None:
        if txn is None:
            return None
        table = self.delta()
        done = table.transaction_version(txn[0])
        if done is not None and done >= txn[1]:
            return CommitResult(
                self.name, "SKIPPED", table.version(), skipped=True,
                metrics={"app_id": txn[0], "txn_version": done},
            )
        return None

    def check_fit(self, data_schema: pa.Schema, schema_mode: SchemaMode) -> Any:
        """Check that data with ``data_schema`` fits the table (see :func:`fit_schema`)."""
        return fit_schema(
            self.schema(), normalize_schema(data_schema), evolve=schema_mode == "merge", table_name=self.name
        )

    def _write_arrow(
        self,
        data: pa.Table | pa.RecordBatchReader,
        mode: WriteMode,
        partition_by: list[str],
        replace_where: str | None,
        schema_mode: SchemaMode,
        txn: Txn | None,
        description: str | None,
        configuration: dict[str, str] | None,
        exists: bool,
    ) -> CommitResult:
        data = normalized(data)
        fit = None
        if exists and schema_mode != "overwrite":
            fit = self.check_fit(data.schema, schema_mode)
            data = conform(data, fit)
        elif not exists:
            unknown = [c for c in partition_by if c not in data.schema.names]
            if unknown:
                raise SchemaMismatchError(
                    f"partition column(s) {unknown} are not in the data of {self.name}", table=self.name
                )
        if replace_where is not None:
            pred.check_columns(replace_where, data.schema.names, self.name)
        operation = "CREATE" if not exists else ("OVERWRITE" if mode == "overwrite" else "APPEND")
        props, commit_id = commit_properties(operation, txn)
        rows = data.num_rows if isinstance(data, pa.Table) else None
        common: dict[str, Any] = {
            "partition_by": partition_by or None,
            "schema_mode": schema_mode,
            "storage_options": self.options,
            "commit_properties": props,
            "description": description,
            "configuration": configuration,
        }
        try:
            if mode == "overwrite":
                write_deltalake(self.uri, data, mode="overwrite", predicate=replace_where, **common)
            else:
                write_deltalake(self.uri, data, mode="append", **common)
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "write") from exc
        return self._result(operation, commit_id, rows, schema_changed=bool(fit and fit.added))

    def _result(
        self, operation: str, commit_id: str, rows: int | None = None, *, schema_changed: bool = False
    ) -> CommitResult:
        """Find the version our commit landed at (other writers may have committed since)."""
        table = self.delta()
        for entry in delta_log.commits(self.storage, self.uri, int(table.version()), 64):
            if entry.get("lake.commit_id") == commit_id:
                m = dict(entry.get("operationMetrics") or {})
                m.update(entry.get("lake.metrics") or {})
                metrics = _normalize_metrics(m)
                if rows is not None:
                    metrics.setdefault("rows_written", rows)
                return CommitResult(
                    self.name, operation, int(entry["version"]), metrics, commit_id=commit_id,
                    schema_changed=schema_changed,
                )
        return CommitResult(self.name, operation, table.version(), {}, commit_id=commit_id)

    def merge(
        self,
        source: Any,
        keys: Sequence[str],
        *,
        update: bool = True,
        insert: bool = True,
        delete_when: str | None = None,
        delete_not_matched_by_source: bool = False,
        schema_mode: SchemaMode = None,
        txn: Txn | None = None,
    ) -> CommitResult:
        """Upsert ``source`` by ``keys`` as one commit.

        Matched rows are updated (every column from the source), unmatched source rows
        inserted, and optionally: matched rows for which ``delete_when`` (a SQL predicate
        over the source's columns) holds are deleted, and target rows with no source
        row are deleted (``delete_not_matched_by_source``, a full sync).

        Raises:
            MergeError: several source rows share one key (the merge would be ambiguous).
            SchemaMismatchError: the source does not fit the table.
        """
        keys = list(keys)
        if not keys:
            raise MergeError("merge needs at least one key column", table=self.name)
        if not self.exists():
            # Merging into nothing is a create: every source row is new.
            return self.write(source, "append", schema_mode=schema_mode, txn=txn)
        skipped = self._already_committed(txn)
        if skipped is not None:
            return skipped
        if is_spark_dataframe(source):
            from lake.spark_io import merge_spark

            result = merge_spark(
                self, source, keys, update=update, insert=insert, delete_when=delete_when,
                delete_not_matched_by_source=delete_not_matched_by_source,
                schema_mode=schema_mode, txn=txn,
            )
        else:
            result = self._merge_arrow(
                to_arrow(source), keys, update, insert, delete_when, delete_not_matched_by_source,
                schema_mode, txn,
            )
        self.lake.committed(self, result)
        return result

    def _merge_arrow(
        self,
        source: pa.Table | pa.RecordBatchReader,
        keys: list[str],
        update: bool,
        insert: bool,
        delete_when: str | None,
        delete_not_matched_by_source: bool,
        schema_mode: SchemaMode,
        txn: Txn | None,
    ) -> CommitResult:
        data = normalized(source)
        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        missing = [k for k in keys if k not in data.column_names]
        if missing:
            raise MergeError(f"merge key(s) {missing} are not in the source", table=self.name)
        fit = self.check_fit(data.schema, schema_mode)
        data = conform(data, fit)
        dup = data.group_by(keys).aggregate([([], "count_all")]).filter(pc.field("count_all") > 1)
        if dup.num_rows:
            example = {k: dup.column(k)[0].as_py() for k in keys}
            raise MergeError(
                f"the merge source has {dup.num_rows} key(s) with several rows (e.g. {example}); "
                f"deduplicate it on {keys} first",
                table=self.name,
            )
        if delete_when is not None:
            pred.check_columns(delete_when, data.column_names, self.name)
        props, commit_id = commit_properties("MERGE", txn)
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        table = self.delta()
        try:
            builder = table.merge(
                data, on, source_alias="s", target_alias="t",
                merge_schema=schema_mode == "merge", commit_properties=props,
            )
            if delete_when is not None:
                builder = builder.when_matched_delete(_alias(delete_when, "s"))
            if update:
                builder = builder.when_matched_update_all()
            if insert:
                builder = builder.when_not_matched_insert_all()
            if delete_not_matched_by_source:
                builder = builder.when_not_matched_by_source_delete()
            builder.execute()
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "merge into") from exc
        return self._result("MERGE", commit_id, schema_changed=bool(fit.added))

    def delete(self, predicate: str, *, txn: Txn | None = None) -> CommitResult:
        """Delete the rows matching a SQL predicate (only files holding such rows are rewritten)."""
        pred.check_columns(predicate, self.schema().names, self.name)
        skipped = self._already_committed(txn)
        if skipped is not None:
            return skipped
        props, commit_id = commit_properties("DELETE", txn)
        try:
            self.delta().delete(predicate, commit_properties=props)
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "delete from") from exc
        result = self._result("DELETE", commit_id)
        self.lake.committed(self, result)
        return result

    # --------------------------------------------------------------- maintenance

    def optimize(self, *, target_size: int | None = None, zorder: Sequence[str] | None = None) -> CommitResult:
        """Compact small files (and optionally Z-order by columns) without changing data."""
        props, commit_id = commit_properties("OPTIMIZE", None)
        table = self.delta()
        before = table.version()
        try:
            if zorder:
                metrics = table.optimize.z_order(list(zorder), target_size=target_size, commit_properties=props)
            else:
                metrics = table.optimize.compact(target_size=target_size, commit_properties=props)
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "optimize") from exc
        table.update_incremental()
        result_metrics = {
            "files_added": metrics.get("numFilesAdded", 0),
            "files_removed": metrics.get("numFilesRemoved", 0),
        }
        if table.version() == before:
            return CommitResult(self.name, "OPTIMIZE", before, result_metrics, skipped=True)
        result = CommitResult(self.name, "OPTIMIZE", self._result("OPTIMIZE", commit_id).version, result_metrics)
        self.lake.committed(self, result)
        return result

    def vacuum(
        self, *, retention_hours: float | None = None, dry_run: bool = False, force: bool = False
    ) -> list[str]:
        """Delete files no version within the retention needs, and leftovers of crashed writes.

        Args:
            retention_hours: keep files needed by versions younger than this (default 168).
            dry_run: only list what would be deleted.
            force: allow a retention under 168 hours (breaks time travel further back
                and can break readers still on an old version).

        Returns:
            The files deleted (or that would be).
        """
        hours = DEFAULT_RETENTION_HOURS if retention_hours is None else retention_hours
        if hours < 0:
            raise RetentionError("retention_hours cannot be negative", table=self.name)
        if hours < DEFAULT_RETENTION_HOURS and not force:
            raise RetentionError(
                f"a retention of {hours:g} hours is under the safe minimum of {DEFAULT_RETENTION_HOURS} "
                "(time travel and readers on older versions would break); pass force=True / --force",
                table=self.name,
            )
        table = self.delta()
        try:
            removed = table.vacuum(
                retention_hours=int(hours), dry_run=dry_run, enforce_retention_duration=False, full=True,
            )
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "vacuum") from exc
        removed = list(removed) + self._clean_staging(hours, dry_run)
        if removed and not dry_run:
            self.lake.committed(self, CommitResult(self.name, "VACUUM", table.version(), {"files_removed": len(removed)}))
        return removed

    def _clean_staging(self, hours: float, dry_run: bool) -> list[str]:
        """Remove files that crashed Spark writes left in the staging folder."""
        staging = f"{self.uri}/{STAGING_DIR}"
        cutoff = time.time() - hours * 3600
        stale = [f for f in self.storage.list_files(staging) if f.mtime <= cutoff]
        if not dry_run:
            for f in stale:
                self.storage.delete_file(f"{staging}/{f.path}")
            if stale and not self.storage.list_files(staging):
                self.storage.delete_tree(staging)
        return [f"{STAGING_DIR}/{f.path}" for f in stale]


def _alias(predicate: str, alias: str) -> str:
    """Qualify bare column names of a predicate with ``alias.`` for delta-rs merge clauses."""
    tree = pred.parse(predicate)
    if tree is None:
        return predicate
    out = predicate
    for col in sorted(pred.columns_of(tree), key=len, reverse=True):
        out = re.sub(rf"(?<![\w.`'])`?{re.escape(col)}`?(?![\w`'])", f"{alias}.`{col}`", out)
    return out


def _normalize_metrics(m: dict[str, Any]) -> dict[str, Any]:
    names = {
        "num_added_rows": "rows_written",
        "num_output_rows": "rows_written",
        "num_added_files": "files_added",
        "num_removed_files": "files_removed",
        "num_target_rows_inserted": "rows_inserted",
        "num_target_rows_updated": "rows_updated",
        "num_target_rows_deleted": "rows_deleted",
        "num_deleted_rows": "rows_deleted",
        "num_target_files_added": "files_added",
        "num_target_files_removed": "files_removed",
        "num_source_rows": "source_rows",
    }
    out: dict[str, Any] = {}
    for key, value in m.items():
        if key in names and isinstance(value, int | float):
            out.setdefault(names[key], int(value))
        elif key in ("rows_written", "rows_inserted", "rows_updated", "rows_deleted", "files_added",
                     "files_removed", "source_rows", "rows_copied"):
            out[key] = value
    return out


def parse_when(text: str) -> dt.datetime:
    """An ISO 8601 time (``Z`` allowed); naive times are UTC. Raises LakeError naming the text."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LakeError(f"{text!r} is not a timestamp; use ISO 8601 such as 2024-05-01T12:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
