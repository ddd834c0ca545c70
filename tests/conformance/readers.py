"""Every way the lake reads a table, as one function each: ``(ctx, name, version, filter) -> rows``.

Rows come back as plain Python values (timestamps as naive UTC datetimes, maps as sorted
item lists), sorted by ``id``, so they compare with the rows a case wrote.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from lake import protocol
from lake.duck import connect
from lake.features import pit_index
from lake.handoff.load import load as handoff_load
from lake.lakehouse import Lake
from lake.monitor.sources import resolve as resolve_source
from lake.spark_files import read_file
from lake.spark_io import table_files
from lake.sql import LakeSQL

Rows = list[dict[str, Any]]


@dataclass
class Context:
    lake: Lake
    spark: Any = None
    time_column: str | None = None


def normalize(value: Any) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):  # numpy arrays (pandas)
        value = value.tolist()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return normalize(value.to_pydatetime())
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            return sorted((k, normalize(v)) for k, v in value)
        return [normalize(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


def rows_of(data: pa.Table | pa.RecordBatchReader) -> Rows:
    table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
    out = [{k: normalize(v) for k, v in r.items()} for r in table.to_pylist()]
    return sorted(out, key=lambda r: r.get("id") if r.get("id") is not None else -1)


def expected(rows: Rows) -> Rows:
    out = []
    for r in rows:
        row = {k: normalize(v) for k, v in r.items()}
        for k, v in r.items():
            if isinstance(v, dict) and k == "m":  # maps compare as sorted items
                row[k] = sorted(v.items())
        out.append(row)
    return sorted(out, key=lambda r: r.get("id") if r.get("id") is not None else -1)


# ------------------------------------------------------------------ readers


def to_arrow(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    return rows_of(ctx.lake.table(name).to_arrow(version=version))


def to_arrow_filter(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    return rows_of(ctx.lake.table(name).to_arrow(version=version, filter=filter))


def to_pandas(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    frame = ctx.lake.table(name).to_pandas(version=version)
    out = [{k: normalize(v) for k, v in r.items()} for r in frame.to_dict("records")]
    return sorted(out, key=lambda r: r["id"])


def to_polars(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    return rows_of(ctx.lake.table(name).to_polars(version=version).to_arrow())


def to_spark(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    return rows_of(ctx.lake.table(name).to_spark(ctx.spark, version=version).toArrow())


def to_spark_filter(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    return rows_of(ctx.lake.table(name).to_spark(ctx.spark, version=version, filter=filter).toArrow())


def lake_sql(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    db = LakeSQL(ctx.lake, as_of=version)
    try:
        return rows_of(db.execute(f"SELECT * FROM {name}").fetch_arrow_table())
    finally:
        db.close()


def lake_at(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    db = LakeSQL(ctx.lake)
    at = version if version is not None else ctx.lake.table(name).version()
    try:
        return rows_of(db.execute(f"SELECT * FROM lake_at('{name}', {at})").fetch_arrow_table())
    finally:
        db.close()


def feature_index(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    """The point-in-time index: keyed by ``id``, event time ``time_column``, every other column a feature.

    Ids are unique in every case, so the index holds one row per id, in id order.
    """
    table = ctx.lake.table(name)
    at = version if version is not None else table.version()
    columns = [f.name for f in table.schema(at)]
    assert ctx.time_column is not None
    features = {c: c for c in columns if c not in ("id", ctx.time_column)}
    pit_index.forget()
    index = pit_index.load(ctx.lake, pit_index.Source(table, at, table.uri, {"id": "id"}, ctx.time_column, None,
                                                      features))
    ids = index.ukeys.column("id").to_pylist()
    values = index.values.to_pylist() if index.values.num_columns else [{}] * len(ids)
    return sorted(({"id": i, **{k: normalize(v) for k, v in row.items()}} for i, row in zip(ids, values, strict=True)),
                  key=lambda r: r["id"])


def drift_source(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    con = connect()
    try:
        source = resolve_source(ctx.lake, con, name if version is None else f"{name}@{version}", "conformance_src")
        return rows_of(con.execute(f"SELECT * FROM {source.relation}").to_arrow_table())
    finally:
        con.close()


def file_reader(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    """The reader incremental materialization uses: the version's files read one by one."""
    table = ctx.lake.table(name)
    delta = table.delta(version)
    proto = protocol.check(delta, protocol.FILES, table.name)
    schema = pa.schema(delta.schema().to_arrow())
    fs, root = table.storage.arrow_fs(), table.storage.fs_path(table.uri)
    batches = [b for f in table_files(delta, uri=table.uri) for b in read_file(fs, root, f, schema, None,
                                                                                 proto.column_mapping)]
    return rows_of(pa.Table.from_batches(batches, schema))


def handoff(ctx: Context, name: str, version: int | None, filter: str | None) -> Rows:
    return rows_of(handoff_load(ctx.lake, name, version=version).to_arrow())


READERS: dict[str, Callable[[Context, str, int | None, str | None], Rows]] = {
    "to_arrow": to_arrow, "to_arrow_filter": to_arrow_filter, "to_pandas": to_pandas, "to_polars": to_polars,
    "to_spark": to_spark, "to_spark_filter": to_spark_filter, "lake_sql": lake_sql, "lake_at": lake_at,
    "feature_index": feature_index, "drift_source": drift_source, "file_reader": file_reader, "handoff": handoff,
}
FILTERED = {"to_arrow_filter", "to_spark_filter"}
