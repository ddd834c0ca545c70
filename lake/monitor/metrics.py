"""The drift metrics, each registered once: name, computation, default threshold, presentation.

A :class:`Metric` says everything the rest of the monitor needs to know about it: how it
is computed from a column's summary (:class:`Inputs`), which value its threshold
applies to and in which direction, its default :class:`~lake.monitor.levels.Level`, and
how it shows (a column of the CLI and HTML summaries, the HTML notes, the report
summary's top features). :class:`~lake.monitor.thresholds.Thresholds`, the report, its
JSON and HTML, and ``lake monitor drift`` all read :data:`METRICS`; nothing else names a
metric. Adding one is one :meth:`MetricRegistry.register` call::

    METRICS.register(Metric("mean_shift", lambda x: {"mean_shift": ...}, Level(0.5, 1.0),
                            doc="Shift of the mean in reference standard deviations"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lake.errors import MonitorError
from lake.monitor import drift as stats
from lake.monitor.cells import Cells, Options, Profile
from lake.monitor.levels import Level

__all__ = ["METRICS", "Categories", "Inputs", "Metric", "MetricRegistry"]


@dataclass(frozen=True)
class Categories:
    """Every category of either set (most frequent first) with its count in each."""

    values: list[str]
    ref: np.ndarray
    cur: np.ndarray


@dataclass(frozen=True)
class Inputs:
    """What a metric is computed from: one column of both sets, summarised."""

    kind: str
    """``numeric``, ``categorical`` or ``other`` (not comparable: null rate only)."""
    reference: Profile
    current: Profile
    options: Options
    cells: Cells | None = None
    """A numeric column with values in both sets: its cells (see :mod:`lake.monitor.cells`)."""
    categories: Categories | None = None
    """A categorical column with values in both sets: its category counts."""
    ref_distinct: int | None = None
    """Distinct values of the reference (``None`` when not counted exactly)."""
    cur_distinct: int | None = None


Compute = Callable[[Inputs], Mapping[str, Any] | None]
"""``compute(inputs) -> {key: value}`` merged into a feature's metrics; ``None`` or ``{}`` when it does not apply."""


@dataclass(frozen=True)
class Metric:
    """One drift metric, registered once in :data:`METRICS`."""

    name: str
    """The threshold's name (``--threshold NAME=...``, ``Thresholds().NAME``)."""
    compute: Compute
    """Its values for one column: the thresholded value under :attr:`value_key`, and any companions."""
    default: Level = field(default_factory=Level)
    """The default warn and drift levels (``Level()``: off unless set)."""
    doc: str = ""
    """One line for ``lake monitor metrics`` and the docs."""
    key: str | None = None
    """The key of the thresholded value in a feature's metrics (default: :attr:`name`)."""
    absolute: bool = False
    """Threshold the absolute value (a change that may be negative)."""
    lower_is_worse: bool = False
    """Small values signal drift (p-values): a value at or below a level trips it."""
    label: str | None = None
    """Header of its column in the CLI summary table (``None``: no column)."""
    html_label: str | None = None
    """Header of its column in the HTML summary table, as HTML (``None``: no column)."""
    shown: str | None = None
    """The key shown in the summary columns (default: :attr:`value_key`)."""
    fmt: str | None = None
    """Format spec of the CLI column (default: 3 significant digits)."""
    top: bool = False
    """Listed with the worst features in the report summary (catalog listing, OpenLineage facet)."""
    note: str = ""
    """How it is computed, as HTML, for the notes under the HTML report."""

    @property
    def value_key(self) -> str:
        return self.key or self.name

    @property
    def column_key(self) -> str:
        return self.shown or self.value_key

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        """The value its threshold applies to, from a feature's metrics (``None`` when absent)."""
        found = metrics.get(self.value_key)
        if found is None:
            return None
        return abs(found) if self.absolute else found  # type: ignore[no-any-return]


class MetricRegistry:
    """The registered metrics, in registration order (the order of thresholds and columns)."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: Metric) -> Metric:
        """Add a metric; returns it.

        Raises:
            MonitorError: a metric of that name is already registered.
        """
        if metric.name in self._metrics:
            raise MonitorError(f"a drift metric named {metric.name!r} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def unregister(self, name: str) -> Metric:
        """Remove a metric (tests and plug-ins that registered one); returns it."""
        return self._metrics.pop(name)

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def __getitem__(self, name: str) -> Metric:
        return self._metrics[name]

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._metrics.values()))

    def __len__(self) -> int:
        return len(self._metrics)

    def names(self) -> list[str]:
        return list(self._metrics)

    def compute(self, inputs: Inputs) -> dict[str, Any]:
        """Every metric's values for one column, in registration order."""
        out: dict[str, Any] = {}
        for metric in self:
            out.update(metric.compute(inputs) or {})
        return out


METRICS = MetricRegistry()
"""The drift metrics every report computes."""


# --------------------------------------------------------------------------- the built-in metrics


def _psi(x: Inputs) -> dict[str, Any] | None:
    if x.cells is not None:
        value, edges = stats.numeric_psi(x.cells, x.options)
        return {"psi": value, "psi_edges": edges}
    if x.categories is not None:
        return {"psi": stats.psi(x.categories.ref, x.categories.cur, x.options.psi_epsilon)}
    return None


def _ks(x: Inputs) -> dict[str, Any] | None:
    if x.cells is None:
        return None
    value, error = stats.ks_statistic(x.cells)
    return {"ks": value, "ks_error": error}


def _js(x: Inputs) -> dict[str, Any] | None:
    return None if x.categories is None else {"js": stats.js_distance(x.categories.ref, x.categories.cur)}


def _null_rate(x: Inputs) -> dict[str, Any] | None:
    ref, cur = x.reference.null_rate, x.current.null_rate
    return None if ref is None or cur is None else {"null_rate_change": cur - ref}


def _wasserstein(x: Inputs) -> dict[str, Any] | None:
    if x.cells is None:
        return None
    value, error = stats.wasserstein(x.cells)
    std = x.reference.std
    return {"wasserstein": value, "wasserstein_error": error, "wasserstein_norm": value / std if std else None}


def _chi2(x: Inputs) -> dict[str, Any] | None:
    if x.categories is None:
        return None
    stat, p_value, dof = stats.chi2_test(x.categories.ref, x.categories.cur)
    return {"chi2": stat, "chi2_p": p_value, "chi2_dof": dof}


def _cardinality(x: Inputs) -> dict[str, Any] | None:
    if not x.ref_distinct or x.cur_distinct is None:
        return None
    return {"cardinality_change": x.cur_distinct / x.ref_distinct - 1}


METRICS.register(Metric(
    "psi", _psi, Level(0.1, 0.25), label="psi", html_label="PSI", top=True,
    doc="Population stability index (numeric: reference deciles; categorical: categories).",
    note="PSI over reference deciles (numeric) or categories, fractions floored at 1e-4"))
METRICS.register(Metric(
    "ks", _ks, Level(0.1, 0.2), label="ks", html_label="KS", top=True,
    doc="Two-sample Kolmogorov-Smirnov statistic (numeric columns).",
    note="KS: two-sample Kolmogorov-Smirnov statistic (<code>ks_error</code> bounds its distance from the "
         "exact value on large binned columns)"))
METRICS.register(Metric(
    "js", _js, Level(0.1, 0.2), label="js", html_label="JS", top=True,
    doc="Jensen-Shannon distance, base 2, in [0, 1] (categorical columns).",
    note="JS: Jensen-Shannon distance, base 2"))
METRICS.register(Metric(
    "null_rate", _null_rate, Level(0.05, 0.1), key="null_rate_change", absolute=True, label="null Δ",
    fmt="+.3f", doc="Absolute change of the fraction of missing values (every column).",
    note="null rate: NaN and infinities count as missing"))
METRICS.register(Metric(
    "wasserstein_norm", _wasserstein, shown="wasserstein", label="wasserstein", html_label="Wasserstein",
    doc="Wasserstein-1 distance divided by the reference standard deviation (numeric).",
    note="Wasserstein: W1 in the column's units (<code>wasserstein_norm</code>: divided by the reference "
         "standard deviation; <code>wasserstein_error</code> bounds its distance from the exact value)"))
METRICS.register(Metric(
    "chi2_p", _chi2, lower_is_worse=True, label="chi2_p", html_label="&chi;&sup2; p",
    doc="Chi-squared test p-value (categorical); small is worse. Off by default: on large samples any tiny "
        "difference is significant.",
    note="&chi;&sup2;: Pearson's test on the 2 x k table (Yates' correction for 2 categories)"))
METRICS.register(Metric(
    "cardinality", _cardinality, key="cardinality_change", absolute=True,
    doc="Relative change of the number of distinct values, |cur / ref - 1|.",
    note="cardinality: relative change of the number of distinct values"))
