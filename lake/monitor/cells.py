"""A numeric column of two sets as *cells*: the small summary every numeric metric is computed from.

Cells are disjoint value ranges in increasing order, each with the exact number of
reference and current values in it and the smallest and largest value seen there. Only
DuckDB reads rows; NaN and +-inf count as missing; integers and decimals are read as
DOUBLE (exact up to 2**53).

- **Exact** when affordable: at most ``exact_rows`` rows in both sets together, an integer
  column spanning at most ``bins`` values, or a column with few distinct values. Every
  distinct value is a cell, so every metric equals SciPy's on the same data.
- Otherwise **binned**, in one grouping scan per set: a value's cell is
  ``round(u(x))``, u mapping the range onto ``bins`` cells: linear, or
  ``t(x) = sign(y) * ln(1 + |y|)`` with ``y = (x - c) / s`` (linear around c, logarithmic
  in the tails: the shape of ``asinh`` at a fraction of its cost), whichever leaves the
  fewest heavy cells on a sample of about ``sample_rows`` values of each set (a value
  beyond the sampled range lands in an end cell, which records its true extremes);
  the exact count and range of each set come from the cells themselves (mean and
  standard deviation too, to within a cell's width).
  A cell holding more than ``tolerance`` of either set and more than one distinct value
  is split into 64 equal parts of the range of values it holds (a scan that joins only
  the rows of such cells), again up to ``refine_levels`` times, then grouped by exact value
  when those rows are few enough (``refine_rows``). Each split divides a cell's width by
  64 whatever the shape of the data (heavy tails, far modes, point masses), so cells end
  below the tolerance or as single values.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lake.duck import ident

if TYPE_CHECKING:
    import duckdb

_SPLIT = 64  # a power of two: floor(v * 64**k) nests exactly inside floor(v * 64**(k-1))
_FEW_VALUES = 4096  # a sample with at most this many distinct values (each seen often): group by value


@dataclass(frozen=True)
class Options:
    """How the statistics are computed (the defaults suit any size)."""

    bins: int = 65536
    """Cells of the binned pass (at most 65536 use DuckDB's array-indexed grouping)."""
    tolerance: float = 2e-4
    """Largest fraction of a set a multi-valued cell may hold before it is split (the KS error bound)."""
    exact_rows: int = 100_000
    """Rows in both sets together up to which every distinct value is its own cell."""
    sample_rows: int = 100_000
    """About how many values of each set the cell layout is chosen from (a sample of a larger set)."""
    refine_levels: int = 3
    """Times a heavy cell is split 64-fold before grouping its rows by exact value."""
    refine_rows: int = 2_000_000
    """At most this many rows are grouped by exact value in the last refinement."""
    psi_bins: int = 10
    """PSI bins for numeric columns (reference quantiles)."""
    psi_epsilon: float = 1e-4
    """Floor of the fractions in PSI (keeps empty bins finite)."""
    histogram_bins: int = 30
    """Bars of the numeric histograms in the report."""
    top_categories: int = 15
    """Categories shown (and kept in the JSON) per categorical column; the rest is ``(other)``."""


@dataclass(frozen=True)
class Profile:
    """One column of one set: rows, non-missing values and (numeric) exact moments."""

    rows: int
    count: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None

    @property
    def null_rate(self) -> float | None:
        return None if self.rows == 0 else (self.rows - self.count) / self.rows


@dataclass(frozen=True)
class Cells:
    """Disjoint value ranges in increasing order with the count of each set in each."""

    lo: np.ndarray
    hi: np.ndarray
    ref: np.ndarray
    cur: np.ndarray
    exact: bool
    """Every cell is a single value."""
    levels: int = 0
    """Refinement passes made (binned mode)."""

    def __len__(self) -> int:
        return len(self.lo)


quote = ident
"""A quoted SQL identifier."""


class Rows:
    """Where a report's rows are read and aggregated: here DuckDB relations of one connection.

    :class:`lake.monitor.spark_drift.SparkRows` runs the same aggregations on Spark's
    executors instead; only their small results (cells, counts per category) come back and
    are matched in :attr:`local`, a DuckDB connection of this process. The statistics are
    computed from those results the same way whichever engine read the rows.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.local = con
        """The connection both sides' aggregated results are matched in."""

    text = "VARCHAR"
    """The SQL name of the text type (categories are compared as text)."""

    def quote(self, name: str) -> str:
        """A quoted identifier in the engine's SQL."""
        return ident(name)

    def normalized(self, column: str) -> str:
        """A numeric column as the statistics read it: DOUBLE, non-finite values as missing."""
        q = self.quote(column)
        return f"CASE WHEN isfinite(CAST({q} AS DOUBLE)) THEN CAST({q} AS DOUBLE) END"

    def cell_key(self, u_sql: str, bins: int) -> str:
        """A cell number from ``u_sql`` (a DOUBLE in [0, bins - 1]), monotone in it."""
        # A rounding cast is monotone; USMALLINT keys let DuckDB group into an array instead of a hash table.
        return f"CAST({u_sql} AS USMALLINT)" if bins <= 65536 else f"CAST({u_sql} AS UINTEGER)"

    def sides(self, ref_sql: str, cur_sql: str) -> tuple[str, str]:
        """Queries of :attr:`local` giving the results of two aggregations (each side's)."""
        return ref_sql, cur_sql

    def values(self, source: str) -> np.ndarray:
        """The non-missing values ``x`` of a subquery (a sample: small)."""
        got = self.con.execute(f"SELECT x FROM {source} WHERE x IS NOT NULL").fetchnumpy()["x"]
        return np.asarray(got, dtype=np.float64)

    def row(self, sql: str) -> tuple[Any, ...] | None:
        """The first row of a query (None when there is none)."""
        return self.con.execute(sql).fetchone()

    def execute(self, sql: str) -> None:
        """Run a statement (a view over a set)."""
        self.con.execute(sql)

    def sample(self, relation: str, where: str, column: str, rows: int, target: int) -> tuple[str, bool]:
        """A subquery of about ``target`` values of a set's column as ``x`` (see :func:`sample_source`;
        ``relation + "_all"`` holds the unfiltered rows, ``where`` the window), and whether it samples."""
        source = sample_source(f"{relation}_all", where, column, rows, target)
        return source, "TABLESAMPLE" in source

    def register(self, name: str, table: pa.Table) -> None:
        """A small Arrow table (the cells being refined) as a relation the engine's queries can join."""
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.con.unregister(name)


def as_rows(con: duckdb.DuckDBPyConnection | Rows) -> Rows:
    """``con`` itself if it is :class:`Rows`, else DuckDB rows of that connection."""
    return con if isinstance(con, Rows) else Rows(con)


def sample_source(base: str, where: str, column: str, rows: int, target: int) -> str:
    """A subquery of about ``target`` values of a column (as ``x``): a sample of vectors of ``base``.

    Sampling happens at the scan, before the filter (``where``) and the normalization, so a
    sample costs a fraction of a full scan. Sets of fewer than ``2 * target`` rows are read whole.
    """
    sample = f" TABLESAMPLE {100 * target / rows:.6g}% (system, 7)" if rows > 2 * target else ""
    return f"(SELECT {normalized(column)} AS x FROM {base}{sample}{where})"


def normalized(column: str) -> str:
    """A numeric column as the statistics read it: DOUBLE, non-finite values as missing."""
    q = quote(column)
    return f"CASE WHEN isfinite(CAST({q} AS DOUBLE)) THEN CAST({q} AS DOUBLE) END"


def numeric_cells(con: duckdb.DuckDBPyConnection | Rows, ref: str, cur: str, column: str, rows: tuple[int, int], *,
                  integer: bool, options: Options, samples: tuple[str, str] | None = None,
                  sampled: bool | None = None) -> tuple[Cells, Profile, Profile]:
    """The cells of a numeric column in two relations, and each side's profile.

    Args:
        con: the DuckDB connection holding the relations, or the :class:`Rows` reading them.
        ref: the reference relation (numeric columns already normalized).
        cur: the current relation.
        column: the column.
        rows: rows of each relation.
        integer: the column holds integers on both sides.
        options: sizes and tolerances.
        samples: subqueries of each side's values for the cell layout (see :func:`sample_source`);
            default all values.
        sampled: whether ``samples`` are samples of a larger set (default: whether they use TABLESAMPLE).
    """
    rs = as_rows(con)
    q = rs.quote(column)
    if sum(rows) > options.exact_rows:
        if sampled is None:
            sampled = samples is not None and any("TABLESAMPLE" in sample for sample in samples)
        sources = samples or tuple(f"(SELECT {q} AS x FROM {rel})" for rel in (ref, cur))
        values = np.concatenate([rs.values(source) for source in sources])
        if sampled and not values.size:  # the sampled vectors held no value (a narrow window): read them all
            sampled = False
            values = np.concatenate([rs.values(f"(SELECT {q} AS x FROM {rel})") for rel in (ref, cur)])
        if values.size:
            lo, hi = float(values.min()), float(values.max())
            distinct = len(np.unique(values))
            few = distinct <= _FEW_VALUES and values.size >= 20 * distinct
            if lo < hi and not few and not (integer and hi - lo <= options.bins):
                key = rs.cell_key(_layout(values, lo, hi, sampled, options), options.bins)
                return _binned(rs, ref, cur, column, rows, key, options)
    got = _combine(rs, _side(rs, ref, column, "0 AS k0, x AS s"), _side(rs, cur, column, "0 AS k0, x AS s"))
    cells = Cells(got["lo"], got["hi"], got["nr"], got["nc"], exact=True)
    return cells, _exact_profile(cells.lo, cells.ref, rows[0]), _exact_profile(cells.lo, cells.cur, rows[1])


def _side(rs: Rows, relation: str, column: str, select: str, source: str = "", group: str = "1, 2") -> str:
    q = rs.quote(column)
    return (f"SELECT {select}, count(*) AS n, min(x) AS lo, max(x) AS hi FROM (SELECT {q} AS x "
            f"FROM {relation} WHERE {q} IS NOT NULL) t{source} GROUP BY {group}")


def _combine(rs: Rows, ref_sql: str, cur_sql: str, sides: bool = False) -> dict[str, np.ndarray]:
    """Both sides' cells matched by key (k0, s), in value order (``sides``: each side's extremes too)."""
    extra = "".join(f", coalesce({t}.{c}, {d}) AS {c}_{t}" for t in "rc" for c, d in
                    (("lo", "'inf'::DOUBLE"), ("hi", "'-inf'::DOUBLE"))) if sides else ""
    ref_sql, cur_sql = rs.sides(ref_sql, cur_sql)
    sql = (f"WITH r AS ({ref_sql}), c AS ({cur_sql}) "
           "SELECT coalesce(r.k0, c.k0) AS k0, coalesce(r.s, c.s) AS s, coalesce(r.n, 0) AS nr, "
           f"coalesce(c.n, 0) AS nc, least(r.lo, c.lo) AS lo, greatest(r.hi, c.hi) AS hi{extra} "
           "FROM r FULL OUTER JOIN c ON r.k0 = c.k0 AND r.s = c.s ORDER BY lo")
    got = rs.local.execute(sql).fetchnumpy()
    out = {name: np.asarray(got[name], dtype=np.float64) for name in got if name not in ("k0", "nr", "nc")}
    out.update({name: np.asarray(got[name], dtype=np.int64) for name in ("k0", "nr", "nc")})
    return out


def _exact_profile(values: np.ndarray, counts: np.ndarray, rows: int) -> Profile:
    n = int(counts.sum())
    if n == 0:
        return Profile(rows, 0)
    present = values[counts > 0]
    mean = float(np.sum(values * counts) / n)
    std = math.sqrt(float(np.sum(counts * (values - mean) ** 2)) / (n - 1)) if n > 1 else None
    return Profile(rows, n, float(present[0]), float(present[-1]), mean, std)


def _binned_profile(got: dict[str, np.ndarray], side: str, rows: int) -> Profile:
    """Exact count and range; mean and standard deviation from the cell middles (to within a cell width)."""
    counts = got["nr" if side == "r" else "nc"]
    n = int(counts.sum())
    if n == 0:
        return Profile(rows, 0)
    middle = (got["lo"] + got["hi"]) / 2
    mean = float(np.sum(counts * middle) / n)
    std = math.sqrt(float(np.sum(counts * (middle - mean) ** 2)) / (n - 1)) if n > 1 else None
    return Profile(rows, n, float(got[f"lo_{side}"].min()), float(got[f"hi_{side}"].max()), mean, std)


def _layout(values: np.ndarray, lo: float, hi: float, sampled: bool, options: Options) -> str:
    """SQL for a value's position in [0, bins - 1] (its first cell once made a whole number,
    :meth:`Rows.cell_key`): the layout that leaves the fewest heavy cells on the sample.

    Linear over the range (the cheapest to compute) unless a logarithmic-tailed layout
    ``sign(y) * ln(1 + |y|)``, ``y = (x - c) / s`` leaves clearly fewer values in cells above
    the tolerance: c the median or the mean (symmetric tails), or an end of the range
    (relative precision for one-sided, skewed data such as amounts), s a fraction of the spread.
    """
    lo, hi = float(lo), float(hi)  # numpy scalars would print as np.float64(...) in the SQL
    span = hi - lo
    if not math.isfinite(span):
        span = max(abs(lo), abs(hi))
    if len(values) > 50_000:  # enough to see which cells would be heavy, at a few ms per candidate
        values = values[:: len(values) // 50_000 + 1]
    values = np.sort(values)  # every layout is monotone: the cells of sorted values come in order
    q1, median, q3 = (float(v) for v in np.quantile(values, [0.25, 0.5, 0.75]))
    best: tuple[float, str] | None = None
    candidates = [(None, 0.0), (median, (q3 - q1) / 4), (float(values.mean()), float(values.std()) / 2),
                  (lo, (q1 - lo) / 16), (hi, (hi - q3) / 16)]  # the last two: log scales from either end
    for center, spread in candidates:
        if center is None:
            t: Any = None
            t0, t1 = lo, hi
            y = "x"
        else:
            scale = max(spread, span * 1e-9, 5e-324)

            def t(v: Any, c: float = center, s: float = scale) -> Any:
                return np.sign(v - c) * np.log1p(np.abs(v - c) / s)

            t0, t1 = float(t(lo)), float(t(hi))
            y = f"((x - {center!r}) / {scale!r})"
        if sampled:  # room beyond the sampled range, which the full data may exceed
            t0, t1 = t0 - 0.05 * (t1 - t0), t1 + 0.05 * (t1 - t0)
        m = (options.bins - 1) / (t1 - t0)
        u = ((values if t is None else t(values)) - t0) * m
        sql = f"(x - {t0!r}) * {m!r}" if t is None else f"(sign({y}) * ln(1 + abs({y})) - {t0!r}) * {m!r}"
        heavy = _heavy_share(np.clip(np.rint(u), 0, options.bins - 1), values, options.tolerance)
        if best is None or heavy < best[0] - 0.01:
            best = (heavy, sql)
    assert best is not None
    # Clamped: values beyond a sample's range go to the end cells (which record their true extremes).
    return f"least(greatest({best[1]}, 0.0), {options.bins - 1.0!r})"


def _heavy_share(keys: np.ndarray, values: np.ndarray, tolerance: float) -> float:
    """The share of (sorted) values in cells that hold more than ``tolerance`` of them and more than one value."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)] - 1
    counts = ends - starts + 1
    heavy = (counts > tolerance * len(keys)) & (values[ends] > values[starts])
    return float(counts[heavy].sum()) / len(keys)


def _binned(rs: Rows, ref: str, cur: str, column: str, rows: tuple[int, int], key: str,
            options: Options) -> tuple[Cells, Profile, Profile]:
    select = f"{key} AS k0, 0 AS s"
    got = _combine(rs, _side(rs, ref, column, select, group="1"), _side(rs, cur, column, select, group="1"),
                   sides=True)
    profiles = (_binned_profile(got, "r", rows[0]), _binned_profile(got, "c", rows[1]))
    got = {k: got[k] for k in ("k0", "s", "nr", "nc", "lo", "hi")}
    totals = (max(profiles[0].count, 1), max(profiles[1].count, 1))
    tag = f"{abs(hash((column, ref, cur))):x}"
    parents, heavy_name = f"_lake_drift_parents_{tag}", f"_lake_drift_heavy_{tag}"
    level = 0
    try:
        while True:
            frac = np.maximum(got["nr"] / totals[0], got["nc"] / totals[1])
            heavy = (got["hi"] > got["lo"]) & (frac > options.tolerance)
            if not heavy.any():
                break
            exact = level >= options.refine_levels
            if exact and int((got["nr"] + got["nc"])[heavy].sum()) > options.refine_rows:
                break
            if level == 0:  # heavy cells are split linearly over the range of values they hold
                width = got["hi"][heavy] - got["lo"][heavy]
                rs.register(parents, pa.table({"k0": got["k0"][heavy], "lo": got["lo"][heavy],
                                                "inv": np.minimum(1.0 / width, 1e300)}))
            else:
                rs.register(heavy_name, pa.table({"k0": got["k0"][heavy], "s": got["s"][heavy].astype(np.int64)}))
            fine = _combine(rs, _refine(rs, ref, column, key, level, exact, parents, heavy_name),
                            _refine(rs, cur, column, key, level, exact, parents, heavy_name))
            merged = {k: np.concatenate([v[~heavy], fine[k]]) for k, v in got.items()}
            order = np.argsort(merged["lo"], kind="stable")
            got = {k: v[order] for k, v in merged.items()}
            level += 1
            if exact:
                break
    finally:
        for name in (parents, heavy_name):
            rs.unregister(name)
    cells = Cells(got["lo"], got["hi"], got["nr"], got["nc"], exact=bool(np.all(got["hi"] == got["lo"])), levels=level)
    return cells, *profiles


def _refine(rs: Rows, relation: str, column: str, key: str, level: int, exact: bool, parents: str, heavy: str) -> str:
    """One side's cells inside the heavy cells of ``level``: split 64-fold, or by exact value."""
    def sub(depth: int) -> str:
        scale = float(_SPLIT ** depth)
        return f"CAST(least(floor((x - p.lo) * p.inv * {scale!r}), {scale - 1!r}) AS BIGINT)"

    source = f" JOIN {parents} p ON p.k0 = {key}"
    if level > 0:
        source += f" JOIN {heavy} h ON h.k0 = p.k0 AND h.s = {sub(level)}"
    select = "p.k0 AS k0, " + ("x AS s" if exact else f"{sub(level + 1)} AS s")
    return _side(rs, relation, column, select, source)
