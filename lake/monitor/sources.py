"""What a drift report compares: the reference and current sets, and their columns.

A set is one of:

- ``"training:<id or name>"``: a saved training dataset (the ``training.<name>`` table
  at the version the catalog recorded); its features are the default columns.
- ``"layer.name"`` (latest version), ``"layer.name@3"`` (a version) or
  ``"layer.name@2024-05-01T00:00:00Z"`` (the version current then); a path works too.
  Online-serving logs are such tables (``logs.serving_<model>``): their columns are the
  served feature names, so they compare with training frames by column name.
- a :class:`lake.table.Table` (latest version), or an in-memory frame (Arrow, pandas,
  Polars).

The current set can be narrowed to a time window (``since``/``until`` on a timestamp
column). Each set becomes a DuckDB view; tables are read through DuckDB's Delta
reader at the exact version resolved here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lake import protocol
from lake.data import to_arrow
from lake.duck import configure_storage, literal, load_extensions
from lake.errors import SourceError
from lake.lakehouse import Lake
from lake.monitor.drift import CATEGORICAL, NUMERIC, OTHER, kind_of, quote, type_name
from lake.naming import training_table
from lake.spark_io import quote as spark_quote
from lake.table import Table

if TYPE_CHECKING:
    import duckdb

TimeLike = dt.datetime | dt.date | str
MISSING = "missing"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_SUFFIX = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Source:
    """One side of the comparison, resolved: a DuckDB view and where it came from."""

    label: str
    """How reports name it: ``gold.x@3``, ``training:abc123 (training.x@2)``, ``frame``."""
    relation: str
    """The DuckDB view holding its rows."""
    schema: pa.Schema
    table: str | None = None
    version: int | None = None
    training_id: str | None = None
    features: tuple[str, ...] | None = None
    """The training dataset's features (default columns)."""
    window: str | None = None
    """The time window applied, as text."""
    handle: Table | None = field(default=None, compare=False, repr=False)
    where: str = ""
    """The window as SQL (`` WHERE ...``) over ``relation + "_all"``, the unfiltered rows."""
    spark_where: str = ""
    """The same window in Spark SQL (for the Spark engine)."""

    def record_read(self, lake: Lake) -> None:
        """Record this set as an input (at its version) of the run the caller is in."""
        if self.handle is not None and self.version is not None:
            lake.read(self.handle, self.version)

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "table": self.table, "version": self.version,
                "training_id": self.training_id, "window": self.window}


def resolve(lake: Lake, con: duckdb.DuckDBPyConnection, spec: Any, view: str, *,
            since: TimeLike | None = None, until: TimeLike | None = None,
            time_column: str | None = None) -> Source:
    """Resolve a reference or current spec into a view named ``view`` in ``con``.

    Raises:
        SourceError: the spec is malformed, the window cannot be applied, ...
        TableNotFoundError, VersionNotFoundError: no such table or version.
    """
    source = _resolve(lake, con, spec, view + "_all")
    where = spark_where = ""
    if since is not None or until is not None:
        where, text, spark_where = _window(source, since, until, time_column)
        source = Source(source.label, view, source.schema, source.table, source.version, source.training_id,
                        source.features, text, source.handle)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {view}_all{where}")
    return Source(source.label, view, source.schema, source.table, source.version, source.training_id,
                  source.features, source.window, source.handle, where, spark_where)


def _resolve(lake: Lake, con: duckdb.DuckDBPyConnection, spec: Any, view: str) -> Source:
    if isinstance(spec, Table):
        return _table_source(con, spec, None, view)
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise SourceError("empty reference/current: name a table (gold.x, gold.x@3) or training:<id>")
        if text.startswith("training:"):
            return _training_source(lake, con, text.removeprefix("training:").strip(), view)
        name, at = _split_at(text)
        return _table_source(con, lake.existing(name), at, view)
    try:
        data = to_arrow(spec)
    except Exception:
        raise SourceError(f"cannot compare a {type(spec).__name__}: pass a table name (gold.x, gold.x@3), "
                          "training:<id>, a lake Table, or an Arrow, pandas or Polars frame") from None
    table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
    con.register(view + "_frame", table)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {view}_frame")
    return Source("frame", view, table.schema)


def _split_at(text: str) -> tuple[str, int | str | None]:
    """``gold.x@3`` -> (gold.x, 3); ``gold.x@2024-05-01`` -> (gold.x, '2024-05-01'); else no version."""
    name, sep, at = text.rpartition("@")
    if not sep:
        return text, None
    at = at.strip()
    if at.isdigit():
        return name.strip(), int(at)
    if _TIME_SUFFIX.match(at):
        return name.strip(), at
    raise SourceError(f"{text!r}: after @ comes a version number or an ISO time, e.g. {name}@3 "
                      f"or {name}@2024-05-01T00:00:00Z")


def _table_source(con: duckdb.DuckDBPyConnection, table: Table, at: int | str | None, view: str) -> Source:
    delta = table.delta(at) if isinstance(at, int) else table.delta(as_of=at) if at else table.delta()
    protocol.check(delta, protocol.DUCKDB, table.name)  # read through delta_scan
    version = int(delta.version())
    schema = pa.schema(delta.schema().to_arrow())
    # The Delta extension costs a few hundred ms to load: only connections that read tables pay for it.
    load_extensions(con, "delta")
    configure_storage(con, table.storage)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM delta_scan({literal(table.uri)}, "
                f"version => {version})")
    return Source(f"{table.name}@{version}", view, schema, table.name, version, handle=table)


def _training_source(lake: Lake, con: duckdb.DuckDBPyConnection, ref: str, view: str) -> Source:
    if not ref:
        raise SourceError("training: needs a saved training dataset's id or name, e.g. training:3f2a9c")
    info = lake.catalog.training_dataset(ref)
    name = training_table(info['name'])
    table = lake.existing(name)
    version = info.get("version")
    source = _table_source(con, table, int(version) if version is not None else None, view)
    label = f"training:{str(info['id'])[:8]} ({source.label})"
    return Source(label, view, source.schema, source.table, source.version, str(info["id"]),
                  tuple(str(f) for f in info.get("features") or ()), handle=table)


# -------------------------------------------------------------------- windows


def parse_time(value: TimeLike, now: dt.datetime | None = None) -> dt.datetime:
    """A point in time (UTC): a datetime (naive means UTC), a date, ISO text, ``now``, or a
    duration before now such as ``7d``, ``24h``, ``30m``.

    Raises:
        SourceError: the text is neither.
    """
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    text = str(value).strip()
    now = now or dt.datetime.now(dt.UTC)
    if text.lower() == "now":
        return now
    duration = _DURATION.match(text)
    if duration:
        return now - dt.timedelta(**{_UNITS[duration.group(2).lower()]: float(duration.group(1))})
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(f"{text!r} is not a time: use ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) "
                          "or a duration before now (7d, 24h, 30m)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _window(source: Source, since: TimeLike | None, until: TimeLike | None,
            time_column: str | None) -> tuple[str, str, str]:
    """The window as DuckDB SQL, as text, and as Spark SQL."""
    temporal = [f.name for f in source.schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
    if time_column is None:
        if len(temporal) != 1:
            found = f"its timestamp columns are {', '.join(temporal)}" if temporal else "it has no timestamp column"
            raise SourceError(f"a time window on {source.label} needs --time-column ({found})")
        time_column = temporal[0]
    if time_column not in source.schema.names:
        raise SourceError(f"time column {time_column!r} is not in {source.label} (columns: "
                          f"{', '.join(source.schema.names)})")
    dtype = source.schema.field(time_column).type
    if time_column not in temporal:
        raise SourceError(f"time column {time_column!r} of {source.label} is {dtype}, not a timestamp or date")
    bounds = {k: parse_time(v) for k, v in (("since", since), ("until", until)) if v is not None}
    if "since" in bounds and "until" in bounds and bounds["since"] >= bounds["until"]:
        raise SourceError(f"empty window: since ({bounds['since'].isoformat()}) is not before until "
                          f"({bounds['until'].isoformat()})")
    aware = pa.types.is_timestamp(dtype) and dtype.tz is not None
    conditions, spark = [], []
    for key, op in (("since", ">="), ("until", "<")):
        if key in bounds:
            when = bounds[key].astimezone(dt.UTC)
            naive = when.replace(tzinfo=None).isoformat(sep=" ")
            literal = f"TIMESTAMPTZ '{when.isoformat()}'" if aware else f"TIMESTAMP '{naive}'"
            conditions.append(f"{quote(time_column)} {op} {literal}")
            # Spark: TIMESTAMP is an instant (the offset says which), TIMESTAMP_NTZ a wall-clock time.
            at = f"TIMESTAMP '{naive}+00:00'" if aware else f"TIMESTAMP_NTZ '{naive}'"
            spark.append(f"{spark_quote(time_column)} {op} {at}")
    text = f"{time_column} in [{_iso(bounds.get('since'))}, {_iso(bounds.get('until'))})"
    return " WHERE " + " AND ".join(conditions), text, " WHERE " + " AND ".join(spark)


def _iso(when: dt.datetime | None) -> str:
    return "..." if when is None else when.isoformat().replace("+00:00", "Z")


# -------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Column:
    """A column to compare: its kind, its type on each side and what changed."""

    name: str
    kind: str
    """numeric, categorical or other (the reference's); ``missing`` when absent from the current set."""
    ref_type: str
    cur_type: str | None
    comparable: bool = True
    """False when the kinds differ (e.g. numeric -> string): only the null rate is compared."""


@dataclass(frozen=True)
class SchemaChanges:
    """Columns added to, removed from, or retyped in the current set, against the reference."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[tuple[str, str, str], ...] = ()
    """(column, reference type, current type)."""

    def to_dict(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed),
                "changed": [{"column": c, "reference": r, "current": t} for c, r, t in self.changed]}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def schema_changes(ref: pa.Schema, cur: pa.Schema) -> SchemaChanges:
    """Added, removed and retyped columns (storage details such as string views ignored)."""
    ref_types = {f.name: type_name(f.type) for f in ref}
    cur_types = {f.name: type_name(f.type) for f in cur}
    return SchemaChanges(
        added=tuple(n for n in cur.names if n not in ref_types),
        removed=tuple(n for n in ref.names if n not in cur_types),
        changed=tuple((n, ref_types[n], cur_types[n]) for n in ref.names
                      if n in cur_types and ref_types[n] != cur_types[n]),
    )


def plan_columns(ref: Source, cur: Source, columns: list[str] | None, time_column: str | None) -> list[Column]:
    """The columns to compare, in order.

    Explicit ``columns`` must exist in the reference. Otherwise: a training dataset's
    features, or every numeric and categorical column of the reference (not the time
    column).

    Raises:
        SourceError: an explicit column is not in the reference, or no compared
            column exists in the current set.
    """
    names = ref.schema.names
    if columns:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise SourceError(f"column(s) {', '.join(unknown)} not in the reference {ref.label} "
                              f"(columns: {', '.join(names)})")
        chosen = list(dict.fromkeys(columns))
    else:
        chosen = _feature_columns(ref.features or (), names)
        if not chosen:
            chosen = [n for n in names if n != time_column and kind_of(ref.schema.field(n).type) != OTHER]
    out = []
    for name in chosen:
        rtype = ref.schema.field(name).type
        if name not in cur.schema.names:
            out.append(Column(name, MISSING, type_name(rtype), None, comparable=False))
            continue
        ctype = cur.schema.field(name).type
        kind = kind_of(rtype)
        out.append(Column(name, kind, type_name(rtype), type_name(ctype), comparable=kind == kind_of(ctype)))
    if not any(c.kind != MISSING for c in out):
        raise SourceError(f"no common columns to compare: {ref.label} has {', '.join(chosen) or 'none'}, "
                          f"{cur.label} has {', '.join(cur.schema.names) or 'none'}")
    return out


def _feature_columns(features: tuple[str, ...], names: list[str]) -> list[str]:
    """Frame columns of training features (``view:feature`` is ``feature`` or ``view__feature``)."""
    out: list[str] = []
    for feature in features:
        view, _, short = feature.rpartition(":")
        for candidate in (feature, short, f"{view}__{short}" if view else ""):
            if candidate and candidate in names:
                if candidate not in out:
                    out.append(candidate)
                break
    return out


__all__ = ["CATEGORICAL", "MISSING", "NUMERIC", "OTHER", "Column", "SchemaChanges", "Source", "parse_time",
           "plan_columns", "resolve", "schema_changes"]
