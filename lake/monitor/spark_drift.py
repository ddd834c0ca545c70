"""Drift statistics on Spark: the aggregations of :mod:`lake.monitor.cells` run on the executors.

``drift_report(..., engine="spark")`` (``lake monitor drift --engine spark``) reads both sets
with Spark (tables at the versions resolved, through the lake's Delta reader; the window
as a filter) and runs the same aggregations as the DuckDB path: row and value counts, the
sample the cell layout is chosen from, the cells of every numeric column (one grouping
per side, then the refinement of heavy cells, joined to a broadcast table of them) and
the counts per category. Each aggregation's result comes back to the driver as Arrow and
is matched with the other side's in a DuckDB connection of this process; the metrics are
then computed by the same code as on DuckDB, so they are the same numbers: equal in exact
mode, within the same error bounds in binned mode (where the cell layout is chosen from
a Spark sample, not DuckDB's).

**Memory**: the driver never holds rows of a table. What it receives per numeric column
is at most ``options.bins`` cells per side (65,536 by default: about 2 MB), then the cells
of each refinement (at most 64 per heavy cell, and at most ``1 / options.tolerance``
heavy cells per side), the last refinement at most ``options.refine_rows`` distinct values;
in exact mode one cell per distinct value (at most ``options.exact_rows`` rows in all, or
an integer span of at most ``bins`` values, or a column whose sample showed few values);
plus a sample of about ``options.sample_rows`` values per side (800 KB; should the samples
hold no value at all, a column almost entirely missing, its present values are read instead,
as on DuckDB), and one row per category of a categorical column. Executors hold one partition of rows at a time and a
hash table of at most that many groups. In-memory frames (pandas, Arrow) are already on
the driver; they are handed to Spark as they are.

``auto`` uses Spark once the rows of both sets' tables (from the Delta log) reach
``[features] spark_min_rows``, the feature path's rule (in-memory frames count 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.errors import MonitorError
from lake.monitor.cells import Rows
from lake.spark_io import quote

if TYPE_CHECKING:
    import duckdb

    from lake.lakehouse import Lake
    from lake.monitor.sources import Source

ENGINES = ("auto", "duckdb", "spark")


def choose_engine(lake: Lake, engine: str | None, rows: int | None) -> str:
    """``duckdb`` or ``spark`` for ``engine`` (default ``[features] engine``); ``auto`` compares
    ``rows`` (the rows read, or None when unknown: DuckDB) with ``[features] spark_min_rows``.

    Raises:
        MonitorError: not one of auto, duckdb, spark.
    """
    wanted = engine or lake.settings.features.engine
    if wanted not in ENGINES:
        raise MonitorError(f"engine {wanted!r}: use one of {', '.join(ENGINES)}")
    if wanted == "auto":
        return "spark" if rows is not None and rows >= lake.settings.features.spark_min_rows else "duckdb"
    return wanted


def table_rows(source: Source) -> int | None:
    """A table set's rows at its version, from the Delta log (0 for an in-memory frame; None when
    the log does not count them)."""
    if source.handle is None or source.version is None:
        return 0
    actions = pa.table(source.handle.delta(source.version).get_add_actions(flatten=True))
    if "num_records" not in actions.column_names:
        return None
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


class SparkRows(Rows):
    """The rows of both sets as Spark views; aggregations run on the executors.

    ``con`` (DuckDB) holds the resolved sets' metadata and is where the aggregated results
    are matched (:attr:`local`).
    """

    text = "STRING"

    def __init__(self, spark: Any, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(con)
        self.spark = spark
        self._views: list[str] = []

    def quote(self, name: str) -> str:
        return quote(name)

    def normalized(self, column: str) -> str:
        q = f"CAST({quote(column)} AS DOUBLE)"
        return f"CASE WHEN isnan({q}) OR abs({q}) = double('Infinity') THEN NULL ELSE {q} END"

    def cell_key(self, u_sql: str, bins: int) -> str:
        return f"CAST(floor({u_sql} + 0.5) AS INT)"  # rounding, monotone; floor is cheaper than round on Spark

    def sides(self, ref_sql: str, cur_sql: str) -> tuple[str, str]:
        out = []
        for name, sql in (("_lake_spark_r", ref_sql), ("_lake_spark_c", cur_sql)):
            self.local.register(name, self.spark.sql(sql).toArrow())  # aggregated: small (see the module)
            out.append(f"SELECT * FROM {name}")
        return out[0], out[1]

    def values(self, source: str) -> np.ndarray:
        got = self.spark.sql(f"SELECT x FROM {source} WHERE x IS NOT NULL").toArrow()
        return np.asarray(got.column("x").to_numpy(), dtype=np.float64)

    def row(self, sql: str) -> tuple[Any, ...] | None:
        got = self.spark.sql(sql).take(1)
        return tuple(got[0]) if got else None

    def execute(self, sql: str) -> None:
        self.spark.sql(sql)
        if sql.startswith("CREATE OR REPLACE TEMP VIEW "):
            self._views.append(sql.split()[5])

    def register(self, name: str, table: pa.Table) -> None:
        self.spark.createDataFrame(table).createOrReplaceTempView(name)  # a few cells: broadcast in joins
        self._views.append(name)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)

    def sample(self, relation: str, where: str, column: str, rows: int, target: int) -> tuple[str, bool]:
        """About ``target`` values of the set (a Bernoulli sample on the executors, fixed seed)."""
        if rows <= 2 * target:
            return f"(SELECT {self.normalized(column)} AS x FROM {relation})", False
        return (f"(SELECT {self.normalized(column)} AS x FROM {relation} "
                f"TABLESAMPLE ({100 * target / rows:.12f} PERCENT) REPEATABLE (7))", True)

    def attach(self, source: Source, con: duckdb.DuckDBPyConnection) -> None:
        """Make ``source`` (resolved in ``con``) a Spark view of the same name, read by the executors."""
        if source.handle is not None and source.version is not None:
            frame = source.handle.to_spark(self.spark, version=source.version)
        else:  # an in-memory frame: already on the driver
            data = con.execute(f"SELECT * FROM {source.relation}_all").fetch_arrow_table()
            frame = self.spark.createDataFrame(data)
        frame.createOrReplaceTempView(f"{source.relation}_all")
        self.execute(f"CREATE OR REPLACE TEMP VIEW {source.relation} AS SELECT * FROM {source.relation}_all"
                     f"{source.spark_where}")
        self._views.append(f"{source.relation}_all")

    def close(self) -> None:
        """Drop the session's views made for this report."""
        for name in dict.fromkeys(self._views):
            self.spark.catalog.dropTempView(name)
        self._views.clear()


__all__ = ["ENGINES", "SparkRows", "choose_engine", "table_rows"]
