"""Drift reports: compare a current set with a reference, per feature, and keep the result.

``drift_report`` resolves both sets, computes the statistics of :mod:`lake.monitor.drift`
for every compared column, turns them into statuses with :class:`Thresholds`, and (when
the lake has a catalog) does all that inside a catalog run ``monitor.drift.<table>``:
both sets become the run's inputs at the versions read, the report is stored on the
current dataset version (``lake.catalog.reports(dataset=...)``), and the run's
OpenLineage COMPLETE event carries a ``lake_drift`` facet on the current dataset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from lake import metrics
from lake.errors import SourceError
from lake.lakehouse import Lake
from lake.monitor import drift as stats
from lake.monitor.drift import (
    CATEGORICAL,
    NUMERIC,
    OTHER,
    Cells,
    Options,
    Profile,
    Rows,
    normalized_column,
)
from lake.monitor.html import render
from lake.monitor.metrics import METRICS, Categories, Inputs
from lake.monitor.results import FeatureDrift, clean
from lake.monitor.sources import (
    MISSING,
    Column,
    SchemaChanges,
    Source,
    TimeLike,
    plan_columns,
    resolve,
    schema_changes,
)
from lake.monitor.spark_drift import SparkRows, choose_engine, table_rows
from lake.monitor.thresholds import DRIFT, OK, WARN, Thresholds, at_least, worst

KIND = "drift"


@dataclass(frozen=True)
class DriftReport:
    """A drift report: overall status, per-feature results, schema changes.

    Example:
        >>> report = drift_report(lake, reference="training:3f2a9c", current="logs.serving_fraud", since="7d")
        >>> report.status, [f.name for f in report.features if f.status == "drift"]
        >>> report.save_html("drift.html")
    """

    status: str
    features: tuple[FeatureDrift, ...]
    schema: SchemaChanges
    reference: Mapping[str, Any]
    """The reference set: label, table, version, training id, rows."""
    current: Mapping[str, Any]
    thresholds: Thresholds
    created_at: dt.datetime
    report_id: str | None = None
    """The catalog's id for the stored report (None when not recorded)."""
    run_id: str | None = None
    location: str | None = None
    """Where the HTML rendering was saved, if it was."""

    def feature(self, name: str) -> FeatureDrift:
        """One feature's result by column name."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"no feature {name!r} in this report ({', '.join(f.name for f in self.features)})")

    def failed(self, level: str) -> bool:
        """Whether the overall status is at least ``level`` (``warn`` or ``drift``)."""
        return at_least(self.status, level)

    def summary(self) -> dict[str, Any]:
        """What the catalog listing and the OpenLineage facet show."""
        by = {s: [f.name for f in self.features if f.status == s] for s in (DRIFT, WARN)}
        worst_first = sorted(self.features, key=lambda f: ({DRIFT: 0, WARN: 1}.get(f.status, 2), f.name))
        return clean({
            "status": self.status, "reference": self.reference.get("label"), "current": self.current.get("label"),
            "rows": {"reference": self.reference.get("rows"), "current": self.current.get("rows")},
            "features": len(self.features), "drift": by[DRIFT], "warn": by[WARN],
            "ok": sum(f.status == OK for f in self.features), "schema": self.schema.to_dict(),
            "top": [{"name": f.name, "status": f.status, **{m.value_key: f.metrics[m.value_key] for m in METRICS
                                                               if m.top and f.metrics.get(m.value_key) is not None}}
                    for f in worst_first[:5]],
        })

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data (NaN and infinities become null)."""
        return clean({
            "kind": KIND, "status": self.status, "created_at": self.created_at.isoformat(),
            "report_id": self.report_id, "run_id": self.run_id, "location": self.location,
            "reference": dict(self.reference), "current": dict(self.current),
            "schema": self.schema.to_dict(), "thresholds": self.thresholds.to_dict(),
            "features": [f.to_dict() for f in self.features],
        })

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self) -> str:
        """A self-contained HTML page (inline CSS and SVG; no scripts, no network)."""
        return render(self)

    def save_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path`` (folders created); returns the path."""
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def drift_report(
    lake: Lake,
    reference: Any,
    current: Any,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    time_column: str | None = None,
    columns: Sequence[str] | None = None,
    thresholds: Thresholds | Mapping[str, Any] | Sequence[str] | None = None,
    html: str | Path | None = None,
    record: bool = True,
    options: Options | None = None,
    job: str | None = None,
    engine: str | None = None,
    spark: Any = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> DriftReport:
    """Compare a current set with a reference, feature by feature.

    Args:
        lake: the lake holding the tables (and the catalog the report goes to).
        reference: ``"training:<id or name>"``, ``"gold.x"``, ``"gold.x@3"``,
            ``"gold.x@2024-05-01T00:00:00Z"``, a :class:`lake.table.Table`, or an Arrow,
            pandas or Polars frame.
        current: the same kinds; typically a table (``"logs.serving_fraud"``).
        since: start of the current set's time window (inclusive): a datetime, ISO text
            or a duration before now (``"7d"``).
        until: end of the window (exclusive).
        time_column: the current set's timestamp column for the window (default: its
            only timestamp column).
        columns: the columns to compare (default: the training dataset's features, else
            every numeric and categorical column of the reference).
        thresholds: per-metric levels (:class:`Thresholds`, ``{"psi": 0.2, "ks": (0.05, 0.1)}``
            or ``["psi=0.2"]``); defaults in :mod:`lake.monitor.thresholds`.
        html: also save the HTML report here (its path is stored with the report).
        record: store the report in the catalog inside a run (when the lake has one).
        options: how the statistics are computed (:class:`lake.monitor.drift.Options`).
        job: the catalog job of the run that records the report (default
            ``monitor.drift.<current table>``; a declared monitor uses its own name).
        engine: ``duckdb`` (this process), ``spark`` (the executors aggregate; see
            :mod:`lake.monitor.spark_drift`) or ``auto`` (Spark once both sets' rows reach
            ``[features] spark_min_rows``); default ``[features] engine``. The same statistics.
        spark: the Spark session for the Spark engine (default: the lake's).
        progress: called as columns are compared: ``(columns done, columns in all, rows of both sets)``.

    Returns:
        The report; ``report_id`` and ``run_id`` are set when it was recorded.

    Raises:
        SourceError: bad spec, empty set, no common columns, bad time window.
        ThresholdError: a bad threshold.
        MonitorError: an unknown engine.
        TableNotFoundError, VersionNotFoundError: no such table or version.
    """
    limits = Thresholds.coerce(thresholds)
    opts = options or Options()
    if engine is not None:
        choose_engine(lake, engine, None)  # an unknown engine fails before anything is read
    con = duckdb.connect()
    rows: Rows | None = None
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET perfect_ht_threshold = 17")  # numeric cells group by a 16-bit key: an array, no hashing
        # Views of their own per report: a Spark session's temporary views are shared by every report
        # that runs in it at the same time.
        tag = uuid.uuid4().hex[:12]
        ref = resolve(lake, con, reference, f"_lake_ref_{tag}")
        cur = resolve(lake, con, current, f"_lake_cur_{tag}", since=since, until=until, time_column=time_column)
        plan = plan_columns(ref, cur, list(columns) if columns else None, time_column)
        rows = _rows(lake, con, (ref, cur), engine, spark)
        for source, what in ((ref, "the reference"), (cur, "the current set")):
            if rows.row(f"SELECT 1 FROM {source.relation} LIMIT 1") is None:
                raise SourceError(f"{what} {source.label} has no rows"
                                  + (f" in {source.window}" if source.window else ""))
        if not record or lake.recorder is None:
            return _build(rows, ref, cur, plan, limits, opts, html, progress)
        params = {"reference": ref.label, "current": cur.label, "window": cur.window,
                  "columns": [c.name for c in plan]}
        with lake.run(job or f"monitor.drift.{cur.table or 'frame'}", parameters=clean(params)) as run:
            for source in (ref, cur):
                source.record_read(lake)
            report = dataclasses.replace(_build(rows, ref, cur, plan, limits, opts, html, progress),
                                         run_id=run.run_id)
            body = {k: v for k, v in report.to_dict().items() if k != "report_id"}  # the id is the catalog's
            report_id = lake.catalog.record_report(
                KIND, cur.table, cur.version, status=report.status, summary=report.summary(),
                body=body, reference=ref.label, location=report.location, run_id=run.run_id)
            run.stats.update({"drift_status": report.status, "features": len(report.features)})
        if cur.table:
            metrics.DRIFT_STATUS.labels(cur.table).set(metrics.STATUS_LEVELS.get(report.status, 0))
            for status in metrics.STATUS_LEVELS:
                metrics.DRIFT_FEATURES.labels(cur.table, status).set(sum(f.status == status for f in report.features))
            metrics.publish(lake.settings.metrics.pushgateway, lake.settings.metrics.textfile)
        return dataclasses.replace(report, report_id=report_id)
    finally:
        if isinstance(rows, SparkRows):
            rows.close()
        con.close()


def _rows(lake: Lake, con: duckdb.DuckDBPyConnection, sources: tuple[Source, Source], engine: str | None,
          spark: Any) -> Rows:
    """Where the rows are read: DuckDB (``con``) or Spark, by :func:`choose_engine`."""
    counted = [table_rows(s) for s in sources] if (engine or lake.settings.features.engine) == "auto" else []
    total = sum(n for n in counted if n is not None) if counted and None not in counted else None
    if choose_engine(lake, engine, total) == "duckdb":
        return Rows(con)
    spark_rows = SparkRows(spark if spark is not None else lake.spark(app_name="lake-drift"), con)
    try:
        for source in sources:
            spark_rows.attach(source, con)
    except BaseException:
        spark_rows.close()
        raise
    return spark_rows


def _build(rows: Rows, ref: Source, cur: Source, plan: list[Column], limits: Thresholds,
           opts: Options, html: str | Path | None,
           progress: Callable[[int, int, int], None] | None = None) -> DriftReport:
    present = [c for c in plan if c.kind != MISSING]
    kinds_r = {c.name: c.kind if c.comparable else OTHER for c in plan}
    kinds_c = {c.name: kinds_r[c.name] for c in present}
    for source, kinds in ((ref, kinds_r), (cur, kinds_c)):
        select = ", ".join(normalized_column(n, k, rows) for n, k in kinds.items())
        rows.execute(f"CREATE OR REPLACE TEMP VIEW {source.relation}_n AS SELECT {select} FROM {source.relation}")
    binned = {c.name for c in present if c.comparable and c.kind == NUMERIC}  # their profiles come with the cells
    rows_r, counts_r = stats.counts(rows, f"{ref.relation}_n", [n for n in kinds_r if n not in binned])
    rows_c, counts_c = stats.counts(rows, f"{cur.relation}_n", [n for n in kinds_c if n not in binned])
    if rows_r == 0 or rows_c == 0:
        raise SourceError(f"{'the reference ' + ref.label if rows_r == 0 else 'the current set ' + cur.label} "
                          "has no rows")

    def feature(column: Column) -> FeatureDrift:
        if column.name in binned:
            integer = all(t is not None and t.startswith(("int", "uint")) for t in (column.ref_type, column.cur_type))
            (sample_r, sampled_r), (sample_c, sampled_c) = (
                rows.sample(ref.relation, ref.where, column.name, rows_r, opts.sample_rows),
                rows.sample(cur.relation, cur.where, column.name, rows_c, opts.sample_rows))
            cells, pr, pc = stats.numeric_cells(rows, f"{ref.relation}_n", f"{cur.relation}_n", column.name,
                                                (rows_r, rows_c), integer=integer, options=opts,
                                                samples=(sample_r, sample_c), sampled=sampled_r or sampled_c)
            return _feature(rows, ref, cur, column, pr, pc, cells, limits, opts)
        current = Profile(rows_c, counts_c[column.name]) if column.name in counts_c else None
        return _feature(rows, ref, cur, column, Profile(rows_r, counts_r[column.name]), current, None, limits, opts)

    done: list[FeatureDrift] = []
    for column in plan:
        done.append(feature(column))
        if progress is not None:
            progress(len(done), len(plan), rows_r + rows_c)
    features = tuple(done)
    report = DriftReport(
        status=worst(f.status for f in features), features=features, schema=schema_changes(ref.schema, cur.schema),
        reference={**ref.describe(), "rows": rows_r}, current={**cur.describe(), "rows": rows_c},
        thresholds=limits, created_at=dt.datetime.now(dt.UTC))
    if html is not None:
        report = dataclasses.replace(report, location=str(Path(html).expanduser().resolve()))
        report.save_html(html)
    return report


def _side(column: Column, prof: Profile | None, dtype: str | None) -> dict[str, Any]:
    if prof is None:
        return {"type": dtype}
    out: dict[str, Any] = {"type": dtype, "rows": prof.rows, "count": prof.count, "null_rate": prof.null_rate}
    if column.comparable and column.kind == NUMERIC:
        out.update({"min": prof.minimum, "max": prof.maximum, "mean": prof.mean, "std": prof.std})
    return out


def _feature(rows: Rows, ref: Source, cur: Source, column: Column, pr: Profile,
             pc: Profile | None, cells: Cells | None, limits: Thresholds, opts: Options) -> FeatureDrift:
    ref_side, cur_side = _side(column, pr, column.ref_type), _side(column, pc, column.cur_type)
    if column.kind == MISSING or pc is None:
        return FeatureDrift(column.name, MISSING, DRIFT, (f"not in the current set {cur.label}",), {},
                            ref_side, cur_side)
    histogram: dict[str, Any] | None = None
    extra: dict[str, Any] = {}
    compared: Cells | None = None
    categories: Categories | None = None
    notes: list[tuple[str, str]] = []
    if not column.comparable:
        notes.append((DRIFT, f"type changed from {column.ref_type} to {column.cur_type}: not comparable"))
    elif column.ref_type != column.cur_type:
        notes.append((WARN, f"type changed from {column.ref_type} to {column.cur_type}"))
    if column.comparable and pr.count and pc.count:
        if cells is not None:
            compared = cells
            extra["exact"] = cells.exact
            histogram = stats.numeric_histogram(cells, opts)
            for side, counts in ((ref_side, cells.ref), (cur_side, cells.cur)):
                side["median"] = stats.quantile(cells, counts, 0.5)
                side["distinct"] = int((counts > 0).sum()) if cells.exact else None
        elif column.kind == CATEGORICAL:
            values, nr, nc = stats.category_counts(rows, f"{ref.relation}_n", f"{cur.relation}_n", column.name)
            categories = Categories(values, nr, nc)
            extra.update(stats.category_changes(values, nr, nc))
            histogram = stats.category_histogram(values, nr, nc, opts)
            ref_side["distinct"], cur_side["distinct"] = int((nr > 0).sum()), int((nc > 0).sum())
    elif column.comparable and column.kind != OTHER:
        empty = "reference" if not pr.count else "current set"
        notes.append((WARN, f"no values in the {empty}: distributions not compared"))
    inputs = Inputs(column.kind if column.comparable else OTHER, pr, pc, opts, compared, categories,
                    ref_side.get("distinct"), cur_side.get("distinct"))
    metrics = {**METRICS.compute(inputs), **extra}
    statuses = [s for s, _ in notes]
    reasons = [text for _, text in notes]
    for metric in METRICS:
        value = metric.value(metrics)
        status = limits.status(metric.name, value)
        if status != OK:
            assert value is not None
            limit = limits.level(metric.name)
            level = limit.drift if status == DRIFT else limit.warn
            sign = "<=" if metric.lower_is_worse else ">="
            statuses.append(status)
            reasons.append(f"{metric.name} {value:.4g} {sign} {level:g} ({status})")
    kind = column.kind if column.comparable else OTHER
    return FeatureDrift(column.name, kind, worst(statuses), tuple(reasons), metrics, ref_side, cur_side, histogram)


__all__ = ["DriftReport", "FeatureDrift", "drift_report"]
