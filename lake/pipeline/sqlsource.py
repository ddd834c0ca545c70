"""SQL sources: a table or query read through SQLAlchemy, split across Spark tasks.

No JDBC (no Maven here): each task opens its own SQLAlchemy connection, reads its range
of the partition column with a server-side cursor, and writes Parquet files of the
target table; the driver commits once. Incremental runs read only rows whose watermark
column is above the previous run's maximum.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from catalog.redact import redact_url
from lake.duck import literal
from lake.errors import JobError
from lake.pipeline.context import SourceRun, commit_files, render_sql
from lake.pipeline.spec import SqlSource
from lake.schema import normalize_schema
from lake.spark_files import make_filesystem, write_batches

_ENV = re.compile(r"\$\{(\w+)\}")


def expand_url(url: str) -> str:
    """Substitute ``${VAR}`` from the environment (keeps passwords out of job files)."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise JobError(f"the source URL needs the environment variable {m.group(1)}, which is not set")
        return os.environ[m.group(1)]

    return _ENV.sub(sub, url)


def quoted(engine: Any, name: str) -> str:
    """A column or (schema-qualified) table name of the source, quoted in its database's dialect."""
    preparer = engine.dialect.identifier_preparer
    return ".".join(preparer.quote_identifier(part) for part in name.split("."))


def base_query(source: SqlSource, engine: Any) -> str:
    return source.query.strip().rstrip(";") if source.query else f"SELECT * FROM {quoted(engine, source.table or '')}"


def _encode(value: Any) -> str | None:
    if value is None:
        return None
    kind = ("datetime" if isinstance(value, dt.datetime) else "date" if isinstance(value, dt.date)
            else "int" if isinstance(value, int) else "decimal" if isinstance(value, decimal.Decimal)
            else "float" if isinstance(value, float) else "str")
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return json.dumps({"type": kind, "value": text})


def _decode(stored: str | None) -> Any:
    if stored is None:
        return None
    data = json.loads(stored)
    kind, text = data["type"], data["value"]
    parsers: dict[str, Any] = {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "int": int,
                               "decimal": decimal.Decimal, "float": float, "str": str}
    return parsers[kind](text)


def _arrow_schema(rows: list[dict[str, Any]], columns: list[str]) -> pa.Schema:
    sample = pa.Table.from_pylist(rows) if rows else None
    fields = []
    for name in columns:
        dtype = sample.schema.field(name).type if sample is not None else pa.null()
        if pa.types.is_null(dtype):
            dtype = pa.string()
        elif pa.types.is_decimal(dtype):
            dtype = pa.decimal128(38, dtype.scale)
        elif pa.types.is_timestamp(dtype):
            dtype = pa.timestamp("us", tz="UTC" if dtype.tz else None)
        fields.append(pa.field(name, dtype))
    return normalize_schema(pa.schema(fields))


def read_range(task: dict[str, Any]) -> dict[str, Any]:
    """Executor: read one range of the source and write it as Parquet files of the target."""
    schema = pa.ipc.read_schema(pa.py_buffer(task["schema"]))
    data_names = [f.name for f in schema if not f.name.startswith("_")]
    engine = create_engine(task["url"])
    where, params = [], {}
    if task.get("watermark_value") is not None:
        where.append(f"lake_src.{quoted(engine, task['watermark'])} > :wm")
        params["wm"] = _decode(task["watermark_value"])
    if task.get("lo") is not None:
        op = "<=" if task["last"] else "<"
        column = f"lake_src.{quoted(engine, task['partition_column'])}"
        where.append(f"{column} >= :lo AND {column} {op} :hi")
        params.update(lo=task["lo"], hi=task["hi"])
    sql = f"SELECT * FROM ({task['query']}) AS lake_src" + (" WHERE " + " AND ".join(where) if where else "")
    top: list[Any] = [None]
    now = dt.datetime.fromisoformat(task["ingested_at"])

    def batches() -> Iterator[pa.RecordBatch]:
        with engine.connect().execution_options(stream_results=True) as conn:
            result = conn.execute(text(sql), params)
            while rows := result.fetchmany(task["fetch_size"]):
                dicts = [dict(r._mapping) for r in rows]
                if task.get("watermark"):
                    high = max((d[task["watermark"]] for d in dicts if d[task["watermark"]] is not None), default=None)
                    if high is not None and (top[0] is None or high > top[0]):
                        top[0] = high
                cols = {n: [d.get(n) for d in dicts] for n in data_names}
                table = pa.table({n: pa.array(cols[n], schema.field(n).type) for n in data_names})
                table = table.append_column("_source", pa.array([task["source_label"]] * len(dicts), pa.string()))
                table = table.append_column("_batch", pa.array([task["batch"]] * len(dicts), pa.int64()))
                table = table.append_column("_ingested_at", pa.array([now] * len(dicts), pa.timestamp("us", tz="UTC")))
                yield from table.select(schema.names).to_batches()

    fs = make_filesystem(task["fs_kind"], task["fs_kwargs"])
    stored = pa.ipc.read_schema(pa.py_buffer(task["stored"]))
    files = write_batches(fs, task["target_root"], batches(), stored, task["partition_by"],
                          f"{task['write_id']}-{task['index']:05d}")
    engine.dispose()
    return {"files": files, "rows": sum(f["rows"] for f in files), "watermark": _encode(top[0])}


def run_sql(ctx: SourceRun) -> list[dict[str, Any]]:
    job, report, state = ctx.job, ctx.report, ctx.state
    source = job.source
    assert isinstance(source, SqlSource)
    url = expand_url(source.url)
    label = redact_url(url)
    watermark = None if ctx.full_refresh else state.watermark
    ctx.run.input(source.table or "query", namespace=label.split("?")[0], format="sql")
    try:
        engine = create_engine(url)
        query = render_sql(base_query(source, engine), ctx.params, literal, job=job.name)
        with engine.connect() as conn:
            sample = [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM ({query}) AS lake_src LIMIT 1000"))]
            columns = list(conn.execute(text(f"SELECT * FROM ({query}) AS lake_src LIMIT 0")).keys())
            bounds = None
            if source.partition_column:
                cond = (f" WHERE lake_src.{quoted(engine, source.watermark)} > :wm"
                        if watermark and source.watermark else "")
                part = f"lake_src.{quoted(engine, source.partition_column)}"
                bounds = conn.execute(text(f"SELECT min({part}), max({part}) FROM ({query}) AS lake_src{cond}"),
                                      {"wm": _decode(watermark)} if cond else {}).one()
        engine.dispose()
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise JobError(f"job {job.name}: cannot read {label}: {detail}", job=job.name) from None
    except (ImportError, ValueError) as exc:
        raise JobError(f"job {job.name}: bad source URL {label}: {exc}", job=job.name) from None
    schema = pa.schema([*_arrow_schema(sample, columns),
                        pa.field("_source", pa.string()), pa.field("_batch", pa.int64()),
                        pa.field("_ingested_at", pa.timestamp("us", tz="UTC"))])
    target = ctx.target
    exists = target.exists() and not ctx.full_refresh
    partition_by = target.partition_columns if exists else list(job.partition_by)
    stored = pa.schema([f for f in schema if f.name not in partition_by])
    lake_storage = ctx.lake.storage
    fs_kind, fs_kwargs = lake_storage.fs_spec()
    base = {
        "url": url, "query": query, "schema": schema.serialize().to_pybytes(),
        "stored": stored.serialize().to_pybytes(), "fetch_size": source.fetch_size,
        "watermark": source.watermark, "watermark_value": watermark, "partition_column": source.partition_column,
        "fs_kind": fs_kind, "fs_kwargs": fs_kwargs,
        "target_root": lake_storage.fs_path(target.uri), "partition_by": partition_by, "batch": ctx.batch,
        "write_id": ctx.write_id(), "source_label": label,
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    ranges: list[tuple[Any, Any]] = [(None, None)]
    if bounds is not None and bounds[0] is not None:
        lo, hi = int(bounds[0]), int(bounds[1])
        n = max(1, min(source.partitions, hi - lo + 1))
        step = (hi - lo + 1) / n
        edges = [lo + round(i * step) for i in range(n)] + [hi]
        ranges = list(zip(edges[:-1], edges[1:], strict=True))
    elif bounds is not None:
        ranges = []  # nothing above the watermark
    tasks = [{**base, "index": i, "lo": lo, "hi": hi, "last": i == len(ranges) - 1} for i, (lo, hi) in enumerate(ranges)]
    results = ctx.spark.sparkContext.parallelize(tasks, max(1, len(tasks))).map(read_range).collect() if tasks else []
    files = [{**f, "partition_values": json.loads(f["partition_values"]) if isinstance(f["partition_values"], str)
              else f["partition_values"]} for r in results for f in r["files"]]
    report.rows_read = report.rows_written = sum(r["rows"] for r in results)
    report.files = len(files)
    if not files and exists:
        report.notes.append("no new rows above the watermark" if watermark else "the source is empty")
        report.skipped = True
        return [{"kind": "watermark", "watermark": watermark}] if watermark else []
    with ctx.transaction() as tx:
        result = commit_files(tx, files, schema, partition_by, overwrite=job.mode == "overwrite" or ctx.full_refresh,
                              metrics={"rows_written": report.rows_written, "files_added": len(files)})
        gated = int((tx.quality or {}).get("rows_quarantined") or 0)
    report.rows_written -= gated
    report.rows_quarantined = gated
    report.version = result.version
    marks = [_decode(r["watermark"]) for r in results if r["watermark"] is not None]
    new_mark = _encode(max(marks)) if marks else watermark
    return [{"kind": "watermark", "watermark": new_mark}] if source.watermark else []
