"""Data files for Spark writes and reads that the JVM cannot reach by itself.

Spark here has no s3a (no Maven, so no hadoop-aws), so for ``s3://`` tables the
executors write and read Parquet with pyarrow's S3 file system: writes through
``mapInArrow`` (each task writes its files and reports path, size, partition
values and statistics back to the driver, which commits), reads through a
Python data source. Everything in this module runs on executors too: it imports
nothing from Spark at module level and takes only plain, picklable arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lake.stats import file_stats
from lake.storage import filesystem_from_spec as make_filesystem

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
ROWS_PER_FILE = 4_000_000
FILE_RESULT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("size", pa.int64()),
        ("partition_values", pa.string()),
        ("stats", pa.string()),
        ("rows", pa.int64()),
    ]
)


def partition_string(value: Any) -> str | None:
    """A partition value as Delta stores it in ``partitionValues``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def partition_dir(columns: list[str], values: list[str | None]) -> str:
    """Hive-style folder (``k=v/...``) for partition values, percent-encoded as delta-rs does.

    Only unreserved characters stay as they are, so every object store and reader
    (object_store, DuckDB, Polars, Spark) addresses the same key.
    """
    return "/".join(
        f"{c}={HIVE_NULL if v is None else quote(v, safe='')}" for c, v in zip(columns, values, strict=True)
    )


def parse_partition_dir(
    rel_path: str, columns: list[str], *, spark_semantics: bool = False
) -> dict[str, str | None] | None:
    """Partition values encoded in a hive-style relative path, or ``None`` if it is not one.

    With ``spark_semantics``, decode as Spark's partition discovery does (each ``%XX``
    is one character), so a mismatch with the log's values means Spark would misread it.
    """
    parts = rel_path.split("/")[:-1]
    found: dict[str, str | None] = {}
    for part in parts:
        key, sep, raw = part.partition("=")
        if sep and key in columns:
            value = unquote(raw, encoding="latin-1") if spark_semantics else unquote(raw)
            found[key] = None if value == HIVE_NULL else value
    return found if set(found) == set(columns) else None


class _OpenFile:
    def __init__(self, fs: pafs.FileSystem, root: str, rel: str, schema: pa.Schema, values: list[str | None]):
        self.rel = rel
        self.values = values
        self.stream = fs.open_output_stream(f"{root}/{rel}")
        self.writer = pq.ParquetWriter(self.stream, schema, compression="snappy", write_statistics=True)
        self.rows = 0

    def close(self, columns: list[str], schema: pa.Schema) -> dict[str, Any]:
        self.writer.close()
        size = self.stream.tell()
        self.stream.close()
        meta = self.writer.writer.metadata
        return {
            "path": self.rel,
            "size": size,
            "partition_values": json.dumps(dict(zip(columns, self.values, strict=True))),
            "stats": file_stats(meta, schema),
            "rows": self.rows,
        }


def write_batches(
    fs: pafs.FileSystem,
    root: str,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    partition_by: list[str],
    prefix: str,
    rows_per_file: int = ROWS_PER_FILE,
) -> list[dict[str, Any]]:
    """Write record batches as Parquet files under ``root`` (hive folders per partition).

    ``schema`` is the stored columns (the partition columns are folders, not columns).
    Returns one description per file: path (relative), size, partition values (JSON),
    Delta statistics (JSON) and rows.
    """
    open_files: dict[tuple[Any, ...], _OpenFile] = {}
    done: list[dict[str, Any]] = []
    counter = 0

    def target(key: tuple[Any, ...]) -> _OpenFile:
        nonlocal counter
        f = open_files.get(key)
        if f is None:
            values = [partition_string(v) for v in key]
            folder = partition_dir(partition_by, values) if partition_by else ""
            name = f"part-{prefix}-{counter:04d}.snappy.parquet"
            counter += 1
            rel = f"{folder}/{name}" if folder else name
            fs.create_dir(f"{root}/{folder}" if folder else root, recursive=True)
            f = open_files[key] = _OpenFile(fs, root, rel, schema, values)
        return f

    def put(key: tuple[Any, ...], table: pa.Table) -> None:
        f = target(key)
        f.writer.write_table(table.select(schema.names).cast(schema))
        f.rows += table.num_rows
        if f.rows >= rows_per_file:
            done.append(f.close(partition_by, schema))
            del open_files[key]

    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        if not partition_by:
            put((), table)
            continue
        keys = table.group_by(partition_by).aggregate([]).to_pylist()
        for key in keys:
            mask = None
            for col in partition_by:
                v = key[col]
                cond = pc.is_null(table[col]) if v is None else pc.equal(table[col], pa.scalar(v, table[col].type))
                mask = cond if mask is None else pc.and_(mask, cond)
            put(tuple(key[c] for c in partition_by), table.filter(mask))
    for f in open_files.values():
        done.append(f.close(partition_by, schema))
    return done


def arrow_file_writer(
    fs_kind: str,
    fs_kwargs: dict[str, Any],
    root: str,
    partition_by: list[str],
    data_schema_bytes: bytes,
    write_id: str,
    rows_per_file: int = ROWS_PER_FILE,
) -> Any:
    """A ``mapInArrow`` function that writes each task's rows as Parquet files under ``root``.

    It yields one record batch describing the files written (see ``FILE_RESULT_SCHEMA``).
    ``data_schema_bytes`` is the serialized Arrow schema of the stored columns (the
    partition columns excluded).
    """

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext  # heavy: pyspark, only once Spark runs

        ctx = TaskContext.get()
        task = f"{ctx.partitionId():05d}-{ctx.attemptNumber()}" if ctx else "00000-0"
        schema = pa.ipc.read_schema(pa.py_buffer(data_schema_bytes))
        fs = make_filesystem(fs_kind, fs_kwargs)
        done = write_batches(fs, root, batches, schema, partition_by, f"{task}-{write_id}", rows_per_file)
        yield pa.RecordBatch.from_pylist(done, schema=FILE_RESULT_SCHEMA)

    return write


def local_file_infos(root: str, rel_paths: list[str], partition_by: list[str], schema: pa.Schema) -> list[dict[str, Any]]:
    """File descriptions (like the Arrow writer's) for Parquet files Spark's JVM wrote locally."""
    out = []
    for rel in rel_paths:
        meta = pq.read_metadata(f"{root}/{rel}")
        values = parse_partition_dir(rel, partition_by) if partition_by else {}
        if values is None:
            raise ValueError(f"{rel} is not in a partition folder of {partition_by}")
        out.append(
            {
                "path": rel,
                "size": _size(f"{root}/{rel}"),
                "partition_values": json.dumps(values),
                "stats": file_stats(meta, schema),
                "rows": meta.num_rows,
            }
        )
    return out


def _size(path: str) -> int:
    return os.path.getsize(path)


def now_ms() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------ reading

_PHYSICAL = "delta.columnMapping.physicalName"
_FIELD_ID = "delta.columnMapping.id"
_PARQUET_ID = b"PARQUET:field_id"


def _meta(f: pa.Field, key: str) -> str | None:
    value = (f.metadata or {}).get(key.encode())
    return value.decode() if value is not None else None


def _file_child(logical: pa.Field, candidates: list[pa.Field], mapping: str) -> int | None:
    """The index among a file's fields of the one holding ``logical`` (by name, physical name or id)."""
    if mapping == "id":
        wanted = _meta(logical, _FIELD_ID)
        for i, f in enumerate(candidates):
            if wanted is not None and _meta(f, _PARQUET_ID.decode()) == wanted:
                return i
        return None
    name = (_meta(logical, _PHYSICAL) or logical.name) if mapping == "name" else logical.name
    for i, f in enumerate(candidates):
        if f.name == name:
            return i
    return None


def _conform(array: pa.Array, logical: pa.Field, mapping: str) -> pa.Array:
    """A file's column as the table's logical field: nested fields found by physical name or
    id and renamed, leaves cast to the table type (INT96/ms/ns timestamps to microseconds)."""
    target = logical.type
    if pa.types.is_struct(target) and pa.types.is_struct(array.type):
        file_fields = [array.type.field(i) for i in range(array.type.num_fields)]
        children = []
        for j in range(target.num_fields):
            child = target.field(j)
            k = _file_child(child, file_fields, mapping)
            children.append(pa.nulls(len(array), child.type) if k is None
                            else _conform(array.field(k), child, mapping))
        return pa.StructArray.from_arrays(children, fields=[target.field(j) for j in range(target.num_fields)],
                                          mask=array.is_null())
    if pa.types.is_map(target) and pa.types.is_map(array.type):
        keys = _conform(array.keys, pa.field("key", target.key_type), mapping)
        items = _conform(array.items, target.item_field, mapping)
        return pa.MapArray.from_arrays(array.offsets, keys, items, type=target, mask=array.is_null())
    if pa.types.is_list(target) and (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)):
        values = _conform(array.values, target.value_field, mapping)
        return pa.ListArray.from_arrays(pa.array(array.offsets, pa.int32()), values, type=target,
                                        mask=array.is_null())
    return array.cast(target)


def read_files(
    fs_kind: str,
    fs_kwargs: dict[str, Any],
    root: str,
    files: list[dict[str, Any]],
    schema: pa.Schema,
    path_column: str | None,
    mapping: str = "none",
) -> Iterator[pa.RecordBatch]:
    """Read Delta data files as the table defines them: the batches have ``schema``.

    Each file dict has ``path`` (relative, decoded), ``partition_values`` (logical name ->
    serialized value) and optionally ``deleted`` (row indexes a deletion vector removes).
    ``mapping`` is the column mapping mode: columns are found by physical name (``name``,
    from the fields' ``delta.columnMapping.physicalName``) or Parquet field id (``id``).
    INT96 timestamps are read as microseconds (years 1 to 9999).
    """
    fs = make_filesystem(fs_kind, fs_kwargs)
    for f in files:
        yield from read_file(fs, root, f, schema, path_column, mapping)


def read_file(fs: pafs.FileSystem, root: str, f: dict[str, Any], schema: pa.Schema, path_column: str | None,
              mapping: str = "none") -> Iterator[pa.RecordBatch]:
    """One data file's batches (see :func:`read_files`), deleted rows dropped, in file order."""
    pf = pq.ParquetFile(fs.open_input_file(f"{root}/{f['path']}"), coerce_int96_timestamp_unit="us")
    file_fields = list(pf.schema_arrow)
    data_fields = [fld for fld in schema if fld.name != path_column and fld.name not in f["partition_values"]]
    located = {fld.name: _file_child(fld, file_fields, mapping) for fld in data_fields}
    read = sorted({file_fields[i].name for i in located.values() if i is not None})
    deleted = np.asarray(sorted(f.get("deleted") or ()), dtype=np.int64)
    start = 0
    for batch in pf.iter_batches(batch_size=65_536, columns=read):
        n = batch.num_rows
        keep = None
        if len(deleted):
            hit = deleted[(deleted >= start) & (deleted < start + n)] - start
            if len(hit):
                mask = np.ones(n, dtype=bool)
                mask[hit] = False
                keep = pa.array(mask)
        start += n
        cols = []
        for field in schema:
            if field.name == path_column:
                cols.append(pa.array([f.get("key", f["path"])] * n, pa.string()))
            elif field.name in f["partition_values"]:
                raw = f["partition_values"][field.name]
                cols.append(pa.array([raw] * n, pa.string()).cast(field.type))
            elif (index := located[field.name]) is not None:
                name = file_fields[index].name
                cols.append(_conform(batch.column(batch.schema.get_field_index(name)), field, mapping))
            else:  # a column added to the table after this file was written
                cols.append(pa.nulls(n, field.type))
        out = pa.RecordBatch.from_arrays(cols, schema=schema)
        if keep is not None:
            out = out.filter(keep)
        if out.num_rows:
            yield out
