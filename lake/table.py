"""A Delta table of the lake: reads, writes, merges, deletes, time travel, maintenance.

The user-facing face of a table. Every write opens one
:class:`~lake.transaction.Transaction` and hands it to an engine: Python data
(Arrow, pandas, Polars) to :mod:`lake.arrow_io` (delta-rs writes), Spark DataFrames
to :mod:`lake.spark_write` (executors write Parquet, the driver commits). Either way
the table is a standard Delta table that delta-spark, DuckDB, Polars and Trino read.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import CommitProperties

from lake import arrow_io, protocol, spark_write
from lake import predicate as pred
from lake.arrow_io import SchemaMode, WriteMode
from lake.data import is_spark_dataframe, normalized, to_arrow
from lake.errors import LakeError, MergeError, RetentionError, SchemaMismatchError, TableExistsError
from lake.location import TableLocation, parse_when, wrap_delta_error
from lake.naming import STAGING_DIR
from lake.protocol import conform_reader, filtered_reader, int96_as_micros
from lake.quality.apply import SuiteGate, load_suite
from lake.quality.suite import Suite
from lake.results import CommitResult
from lake.spark_io import read_spark, table_files
from lake.transaction import Gate, Transaction, Txn, fingerprint_arrow

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

__all__ = ["DEFAULT_RETENTION_HOURS", "SchemaMode", "Table", "Txn", "WriteMode", "parse_when"]

DEFAULT_RETENTION_HOURS = 168
Quality = Suite | Gate | str | Path


class Table(TableLocation):
    """One Delta table, addressed by name (``bronze.events``) or location.

    Made by :meth:`lake.lakehouse.Lake.table`; the table need not exist yet (writing
    creates it).
    """

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
        proto = protocol.check(table, protocol.ARROW, self.name)
        schema = pa.schema(table.schema().to_arrow())
        cols = list(columns) if columns else None
        if cols:
            unknown = [c for c in cols if c not in schema.names]
            if unknown:
                raise LakeError(f"unknown column(s) {unknown} of {self.name}; its columns are {schema.names}",
                                table=self.name)
        tree = pred.check_columns(filter, schema.names, self.name) if filter is not None else None
        self.journal.read(self, int(table.version()))
        # pyarrow reads the files itself where delta-rs' dataset is exact: no column mapping, no
        # deletion vectors; INT96 as microseconds, so years 1 to 9999 fit
        plain = not proto.mapped and proto.reader_features <= {protocol.TIMESTAMP_NTZ}
        out = schema if cols is None else pa.schema([schema.field(c) for c in cols])
        expr = pred.arrow_filter(tree, schema)
        try:
            if filter is not None and expr is None:  # SQL beyond what the lake models: delta-rs evaluates it
                stream = pa.RecordBatchReader.from_stream(table.scan(columns=cols, predicate=filter))
                return conform_reader(stream, out)
            if plain:
                dataset = table.to_pyarrow_dataset(parquet_read_options=int96_as_micros())
                if tree is not None:  # skip files by partition values and statistics, the lake's way
                    import pyarrow.dataset as pads  # heavy (it loads pandas): only once files are read

                    kept = {f["path"] for f in table_files(table, tree)}
                    dataset = pads.FileSystemDataset([fr for fr in dataset.get_fragments() if fr.path in kept],
                                                     dataset.schema, dataset.format, dataset.filesystem)
                if expr is None:
                    return dataset.scanner(columns=cols).to_reader()
                # the filter runs on the rows read: pushed into the scan, pyarrow drops the rows of
                # files that lack a column the filter names (added to the table later)
                needed = None if cols is None else [n for n in schema.names
                                                    if n in cols or n in pred.columns_of(tree)]
                return filtered_reader(dataset.scanner(columns=needed).to_reader(), expr, out)
            # delta-rs' own engine resolves column mapping and drops the rows deletion vectors delete
            stream = conform_reader(pa.RecordBatchReader.from_stream(table.scan()), schema)
            return filtered_reader(stream, expr, out)
        except Exception as exc:
            raise wrap_delta_error(exc, self.name, "read", filter) from exc

    def to_arrow(self, **kwargs: Any) -> pa.Table:
        """The table as one Arrow table (same arguments as :meth:`to_batches`)."""
        return self.to_batches(**kwargs).read_all()

    def to_pandas(self, **kwargs: Any) -> pd.DataFrame:
        """The table as a pandas DataFrame (same arguments as :meth:`to_batches`)."""
        return self.to_arrow(**kwargs).to_pandas()

    def to_polars(self, **kwargs: Any) -> pl.DataFrame:
        """The table as a Polars DataFrame (same arguments as :meth:`to_batches`)."""
        import polars as pl  # heavy: polars only for callers who want it

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
        return read_spark(self, spark, version=version, as_of=as_of, columns=columns, filter=filter)

    # -------------------------------------------------------------------- writes

    def transaction(self, *, txn: Txn | None = None, quality: Quality | None = None,
                    job: str | None = None) -> Transaction:
        """A transaction on this table (see :mod:`lake.transaction`); a context manager.

        ``job`` is who the quality gate attributes set-aside rows to (default: the txn's
        application id, else ``write.<table>``).
        """
        return Transaction(self, txn=txn, gate=self._gate(quality), job=job)

    def _gate(self, quality: Quality | None) -> Gate | None:
        if quality is None:
            return None
        if isinstance(quality, Suite):
            return SuiteGate(quality)
        if isinstance(quality, str | Path):
            return SuiteGate(load_suite(Path(quality)))
        if all(hasattr(quality, m) for m in ("check_arrow", "check_frame", "check_files")):
            return quality
        raise LakeError(f"quality= takes a suite (lake.quality.suite.load_suite('quality/x.yaml')) or the path of a "
                        f"suite file, not {type(quality).__name__}", table=self.name)

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
        quality: Quality | None = None,
        job: str | None = None,
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
            quality: an expectation suite checked before the commit: a
                :class:`~lake.quality.suite.Suite` (``lake.quality.suite.load_suite(path)``) or
                the path of a suite file (see :mod:`lake.quality`).
            job: who the quality gate attributes set-aside rows to (default: the txn's
                application id, else ``write.<table>``).

        Returns:
            The commit made, or the skip.

        Raises:
            SchemaMismatchError: the data does not fit; nothing was written.
            TableExistsError: mode ``error`` and the table exists.
            CatalogUnavailableError: the catalog is unreachable; nothing was written.
            CommitNotRecordedError: written, but the catalog could not record the version
                (it will, from the Delta log; a retry of this call does not write again).
        """
        if mode not in ("append", "overwrite", "error", "ignore"):
            raise LakeError(f"unknown write mode {mode!r}: use append, overwrite, error or ignore")
        if replace_where is not None and mode != "overwrite":
            raise LakeError("replace_where needs mode='overwrite'")
        spark = is_spark_dataframe(data)
        if not spark:
            data = normalized(to_arrow(data))
        with self.transaction(txn=txn, quality=quality, job=job) as tx:
            if tx.skipped:
                return tx.skipped
            exists = tx.base is not None
            if exists and mode == "error":
                raise TableExistsError(f"table {self.name} already exists at {self.uri}", table=self.name)
            if exists and mode == "ignore":
                return CommitResult(self.name, "IGNORE", tx.base.version() if tx.base else None, skipped=True)
            if exists and partition_by is not None and schema_mode != "overwrite":
                assert tx.base is not None
                current = list(tx.base.metadata().partition_columns)
                if list(partition_by) != current:
                    raise SchemaMismatchError(
                        f"table {self.name} is partitioned by {current or 'nothing'}, not {list(partition_by)}",
                        table=self.name)
            retry = tx.retry_of(self._fingerprint(data, spark))
            if retry is not None:
                return retry
            if spark:
                return spark_write.write(
                    tx, data, mode="overwrite" if mode == "overwrite" else "append",
                    partition_by=list(partition_by or []), replace_where=replace_where, schema_mode=schema_mode,
                    description=description, configuration=configuration)
            return arrow_io.write(tx, data, mode, list(partition_by or []), replace_where, schema_mode,
                                  description, configuration)

    @staticmethod
    def _fingerprint(data: Any, spark: bool) -> Any:
        """How to digest ``data`` should a retry have to be recognized (computed only then)."""
        if spark:
            return lambda: spark_write.fingerprint_frame(data)
        if isinstance(data, pa.Table):
            return lambda: fingerprint_arrow(data)
        return lambda: None  # a stream is read once: it cannot be digested again

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
        quality: Quality | None = None,
        job: str | None = None,
    ) -> CommitResult:
        """Upsert ``source`` by ``keys`` as one commit.

        Matched rows are updated (every column from the source), unmatched source rows
        inserted, and optionally: matched rows for which ``delete_when`` (a SQL predicate
        over the source's columns, which may include a change-feed column such as ``op``
        that the table does not have) holds are deleted, and target rows with no source
        row are deleted (``delete_not_matched_by_source``, a full sync). ``quality`` and
        ``job`` are as for :meth:`write`: the suite checks the source rows.

        Raises:
            MergeError: several source rows share one key (the merge would be ambiguous).
            SchemaMismatchError: the source does not fit the table.
        """
        keys = list(keys)
        if not keys:
            raise MergeError("merge needs at least one key column", table=self.name)
        if not self.exists():
            # Merging into nothing is a create: every source row is new.
            return self.write(source, "append", schema_mode=schema_mode, txn=txn, quality=quality, job=job)
        with self.transaction(txn=txn, quality=quality, job=job) as tx:
            if tx.skipped:
                return tx.skipped
            if is_spark_dataframe(source):
                return spark_write.merge(
                    tx, source, keys, update=update, insert=insert, delete_when=delete_when,
                    delete_not_matched_by_source=delete_not_matched_by_source, schema_mode=schema_mode)
            return arrow_io.merge(
                tx, to_arrow(source), keys, update=update, insert=insert, delete_when=delete_when,
                delete_not_matched_by_source=delete_not_matched_by_source, schema_mode=schema_mode)

    def delete(self, predicate: str, *, txn: Txn | None = None) -> CommitResult:
        """Delete the rows matching a SQL predicate (only files holding such rows are rewritten)."""
        pred.check_columns(predicate, self.schema().names, self.name)
        with self.transaction(txn=txn) as tx:
            if tx.skipped:
                return tx.skipped
            return arrow_io.delete(tx, predicate)

    # --------------------------------------------------------------- maintenance

    def optimize(self, *, target_size: int | None = None, zorder: Sequence[str] | None = None) -> CommitResult:
        """Compact small files (and optionally Z-order by columns) without changing data."""
        with self.transaction() as tx:
            return arrow_io.optimize(tx, target_size, zorder)

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
        removed: list[str] = []
        with self.transaction() as tx:
            base = tx.base
            if base is None:
                raise wrap_delta_error(FileNotFoundError(self.uri), self.name, "vacuum")

            def vacuum(props: CommitProperties) -> None:
                removed.extend(base.vacuum(retention_hours=int(hours), dry_run=dry_run,
                                           enforce_retention_duration=False, full=True, commit_properties=props))

            tx.run(vacuum)
            if tx.commit("VACUUM").version != tx.base_version:  # delta-rs logs a start and an end commit
                self.journal.repair(self, self.version())
        return list(removed) + self._clean_staging(hours, dry_run)

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
