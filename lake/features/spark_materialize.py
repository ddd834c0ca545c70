"""Materialization on Spark: the latest row per entity on the executors, written to Redis from them.

The executors read the source (the whole pinned version, or only the data files added since
the last materialization: the same Delta-log rule as the DuckDB path), reduce it to one row per
entity key with the same order as DuckDB's ``max(struct_pack(event time, created time,
features...))`` (a null sorts above every value, as in DuckDB), and each partition writes its
rows to Redis in batches of ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows with the
lake's own writer (:class:`~lake.features.online_redis.RedisWriter`: Feast's layout, the same
bytes; a value already online with a newer event time is kept). Only a one-row summary per
partition comes back to the driver. Memory: a task holds one Arrow batch and its encoded
commands; the reduction is Spark's own aggregation (it spills).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from lake import protocol
from lake.errors import FeatureError
from lake.features.encoding import encode_values, entity_keys, fast_types
from lake.features.online_redis import RedisWriter, writer_plan
from lake.spark_io import quote, scan_files
from lake.table import Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

SUMMARY = "entities long, written long, newest long"
_KEY_TYPES = frozenset({"STRING", "INT64", "INT32"})  # entity key types lake.features.encoding encodes itself


class TypeName(NamedTuple):
    """A Feast value type by name, for the types the lake encodes without Feast."""

    name: str


def _light(value_type: Any, fast: frozenset[str]) -> Any:
    return TypeName(value_type.name) if value_type.name in fast else value_type


def latest_rows(spark: SparkSession, view: Any, table: Table, version: int, files: list[dict[str, Any]] | None,
                end: dt.datetime | None) -> SparkDataFrame:
    """One row per entity key: the keys (named as the view's join keys), ``__ts`` (microseconds) and
    the features (named as the view's features)."""
    from pyspark.sql import functions as F  # heavy: pyspark, only on the Spark engine

    if files is None:
        data = table.to_spark(spark, version=version)
    else:
        delta = table.delta(version)
        mapping = protocol.table_protocol(delta).column_mapping
        data = scan_files(spark, table, files, pa.schema(delta.schema().to_arrow()),
                          list(delta.metadata().partition_columns), mapping=mapping)
    src = view.batch_source
    mapping_back = {v: k for k, v in (src.field_mapping or {}).items()}

    def col(name: str) -> Any:
        return F.col(quote(str(mapping_back.get(name, name))))

    keys = [k.name for k in view.entity_columns]
    ts = col(src.timestamp_field).cast("timestamp")
    ordered = [("__t", ts)]
    if src.created_timestamp_column:
        ordered.append(("__c", col(src.created_timestamp_column).cast("timestamp")))
    ordered += [(f"f_{i}", col(f.name)) for i, f in enumerate(view.features)]
    parts = []
    for name, expr in ordered:  # (is null, value): a null is the greatest, as DuckDB orders struct fields
        parts += [expr.isNull().alias(f"{name}_null"), expr.alias(name)]
    rows = data
    for k in keys:
        rows = rows.filter(col(k).isNotNull())
    if end is not None:
        rows = rows.filter(ts <= F.lit(end.astimezone(dt.UTC).replace(tzinfo=None)).cast("timestamp"))
    latest = rows.groupBy(*[col(k).alias(k) for k in keys]).agg(F.max(F.struct(*parts)).alias("__v"))
    return latest.select(*[F.col(quote(k)) for k in keys], F.unix_micros(F.col("__v.__t")).alias("__ts"),
                         *[F.col(f"__v.f_{i}").alias(f.name) for i, f in enumerate(view.features)])


def write_batches(writer: Any, batches: Iterable[pa.RecordBatch], keys: dict[str, Any], types: dict[str, Any],
                  progress: Callable[[int], None] | None = None) -> tuple[int, int, int | None]:
    """Encode batches of latest rows (keys, ``__ts``, features) in Feast's layout and write them with
    ``writer``: (entities, written, newest event in microseconds). Both engines' materialization."""
    entities = written = 0
    newest: int | None = None
    for batch in batches:
        if not batch.num_rows:
            continue
        ek = entity_keys({k: batch.column(k) for k in keys}, keys)
        values = {f: encode_values(batch.column(f), t) for f, t in types.items()}
        ts = pc.fill_null(batch.column("__ts"), 0).to_pylist()
        written += writer.write(ek, values, ts)
        entities += batch.num_rows
        top = pc.max(batch.column("__ts")).as_py()
        newest = top if newest is None or (top is not None and top > newest) else newest
        if progress is not None:
            progress(entities)
    return entities, written, newest


def write_redis(latest: SparkDataFrame, config: Any, view: Any) -> tuple[int, int, int | None]:
    """Write the latest rows to Redis from the executors; (entities, written, newest event in microseconds)."""
    # Plain values only in the closure the executors unpickle: a Feast object would make each Python
    # worker import Feast (seconds); types with a fast path travel as their names.
    plan = writer_plan(config, view)
    keys = {k.name: _light(k.dtype.to_value_type(), _KEY_TYPES) for k in view.entity_columns}
    types = {f.name: _light(f.dtype.to_value_type(), fast_types()) for f in view.features}
    summary_schema = pa.schema([("entities", pa.int64()), ("written", pa.int64()), ("newest", pa.int64())])

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        writer = RedisWriter(None, None, plan)
        try:
            entities, written, newest = write_batches(writer, batches, keys, types)
        finally:
            writer.close()
        yield pa.RecordBatch.from_pylist([{"entities": entities, "written": written, "newest": newest}],
                                         schema=summary_schema)

    try:
        rows = latest.mapInArrow(write, SUMMARY).collect()
    except Exception as exc:  # the executors' error comes back wrapped in a Py4J/Spark exception
        text = str(exc)
        for line in text.splitlines():
            if "FeatureError" in line or "OnlineStoreError" in line:
                raise FeatureError(line.split(":", 1)[-1].strip()) from exc
        raise
    newest_values = [r["newest"] for r in rows if r["newest"] is not None]
    return (sum(r["entities"] for r in rows), sum(r["written"] for r in rows),
            max(newest_values) if newest_values else None)
