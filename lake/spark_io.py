"""Spark DataFrames in and out of Delta tables, committed through delta-rs.

Writes: executors write Parquet files (Spark's own JVM writer for local tables,
pyarrow through ``mapInArrow`` for ``s3://``), report each file's path, size,
partition values and statistics, and the driver commits them as one Delta
transaction. A failed or killed write leaves the table at its previous version;
its files are orphans that ``vacuum`` removes.

Merges, and overwrites of the rows a predicate selects, run in Spark too: only
the files that can hold affected keys are read and rewritten, and the commit
removes exactly those files while adding the new ones.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable

from lake import predicate as pred
from lake import protocol
from lake.errors import LakeError
from lake.location import TableLocation, wrap_delta_error
from lake.naming import STAGING_DIR
from lake.schema import SchemaFit, normalize_schema
from lake.spark_files import (
    FILE_RESULT_SCHEMA,
    arrow_file_writer,
    local_file_infos,
    parse_partition_dir,
    partition_dir,
    partition_string,
)
from lake.transaction import DataFile

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

PATH_COL = "_lake_file"


def spark_session() -> SparkSession:
    """The Spark session this process already runs (a job's), or a new default one."""
    from pyspark.sql import SparkSession  # heavy: pyspark

    return SparkSession.builder.getOrCreate()


# ------------------------------------------------------------------ schemas


def arrow_schema_of(df: SparkDataFrame) -> pa.Schema:
    """The Delta-compatible Arrow schema of a Spark DataFrame."""
    from pyspark.sql.pandas.types import to_arrow_schema  # heavy: pyspark, only once Spark runs

    return normalize_schema(to_arrow_schema(df.schema, timezone="UTC"))


def spark_schema_of(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema  # heavy: pyspark, only once Spark runs

    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def spark_literal(text: str) -> str:
    """A Spark SQL string literal that reads back as ``text`` exactly.

    Spark processes backslash escapes in literals and reads ``'a''b'`` as two adjacent
    literals (``ab``), so quotes and backslashes are escaped with a backslash.
    """
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote(name: str) -> str:
    """A Spark SQL identifier (backticks; embedded backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def conform_spark(df: SparkDataFrame, fit: SchemaFit, carry: Sequence[str] = ()) -> SparkDataFrame:
    """Select the table's columns in order, with widening casts and nulls for missing ones.

    ``carry`` names extra columns kept at the end (internal flags).
    """
    from pyspark.sql import functions as F  # heavy: pyspark, only once Spark runs

    types = {f.name: f.dataType for f in spark_schema_of(fit.target).fields}
    cols = []
    for field in fit.target:
        if field.name in df.columns:
            col = F.col(quote(field.name))
            if field.name in fit.casts:
                col = col.cast(types[field.name])
            cols.append(col.alias(field.name))
        else:
            cols.append(F.lit(None).cast(types[field.name]).alias(field.name))
    return df.select(*cols, *[F.col(c) for c in carry])


# ------------------------------------------------------------------- files


def write_files(table: TableLocation, df: SparkDataFrame, partition_by: list[str], schema: pa.Schema) -> list[DataFile]:
    """Have the executors write ``df`` as Parquet files of ``table``; describe each file.

    Returns dicts with ``path`` (relative to the table, not encoded), ``size``,
    ``partition_values``, ``stats`` and ``rows``.
    """
    write_id = uuid.uuid4().hex[:16]
    data_schema = pa.schema([f for f in schema if f.name not in partition_by])
    storage = table.storage
    if storage.spark_reachable():
        staging = f"{table.uri}/{STAGING_DIR}/{write_id}"
        writer = df.write.mode("overwrite").option("compression", "snappy")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(staging)
        rels = sorted(f.path for f in storage.list_files(staging) if f.path.endswith(".parquet"))
        infos = local_file_infos(staging, rels, partition_by, data_schema)
        for info in infos:
            # Spark leaves some characters raw in folder names; use delta-rs' encoding instead.
            name = info["path"].rsplit("/", 1)[-1]
            if partition_by:
                values = json.loads(info["partition_values"])
                name = partition_dir(partition_by, [values[c] for c in partition_by]) + "/" + name
            storage.move(f"{staging}/{info['path']}", f"{table.uri}/{name}")
            info["path"] = name
        storage.delete_tree(staging)
    else:  # Spark's JVM cannot reach this storage (no s3a here): executors write with pyarrow
        kind, kwargs = storage.fs_spec()
        fn = arrow_file_writer(
            kind, kwargs, storage.fs_path(table.uri), partition_by, data_schema.serialize().to_pybytes(), write_id
        )
        ddl = "path string, size long, partition_values string, stats string, rows long"
        rows = df.mapInArrow(fn, ddl).collect()
        infos = [r.asDict() for r in rows]
        assert FILE_RESULT_SCHEMA.names == list(infos[0]) if infos else True
    for info in infos:
        info["partition_values"] = json.loads(info["partition_values"])
    return infos


def _rows(infos: list[dict[str, Any]]) -> int:
    return int(sum(i["rows"] for i in infos))


# ------------------------------------------------------------------- reads


def check_readable(table: DeltaTable, name: str) -> protocol.TableProtocol:
    """Refuse tables whose reader features Spark reads through the lake do not honor (the allow list)."""
    return protocol.check(table, protocol.SPARK, name)


def _widened_max(value: Any) -> Any:
    """A timestamp maximum made a true upper bound: writers truncate it to the millisecond."""
    if isinstance(value, dt.datetime):
        try:
            return value + dt.timedelta(milliseconds=1)
        except OverflowError:
            return None  # at the end of the calendar: unknown, the file is kept
    return value


def deleted_rows(table: DeltaTable, uri: str) -> dict[str, list[int]]:
    """Row indexes that deletion vectors remove, by data file path (relative to the table, decoded)."""
    root = unquote(urlsplit(uri).path if "://" in uri else uri).rstrip("/")
    out: dict[str, list[int]] = {}
    try:
        vectors = pa.table(table.deletion_vectors()).to_pylist()
    except Exception as exc:
        raise wrap_delta_error(exc, uri, "read the deletion vectors of") from exc
    for row in vectors:
        path = unquote(urlsplit(row["filepath"]).path)
        rel = path[len(root) + 1:] if path.startswith(root + "/") else path.rsplit("/", 1)[-1]
        mask = np.asarray(row["selection_vector"], dtype=bool)
        out[rel] = np.flatnonzero(~mask).tolist()
    return out


def table_files(table: DeltaTable, tree: Any | None = None, uri: str | None = None) -> list[dict[str, Any]]:
    """The table's data files that can match the predicate tree (all when ``tree`` is None).

    Statistics are resolved from physical to logical names under column mapping; with
    ``uri`` (the table's location), files carry the rows their deletion vectors remove
    (``deleted``).
    """
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    partition_by = list(table.metadata().partition_columns)
    logical = {p: n for n, p in protocol.physical_names(table).items()}
    deletions = deleted_rows(table, uri) if uri is not None and protocol.DELETION_VECTORS in (
        table.protocol().reader_features or ()) else {}
    out = []
    for row in actions:
        part = {c: row.get(f"partition.{c}") for c in partition_by}
        if tree is not None:
            stats = pred.FileStats(
                num_records=row.get("num_records"),
                partition=part,
                mins={logical.get(k[4:], k[4:]): v for k, v in row.items() if k.startswith("min.")},
                maxs={logical.get(k[4:], k[4:]): _widened_max(v) for k, v in row.items() if k.startswith("max.")},
                nulls={logical.get(k[11:], k[11:]): v for k, v in row.items() if k.startswith("null_count.")},
            )
            if not pred.may_match(tree, stats):
                continue
        path = unquote(row["path"])  # get_add_actions gives the log's URI-encoded form
        info = {
            "path": path,
            "size": row["size_bytes"],
            "rows": row.get("num_records"),
            "partition_values": {c: partition_string(v) for c, v in part.items()},
            "typed_partition": part,
        }
        if path in deletions:
            info["deleted"] = deletions[path]
        out.append(info)
    return out


def file_dataset(table: TableLocation, delta: DeltaTable) -> pads.FileSystemDataset:
    """A pyarrow dataset of one version's data files (one fragment per file, partition values as
    fragment expressions, INT96 as microseconds). Exact only without column mapping and deletion
    vectors: callers check the ``handoff`` reader's allow list first."""
    import pyarrow.dataset as pads  # heavy (it loads pandas): only once files are read

    schema = pa.schema(delta.schema().to_arrow())
    fmt = pads.ParquetFileFormat(read_options=protocol.int96_as_micros())
    fs = pafs.SubTreeFileSystem(table.storage.fs_path(table.uri), table.storage.arrow_fs())
    fragments = []
    for f in table_files(delta):
        expr = None
        for column, value in f["typed_partition"].items():
            field = pc.field(column)
            part = field.is_null() if value is None else field == pa.scalar(value, schema.field(column).type)
            expr = part if expr is None else expr & part
        fragments.append(fmt.make_fragment(f["path"], filesystem=fs,
                                           partition_expression=expr if expr is not None else pc.scalar(True)))
    return pads.FileSystemDataset(fragments, schema, fmt, fs)


def file_key(uri_or_path: str) -> str:
    """Normalize a Spark file URI or a storage path to compare file identities."""
    if "://" in uri_or_path or uri_or_path.startswith("file:"):
        parts = urlsplit(uri_or_path)
        path = unquote(parts.path)
        return f"{parts.netloc}{path}" if parts.scheme not in ("file", "") else path
    return uri_or_path


def scan_files(
    spark: SparkSession,
    table: TableLocation,
    files: list[dict[str, Any]],
    schema: pa.Schema,
    partition_by: list[str],
    path_column: str | None = None,
    mapping: str = "none",
) -> SparkDataFrame:
    """A DataFrame over exactly these data files, partition columns included.

    With ``path_column``, each row also carries a key of its file (see :func:`file_key`).
    Spark's own Parquet reader reads plain files; files with deleted rows (deletion
    vectors) or physical column names (column mapping) are read by the executors through
    the Python data source, which honors both.
    """
    from pyspark.sql import functions as F  # heavy: pyspark, only once Spark runs

    spark_schema = spark_schema_of(schema)
    storage = table.storage
    if not files:
        from pyspark.sql.types import (  # heavy: pyspark, only once Spark runs
            StringType,
            StructField,
            StructType,
        )

        fields = list(spark_schema.fields)
        if path_column:
            fields.append(StructField(path_column, StringType()))
        return spark.createDataFrame([], StructType(fields))
    plain = [f for f in files if not f.get("deleted")] if mapping == "none" else []
    if plain and storage.spark_reachable() and _has_timestamps(schema):
        # Spark's Parquet reader refuses INT64 nanosecond timestamps: those files go to the executors' pyarrow
        plain = [f for f in plain if not _nanos(f"{storage.fs_path(table.uri)}/{f['path']}", storage)]
    hive = all(
        parse_partition_dir(f["path"], partition_by, spark_semantics=True) == f["partition_values"] for f in plain
    )
    if not storage.spark_reachable() or not plain or (partition_by and not hive):
        return _python_scan(spark, table, files, schema, path_column, mapping)
    paths = [f"{table.uri}/{f['path']}" for f in plain]
    reader = spark.read.schema(spark_schema)
    if partition_by:
        reader = reader.option("basePath", table.uri)
    df = reader.parquet(*paths)
    if path_column:
        df = df.withColumn(path_column, F.col("_metadata.file_path"))
    names = list(schema.names) + ([path_column] if path_column else [])
    df = df.select(*[quote(n) for n in names])
    kept = {f["path"] for f in plain}
    rest = [f for f in files if f["path"] not in kept]
    if rest:
        df = df.unionByName(_python_scan(spark, table, rest, schema, path_column, mapping))
    return df


def _has_timestamps(schema: pa.Schema) -> bool:
    def walk(t: pa.DataType) -> bool:
        if pa.types.is_timestamp(t):
            return True
        return any(walk(t.field(i).type) for i in range(t.num_fields)) if pa.types.is_nested(t) else False
    return any(walk(f.type) for f in schema)


def _nanos(path: str, storage: Any) -> bool:
    """Whether a Parquet file stores a timestamp as INT64 nanoseconds (its footer says)."""
    with storage.arrow_fs().open_input_file(path) as fh:
        schema = pq.ParquetFile(fh).metadata.schema
        return any(schema.column(i).physical_type == "INT64" and "timeunit=nanoseconds" in str(schema.column(i).logical_type).lower()
                   for i in range(len(schema)))


def _python_scan(
    spark: SparkSession, table: TableLocation, files: list[dict[str, Any]], schema: pa.Schema,
    path_column: str | None, mapping: str = "none",
) -> SparkDataFrame:
    # heavy: the data source class subclasses pyspark's, imported only once Spark runs
    from lake.spark_source import SOURCE_NAME, LakeFilesSource

    spark.dataSource.register(LakeFilesSource)
    full = schema.append(pa.field(path_column, pa.string())) if path_column else schema
    # A DDL schema is all-nullable; the batches must say the same.
    full = pa.schema([f.with_nullable(True) for f in full])
    storage = table.storage
    kind, kwargs = storage.fs_spec()
    root = storage.fs_path(table.uri)
    plain = [{"path": f["path"], "partition_values": f["partition_values"], "deleted": f.get("deleted") or []}
             for f in files]
    if path_column:
        for f in plain:
            f["key"] = file_key(f"{root}/{f['path']}")
    df = (
        spark.read.format(SOURCE_NAME)
        .option("files", json.dumps(plain))
        .option("fs_kind", kind)
        .option("fs_kwargs", json.dumps(kwargs))
        .option("root", root)
        .option("arrow_schema", base64.b64encode(full.serialize().to_pybytes()).decode())
        .option("spark_schema", spark_schema_of(full).json())
        .option("path_column", path_column or "")
        .option("mapping", mapping)
        .load()
    )
    return df


def read_spark(
    table: TableLocation,
    spark: SparkSession,
    *,
    version: int | None = None,
    as_of: dt.datetime | str | None = None,
    columns: Sequence[str] | None = None,
    filter: str | None = None,
) -> SparkDataFrame:
    """Read a table (or a past version) into Spark, skipping files ``filter`` cannot match."""
    base = table.delta(version, as_of)
    proto = check_readable(base, table.name)
    schema = pa.schema(base.schema().to_arrow())
    tree = pred.check_columns(filter, schema.names, table.name) if filter is not None else None
    files = table_files(base, tree, table.uri)
    # The exact file list Spark is handed (tests read ``lake_files`` to check pruning on any storage).
    log.debug("Spark reads %d data file(s) of %s v%d%s", len(files), table.name, int(base.version()),
              f" (filter: {filter})" if filter is not None else "",
              extra={"lake_table": table.name, "lake_files": [f["path"] for f in files]})
    df = scan_files(spark, table, files, schema, list(base.metadata().partition_columns),
                    mapping=proto.column_mapping)
    table.journal.read(table, int(base.version()))
    if filter is not None:
        df = df.filter(filter)
    if columns:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise LakeError(f"unknown column(s) {unknown} of {table.name}; its columns are {schema.names}")
        df = df.select(*[quote(c) for c in columns])
    return df


