"""One column's drift result, and the JSON-ready form of a report's values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FeatureDrift", "clean"]


@dataclass(frozen=True)
class FeatureDrift:
    """The comparison of one column: its metrics, their status, and what each set looks like."""

    name: str
    kind: str
    """numeric, categorical, other (null rate only) or missing (not in the current set)."""
    status: str
    reasons: tuple[str, ...]
    """Why the status is not ok, one line per tripped threshold or schema change."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """Every registered metric's values (:data:`lake.monitor.metrics.METRICS`) and the category changes."""
    reference: Mapping[str, Any] = field(default_factory=dict)
    """Type, rows, non-missing count, null rate, distinct values, moments of the reference."""
    current: Mapping[str, Any] = field(default_factory=dict)
    histogram: Mapping[str, Any] | None = None
    """Fractions of each set on a common grid (numeric) or per top category."""

    def __getitem__(self, metric: str) -> Any:
        return self.metrics.get(metric)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "status": self.status, "reasons": list(self.reasons),
                "metrics": dict(self.metrics), "reference": dict(self.reference), "current": dict(self.current),
                "histogram": dict(self.histogram) if self.histogram is not None else None}


def clean(value: Any) -> Any:
    """JSON-ready data: NaN and infinities become null, numpy scalars Python ones, keys text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return clean(value.item())
    return value
