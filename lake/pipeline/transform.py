"""Table sources: silver and gold jobs that read lake tables and transform them in Spark."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lake.pipeline.runner import JobError
from lake.pipeline.spec import Job, TableSource
from lake.table import SchemaMode, WriteMode

if TYPE_CHECKING:
    from lake.pipeline.runner import JobRunner, RunReport


def view_name(table: str) -> str:
    """``silver.flights`` -> ``silver_flights`` (Spark temp views have no schema)."""
    return table.replace(".", "_")


def rewrite_sql(sql: str, tables: list[str]) -> str:
    """Let job SQL name lake tables as written: each name becomes its temp view."""
    for name in sorted(tables, key=len, reverse=True):
        sql = re.sub(rf"(?<![\w.`]){re.escape(name)}(?![\w`])", view_name(name), sql, flags=re.IGNORECASE)
    return sql


def run_transform(runner: JobRunner, job: Job, batch: int, full_refresh: bool, report: RunReport,
                  params: Mapping[str, str]) -> list[dict[str, Any]]:
    source = job.source
    assert isinstance(source, TableSource)
    spark = runner.spark
    inputs = {}
    for name in source.tables:
        table = runner.lake.existing(name)
        df = table.to_spark(spark)  # recorded as an input of the run at this exact version
        df.createOrReplaceTempView(view_name(table.name))
        inputs[table.name] = df
    if source.sql is not None:
        try:
            result = spark.sql(rewrite_sql(source.sql.format(**params), list(inputs)))
        except KeyError as exc:
            raise JobError(f"job {job.name}: its SQL uses the parameter {exc} that was not given (--param)") from None
        except Exception as exc:
            if type(exc).__module__.startswith("pyspark"):
                lines = [line for line in str(exc).splitlines() if line.strip()]
                raise JobError(f"job {job.name}: Spark SQL failed: {lines[0] if lines else type(exc).__name__}") from None
            raise
    else:
        assert source.transform is not None
        result = source.transform(spark, inputs, dict(params))
    target = runner.lake.table(job.target)
    gate_report, gated = None, 0
    suite = runner.suite(job)
    if suite is not None:
        from lake.quality.apply import gate_frame
        from lake.quality.gate import QualityGateError

        try:
            result, gate_report, gated = gate_frame(runner.lake, suite, result, job=job.name, batch=batch)
        except QualityGateError as exc:
            runner.gate_failed(job, report, exc)
            raise
    txn = (f"job:{job.name}", batch)
    schema_mode: SchemaMode = "merge" if job.schema_policy == "add_columns" else None
    if job.mode == "merge" and target.exists() and not full_refresh:
        commit = target.merge(result, keys=list(job.keys), txn=txn, schema_mode=schema_mode)
    else:
        mode: WriteMode = "overwrite" if job.mode == "overwrite" or full_refresh else "append"
        commit = target.write(result, mode, partition_by=list(job.partition_by) or None, txn=txn,
                              schema_mode=schema_mode, description=job.description)
    report.version = commit.version
    report.skipped = commit.skipped
    report.rows_quarantined = gated
    if gate_report is not None:
        from lake.quality.apply import record

        record(runner.lake, gate_report, target.name, commit.version, report.run_id, gated)
    report.rows_written = int(commit.metrics.get("rows_written", 0))
    report.rows_read = sum(int(t.details()["rows"]) for t in map(runner.lake.table, inputs))
    return []
