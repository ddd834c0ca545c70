"""Turn whatever a user hands us (Arrow, pandas, Polars, rows) into Arrow."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from lake.errors import LakeError
from lake.schema import SchemaFit, conform_arrow, normalize_schema


def is_spark_dataframe(data: Any) -> bool:
    """True for a PySpark (classic or Connect) DataFrame, without importing pyspark."""
    mod = type(data).__module__
    return mod.startswith("pyspark.") and type(data).__name__ == "DataFrame"


def to_arrow(data: Any) -> pa.Table | pa.RecordBatchReader:
    """An Arrow table or stream for any supported in-memory data.

    Accepts ``pyarrow.Table``/``RecordBatch``/``RecordBatchReader``, pandas and Polars
    frames (lazy ones are collected), anything exporting the Arrow C stream
    interface, and a list of dicts.
    """
    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    mod = type(data).__module__
    if mod.startswith("pandas."):
        return pa.Table.from_pandas(data, preserve_index=False)
    if mod.startswith("polars."):
        if type(data).__name__ == "LazyFrame":
            data = data.collect()
        return pa.table(data.to_arrow())
    if isinstance(data, list):
        if data and not isinstance(data[0], dict):
            raise LakeError("a list of rows must hold dicts (column name -> value)")
        return pa.Table.from_pylist(data)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    raise LakeError(
        f"cannot write data of type {type(data).__name__}: pass a Spark, pandas or Polars "
        "DataFrame, a pyarrow Table or RecordBatchReader, or a list of dicts"
    )


def conform(data: pa.Table | pa.RecordBatchReader, fit: SchemaFit) -> pa.Table | pa.RecordBatchReader:
    """Apply a schema fit to a table, or lazily to each batch of a stream."""
    if isinstance(data, pa.Table):
        return conform_arrow(data, fit)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in data:
            yield from conform_arrow(pa.Table.from_batches([batch]), fit).to_batches()

    return pa.RecordBatchReader.from_batches(fit.target, batches())


def normalized(data: pa.Table | pa.RecordBatchReader) -> pa.Table | pa.RecordBatchReader:
    """Cast to Delta-compatible types (microsecond UTC timestamps, plain strings...)."""
    schema = normalize_schema(data.schema)
    if schema.equals(data.schema):
        return data
    fit = SchemaFit(target=schema, casts={})
    return conform(data, fit)
