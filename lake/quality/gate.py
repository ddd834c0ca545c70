"""The quality gate: validate data before it is committed, with Great Expectations 1.x.

GE's own engines run the suite (Spark for Spark DataFrames, pandas for Python data).
What happens next is the suite's policy:

- ``fail``: nothing is committed; the error names each failed expectation, its column,
  how many rows failed and a few examples.
- ``quarantine``: rows failing a row-level expectation go to the quarantine table with the
  expectation they failed; the rest commits. (A failed table-level expectation, such as a
  row count or freshness bound, cannot be pinned on rows: the run fails.)
- ``warn``: everything commits; the failure is recorded.

Every result is stored in the catalog on the dataset version and emitted as OpenLineage
``dataQualityAssertions``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from lake.duck import ident, literal
from lake.errors import QualityGateError
from lake.quality.suite import FRESHNESS, Expectation, Suite
from lake.spark_io import quote, spark_literal

EXAMPLES = 5


@dataclass
class QualityReport:
    suite: str
    table: str
    policy: str
    success: bool
    results: list[dict[str, Any]] = field(default_factory=list)
    rows_checked: int | None = None

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["success"]]

    @property
    def statistics(self) -> dict[str, Any]:
        return {"evaluated": len(self.results), "successful": len(self.results) - len(self.failures),
                "unsuccessful": len(self.failures), "rows_checked": self.rows_checked}

    def message(self) -> str:
        lines = [f"quality suite {self.suite} failed on {self.table} ({len(self.failures)} of "
                 f"{len(self.results)} expectations):"]
        for r in self.failures:
            count = r.get("unexpected_count")
            where = f" on column {r['column']}" if r.get("column") else ""
            detail = (f"{count} rows failed" if count is not None else f"observed {r.get('observed_value')!r}")
            examples = f"; e.g. {r['examples']}" if r.get("examples") else ""
            error = f" ({r['error']})" if r.get("error") else ""
            lines.append(f"  - {r['expectation']}{where}: {detail}{examples}{error}")
        return "\n".join(lines)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No progress bars in logs, no analytics calls from a machine that may have no network."""
    saved = {k: os.environ.get(k) for k in ("TQDM_DISABLE", "GX_ANALYTICS_ENABLED")}
    os.environ.update(TQDM_DISABLE="1", GX_ANALYTICS_ENABLED="False")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def quiet_progress(context: Any) -> None:
    """No progress bars: jobs log to files and CI logs."""
    from great_expectations.data_context.types.base import (  # heavy: only when a suite runs
        ProgressBarsConfig,  # heavy: Great Expectations takes seconds to import; only when a suite runs
    )

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)


def validate(data: Any, suite: Suite) -> QualityReport:
    """Run ``suite`` on a Spark DataFrame (GE's Spark engine) or a pandas DataFrame."""
    with quiet():
        import great_expectations as gx  # heavy: Great Expectations takes seconds to import; only when a suite runs

        context = gx.get_context(mode="ephemeral")
        quiet_progress(context)
        spark = type(data).__module__.startswith("pyspark")
        source = context.data_sources.add_spark(name="lake") if spark else context.data_sources.add_pandas(name="lake")
        asset = source.add_dataframe_asset(name=suite.table.replace(".", "_"))
        batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": data})
        # Pass/fail first (about half the Spark jobs of a detailed run); details only for failures.
        quick = _ordered(batch.validate(suite.to_gx(), result_format="BOOLEAN_ONLY"), suite)
        failed = [e for e, r in zip(suite.expectations, quick, strict=True) if not r.success]
        details: dict[int, Any] = {}
        if failed:
            detail_suite = Suite(suite.name, suite.table, suite.policy, tuple(failed))
            detailed = _ordered(batch.validate(detail_suite.to_gx(), result_format="BASIC"), detail_suite)
            details = {id(e): r for e, r in zip(failed, detailed, strict=True)}
        ordered = [details.get(id(e), r) for e, r in zip(suite.expectations, quick, strict=True)]
    results = []
    rows = None
    for exp, r in zip(suite.expectations, ordered, strict=True):
        info = r.result or {}
        error = (r.exception_info or {}).get("exception_message") if (r.exception_info or {}).get(
            "raised_exception") else None
        rows = info.get("element_count", rows)
        results.append({
            "expectation": exp.type, "kwargs": dict(exp.kwargs), "column": exp.column, "success": bool(r.success),
            "unexpected_count": info.get("unexpected_count"), "unexpected_percent": info.get("unexpected_percent"),
            "examples": list(info.get("partial_unexpected_list") or [])[:EXAMPLES],
            "observed_value": _plain(info.get("observed_value")), "error": error,
        })
    return QualityReport(suite.name, suite.table, suite.policy, not failed, results, rows)


def _ordered(result: Any, suite: Suite) -> list[Any]:
    """GE returns results in its own order; put them back in the suite's order."""
    remaining = list(result.results)
    out = []
    for exp in suite.expectations:
        kind = "expect_column_max_to_be_between" if exp.type == FRESHNESS else exp.type
        for i, r in enumerate(remaining):
            cfg = r.expectation_config
            if cfg.type == kind and all(cfg.kwargs.get(k) == v for k, v in exp.kwargs.items()
                                        if k not in ("max_age_days",) and not isinstance(v, list)):
                out.append(remaining.pop(i))
                break
        else:
            out.append(remaining.pop(0))
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# ------------------------------------------------------------ row-level checks

def sql_value(value: Any, dialect: str) -> str:
    """A value from a suite as a SQL literal of the dialect (strings through its quoting helper)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and math.isfinite(value):
        return repr(value)
    text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return spark_literal(text) if dialect == "spark" else literal(text)


def failing_condition(exp: Expectation, dialect: str = "spark") -> str | None:
    """A SQL condition (Spark or DuckDB) true for the rows failing a row-level expectation.

    ``None`` for table-level expectations (row counts, aggregates, freshness). GE's
    semantics are kept: value checks ignore NULLs; only the (not-)null checks look at them.
    """
    k = exp.kwargs

    def q(name: Any) -> str:
        return quote(str(name)) if dialect == "spark" else ident(str(name))

    def _lit(value: Any) -> str:
        return sql_value(value, dialect)

    def rlike(c: str, pattern: Any) -> str:
        return f"{c} RLIKE {_lit(pattern)}" if dialect == "spark" else f"regexp_matches({c}, {_lit(pattern)})"

    col = q(k["column"]) if "column" in k else None
    if exp.type == "expect_column_values_to_not_be_null":
        return f"{col} IS NULL"
    if exp.type == "expect_column_values_to_be_null":
        return f"{col} IS NOT NULL"
    if exp.type == "expect_column_values_to_be_between":
        checks = []
        if k.get("min_value") is not None:
            checks.append(f"{col} {'<=' if k.get('strict_min') else '<'} {_lit(k['min_value'])}")
        if k.get("max_value") is not None:
            checks.append(f"{col} {'>=' if k.get('strict_max') else '>'} {_lit(k['max_value'])}")
        return f"{col} IS NOT NULL AND ({' OR '.join(checks)})" if checks else None
    if exp.type in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = ", ".join(_lit(v) for v in k.get("value_set") or [])
        negate = "" if "not_be_in_set" in exp.type else "NOT "
        return f"{col} IS NOT NULL AND {negate}{col} IN ({values})"
    if exp.type == "expect_column_values_to_match_regex":
        return f"{col} IS NOT NULL AND NOT ({rlike(str(col), k['regex'])})"
    if exp.type == "expect_column_values_to_not_match_regex":
        return f"{col} IS NOT NULL AND {rlike(str(col), k['regex'])}"
    if exp.type == "expect_column_value_lengths_to_be_between":
        checks = []
        if k.get("min_value") is not None:
            checks.append(f"length({col}) < {int(k['min_value'])}")
        if k.get("max_value") is not None:
            checks.append(f"length({col}) > {int(k['max_value'])}")
        return f"{col} IS NOT NULL AND ({' OR '.join(checks)})" if checks else None
    if exp.type == "expect_column_values_to_be_unique":
        return f"{col} IS NOT NULL AND count(1) OVER (PARTITION BY {col}) > 1"
    if exp.type == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = q(k["column_A"]), q(k["column_B"])
        return f"{a} IS NOT NULL AND {b} IS NOT NULL AND NOT ({a} {'>=' if k.get('or_equal') else '>'} {b})"
    if exp.type == "expect_column_pair_values_to_be_equal":
        a, b = q(k["column_A"]), q(k["column_B"])
        return f"{a} IS NOT NULL AND {b} IS NOT NULL AND {a} <> {b}"
    return None


def _cases(report: QualityReport, suite: Suite, dialect: str) -> str:
    failed = [e for e, r in zip(suite.expectations, report.results, strict=True) if not r["success"]]
    unpinned = [e for e in failed if failing_condition(e, dialect) is None]
    if unpinned:
        raise QualityGateError(report.message() + "\n(these expectations are about the whole table, so no row "
                               "can be quarantined for them; nothing was committed)", report, table=suite.table)
    return " ".join(f"WHEN {failing_condition(e, dialect)} THEN {sql_value(e.describe(), dialect)}" for e in failed)


def split(df: Any, report: QualityReport, suite: Suite) -> tuple[Any, Any]:
    """Quarantine policy on a Spark DataFrame: (rows that pass, failing rows with ``__expectation``).

    Raises:
        QualityGateError: a failed expectation is table-level (it cannot be pinned on rows).
    """
    from pyspark.sql import functions as F  # heavy: pyspark, only once Spark runs

    cases = _cases(report, suite, "spark")
    tagged = df.withColumn("__expectation", F.expr(f"CASE {cases} END") if cases else F.lit(None).cast("string"))
    return (tagged.filter(F.col("__expectation").isNull()).drop("__expectation"),
            tagged.filter(F.col("__expectation").isNotNull()))


def split_arrow(table: Any, report: QualityReport, suite: Suite) -> tuple[Any, Any]:
    """Quarantine policy on Arrow data (DuckDB evaluates the same conditions)."""
    import duckdb  # heavy: DuckDB loads on first use

    cases = _cases(report, suite, "duckdb")
    con = duckdb.connect()
    con.register("batch", table)
    tagged = con.sql(f"SELECT *, CASE {cases} END AS __expectation FROM batch" if cases else
                     "SELECT *, CAST(NULL AS VARCHAR) AS __expectation FROM batch").to_arrow_table()
    mask = pc.is_null(tagged.column("__expectation"))
    return tagged.filter(mask).drop_columns(["__expectation"]), tagged.filter(pc.invert(mask))
