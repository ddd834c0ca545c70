"""Spark DataFrames into Delta tables: writes, overwrites of selected rows, merges.

The executors write Parquet files (see :func:`lake.spark_io.write_files`); each function
stages them on a :class:`~lake.transaction.Transaction`, which commits them once through
delta-rs. Merges, and overwrites of the rows a predicate selects, read and rewrite only
the files that can hold affected rows; the commit removes exactly those files while
adding the new ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from deltalake import DeltaTable

from lake import predicate as pred
from lake import protocol
from lake.arrow_io import SchemaMode
from lake.errors import LakeError, MergeError, SchemaMismatchError
from lake.results import CommitResult
from lake.spark_io import (
    PATH_COL,
    arrow_schema_of,
    conform_spark,
    file_key,
    quote,
    scan_files,
    table_files,
    write_files,
)
from lake.transaction import DataFile, Transaction

if TYPE_CHECKING:
    from pyspark.sql import Column
    from pyspark.sql import DataFrame as SparkDataFrame


def rows_of(files: list[DataFile]) -> int:
    return int(sum(f["rows"] for f in files))


def fingerprint_frame(df: SparkDataFrame) -> str:
    """A digest of a DataFrame's rows, independent of their order (one Spark job).

    Used only to recognize a retried write after the catalog failed to record a commit.
    """
    from pyspark.sql import functions as F  # heavy: pyspark, for Spark frames only

    hashed = F.xxhash64(*[F.col(quote(c)) for c in df.columns]) if df.columns else F.lit(0)
    row = df.agg(F.count(F.lit(1)).alias("n"), F.sum(hashed.cast("decimal(38,0)")).alias("s")).collect()[0]
    return f"spark:{row['n']}:{row['s']}:{','.join(df.columns)}"


def write(
    tx: Transaction,
    df: SparkDataFrame,
    *,
    mode: str,
    partition_by: list[str],
    replace_where: str | None,
    schema_mode: SchemaMode,
    description: str | None,
    configuration: dict[str, str] | None,
) -> CommitResult:
    """Write a Spark DataFrame as one commit (see :meth:`lake.table.Table.write`)."""
    table = tx.table
    base = tx.base
    incoming = arrow_schema_of(df)
    schema_changed = False
    if base is not None:
        protocol.check_write(protocol.table_protocol(base), protocol.SPARK_WRITER, table.name,
                             changes_data=mode == "overwrite" or replace_where is not None)
    if base is not None and schema_mode != "overwrite":
        fit = table.check_fit(incoming, schema_mode, pa.schema(base.schema().to_arrow()))
        df = conform_spark(df, fit)
        schema, schema_changed = fit.target, bool(fit.added)
        partition_by = list(base.metadata().partition_columns)
    else:
        schema = incoming
        unknown = [c for c in partition_by if c not in schema.names]
        if unknown:
            raise SchemaMismatchError(f"partition column(s) {unknown} are not in the data of {table.name}",
                                      table=table.name)
    if base is not None and replace_where is not None:
        df = tx.gate_rows(df)
        return _replace_where(tx, base, df, schema, partition_by, replace_where, schema_changed)
    files = tx.gate_frame(df, lambda data: write_files(table, data, partition_by, schema))
    tx.add_files(files)
    metrics = {"rows_written": rows_of(files), "files_added": len(files)}
    if base is None:
        tx.set_schema(schema, partition_by, description=description, configuration=configuration)
        return tx.commit("CREATE", metrics=metrics)
    overwrite = mode == "overwrite"
    tx.set_schema(schema, partition_by, overwrite=overwrite, replace=schema_mode == "overwrite")
    metrics["files_removed"] = len(table_files(base)) if overwrite else 0
    return tx.commit("OVERWRITE" if overwrite else "APPEND", metrics=metrics,
                     schema_changed=schema_changed or schema_mode == "overwrite")


def _matches(predicate: str) -> Column:
    from pyspark.sql import functions as F  # heavy: pyspark, for Spark frames only

    return F.coalesce(F.expr(predicate), F.lit(False))


def _replace_where(tx: Transaction, base: DeltaTable, df: SparkDataFrame, schema: pa.Schema,
                   partition_by: list[str], predicate: str, schema_changed: bool) -> CommitResult:
    from pyspark.sql import functions as F  # heavy: pyspark, for Spark frames only

    table = tx.table
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
    keep: list[DataFile] = []
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
            keep = write_files(table, kept, partition_by, schema)
            tx.add_files(keep)
    else:
        touched = []
    new = write_files(table, df.select(*[F.col(quote(n)) for n in schema.names]), partition_by, schema)
    tx.add_files(new)
    tx.remove_files(touched)
    tx.set_schema(schema, partition_by)
    metrics = {
        "rows_written": rows_of(new),
        "rows_copied": rows_of(keep),
        "files_added": len(new) + len(keep),
        "files_removed": len(touched),
    }
    return tx.commit("OVERWRITE", metrics=metrics, schema_changed=schema_changed)


def merge(
    tx: Transaction,
    source: SparkDataFrame,
    keys: list[str],
    *,
    update: bool,
    insert: bool,
    delete_when: str | None,
    delete_not_matched_by_source: bool,
    schema_mode: SchemaMode,
) -> CommitResult:
    """Upsert a Spark DataFrame by keys (see :meth:`lake.table.Table.merge`).

    Only target files that can hold a source key (by min/max statistics, then by an
    actual semi-join) are read and rewritten.
    """
    from pyspark import StorageLevel  # heavy: pyspark, for Spark frames only
    from pyspark.sql import functions as F  # heavy: pyspark, only once Spark runs

    table = tx.table
    base = tx.base
    assert base is not None
    protocol.check_write(protocol.table_protocol(base), protocol.SPARK_WRITER, table.name, changes_data=True)
    missing = [k for k in keys if k not in source.columns]
    if missing:
        raise MergeError(f"merge key(s) {missing} are not in the source", table=table.name)
    source = tx.gate_rows(source)
    table_schema = pa.schema(base.schema().to_arrow())
    feed_only: list[str] = []
    if delete_when is not None:
        # A change-feed column (``op``) may exist in the source only: it steers the merge
        # and is not written.
        tree = pred.check_columns(delete_when, source.columns, table.name)
        flagged = source.withColumn("__lake_del", _matches(delete_when))
        if schema_mode != "merge" and tree is not None:
            feed_only = [c for c in source.columns if c not in table_schema.names and c in pred.columns_of(tree)]
    else:
        flagged = source.withColumn("__lake_del", F.lit(False))
    flagged = flagged.drop(*feed_only) if feed_only else flagged
    fit = table.check_fit(arrow_schema_of(flagged.drop("__lake_del")), schema_mode, table_schema)
    src = conform_spark(flagged, fit, carry=["__lake_del"])
    schema = fit.target
    partition_by = list(base.metadata().partition_columns)
    spark = source.sparkSession

    dups = src.groupBy(*[quote(k) for k in keys]).count().filter("count > 1").limit(3).collect()
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
        bounds = src.agg(*[F.min(quote(k)).alias(f"lo{i}") for i, k in enumerate(keys)],
                         *[F.max(quote(k)).alias(f"hi{i}") for i, k in enumerate(keys)]).collect()[0]
        parts = []
        for i, k in enumerate(keys):
            if bounds[f"lo{i}"] is not None:
                parts += [pred.Cmp(">=", pred.Col(k), pred.Lit(bounds[f"lo{i}"])),
                          pred.Cmp("<=", pred.Col(k), pred.Lit(bounds[f"hi{i}"]))]
        candidates = table_files(base, pred.And(tuple(parts))) if parts else []
    root = table.storage.fs_path(table.uri)
    by_key = {file_key(f"{root}/{f['path']}"): f for f in candidates}
    if candidates and not delete_not_matched_by_source:
        target = scan_files(spark, table, candidates, table_schema, partition_by, PATH_COL)
        hit = target.join(src.select(*[quote(k) for k in keys]).distinct(), keys, "left_semi")
        touched_keys = {file_key(r[0]) for r in hit.select(PATH_COL).distinct().collect()}
        touched = [by_key[k] for k in touched_keys if k in by_key]
    else:
        touched = candidates
    t = scan_files(spark, table, touched, table_schema, partition_by)
    t = t.select(*[F.col(quote(c)).alias(f"__t_{c}") for c in table_schema.names], F.lit(True).alias("__t"))
    s = src.select(*[F.col(quote(c)).alias(f"__s_{c}") for c in schema.names],
                   F.col("__lake_del"), F.lit(True).alias("__s"))
    cond = None
    for k in keys:
        c = F.col(quote(f"__t_{k}")) == F.col(quote(f"__s_{k}"))
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
        t_col = F.col(quote(f"__t_{c}")) if c in table_schema.names else F.lit(None)
        out_cols.append(F.when(F.col("__op").isin("update", "insert"), F.col(quote(f"__s_{c}")))
                        .otherwise(t_col).alias(c))
    result = joined.withColumn("__op", op).select("__op", *out_cols).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {r["__op"]: r["count"] for r in result.groupBy("__op").count().collect()}
        rows = result.filter(F.col("__op").isin("update", "insert", "copy")).drop("__op")
        if partition_by:
            rows = rows.repartition(*[F.col(quote(c)) for c in partition_by])  # one file per partition
        else:  # no confetti: about one file per 2M rows rewritten
            kept = counts.get("update", 0) + counts.get("insert", 0) + counts.get("copy", 0)
            rows = rows.coalesce(max(1, min(rows.rdd.getNumPartitions(), -(-kept // 2_000_000))))
        files = write_files(table, rows, partition_by, schema)
    finally:
        result.unpersist()
    tx.add_files(files)
    tx.remove_files(touched)
    tx.set_schema(schema, partition_by)
    metrics = {
        "rows_inserted": counts.get("insert", 0),
        "rows_updated": counts.get("update", 0),
        "rows_deleted": counts.get("delete", 0),
        "rows_copied": counts.get("copy", 0),
        "rows_written": rows_of(files),
        "files_added": len(files),
        "files_removed": len(touched),
    }
    return tx.commit("MERGE", metrics=metrics, schema_changed=bool(fit.added))

