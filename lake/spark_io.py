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
import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from lake import predicate as pred
from lake.errors import LakeError, MergeError, SchemaMismatchError, UnsupportedTableFeatureError
from lake.results import CommitResult
from lake.schema import SchemaFit, normalize_schema
from lake.spark_files import (
    FILE_RESULT_SCHEMA,
    arrow_file_writer,
    local_file_infos,
    now_ms,
    parse_partition_dir,
    partition_dir,
    partition_string,
)
from lake.table import STAGING_DIR, SchemaMode, Table, Txn, commit_properties, wrap_delta_error

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql import DataFrame as SparkDataFrame

log = logging.getLogger(__name__)

PATH_COL = "_lake_file"
_UNSUPPORTED_READER_FEATURES = {"columnMapping", "typeWidening", "typeWidening-preview"}


# ------------------------------------------------------------------ schemas


def arrow_schema_of(df: SparkDataFrame) -> pa.Schema:
    """The Delta-compatible Arrow schema of a Spark DataFrame."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return normalize_schema(to_arrow_schema(df.schema, timezone="UTC"))


def spark_schema_of(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def conform_spark(df: SparkDataFrame, fit: SchemaFit, carry: Sequence[str] = ()) -> SparkDataFrame:
    """Select the table's columns in order, with widening casts and nulls for missing ones.

    ``carry`` names extra columns kept at the end (internal flags).
    """
    from pyspark.sql import functions as F

    types = {f.name: f.dataType for f in spark_schema_of(fit.target).fields}
    cols = []
    for field in fit.target:
        if field.name in df.columns:
            col = F.col(_q(field.name))
            if field.name in fit.casts:
                col = col.cast(types[field.name])
            cols.append(col.alias(field.name))
        else:
            cols.append(F.lit(None).cast(types[field.name]).alias(field.name))
    return df.select(*cols, *[F.col(c) for c in carry])


# ------------------------------------------------------------------- files


def write_files(table: Table, df: SparkDataFrame, partition_by: list[str], schema: pa.Schema) -> list[dict[str, Any]]:
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
    else:
        s3 = storage  # the S3 backend: executors write with pyarrow
        kwargs = s3.arrow_kwargs()  # type: ignore[attr-defined]
        fn = arrow_file_writer(
            "s3", kwargs, s3.fs_path(table.uri), partition_by, data_schema.serialize().to_pybytes(), write_id
        )
        ddl = "path string, size long, partition_values string, stats string, rows long"
        rows = df.mapInArrow(fn, ddl).collect()
        infos = [r.asDict() for r in rows]
        assert FILE_RESULT_SCHEMA.names == list(infos[0]) if infos else True
    for info in infos:
        info["partition_values"] = json.loads(info["partition_values"])
    return infos


def _adds(infos: list[dict[str, Any]]) -> list[AddAction]:
    ts = now_ms()
    return [
        # delta-rs takes the plain relative path and URI-encodes it in the log itself.
        AddAction(i["path"], int(i["size"]), i["partition_values"], ts, True, i["stats"])
        for i in infos
    ]


def _removes(files: list[dict[str, Any]]) -> list[RemoveAction]:
    ts = now_ms()
    return [RemoveAction(f["path"], True, ts, int(f["size"]), f["partition_values"]) for f in files]


def _discard(table: Table, infos: list[dict[str, Any]]) -> None:
    for info in infos:
        with contextlib.suppress(OSError):  # vacuum removes what is left
            table.storage.delete_file(f"{table.uri}/{info['path']}")


def _commit(
    table: Table,
    base: DeltaTable | None,
    infos: list[dict[str, Any]],
    removes: list[dict[str, Any]],
    schema: pa.Schema,
    partition_by: list[str],
    *,
    mode: str,
    operation: str,
    txn: Txn | None,
    metrics: dict[str, Any],
    schema_changed: bool = False,
    schema_replaced: bool = False,
    description: str | None = None,
    configuration: dict[str, str] | None = None,
) -> CommitResult:
    from deltalake import Schema as DeltaSchema

    props, commit_id = commit_properties(operation, txn, {"lake.metrics": metrics})
    try:
        if base is not None and mode == "overwrite" and schema_replaced:
            # Replacing the schema: a create-or-replace commit swaps metadata and files at once.
            create_table_with_add_actions(
                table.uri,
                DeltaSchema.from_arrow(schema),
                _adds(infos),
                mode="overwrite",
                partition_by=partition_by or None,
                storage_options=table.options,
                commit_properties=props,
            )
        elif base is None:
            create_table_with_add_actions(
                table.uri,
                DeltaSchema.from_arrow(schema),
                _adds(infos),
                mode="append",
                partition_by=partition_by or None,
                description=description,
                configuration=configuration,
                storage_options=table.options,
                commit_properties=props,
            )
        else:
            current = {f.name for f in pa.schema(base.schema().to_arrow())}
            added = [f for f in schema if f.name not in current]
            if added:
                # delta-rs commits file actions without a metadata change, so new (nullable)
                # columns join the table first; a reader in between sees them as null.
                base.alter.add_columns(list(DeltaSchema.from_arrow(pa.schema(added)).fields))
            actions: list[AddAction | RemoveAction] = [*_adds(infos), *_removes(removes)]
            base.create_write_transaction(
                actions, mode, schema, partition_by=partition_by or None, commit_properties=props
            )
    except Exception as exc:
        _discard(table, infos)
        raise wrap_delta_error(exc, table.name, "commit to") from exc
    result = table._result(operation, commit_id, metrics.get("rows_written"), schema_changed=schema_changed)
    return CommitResult(result.table, operation, result.version, metrics, commit_id=commit_id,
                        schema_changed=schema_changed)


def _rows(infos: list[dict[str, Any]]) -> int:
    return int(sum(i["rows"] for i in infos))


# ------------------------------------------------------------------- reads


def check_readable(table: DeltaTable, name: str) -> None:
    """Refuse tables whose features a plain Parquet scan would read wrongly."""
    proto = table.protocol()
    features = set(proto.reader_features or [])
    config = table.metadata().configuration
    mapping = config.get("delta.columnMapping.mode", "none")
    if "columnMapping" in features and mapping not in ("none", None):
        raise UnsupportedTableFeatureError(
            f"table {name} uses column mapping (mode {mapping}); Spark reads through the lake cannot honor it. "
            "Read it with to_arrow()/to_pandas() (delta-rs) or `lake sql` instead.",
            table=name,
        )
    blocked = features & _UNSUPPORTED_READER_FEATURES
    if blocked:
        raise UnsupportedTableFeatureError(
            f"table {name} uses the Delta reader feature(s) {sorted(blocked)}, which Spark reads through "
            "the lake cannot honor; read it with to_arrow() (delta-rs) or `lake sql` instead.",
            table=name,
        )
    if "deletionVectors" in features and pa.table(table.deletion_vectors()).num_rows:
        raise UnsupportedTableFeatureError(
            f"table {name} has deletion vectors; Spark reads through the lake would return deleted rows. "
            "Read it with to_arrow() (delta-rs) or `lake sql`, or rewrite it without deletion vectors.",
            table=name,
        )


def table_files(table: DeltaTable, tree: Any | None = None) -> list[dict[str, Any]]:
    """The table's data files that can match the predicate tree (all when ``tree`` is None)."""
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    partition_by = list(table.metadata().partition_columns)
    out = []
    for row in actions:
        part = {c: row.get(f"partition.{c}") for c in partition_by}
        if tree is not None:
            stats = pred.FileStats(
                num_records=row.get("num_records"),
                partition=part,
                mins={k[4:]: v for k, v in row.items() if k.startswith("min.")},
                maxs={k[4:]: v for k, v in row.items() if k.startswith("max.")},
                nulls={k[11:]: v for k, v in row.items() if k.startswith("null_count.")},
            )
            if not pred.may_match(tree, stats):
                continue
        out.append(
            {
                # get_add_actions gives the log's URI-encoded form; work with the plain path.
                "path": unquote(row["path"]),
                "size": row["size_bytes"],
                "rows": row.get("num_records"),
                "partition_values": {c: partition_string(v) for c, v in part.items()},
                "typed_partition": part,
            }
        )
    return out


def file_key(uri_or_path: str) -> str:
    """Normalize a Spark file URI or a storage path to compare file identities."""
    if "://" in uri_or_path or uri_or_path.startswith("file:"):
        parts = urlsplit(uri_or_path)
        path = unquote(parts.path)
        return f"{parts.netloc}{path}" if parts.scheme not in ("file", "") else path
    return uri_or_path


def scan_files(
    spark: SparkSession,
    table: Table,
    files: list[dict[str, Any]],
    schema: pa.Schema,
    partition_by: list[str],
    path_column: str | None = None,
) -> SparkDataFrame:
    """A DataFrame over exactly these data files, partition columns included.

    With ``path_column``, each row also carries a key of its file (see :func:`file_key`).
    """
    from pyspark.sql import functions as F

    spark_schema = spark_schema_of(schema)
    storage = table.storage
    hive = all(
        parse_partition_dir(f["path"], partition_by, spark_semantics=True) == f["partition_values"] for f in files
    )
    if not files:
        from pyspark.sql.types import StringType, StructField, StructType

        fields = list(spark_schema.fields)
        if path_column:
            fields.append(StructField(path_column, StringType()))
        return spark.createDataFrame([], StructType(fields))
    if storage.spark_reachable() and (hive or not partition_by):
        paths = [f"{table.uri}/{f['path']}" for f in files]
        reader = spark.read.schema(spark_schema)
        if partition_by:
            reader = reader.option("basePath", table.uri)
        df = reader.parquet(*paths)
        if path_column:
            df = df.withColumn(path_column, F.col("_metadata.file_path"))
        names = list(schema.names) + ([path_column] if path_column else [])
        return df.select(*[_q(n) for n in names])
    return _python_scan(spark, table, files, schema, path_column)


def _python_scan(
    spark: SparkSession, table: Table, files: list[dict[str, Any]], schema: pa.Schema, path_column: str | None
) -> SparkDataFrame:
    from lake.spark_source import SOURCE_NAME, LakeFilesSource

    spark.dataSource.register(LakeFilesSource)
    full = schema.append(pa.field(path_column, pa.string())) if path_column else schema
    # A DDL schema is all-nullable; the batches must say the same.
    full = pa.schema([f.with_nullable(True) for f in full])
    storage = table.storage
    kind = "local" if storage.is_local else "s3"
    kwargs = {} if storage.is_local else storage.arrow_kwargs()  # type: ignore[attr-defined]
    root = storage.fs_path(table.uri)
    plain = [{"path": f["path"], "partition_values": f["partition_values"]} for f in files]
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
        .option("spark_schema", spark_schema_of(full).simpleString()[len("struct<"):-1].replace(":", " "))
        .option("path_column", path_column or "")
        .load()
    )
    return df


def read_spark(
    table: Table,
    spark: SparkSession,
    *,
    version: int | None = None,
    as_of: dt.datetime | str | None = None,
    columns: Sequence[str] | None = None,
    filter: str | None = None,
) -> SparkDataFrame:
    """Read a table (or a past version) into Spark, skipping files ``filter`` cannot match."""
    base = table.delta(version, as_of)
    check_readable(base, table.name)
    schema = pa.schema(base.schema().to_arrow())
    tree = pred.check_columns(filter, schema.names, table.name) if filter is not None else None
    files = table_files(base, tree)
    # The exact file list Spark is handed (tests read ``lake_files`` to check pruning on any storage).
    log.debug("Spark reads %d data file(s) of %s v%d%s", len(files), table.name, int(base.version()),
              f" (filter: {filter})" if filter is not None else "",
              extra={"lake_table": table.name, "lake_files": [f["path"] for f in files]})
    df = scan_files(spark, table, files, schema, list(base.metadata().partition_columns))
    table.lake.read(table, int(base.version()))
    if filter is not None:
        df = df.filter(filter)
    if columns:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise LakeError(f"unknown column(s) {unknown} of {table.name}; its columns are {schema.names}")
        df = df.select(*[_q(c) for c in columns])
    return df


# ------------------------------------------------------------------ writes


def write_spark(
    table: Table,
    df: SparkDataFrame,
    *,
    mode: str,
    partition_by: list[str],
    replace_where: str | None,
    schema_mode: SchemaMode,
    txn: Txn | None,
    description: str | None,
    configuration: dict[str, str] | None,
    gate: Callable[[Callable[[SparkDataFrame], list[dict[str, Any]]], SparkDataFrame], list[dict[str, Any]]]
    | None = None,
) -> CommitResult:
    """Write a Spark DataFrame as one commit (see :meth:`lake.table.Table.write`).

    ``gate(write, df)`` (the quality gate) gets to check the data while it is written and
    returns the files to commit (see :func:`lake.quality.apply.concurrent_gate`).
    """

    def write(data: SparkDataFrame) -> list[dict[str, Any]]:
        return write_files(table, data, partition_by, schema)

    incoming = arrow_schema_of(df)
    base = table.delta() if table.exists() else None
    schema_changed = False
    if base is not None and schema_mode != "overwrite":
        fit = table.check_fit(incoming, schema_mode)
        df = conform_spark(df, fit)
        schema, schema_changed = fit.target, bool(fit.added)
        partition_by = list(base.metadata().partition_columns)
        check_readable(base, table.name)
    else:
        schema = incoming
        unknown = [c for c in partition_by if c not in schema.names]
        if unknown:
            raise SchemaMismatchError(f"partition column(s) {unknown} are not in the data of {table.name}",
                                      table=table.name)
    if base is None:
        infos = gate(write, df) if gate else write(df)
        return _commit(table, None, infos, [], schema, partition_by, mode="append", operation="CREATE",
                       txn=txn, metrics={"rows_written": _rows(infos), "files_added": len(infos)},
                       description=description, configuration=configuration)
    if replace_where is not None:
        return _replace_where(table, base, df, schema, partition_by, replace_where, txn, schema_changed)
    infos = gate(write, df) if gate else write(df)
    operation = "OVERWRITE" if mode == "overwrite" else "APPEND"
    removed = len(table_files(base)) if mode == "overwrite" else 0
    return _commit(table, base, infos, [], schema, partition_by, mode=mode, operation=operation, txn=txn,
                   metrics={"rows_written": _rows(infos), "files_added": len(infos), "files_removed": removed},
                   schema_changed=schema_changed or schema_mode == "overwrite",
                   schema_replaced=schema_mode == "overwrite")


def _matches(predicate: str) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.expr(predicate), F.lit(False))


def _replace_where(
    table: Table,
    base: DeltaTable,
    df: SparkDataFrame,
    schema: pa.Schema,
    partition_by: list[str],
    predicate: str,
    txn: Txn | None,
    schema_changed: bool,
) -> CommitResult:
    from pyspark.sql import functions as F

    tree = pred.check_columns(predicate, schema.names, table.name)
    spark = df.sparkSession
    outside = df.filter(~_matches(predicate)).limit(1).collect()
    if outside:
        raise LakeError(
            f"replace_where {predicate!r} on {table.name}: the new data holds rows it does not select "
            f"(e.g. {outside[0].asDict()}); filter the data or widen the predicate. Nothing was written.",
            table=table.name,
        )
    files = table_files(base, tree)
    keep_infos: list[dict[str, Any]] = []
    if files and pred.partition_only(tree, partition_by):
        # Exact on partition values: decide per file with Spark's own SQL semantics.
        arrow = pa.Table.from_pylist(
            [{**f["typed_partition"], PATH_COL: f["path"]} for f in files],
            schema=pa.schema([schema.field(c) for c in partition_by] + [pa.field(PATH_COL, pa.string())]),
        )
        hit = {r[0] for r in spark.createDataFrame(arrow.to_pandas()).filter(_matches(predicate))
               .select(PATH_COL).collect()}
        touched = [f for f in files if f["path"] in hit]
    elif files:
        target = scan_files(spark, table, files, schema, partition_by, path_column=PATH_COL)
        hit = {file_key(r[0]) for r in target.filter(_matches(predicate)).select(PATH_COL).distinct().collect()}
        root = table.storage.fs_path(table.uri)
        touched = [f for f in files if file_key(f"{root}/{f['path']}") in hit]
        if touched:
            kept = (
                scan_files(spark, table, touched, schema, partition_by, path_column=PATH_COL)
                .filter(~_matches(predicate))
                .drop(PATH_COL)
            )
            keep_infos = write_files(table, kept, partition_by, schema)
    else:
        touched = []
    new_infos = write_files(table, df.select(*[F.col(_q(n)) for n in schema.names]), partition_by, schema)
    metrics = {
        "rows_written": _rows(new_infos),
        "rows_copied": _rows(keep_infos),
        "files_added": len(new_infos) + len(keep_infos),
        "files_removed": len(touched),
    }
    return _commit(table, base, keep_infos + new_infos, touched, schema, partition_by, mode="append",
                   operation="OVERWRITE", txn=txn, metrics=metrics, schema_changed=schema_changed)


def merge_spark(
    table: Table,
    source: SparkDataFrame,
    keys: list[str],
    *,
    update: bool,
    insert: bool,
    delete_when: str | None,
    delete_not_matched_by_source: bool,
    schema_mode: SchemaMode,
    txn: Txn | None,
) -> CommitResult:
    """Upsert a Spark DataFrame by keys (see :meth:`lake.table.Table.merge`).

    Only target files that can hold a source key (by min/max statistics, then by an
    actual semi-join) are read and rewritten.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    base = table.delta()
    check_readable(base, table.name)
    missing = [k for k in keys if k not in source.columns]
    if missing:
        raise MergeError(f"merge key(s) {missing} are not in the source", table=table.name)
    fit = table.check_fit(arrow_schema_of(source), schema_mode)
    if delete_when is not None:
        pred.check_columns(delete_when, source.columns, table.name)
        flagged = source.withColumn("__lake_del", _matches(delete_when))
    else:
        flagged = source.withColumn("__lake_del", F.lit(False))
    src = conform_spark(flagged, fit, carry=["__lake_del"])
    schema = fit.target
    partition_by = list(base.metadata().partition_columns)
    spark = source.sparkSession

    dups = src.groupBy(*[_q(k) for k in keys]).count().filter("count > 1").limit(3).collect()
    if dups:
        example = {k: dups[0][k] for k in keys}
        raise MergeError(
            f"the merge source has keys with several rows (e.g. {example} appears {dups[0]['count']} times); "
            f"deduplicate it on {keys} first",
            table=table.name,
        )
    if delete_not_matched_by_source:
        candidates = table_files(base)
    else:
        bounds = src.agg(*[F.min(_q(k)).alias(f"lo{i}") for i, k in enumerate(keys)],
                         *[F.max(_q(k)).alias(f"hi{i}") for i, k in enumerate(keys)]).collect()[0]
        parts = []
        for i, k in enumerate(keys):
            if bounds[f"lo{i}"] is not None:
                parts += [pred.Cmp(">=", pred.Col(k), pred.Lit(bounds[f"lo{i}"])),
                          pred.Cmp("<=", pred.Col(k), pred.Lit(bounds[f"hi{i}"]))]
        candidates = table_files(base, pred.And(tuple(parts))) if parts else []
    root = table.storage.fs_path(table.uri)
    by_key = {file_key(f"{root}/{f['path']}"): f for f in candidates}
    if candidates and not delete_not_matched_by_source:
        target = scan_files(spark, table, candidates, pa.schema(base.schema().to_arrow()), partition_by, PATH_COL)
        hit = target.join(src.select(*[_q(k) for k in keys]).distinct(), keys, "left_semi")
        touched_keys = {file_key(r[0]) for r in hit.select(PATH_COL).distinct().collect()}
        touched = [by_key[k] for k in touched_keys if k in by_key]
    else:
        touched = candidates
    table_schema = pa.schema(base.schema().to_arrow())
    t = scan_files(spark, table, touched, table_schema, partition_by)
    t = t.select(*[F.col(_q(c)).alias(f"__t_{c}") for c in table_schema.names], F.lit(True).alias("__t"))
    s = src.select(*[F.col(_q(c)).alias(f"__s_{c}") for c in schema.names],
                   F.col("__lake_del"), F.lit(True).alias("__s"))
    cond = None
    for k in keys:
        c = F.col(f"__t_{k}") == F.col(f"__s_{k}")
        cond = c if cond is None else cond & c
    joined = t.join(s, cond, "full_outer")
    matched = F.col("__t").isNotNull() & F.col("__s").isNotNull()
    only_t = F.col("__t").isNotNull() & F.col("__s").isNull()
    only_s = F.col("__s").isNotNull() & F.col("__t").isNull()
    op = (
        F.when(matched & F.col("__lake_del"), "delete")
        .when(matched & F.lit(update), "update")
        .when(matched, "copy")
        .when(only_t & F.lit(delete_not_matched_by_source), "delete")
        .when(only_t, "copy")
        .when(only_s & F.lit(insert), "insert")
        .otherwise("skip")
    )
    out_cols = []
    for c in schema.names:
        t_col = F.col(f"__t_{c}") if c in table_schema.names else F.lit(None)
        out_cols.append(F.when(F.col("__op").isin("update", "insert"), F.col(f"__s_{c}"))
                        .otherwise(t_col).alias(c))
    result = joined.withColumn("__op", op).select("__op", *out_cols).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r["__op"]: r["count"] for r in result.groupBy("__op").count().collect()}
        rows = result.filter(F.col("__op").isin("update", "insert", "copy")).drop("__op")
        if partition_by:
            rows = rows.repartition(*[F.col(_q(c)) for c in partition_by])  # one file per partition
        else:  # no confetti: about one file per 2M rows rewritten
            kept = counts.get("update", 0) + counts.get("insert", 0) + counts.get("copy", 0)
            rows = rows.coalesce(max(1, min(rows.rdd.getNumPartitions(), -(-kept // 2_000_000))))
        infos = write_files(table, rows, partition_by, schema)
    finally:
        result.unpersist()
    metrics = {
        "rows_inserted": counts.get("insert", 0),
        "rows_updated": counts.get("update", 0),
        "rows_deleted": counts.get("delete", 0),
        "rows_copied": counts.get("copy", 0),
        "rows_written": _rows(infos),
        "files_added": len(infos),
        "files_removed": len(touched),
    }
    return _commit(table, base, infos, touched, schema, partition_by, mode="append", operation="MERGE",
                   txn=txn, metrics=metrics, schema_changed=bool(fit.added))
