"""Errors of the monitoring hand-off: a branch of the lake's one error tree."""

from __future__ import annotations

from lake.errors import LakeError


class MonitorError(LakeError):
    """Base of the errors raised while building a drift report."""


class SourceError(MonitorError, ValueError):
    """A reference or current set cannot be resolved (bad spec, empty window, no common columns)."""


class ThresholdError(MonitorError, ValueError):
    """A threshold names an unknown metric or has a value that makes no sense."""
