"""Putting the gate in front of commits: jobs, Spark writes and Python writes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lake.quality.gate import QualityGateError, QualityReport, split, split_arrow, validate
from lake.quality.suite import Suite, load_suites, parse_suite, quality_folder

if TYPE_CHECKING:
    from lake.lakehouse import Lake
    from lake.table import Table


def suite_for(lake: Lake, table: str, declared: str | None = None, base: Path | None = None) -> Suite | None:
    """The suite guarding ``table``: the job's own (``quality="file.yaml"``) or the quality folder's."""
    if declared:
        import yaml

        path = Path(declared)
        if not path.is_absolute() and base is not None:
            path = base / path
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return parse_suite(data, str(path))
    return load_suites(quality_folder(lake.settings.quality_dir)).get(table)


def _quarantine_rows_spark(bad: Any, job: str, batch: int) -> Any:
    from pyspark.sql import functions as F

    data_cols = [c for c in bad.columns if c != "__expectation"]
    source = F.col("_source_file") if "_source_file" in data_cols else F.lit(None).cast("string")
    return bad.select(
        source.alias("source_file"), F.lit(None).cast("long").alias("line"),
        F.lit(None).cast("long").alias("byte_offset"), F.lit(None).cast("string").alias("column_name"),
        F.lit("EXPECTATION").alias("error_type"), F.col("__expectation").alias("reason"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in data_cols])).alias("raw"),
        F.lit(job).alias("job"), F.lit(batch).cast("long").alias("batch"),
        F.current_timestamp().alias("quarantined_at"),
    )


def _quarantine(lake: Lake, target: str, rows: Any, job: str, batch: int) -> int:
    from lake.pipeline.runner import quarantine_name

    result = lake.table(quarantine_name(target)).write(rows, "append", txn=(f"gate:{job}", batch))
    return int(result.metrics.get("rows_written", 0))


def gate_frame(lake: Lake, suite: Suite, df: Any, *, job: str, batch: int) -> tuple[Any, QualityReport, int]:
    """Validate a Spark DataFrame before it is written; returns (rows to write, report, rows quarantined)."""
    from pyspark import StorageLevel

    df = df.persist(StorageLevel.MEMORY_AND_DISK)  # validated and written from one computation
    report = validate(df, suite)
    if report.success or suite.policy == "warn":
        return df, report, 0
    if suite.policy == "fail":
        raise QualityGateError(report.message() + "\nNothing was committed.", report, table=suite.table)
    good, bad = split(df, report, suite)
    quarantined = _quarantine(lake, suite.table, _quarantine_rows_spark(bad, job, batch), job, batch)
    return good, report, quarantined


def concurrent_gate(lake: Lake, suite: Suite, table: Table, *, job: str, batch: int,
                    holder: dict[str, Any]) -> Any:
    """A gate for :func:`lake.spark_io.write_spark`: validate while the executors write.

    The files are written but not committed while GE runs; on failure they are deleted
    (``fail``), or replaced by the passing rows (``quarantine``). ``holder`` receives the
    report and the number of rows quarantined.
    """
    from concurrent.futures import ThreadPoolExecutor

    from lake.spark_io import _discard

    def gate(write: Any, df: Any) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(1) as pool:
            checking = pool.submit(validate, df, suite)
            try:
                infos = write(df)
            finally:
                report = checking.result()
        holder.update(report=report, quarantined=0)
        if report.success or suite.policy == "warn":
            return infos
        _discard(table, infos)
        if suite.policy == "fail":
            raise QualityGateError(report.message() + "\nNothing was committed.", report, table=suite.table)
        good, bad = split(df, report, suite)
        holder["quarantined"] = _quarantine(lake, suite.table, _quarantine_rows_spark(bad, job, batch), job, batch)
        return write(good)  # type: ignore[no-any-return]

    return gate


def gate_files(lake: Lake, spark: Any, suite: Suite, table: Table, infos: list[dict[str, Any]],
               schema: pa.Schema, partition_by: list[str], *, job: str,
               batch: int) -> tuple[list[dict[str, Any]], QualityReport, int]:
    """Validate Parquet files the executors wrote (not yet committed); returns the files to commit."""
    from lake.spark_io import _discard, scan_files, write_files

    files = [{"path": i["path"], "partition_values": _pv(i["partition_values"]), "size": i["size"]} for i in infos]
    df = scan_files(spark, table, files, schema, partition_by)
    report = validate(df, suite)
    if report.success or suite.policy == "warn":
        return infos, report, 0
    if suite.policy == "fail":
        _discard(table, infos)
        raise QualityGateError(report.message() + "\nNothing was committed.", report, table=suite.table)
    try:
        good, bad = split(df, report, suite)
        quarantined = _quarantine(lake, suite.table, _quarantine_rows_spark(bad, job, batch), job, batch)
        kept = write_files(table, good, partition_by, schema)
    except BaseException:
        _discard(table, infos)
        raise
    _discard(table, infos)
    return kept, report, quarantined


def _pv(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def gate_arrow(lake: Lake, suite: Suite, data: pa.Table, *, job: str, batch: int) -> tuple[pa.Table, QualityReport, int]:
    """Validate Arrow data (GE's pandas engine) before a Python write."""
    report = validate(data.to_pandas(), suite)
    if report.success or suite.policy == "warn":
        return data, report, 0
    if suite.policy == "fail":
        raise QualityGateError(report.message() + "\nNothing was committed.", report, table=suite.table)
    good, bad = split_arrow(data, report, suite)
    now = dt.datetime.now(dt.UTC)
    from lake.pipeline.parse import QUARANTINE_SCHEMA

    reasons = bad.column("__expectation").to_pylist()
    raw = [json.dumps(r, default=str) for r in bad.drop_columns(["__expectation"]).to_pylist()]
    rows = pa.Table.from_pylist([{"error_type": "EXPECTATION", "reason": why, "raw": text, "job": job,
                                  "batch": batch, "quarantined_at": now} for why, text in zip(reasons, raw, strict=True)],
                                schema=QUARANTINE_SCHEMA)
    return good, report, _quarantine(lake, suite.table, rows, job, batch)


def record(lake: Lake, report: QualityReport, table: str, version: int | None, run_id: str | None,
           quarantined: int = 0) -> None:
    """Store the result on the dataset version in the catalog (and so in OpenLineage)."""
    stats = {**report.statistics, "rows_quarantined": quarantined}
    lake.catalog.record_quality(table, version, report.suite, report.success, statistics=stats,
                                results=report.results, policy=report.policy, run_id=run_id)
