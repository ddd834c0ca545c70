"""Statuses (ok, warn, drift) and the two trip points of a metric that earn them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from lake.errors import ThresholdError

__all__ = ["DRIFT", "OK", "STATUSES", "WARN", "Level", "at_least", "worst"]

OK, WARN, DRIFT = "ok", "warn", "drift"
STATUSES = (OK, WARN, DRIFT)
_RANK = {OK: 0, WARN: 1, DRIFT: 2}


def worst(statuses: Iterable[str]) -> str:
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
