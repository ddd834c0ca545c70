"""Python data (Arrow, pandas, Polars) into Delta tables: writes, merges, deletes, maintenance.

delta-rs does the work; each function stages it on a :class:`~lake.transaction.Transaction`
that commits once. Schema enforcement happens here, before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, write_deltalake

from lake import predicate as pred
from lake import protocol
from lake.data import conform, normalized
from lake.errors import MergeError, SchemaMismatchError
from lake.results import CommitResult
from lake.transaction import Transaction

WriteMode = Literal["append", "overwrite", "error", "ignore"]
SchemaMode = Literal["merge", "overwrite"] | None


def check_writable(tx: Transaction, *, changes_data: bool) -> None:
    """Refuse, before anything is written, a write delta-rs cannot make correctly in this table."""
    if tx.base is not None:
        protocol.check_write(protocol.table_protocol(tx.base), protocol.ARROW_WRITER, tx.table.name,
                             changes_data=changes_data)


def write(
    tx: Transaction,
    data: pa.Table | pa.RecordBatchReader,
    mode: WriteMode,
    partition_by: list[str],
    replace_where: str | None,
    schema_mode: SchemaMode,
    description: str | None,
    configuration: dict[str, str] | None,
) -> CommitResult:
    """Write Arrow data as one commit (see :meth:`lake.table.Table.write`)."""
    table = tx.table
    exists = tx.base is not None
    check_writable(tx, changes_data=mode == "overwrite")
    data = normalized(data)
    fit = None
    if exists and schema_mode != "overwrite":
        assert tx.base is not None
        fit = table.check_fit(data.schema, schema_mode, pa.schema(tx.base.schema().to_arrow()))
        data = conform(data, fit)
    elif not exists:
        unknown = [c for c in partition_by if c not in data.schema.names]
        if unknown:
            raise SchemaMismatchError(f"partition column(s) {unknown} are not in the data of {table.name}",
                                      table=table.name)
    if replace_where is not None:
        pred.check_columns(replace_where, data.schema.names, table.name)
    if tx.gate is not None:
        data = tx.gate_arrow(data.read_all() if isinstance(data, pa.RecordBatchReader) else data)
    operation = "CREATE" if not exists else ("OVERWRITE" if mode == "overwrite" else "APPEND")
    rows = data.num_rows if isinstance(data, pa.Table) else None
    staged = data

    def commit(props: CommitProperties) -> None:
        common: dict[str, Any] = {
            "partition_by": partition_by or None, "schema_mode": schema_mode, "storage_options": table.options,
            "commit_properties": props, "description": description, "configuration": configuration,
        }
        if mode == "overwrite":
            write_deltalake(table.uri, staged, mode="overwrite", predicate=replace_where, **common)
        else:
            write_deltalake(table.uri, staged, mode="append", **common)

    tx.run(commit)
    metrics = {"rows_written": rows} if rows is not None else {}
    result = tx.commit(operation, metrics=metrics, schema_changed=bool(fit and fit.added))
    return result


def merge(
    tx: Transaction,
    source: pa.Table | pa.RecordBatchReader,
    keys: list[str],
    *,
    update: bool,
    insert: bool,
    delete_when: str | None,
    delete_not_matched_by_source: bool,
    schema_mode: SchemaMode,
) -> CommitResult:
    """Upsert Arrow data by keys as one commit (see :meth:`lake.table.Table.merge`)."""
    table = tx.table
    assert tx.base is not None
    check_writable(tx, changes_data=update or delete_when is not None or delete_not_matched_by_source)
    data = normalized(source)
    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    missing = [k for k in keys if k not in data.column_names]
    if missing:
        raise MergeError(f"merge key(s) {missing} are not in the source", table=table.name)
    data = tx.gate_arrow(data)
    current = pa.schema(tx.base.schema().to_arrow())
    feed_only: list[str] = []
    if delete_when is not None:
        # A change-feed column (``op``) may exist in the source only: it steers the merge
        # and is not written.
        tree = pred.check_columns(delete_when, data.column_names, table.name)
        if schema_mode != "merge" and tree is not None:
            feed_only = [c for c in data.column_names if c not in current.names and c in pred.columns_of(tree)]
    fit = table.check_fit(data.drop_columns(feed_only).schema if feed_only else data.schema, schema_mode, current)
    flags = {c: data.column(c) for c in feed_only}
    data = conform(data.drop_columns(feed_only) if feed_only else data, fit)
    assert isinstance(data, pa.Table)
    for name, column in flags.items():
        data = data.append_column(name, column)
    dup = data.group_by(keys).aggregate([([], "count_all")]).filter(pc.field("count_all") > 1)
    if dup.num_rows:
        example = {k: dup.column(k)[0].as_py() for k in keys}
        raise MergeError(
            f"the merge source has {dup.num_rows} key(s) with several rows (e.g. {example}); "
            f"deduplicate it on {keys} first",
            table=table.name,
        )
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    base = tx.base
    columns = [c for c in data.column_names if c not in flags]

    def commit(props: CommitProperties) -> None:
        builder = base.merge(data, on, source_alias="s", target_alias="t",
                             merge_schema=schema_mode == "merge", commit_properties=props)
        if delete_when is not None:
            builder = builder.when_matched_delete(alias(delete_when, "s"))
        if update:
            builder = (builder.when_matched_update({f"`{c}`": f"s.`{c}`" for c in columns}) if flags
                       else builder.when_matched_update_all())
        if insert:
            builder = (builder.when_not_matched_insert({f"`{c}`": f"s.`{c}`" for c in columns}) if flags
                       else builder.when_not_matched_insert_all())
        if delete_not_matched_by_source:
            builder = builder.when_not_matched_by_source_delete()
        builder.execute()

    tx.run(commit)
    return tx.commit("MERGE", schema_changed=bool(fit.added))


def delete(tx: Transaction, predicate: str) -> CommitResult:
    """Delete the rows matching a SQL predicate (only files holding such rows are rewritten)."""
    table = tx.table
    assert tx.base is not None
    check_writable(tx, changes_data=True)
    pred.check_columns(predicate, pa.schema(tx.base.schema().to_arrow()).names, table.name)
    base = tx.base
    tx.run(lambda props: base.delete(predicate, commit_properties=props))
    return tx.commit("DELETE")


def optimize(tx: Transaction, target_size: int | None, zorder: Sequence[str] | None) -> CommitResult:
    """Compact small files (optionally Z-ordered) without changing data."""
    assert tx.base is not None
    check_writable(tx, changes_data=False)  # compaction rearranges rows (dataChange=false)
    base = tx.base
    counts: dict[str, Any] = {}

    def commit(props: CommitProperties) -> None:
        if zorder:
            counts.update(base.optimize.z_order(list(zorder), target_size=target_size, commit_properties=props))
        else:
            counts.update(base.optimize.compact(target_size=target_size, commit_properties=props))

    tx.run(commit)
    result = tx.commit("OPTIMIZE")  # nothing to compact commits nothing: the result is skipped
    metrics = {"files_added": counts.get("numFilesAdded", 0), "files_removed": counts.get("numFilesRemoved", 0)}
    return CommitResult(result.table, "OPTIMIZE", result.version, metrics, skipped=result.skipped,
                        commit_id=result.commit_id, run_id=result.run_id)


def alias(predicate: str, name: str) -> str:
    """Qualify bare column names of a predicate with ``name.`` for delta-rs merge clauses."""
    tree = pred.parse(predicate)
    if tree is None:
        return predicate
    out = predicate
    for col in sorted(pred.columns_of(tree), key=len, reverse=True):
        out = re.sub(rf"(?<![\w.`'])`?{re.escape(col)}`?(?![\w`'])", f"{name}.`{col}`", out)
    return out
