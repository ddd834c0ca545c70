"""Table sources: silver and gold jobs that read lake tables and transform them in Spark."""

from __future__ import annotations

import re
from typing import Any

from lake.errors import JobError
from lake.pipeline.context import SourceRun, render_sql
from lake.pipeline.spec import TableSource
from lake.spark_io import spark_literal
from lake.table import SchemaMode, WriteMode


def view_name(table: str) -> str:
    """``silver.flights`` -> ``silver_flights`` (Spark temp views have no schema)."""
    return table.replace(".", "_")


def rewrite_sql(sql: str, tables: list[str]) -> str:
    """Let job SQL name lake tables as written: each name becomes its temp view."""
    for name in sorted(tables, key=len, reverse=True):
        sql = re.sub(rf"(?<![\w.`]){re.escape(name)}(?![\w`])", view_name(name), sql, flags=re.IGNORECASE)
    return sql


def run_transform(ctx: SourceRun) -> list[dict[str, Any]]:
    job, report = ctx.job, ctx.report
    source = job.source
    assert isinstance(source, TableSource)
    spark = ctx.spark
    inputs = {}
    for name in source.tables:
        table = ctx.lake.existing(name)
        df = table.to_spark(spark)  # recorded as an input of the run at this exact version
        df.createOrReplaceTempView(view_name(table.name))
        inputs[table.name] = df
    if source.sql is not None:
        query = rewrite_sql(render_sql(source.sql, ctx.params, spark_literal, job=job.name), list(inputs))
        try:
            result = spark.sql(query)
        except Exception as exc:
            if type(exc).__module__.startswith("pyspark"):
                lines = [line for line in str(exc).splitlines() if line.strip()]
                raise JobError(f"job {job.name}: Spark SQL failed: {lines[0] if lines else type(exc).__name__}",
                               job=job.name) from None
            raise
    else:
        assert source.transform is not None
        result = source.transform(spark, inputs, dict(ctx.params))
    target = ctx.target
    gate = ctx.gate()
    schema_mode: SchemaMode = "merge" if job.schema_policy == "add_columns" else None
    if job.mode == "merge" and target.exists() and not ctx.full_refresh:
        commit = target.merge(result, keys=list(job.keys), txn=ctx.txn, schema_mode=schema_mode, quality=gate,
                              job=job.name)
    else:
        mode: WriteMode = "overwrite" if job.mode == "overwrite" or ctx.full_refresh else "append"
        commit = target.write(result, mode, partition_by=list(job.partition_by) or None, txn=ctx.txn,
                              schema_mode=schema_mode, description=job.description, quality=gate, job=job.name)
    report.version = commit.version
    report.skipped = commit.skipped
    report.rows_quarantined = int(commit.metrics.get("rows_quarantined", 0))
    report.rows_written = int(commit.metrics.get("rows_written", 0))
    report.rows_read = sum(int(t.details()["rows"]) for t in map(ctx.lake.table, inputs))
    return []
