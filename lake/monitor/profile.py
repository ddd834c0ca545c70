"""A starter suite proposed from the data: what holds today, as expectations to review."""

from __future__ import annotations

from typing import Any

import yaml

from lake.duck import ident
from lake.lakehouse import Lake
from lake.sql import LakeSQL

SET_LIMIT = 20


def propose(lake: Lake, table: str) -> str:
    """YAML of a suite for ``table``: not-null where no value is null, observed ranges for numbers
    and dates, small value sets, uniqueness where every value is distinct, a row-count floor."""
    db = LakeSQL(lake)
    columns = db.schema(table)
    rows = db.sql(f"SELECT count(*) FROM {table}").fetchone()
    total = int(rows[0]) if rows else 0
    expectations: list[dict[str, Any]] = [
        {"expect_table_row_count_to_be_between": {"min_value": max(1, total // 2)}}]
    for name, kind in columns:
        if name.startswith("_"):
            continue  # the lake's own bookkeeping columns
        col = ident(name)
        stats = db.sql(f"SELECT count({col}), count(DISTINCT {col}), min({col}), max({col}) FROM {table}").fetchone()
        assert stats is not None
        present, distinct, lo, hi = stats
        if present == total and total:
            expectations.append({"expect_column_values_to_not_be_null": {"column": name}})
        if distinct == present and present and total > 1 and kind in ("BIGINT", "INTEGER", "VARCHAR"):
            expectations.append({"expect_column_values_to_be_unique": {"column": name}})
        if kind in ("BIGINT", "INTEGER", "SMALLINT", "DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
            if lo is not None:
                expectations.append({"expect_column_values_to_be_between": {
                    "column": name, "min_value": float(lo) if kind not in ("BIGINT", "INTEGER") else int(lo),
                    "max_value": float(hi) if kind not in ("BIGINT", "INTEGER") else int(hi)}})
        elif kind == "VARCHAR" and 0 < distinct <= SET_LIMIT:
            values = [r[0] for r in db.sql(f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL "
                                           f"ORDER BY 1").fetchall()]
            expectations.append({"expect_column_values_to_be_in_set": {"column": name, "value_set": values}})
    suite = {"suite": table.replace(".", "_"), "table": table, "policy": "fail", "expectations": expectations}
    header = (f"# Proposed from {table} ({total} rows) by `lake quality profile`; review before committing.\n"
              "# policy: fail (no commit), quarantine (bad rows set aside) or warn (commit and record).\n")
    return header + yaml.safe_dump(suite, sort_keys=False, allow_unicode=True)
