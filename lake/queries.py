"""Saved queries: SQL kept in the catalog by name, run by anyone, recorded with lineage.

Saving checks the query against the lake (it must bind: tables and columns exist) and registers
its result as the dataset ``query.<name>`` (kind ``query``) with lineage from the tables it reads;
every run is a catalog run ``query.<name>`` with those tables as inputs at the versions it read.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from catalog.entities import ColumnSpec
from catalog.queries import QUERY_PREFIX, check_name, check_sql
from lake.errors import SQLError
from lake.lakehouse import Lake
from lake.sql import LakeSQL

__all__ = ["QueryResult", "dataset_of", "run_saved", "save_query"]

KIND = "query"


@dataclass(frozen=True)
class QueryResult:
    """One run of a saved query."""

    name: str
    data: pa.Table
    read: dict[str, int]
    """The lake tables it read, at which version."""
    run_id: str | None
    truncated: bool
    """Whether ``limit`` cut the result."""


def dataset_of(name: str) -> str:
    """The catalog dataset of a saved query: ``query.<name>``."""
    return QUERY_PREFIX + check_name(name)


def _who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def save_query(lake: Lake, name: str, sql: str, *, description: str | None = None,
               owner: str | None = None) -> dict[str, Any]:
    """Check ``sql`` against the lake, keep it under ``name``, register ``query.<name>`` with lineage.

    Raises:
        SQLError: the query does not bind (unknown table or column) or would write.
        CatalogInputError: a bad name.
    """
    name = check_name(name)
    check_sql(sql)  # before it runs: a credential in the text is refused, whatever the query does
    db = LakeSQL(lake)
    try:
        rel = db.sql(sql)
        if rel is None:
            raise SQLError("a saved query must return rows (a SELECT, or a statement with a result)")
        columns = [ColumnSpec(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]
        read = db.versions_read()
    finally:
        db.close()
    record = lake.catalog.save_query(name, sql, description=description, owner=owner or _who())
    dataset = QUERY_PREFIX + name
    with lake.run(f"query.save.{name}", parameters={"saved": name}) as run:
        lake.catalog.register_dataset(dataset, kind=KIND, layer=KIND, format="sql", description=description,
                                      columns=columns, owners=[record["owner"]] if record["owner"] else [])
        for table, version in read.items():
            run.input(table, version)
        run.output(dataset, None, kind=KIND)
    return {**record, "reads": read, "columns": [{"name": c.name, "type": c.type} for c in columns]}


def run_saved(lake: Lake, name: str, *, limit: int | None = None) -> QueryResult:
    """Run a saved query as a catalog run (its inputs: the tables read at their versions).

    Raises:
        SavedQueryNotFoundError: no such saved query.
        SQLError: the query no longer runs (a table or column went away).
    """
    saved = lake.catalog.saved_query(name)
    db = LakeSQL(lake)
    try:
        with lake.run(f"query.{saved['name']}", parameters={"saved": saved["name"], "limit": limit}) as run:
            rel = db.sql(saved["sql"])
            if rel is None:
                raise SQLError(f"saved query {saved['name']} returns no rows")
            data = rel.limit(limit + 1).arrow() if limit is not None else rel.arrow()
            if isinstance(data, pa.RecordBatchReader):
                data = data.read_all()
            read = db.versions_read()
            for table, version in read.items():
                run.input(table, version)
            run.output(saved["dataset"], None, kind=KIND)
            truncated = limit is not None and data.num_rows > limit
            if truncated:
                data = data.slice(0, limit)
            run.stats.update({"rows": data.num_rows, "truncated": truncated})
            run_id = run.run_id
    finally:
        db.close()
    return QueryResult(saved["name"], data, read, run_id, truncated)
