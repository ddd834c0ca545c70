"""A starter suite proposed from the data: what holds today, as expectations to review.

The statistics (rows; per column the values present, distinct, minimum, maximum; the value
set of small text columns) come from DuckDB in this process or, with ``engine="spark"``, from
one Spark aggregation on the cluster (exact distinct counts, the same numbers); ``auto`` picks
Spark once the table's rows (from the Delta log) reach ``[features] spark_min_rows``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from lake.duck import ident, qualified
from lake.lakehouse import Lake
from lake.monitor.spark_drift import choose_engine
from lake.spark_io import quote
from lake.sql import LakeSQL

SET_LIMIT = 20


def propose(lake: Lake, table: str, *, engine: str | None = None, spark: Any = None) -> str:
    """YAML of a suite for ``table``: not-null where no value is null, observed ranges for numbers
    and dates, small value sets, uniqueness where every value is distinct, a row-count floor."""
    db = LakeSQL(lake)
    columns = [(name, kind) for name, kind in db.schema(table) if not name.startswith("_")]  # not the lake's own
    rows = None
    if (engine or lake.settings.features.engine) == "auto":
        counts = pa.table(lake.table(table).delta().get_add_actions(flatten=True)).column("num_records")
        rows = int(pc.sum(counts).as_py() or 0)
    wanted = choose_engine(lake, engine, rows)  # the feature path's rule, as drift reports use it
    if wanted == "spark":
        total, stats, sets = _spark_stats(lake, table, columns, spark)
    else:
        total, stats, sets = _duckdb_stats(db, table, columns)
    expectations: list[dict[str, Any]] = [
        {"expect_table_row_count_to_be_between": {"min_value": max(1, total // 2)}}]
    for name, kind in columns:
        present, distinct, lo, hi = stats[name]
        if present == total and total:
            expectations.append({"expect_column_values_to_not_be_null": {"column": name}})
        if distinct == present and present and total > 1 and kind in ("BIGINT", "INTEGER", "VARCHAR"):
            expectations.append({"expect_column_values_to_be_unique": {"column": name}})
        if kind in ("BIGINT", "INTEGER", "SMALLINT", "DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
            if lo is not None:
                expectations.append({"expect_column_values_to_be_between": {
                    "column": name, "min_value": float(lo) if kind not in ("BIGINT", "INTEGER") else int(lo),
                    "max_value": float(hi) if kind not in ("BIGINT", "INTEGER") else int(hi)}})
        elif name in sets:
            expectations.append({"expect_column_values_to_be_in_set": {"column": name, "value_set": sets[name]}})
    suite = {"suite": table.replace(".", "_"), "table": table, "policy": "fail", "expectations": expectations}
    header = (f"# Proposed from {table} ({total} rows) by `lake quality profile`; review before committing.\n"
              "# policy: fail (no commit), quarantine (bad rows set aside) or warn (commit and record).\n")
    return header + yaml.safe_dump(suite, sort_keys=False, allow_unicode=True)


Stats = tuple[int, dict[str, tuple[int, int, Any, Any]], dict[str, list[str]]]
"""(rows, {column: (present, distinct, min, max)}, {small text column: its sorted values})."""


def _small_set(kind: str, distinct: int) -> bool:
    return kind == "VARCHAR" and 0 < distinct <= SET_LIMIT


def _duckdb_stats(db: LakeSQL, name: str, columns: list[tuple[str, str]]) -> Stats:
    table = qualified(name)
    rows = db.sql(f"SELECT count(*) FROM {table}").fetchone()
    total = int(rows[0]) if rows else 0
    stats: dict[str, tuple[int, int, Any, Any]] = {}
    sets: dict[str, list[str]] = {}
    for name, kind in columns:
        col = ident(name)
        got = db.sql(f"SELECT count({col}), count(DISTINCT {col}), min({col}), max({col}) FROM {table}").fetchone()
        assert got is not None
        stats[name] = (int(got[0]), int(got[1]), got[2], got[3])
        if _small_set(kind, int(got[1])):
            sets[name] = [r[0] for r in db.sql(f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL "
                                               f"ORDER BY 1").fetchall()]
    return total, stats, sets


def _spark_stats(lake: Lake, table: str, columns: list[tuple[str, str]], spark: Any) -> Stats:
    """The same statistics from one Spark aggregation (plus one for the small value sets)."""
    from pyspark.sql import functions as F  # heavy: pyspark, only on the Spark engine

    session = spark if spark is not None else lake.spark(app_name="lake-profile")
    frame = lake.table(table).to_spark(session)
    aggs = [F.count(F.lit(1)).alias("__rows")]
    for i, (name, _) in enumerate(columns):
        col = F.col(quote(name))
        aggs += [F.count(col).alias(f"n{i}"), F.countDistinct(col).alias(f"d{i}"), F.min(col).alias(f"lo{i}"),
                 F.max(col).alias(f"hi{i}")]
    row = frame.agg(*aggs).collect()[0]
    total = int(row["__rows"])
    stats = {name: (int(row[f"n{i}"]), int(row[f"d{i}"]), row[f"lo{i}"], row[f"hi{i}"])
             for i, (name, _) in enumerate(columns)}
    small = [name for name, kind in columns if _small_set(kind, stats[name][1])]
    sets: dict[str, list[str]] = {}
    if small:  # at most SET_LIMIT values each: collected as one small array per column
        got = frame.agg(*[F.array_sort(F.collect_set(F.col(quote(n)))).alias(f"s{i}") for i, n in enumerate(small)]
                        ).collect()[0]
        sets = {n: list(got[f"s{i}"]) for i, n in enumerate(small)}
    return total, stats, sets
