"""Per-metric thresholds that turn drift metrics into a status: ok, warn or drift.

Each registered metric (:data:`lake.monitor.metrics.METRICS`) has a ``warn`` and a
``drift`` level (either may be off), starting from the metric's default. For most
metrics a value at or above the level trips it; for a p-value (``lower_is_worse``) a
value at or below does. ``lake monitor metrics`` lists the names and defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lake.errors import ThresholdError
from lake.monitor.levels import DRIFT, OK, STATUSES, WARN, Level, at_least, worst
from lake.monitor.metrics import METRICS, Metric

__all__ = ["DRIFT", "OK", "STATUSES", "WARN", "Level", "Thresholds", "at_least", "worst"]


def _metric(name: str) -> Metric:
    found = METRICS.get(name)
    if found is None:
        raise ThresholdError(f"unknown threshold {name!r}: use one of {', '.join(METRICS.names())}")
    return found


class Thresholds:
    """The levels of every registered metric: their defaults, with some overridden.

    Example:
        >>> Thresholds().override({"psi": 0.2, "ks": (0.05, 0.15), "chi2_p": 0.01})
        >>> Thresholds().psi                      # Level(warn=0.1, drift=0.25)
    """

    __slots__ = ("_levels",)

    def __init__(self, levels: Mapping[str, Level] | None = None, **named: Level) -> None:
        """Args:
            levels: ``{metric: Level}`` for the metrics whose defaults do not suit.
            named: the same as keywords (``Thresholds(psi=Level(0.1, 0.2))``).

        Raises:
            ThresholdError: an unknown metric.
        """
        given = {**(levels or {}), **named}
        for name in given:
            _metric(name)
        self._levels: dict[str, Level] = {m.name: given.get(m.name, m.default) for m in METRICS}

    def __getattr__(self, name: str) -> Level:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.level(name)
        except ThresholdError as exc:
            raise AttributeError(str(exc)) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thresholds) and self._levels == other._levels

    def __hash__(self) -> int:
        return hash(tuple(self._levels.items()))

    def __repr__(self) -> str:
        return "Thresholds(" + ", ".join(f"{k}={v.as_text()}" for k, v in self._levels.items()) + ")"

    def level(self, metric: str) -> Level:
        """The levels of one metric (a metric registered after these thresholds were made: its default).

        Raises:
            ThresholdError: an unknown metric.
        """
        found = self._levels.get(metric)
        return found if found is not None else _metric(metric).default

    @classmethod
    def metrics(cls) -> list[str]:
        """The metric names thresholds can be set for."""
        return METRICS.names()

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
        current = {name: self.level(name) for name in self.metrics()}
        for key, raw in values.items():
            name, _, which = str(key).strip().partition(".")
            metric = _metric(name)
            current[name] = _apply(metric, which, raw, current[name])
        return Thresholds(current)

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
        return self.level(metric).status(value, _metric(metric).lower_is_worse)

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        return {name: {"warn": level.warn, "drift": level.drift} for name, level in self._levels.items()}


def _number(metric: Metric, raw: Any) -> float | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("off", "none", "")):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ThresholdError(f"threshold {metric.name}: {raw!r} is not a number (or 'off')") from None
    if math.isnan(value) or value < 0:
        raise ThresholdError(f"threshold {metric.name}: {raw!r} must be a number >= 0")
    if metric.lower_is_worse and value > 1:
        raise ThresholdError(f"threshold {metric.name}: {raw!r} is a p-value, between 0 and 1")
    return value


def _apply(metric: Metric, which: str, raw: Any, level: Level) -> Level:
    lower = metric.lower_is_worse
    if which == "warn":
        new = Level(_number(metric, raw), level.drift)
    elif which == "drift":
        new = Level(level.warn, _number(metric, raw))
    elif which:
        raise ThresholdError(f"threshold {metric.name}.{which}: use {metric.name}.warn or {metric.name}.drift")
    elif isinstance(raw, Level):
        new = raw
    elif isinstance(raw, tuple | list) or (isinstance(raw, str) and ":" in raw):
        parts = list(raw) if not isinstance(raw, str) else raw.split(":")
        if len(parts) != 2:
            raise ThresholdError(f"threshold {metric.name}: {raw!r} should be two levels, WARN:DRIFT")
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
        raise ThresholdError(f"threshold {metric.name}: the warn level ({new.warn:g}) must be {order} the drift "
                             f"level ({new.drift:g})")
    return new
