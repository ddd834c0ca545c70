"""The quality gate as a step of every commit: :class:`SuiteGate` checks staged data.

A transaction (:mod:`lake.transaction`) calls the gate on what it is about to commit:
Arrow data (Python writes), a Spark DataFrame being written (validated while the
executors write), or Parquet files written and not yet committed (jobs). What happens
then is the suite's policy (see :mod:`lake.quality.gate`); rows set aside go to the
table's quarantine table through a transaction of their own. The result travels with
the commit (its commit info) and is recorded in the catalog with the version.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lake import arrow_io, metrics, spark_write
from lake.errors import QualityGateError
from lake.naming import QUARANTINE_SCHEMA, quarantine_name
from lake.quality.gate import QualityReport, split, split_arrow, validate
from lake.quality.suite import Suite, load_suite, load_suites, quality_folder
from lake.spark_io import scan_files, spark_session, write_files
from lake.transaction import DataFile, GateContext, Transaction, discard_files

if TYPE_CHECKING:
    from catalog.store import Catalog

__all__ = ["SuiteGate", "load_suite", "quality_result", "record", "suite_for"]


def suite_for(quality_dir: str | None, table: str, declared: str | None = None,
              base: Path | None = None) -> Suite | None:
    """The suite guarding ``table``: the job's own (``quality="file.yaml"``) or the quality folder's."""
    if declared:
        path = Path(declared)
        if not path.is_absolute() and base is not None:
            path = base / path
        return load_suite(path)
    return load_suites(quality_folder(quality_dir)).get(table)


def quality_result(report: QualityReport, quarantined: int = 0) -> dict[str, Any]:
    """A report as the plain JSON a commit carries and the catalog records (and counted in the metrics)."""
    outcome = ("passed" if report.success else "warned" if report.policy == "warn"
               else "quarantined" if quarantined else "failed")
    metrics.QUALITY_GATES.labels(report.table, outcome).inc()
    return {"suite": report.suite, "policy": report.policy, "success": report.success,
            "statistics": report.statistics, "results": report.results, "rows_quarantined": quarantined}


def record(catalog: Catalog, report: QualityReport, table: str, version: int | None, run_id: str | None,
           quarantined: int = 0) -> None:
    """Store a validation of an existing version (``lake quality validate``) in the catalog."""
    stats = {**report.statistics, "rows_quarantined": quarantined}
    catalog.record_quality(table, version, report.suite, report.success, statistics=stats,
                           results=report.results, policy=report.policy, run_id=run_id)


def _quarantine_rows_spark(bad: Any, job: str, batch: int) -> Any:
    from pyspark.sql import functions as F  # heavy: pyspark, for Spark frames only

    data_cols = [c for c in bad.columns if c != "__expectation"]
    source = F.col("_source_file") if "_source_file" in data_cols else F.lit(None).cast("string")
    return bad.select(
        source.alias("source_file"), F.lit(None).cast("long").alias("line"),
        F.lit(None).cast("long").alias("byte_offset"), F.lit(None).cast("string").alias("column_name"),
        F.lit("EXPECTATION").alias("error_type"), F.col("__expectation").alias("reason"),
        F.to_json(F.struct(*[F.col("`" + c.replace("`", "``") + "`") for c in data_cols])).alias("raw"),
        F.lit(job).alias("job"), F.lit(batch).cast("long").alias("batch"),
        F.current_timestamp().alias("quarantined_at"),
    )


def _quarantine_rows_arrow(bad: pa.Table, job: str, batch: int) -> pa.Table:
    now = dt.datetime.now(dt.UTC)
    reasons = bad.column("__expectation").to_pylist()
    raw = [json.dumps(r, default=str) for r in bad.drop_columns(["__expectation"]).to_pylist()]
    return pa.Table.from_pylist(
        [{"error_type": "EXPECTATION", "reason": why, "raw": text, "job": job, "batch": batch,
          "quarantined_at": now} for why, text in zip(reasons, raw, strict=True)],
        schema=QUARANTINE_SCHEMA)


def _quarantine(ctx: GateContext, rows: Any) -> int:
    """Append set-aside rows to the table's quarantine table (its own commit, idempotent per batch)."""
    target = ctx.table.sibling(quarantine_name(ctx.table.name))
    with Transaction(target, txn=(f"gate:{ctx.job}", ctx.batch)) as tx:
        if tx.skipped:
            return 0
        if isinstance(rows, pa.Table):
            result = arrow_io.write(tx, rows, "append", [], None, None, None, None)
        else:
            result = spark_write.write(tx, rows, mode="append", partition_by=[], replace_where=None,
                                       schema_mode=None, description=None, configuration=None)
    return int(result.metrics.get("rows_written", 0))


class SuiteGate:
    """A suite as the gate of a transaction (implements :class:`lake.transaction.Gate`)."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite

    def _passes(self, report: QualityReport, ctx: GateContext) -> bool:
        """True when the data commits as it is; raises for policy ``fail``."""
        if report.success or self.suite.policy == "warn":
            return True
        if self.suite.policy == "fail":
            ctx.table.journal.quality_failed(ctx.table, quality_result(report))
            raise QualityGateError(report.message() + "\nNothing was committed.", report, table=self.suite.table)
        return False

    def _unpinned(self, ctx: GateContext, report: QualityReport, exc: QualityGateError) -> QualityGateError:
        ctx.table.journal.quality_failed(ctx.table, quality_result(report))
        return exc

    def check_arrow(self, data: pa.Table, ctx: GateContext) -> tuple[pa.Table, dict[str, Any]]:
        """Validate Arrow data (GE's pandas engine) before a Python write."""
        report = validate(data.to_pandas(), self.suite)
        if self._passes(report, ctx):
            return data, quality_result(report)
        try:
            good, bad = split_arrow(data, report, self.suite)
        except QualityGateError as exc:
            raise self._unpinned(ctx, report, exc) from None
        quarantined = _quarantine(ctx, _quarantine_rows_arrow(bad, ctx.job, ctx.batch))
        return good, quality_result(report, quarantined)

    def check_rows(self, frame: Any, ctx: GateContext) -> tuple[Any, dict[str, Any]]:
        """Validate a Spark DataFrame before it is merged; returns the rows that pass."""
        from pyspark import StorageLevel  # heavy: pyspark, for Spark frames only

        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)  # validated and merged from one computation
        report = validate(frame, self.suite)
        if self._passes(report, ctx):
            return frame, quality_result(report)
        try:
            good, bad = split(frame, report, self.suite)
        except QualityGateError as exc:
            raise self._unpinned(ctx, report, exc) from None
        quarantined = _quarantine(ctx, _quarantine_rows_spark(bad, ctx.job, ctx.batch))
        return good, quality_result(report, quarantined)

    def check_frame(self, frame: Any, write: Callable[[Any], list[DataFile]],
                    ctx: GateContext) -> tuple[list[DataFile], dict[str, Any]]:
        """Validate a Spark DataFrame while the executors write it (files not yet committed).

        On failure the files are deleted (``fail``), or replaced by the passing rows
        (``quarantine``).
        """
        from pyspark import StorageLevel  # heavy: pyspark, for Spark frames only

        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)  # validated and written from one computation
        with ThreadPoolExecutor(1) as pool:
            checking = pool.submit(validate, frame, self.suite)
            try:
                files = write(frame)
            finally:
                report = checking.result()
        try:
            if self._passes(report, ctx):
                return files, quality_result(report)
        except QualityGateError:
            discard_files(ctx.table, files)
            raise
        discard_files(ctx.table, files)
        try:
            good, bad = split(frame, report, self.suite)
        except QualityGateError as exc:
            raise self._unpinned(ctx, report, exc) from None
        quarantined = _quarantine(ctx, _quarantine_rows_spark(bad, ctx.job, ctx.batch))
        return write(good), quality_result(report, quarantined)

    def check_files(self, files: list[DataFile], schema: pa.Schema, partition_by: list[str],
                    ctx: GateContext) -> tuple[list[DataFile], dict[str, Any]]:
        """Validate Parquet files the executors wrote (not yet committed); returns the files to commit."""
        spark = spark_session()
        staged = [{"path": f["path"], "partition_values": _values(f["partition_values"]), "size": f["size"]}
                  for f in files]
        df = scan_files(spark, ctx.table, staged, schema, partition_by)
        report = validate(df, self.suite)
        if self._passes(report, ctx):
            return files, quality_result(report)
        try:
            good, bad = split(df, report, self.suite)
        except QualityGateError as exc:
            raise self._unpinned(ctx, report, exc) from None
        quarantined = _quarantine(ctx, _quarantine_rows_spark(bad, ctx.job, ctx.batch))
        kept = write_files(ctx.table, good, partition_by, schema)
        discard_files(ctx.table, files)
        return kept, quality_result(report, quarantined)


def _values(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)
