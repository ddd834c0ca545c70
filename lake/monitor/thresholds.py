"""Per-metric thresholds that turn drift metrics into a status: ok, warn or drift.

Each metric has a ``warn`` and a ``drift`` level (either may be off). For most metrics
a value at or above the level trips it; for ``chi2_p`` (a p-value) a value at or
below does. Defaults: PSI 0.1 / 0.25, KS 0.1 / 0.2, Jensen-Shannon distance 0.1 / 0.2,
absolute null-rate change 0.05 / 0.1; the scale-free Wasserstein distance (in
reference standard deviations), the chi-squared p-value and the relative change of the
number of distinct values are off unless set.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lake.monitor.errors import ThresholdError

OK, WARN, DRIFT = "ok", "warn", "drift"
STATUSES = (OK, WARN, DRIFT)
_RANK = {OK: 0, WARN: 1, DRIFT: 2}

LOWER_IS_WORSE = frozenset({"chi2_p"})
"""Metrics whose small values signal drift (p-values)."""


def worst(statuses: Sequence[str] | Any) -> str:
    """The most severe of some statuses (``ok`` when there are none)."""
    return max(statuses, key=_RANK.__getitem__, default=OK)


def at_least(status: str, level: str) -> bool:
    """Whether ``status`` is as severe as ``level`` (``drift`` is at least ``warn``)."""
    if level not in _RANK:
        raise ThresholdError(f"unknown status {level!r}: use one of {', '.join(STATUSES)}")
    return _RANK[status] >= _RANK[level]


@dataclass(frozen=True)
class Level:
    """The two trip points of one metric; ``None`` switches a level off."""

    warn: float | None = None
    drift: float | None = None

    def status(self, value: float | None, lower_is_worse: bool = False) -> str:
        """The status a metric value earns (``ok`` for a missing value)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return OK
        for level, name in ((self.drift, DRIFT), (self.warn, WARN)):
            if level is not None and (value <= level if lower_is_worse else value >= level):
                return name
        return OK

    def as_text(self) -> str:
        return f"{_fmt(self.warn)}:{_fmt(self.drift)}"


def _fmt(value: float | None) -> str:
    return "off" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Thresholds:
    """The levels for every metric (defaults from the monitoring issue; override any).

    Example:
        >>> Thresholds().override({"psi": 0.2, "ks": (0.05, 0.15), "chi2_p": 0.01})
    """

    psi: Level = Level(0.1, 0.25)
    """Population stability index (numeric: reference deciles; categorical: categories)."""
    ks: Level = Level(0.1, 0.2)
    """Two-sample Kolmogorov-Smirnov statistic (numeric columns)."""
    js: Level = Level(0.1, 0.2)
    """Jensen-Shannon distance, base 2, in [0, 1] (categorical columns)."""
    null_rate: Level = Level(0.05, 0.1)
    """Absolute change of the fraction of missing values (every column)."""
    wasserstein_norm: Level = Level()
    """Wasserstein-1 distance divided by the reference standard deviation (numeric)."""
    chi2_p: Level = Level()
    """Chi-squared test p-value (categorical); small is worse. Off by default: on large
    samples any tiny difference is significant."""
    cardinality: Level = Level()
    """Relative change of the number of distinct values, ``|cur / ref - 1|``."""

    @classmethod
    def metrics(cls) -> list[str]:
        """The metric names thresholds can be set for."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def coerce(cls, value: Thresholds | Mapping[str, Any] | Sequence[str] | None) -> Thresholds:
        """Thresholds from an instance, a mapping (see :meth:`override`) or CLI strings (see :meth:`parse`)."""
        if value is None:
            return cls()
        if isinstance(value, Thresholds):
            return value
        if isinstance(value, Mapping):
            return cls().override(value)
        if isinstance(value, str):
            return cls.parse([value])
        return cls.parse(list(value))

    def override(self, values: Mapping[str, Any]) -> Thresholds:
        """A copy with some levels replaced.

        Args:
            values: ``{metric: value}`` where value is a number (the drift level; the warn
                level is kept, lowered to it if needed), a ``(warn, drift)`` pair, a
                :class:`Level`, ``"WARN:DRIFT"`` text, or ``None``/``"off"`` to switch the
                metric off. ``"metric.warn"`` / ``"metric.drift"`` keys set one level.

        Raises:
            ThresholdError: unknown metric, non-numeric or negative value, or levels in
                the wrong order.
        """
        current = {name: getattr(self, name) for name in self.metrics()}
        for key, raw in values.items():
            metric, _, which = str(key).strip().partition(".")
            if metric not in current:
                raise ThresholdError(f"unknown threshold {metric!r}: use one of {', '.join(self.metrics())}")
            current[metric] = _apply(metric, which, raw, current[metric])
        return Thresholds(**current)

    @classmethod
    def parse(cls, items: Sequence[str]) -> Thresholds:
        """Thresholds from command-line items: ``psi=0.2``, ``ks=0.05:0.15``, ``js.warn=0.05``, ``chi2_p=off``.

        Raises:
            ThresholdError: an item is not ``NAME=VALUE`` or its value is bad.
        """
        values: dict[str, Any] = {}
        for item in items:
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ThresholdError(f"bad threshold {item!r}: write NAME=VALUE, e.g. psi=0.2 or ks=0.05:0.1 "
                                     f"(names: {', '.join(cls.metrics())})")
            values[name.strip()] = value.strip()
        return cls().override(values)

    def status(self, metric: str, value: float | None) -> str:
        """The status of one metric value."""
        return getattr(self, metric).status(value, metric in LOWER_IS_WORSE)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        return {name: {"warn": getattr(self, name).warn, "drift": getattr(self, name).drift}
                for name in self.metrics()}


def _number(metric: str, raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("off", "none", "")):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ThresholdError(f"threshold {metric}: {raw!r} is not a number (or 'off')") from None
    if math.isnan(value) or value < 0:
        raise ThresholdError(f"threshold {metric}: {raw!r} must be a number >= 0")
    if metric in LOWER_IS_WORSE and value > 1:
        raise ThresholdError(f"threshold {metric}: {raw!r} is a p-value, between 0 and 1")
    return value


def _apply(metric: str, which: str, raw: Any, level: Level) -> Level:
    lower = metric in LOWER_IS_WORSE
    if which == "warn":
        new = Level(_number(metric, raw), level.drift)
    elif which == "drift":
        new = Level(level.warn, _number(metric, raw))
    elif which:
        raise ThresholdError(f"threshold {metric}.{which}: use {metric}.warn or {metric}.drift")
    elif isinstance(raw, Level):
        new = raw
    elif isinstance(raw, tuple | list) or (isinstance(raw, str) and ":" in raw):
        parts = list(raw) if not isinstance(raw, str) else raw.split(":")
        if len(parts) != 2:
            raise ThresholdError(f"threshold {metric}: {raw!r} should be two levels, WARN:DRIFT")
        new = Level(_number(metric, parts[0]), _number(metric, parts[1]))
    else:
        drift = _number(metric, raw)
        warn = level.warn
        if drift is None:
            warn = None
        elif warn is not None and (warn < drift if lower else warn > drift):
            warn = drift
        new = Level(warn, drift)
    if new.warn is not None and new.drift is not None and (new.warn < new.drift if lower else new.warn > new.drift):
        order = "at least" if lower else "at most"
        raise ThresholdError(f"threshold {metric}: the warn level ({new.warn:g}) must be {order} the drift "
                             f"level ({new.drift:g})")
    return new
