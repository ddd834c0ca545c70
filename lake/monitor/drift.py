"""Drift statistics between a reference and a current set.

Only DuckDB reads rows; what comes back is small (cells of a numeric column, counts per
category) and numpy turns it into metrics, whatever the size of the data.

**Numeric columns**: :mod:`lake.monitor.cells` summarises both sets as cells (exact
when affordable, binned otherwise). From them:

- KS: computed exactly at every cell edge (a value the data attains, so a lower bound);
  inside a cell the true statistic can exceed it by at most that cell's larger fraction:
  ``ks <= true KS <= ks + ks_error``, and ``ks_error <= tolerance`` once cells are refined.
- Wasserstein-1: exact between cells; inside a cell both CDFs are interpolated
  linearly, and the true integral lies in a bracket computed from the cell's width and
  fractions: ``|wasserstein - true| <= wasserstein_error``.
- PSI: exact for the bins it uses, whose right-closed edges are cell tops where the
  reference's cumulative fraction first reaches each decile (``psi_edges``); each bin
  holds 10% of the reference give or take one cell's fraction. In exact mode the edges
  are the reference's deciles (numpy's ``inverted_cdf`` quantiles).

All bounds are zero in exact mode. **Categorical columns** (strings, booleans) are
grouped by value, exactly; missing values are not a category (they are in the null
rate). PSI floors fractions at ``psi_epsilon`` (1e-4) so empty bins stay finite.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lake.monitor.cells import (
    Cells,
    Options,
    Profile,
    Rows,
    as_rows,
    normalized,
    numeric_cells,
    quote,
    sample_source,
)

if TYPE_CHECKING:
    import duckdb

NUMERIC, CATEGORICAL, OTHER = "numeric", "categorical", "other"
__all__ = ["CATEGORICAL", "NUMERIC", "OTHER", "Cells", "Options", "Profile", "Rows", "as_rows", "numeric_cells",
           "quote", "sample_source"]


def kind_of(dtype: pa.DataType) -> str:
    """``numeric``, ``categorical`` or ``other`` (temporal, binary, nested: null rate only)."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_boolean(dtype) or pa.types.is_string(dtype) or pa.types.is_large_string(dtype) \
            or pa.types.is_string_view(dtype):
        return CATEGORICAL
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return NUMERIC
    return OTHER


def type_name(dtype: pa.DataType) -> str:
    """A type's name with storage details dropped (string views, time units), for comparisons."""
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return "binary"
    if pa.types.is_timestamp(dtype):
        return "timestamp" + (" with time zone" if dtype.tz else "")
    return str(dtype)


def normalized_column(name: str, kind: str, rows: Rows | None = None) -> str:
    """The select-list item that reads a column the way the statistics see it (in ``rows``' SQL)."""
    if rows is None:
        return f"{normalized(name)} AS {quote(name)}" if kind == NUMERIC else quote(name)
    if kind == NUMERIC:
        return f"{rows.normalized(name)} AS {rows.quote(name)}"
    return rows.quote(name)  # categories are grouped as they are and cast to text afterwards (cheaper)


def counts(con: duckdb.DuckDBPyConnection | Rows, relation: str, columns: list[str]) -> tuple[int, dict[str, int]]:
    """Rows of a relation and non-missing values of some columns (cheap: no values decoded)."""
    rs = as_rows(con)
    items = ["count(*)", *(f"count({rs.quote(c)})" for c in columns)]
    row = rs.row(f"SELECT {', '.join(items)} FROM {relation}")
    assert row is not None
    return int(row[0]), {c: int(v) for c, v in zip(columns, row[1:], strict=True)}


# ------------------------------------------------------------------- metrics


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float = 1e-4) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))`` over bins, fractions floored at ``epsilon``."""
    p = np.maximum(ref_counts / ref_counts.sum(), epsilon)
    q = np.maximum(cur_counts / cur_counts.sum(), epsilon)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 (the square root of the divergence; 0 to 1)."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / m[mask])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2 / math.log(2)))


def chi2_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Pearson's chi-squared test of the 2 x k contingency table (Yates' correction when k = 2).

    Returns:
        (statistic, p-value, degrees of freedom), as ``scipy.stats.chi2_contingency``.
    """
    # heavy: scipy is imported only when a categorical column is compared
    from scipy.special import chdtrc

    observed = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    dof = observed.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0, 0
    if dof == 1:
        diff = expected - observed
        observed = observed + np.sign(diff) * np.minimum(0.5, np.abs(diff))
    stat = float(np.sum((observed - expected) ** 2 / expected))
    return stat, float(chdtrc(dof, stat)), dof


def numeric_psi(cells: Cells, options: Options) -> tuple[float, list[float]]:
    """PSI over reference-decile bins of the cells, and the bins' right-closed edges."""
    n_r = int(cells.ref.sum())
    edges, bins = _psi_bins(cells, np.cumsum(cells.ref), n_r, options.psi_bins)
    counts_r = np.bincount(bins, weights=cells.ref, minlength=len(edges) + 1)
    counts_c = np.bincount(bins, weights=cells.cur, minlength=len(edges) + 1)
    return psi(counts_r, counts_c, options.psi_epsilon), [float(e) for e in edges]


def _cdfs(cells: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Each set's cumulative fraction at every cell edge (0 first)."""
    g_r = np.concatenate([[0.0], np.cumsum(cells.ref) / int(cells.ref.sum())])
    g_c = np.concatenate([[0.0], np.cumsum(cells.cur) / int(cells.cur.sum())])
    return g_r, g_c


def ks_statistic(cells: Cells) -> tuple[float, float]:
    """The two-sample KS statistic at the cell edges, and how much more it can be inside a cell."""
    g_r, g_c = _cdfs(cells)
    ks = float(np.abs(g_r[1:] - g_c[1:]).max())
    wide = cells.hi > cells.lo
    upper = np.maximum(g_r[1:] - g_c[:-1], g_c[1:] - g_r[:-1])
    ks_upper = max(ks, float(upper[wide].max())) if wide.any() else ks
    return ks, ks_upper - ks


def wasserstein(cells: Cells) -> tuple[float, float]:
    """Wasserstein-1 distance (CDFs interpolated inside cells) and the bound on its error."""
    lo, hi = cells.lo, cells.hi
    g_r, g_c = _cdfs(cells)
    d0, d1 = g_r[:-1] - g_c[:-1], g_r[1:] - g_c[1:]
    wide = hi > lo
    upper = np.maximum(g_r[1:] - g_c[:-1], g_c[1:] - g_r[:-1])
    lower = np.maximum(0.0, np.maximum(g_r[:-1] - g_c[1:], g_c[:-1] - g_r[1:]))
    gaps = float(np.sum(np.abs(d1[:-1]) * (lo[1:] - hi[:-1])))
    width = np.where(wide, hi - lo, 0.0)
    crossing = d0 * d1 < 0
    denominator = np.where(crossing, np.abs(d1 - d0), 1.0)
    inside = np.where(crossing, width * (d0 ** 2 + d1 ** 2) / (2 * denominator), width * np.abs(d0 + d1) / 2)
    w = gaps + float(inside.sum())
    w_lo, w_hi = gaps + float(np.sum(width * lower)), gaps + float(np.sum(width * upper))
    return w, max(w - w_lo, w_hi - w, 0.0)


def _psi_bins(cells: Cells, cum_r: np.ndarray, n_r: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-closed PSI edges (cell tops where the reference reaches k/count) and each cell's bin."""
    # Integer arithmetic: the first cell whose cumulative count reaches k * n / count.
    cuts = np.searchsorted(cum_r * count, np.arange(1, count) * n_r, side="left")
    cuts = np.unique(cuts[cuts < len(cells) - 1])
    bins = np.searchsorted(cuts, np.arange(len(cells)), side="left")
    return cells.hi[cuts], bins


def quantile(cells: Cells, counts: np.ndarray, q: float) -> float | None:
    """The ``inverted_cdf`` quantile of one set (to within a cell in binned mode)."""
    total = int(counts.sum())
    if total == 0:
        return None
    i = int(np.searchsorted(np.cumsum(counts), math.ceil(q * total - 1e-9), side="left"))
    return float(cells.hi[min(i, len(cells) - 1)])


def numeric_histogram(cells: Cells, options: Options) -> dict[str, Any]:
    """Reference and current fractions on a common grid (few distinct values: one bar each)."""
    n_r, n_c = max(int(cells.ref.sum()), 1), max(int(cells.cur.sum()), 1)
    if cells.exact and len(cells) <= 2 * options.histogram_bins:
        return {"type": "values", "values": [float(v) for v in cells.lo],
                "ref": (cells.ref / n_r).tolist(), "cur": (cells.cur / n_c).tolist()}
    both = np.cumsum(cells.ref / n_r + cells.cur / n_c) / 2
    a = float(cells.lo[min(int(np.searchsorted(both, 0.005)), len(cells) - 1)])
    b = float(cells.hi[min(int(np.searchsorted(both, 0.995)), len(cells) - 1)])
    if not b > a:
        a, b = float(cells.lo[0]), float(cells.hi[-1])
    edges = np.linspace(a, b, options.histogram_bins + 1)
    middle = (cells.lo + cells.hi) / 2
    idx = np.clip(np.searchsorted(edges, middle, side="right") - 1, 0, options.histogram_bins - 1)
    return {"type": "bins", "edges": edges.tolist(),
            "ref": (np.bincount(idx, weights=cells.ref, minlength=options.histogram_bins) / n_r).tolist(),
            "cur": (np.bincount(idx, weights=cells.cur, minlength=options.histogram_bins) / n_c).tolist(),
            "clipped": bool(a > cells.lo[0] or b < cells.hi[-1])}


def category_counts(con: duckdb.DuckDBPyConnection | Rows, ref: str, cur: str,
                    column: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every category of either set with its count in each, most frequent first."""
    rs = as_rows(con)
    q = rs.quote(column)

    def side(relation: str) -> str:
        return (f"SELECT CAST(v AS {rs.text}) AS v, n FROM (SELECT v, count(*) AS n FROM (SELECT {q} AS v "
                f"FROM {relation}) a WHERE v IS NOT NULL GROUP BY 1) b")

    r, c = rs.sides(side(ref), side(cur))
    got = rs.local.execute(
        f"WITH r AS ({r}), c AS ({c}) SELECT coalesce(r.v, c.v) AS v, coalesce(r.n, 0) AS nr, "
        "coalesce(c.n, 0) AS nc FROM r FULL OUTER JOIN c ON r.v = c.v ORDER BY nr + nc DESC, v").fetchnumpy()
    return [str(v) for v in got["v"]], np.asarray(got["nr"], dtype=np.int64), np.asarray(got["nc"], dtype=np.int64)


def category_changes(values: list[str], ref: np.ndarray, cur: np.ndarray) -> dict[str, Any]:
    """Categories only one set has: how many, and up to five examples of each."""
    new = [v for v, r in zip(values, ref, strict=True) if r == 0]
    gone = [v for v, c in zip(values, cur, strict=True) if c == 0]
    return {"new_categories": len(new), "new_examples": new[:5], "missing_categories": len(gone),
            "missing_examples": gone[:5]}


def category_histogram(values: list[str], ref: np.ndarray, cur: np.ndarray, options: Options) -> dict[str, Any]:
    """The most frequent categories (and ``(other)``) with each set's fractions."""
    n_r, n_c = max(int(ref.sum()), 1), max(int(cur.sum()), 1)
    top = options.top_categories
    shown, fr, fc = values[:top], (ref[:top] / n_r).tolist(), (cur[:top] / n_c).tolist()
    if len(values) > top:
        shown = [*shown, "(other)"]
        fr.append(float(ref[top:].sum() / n_r))
        fc.append(float(cur[top:].sum() / n_c))
    return {"type": "categories", "values": shown, "ref": fr, "cur": fc}
