"""Monitoring hand-off: drift reports of current data (serving logs, new table versions)
against a reference (a saved training dataset, a table version).

Example:
    >>> from lake.monitor import drift_report
    >>> report = drift_report(lake, reference="training:fraud_v3", current="logs.serving_fraud", since="7d")
    >>> report.status                      # ok, warn or drift
    >>> report.feature("amount").metrics   # psi, ks, wasserstein, null_rate_change, ...
    >>> report.save_html("drift.html")     # self-contained page; the JSON is report.to_json()

The metrics are registered once in :data:`lake.monitor.metrics.METRICS` (name,
computation, default threshold, presentation); a new one is one ``METRICS.register``.
"""

from __future__ import annotations

from lake.errors import MonitorError, SourceError, ThresholdError
from lake.monitor.drift import Options
from lake.monitor.metrics import METRICS, Inputs, Metric
from lake.monitor.report import DriftReport, FeatureDrift, drift_report
from lake.monitor.sources import SchemaChanges
from lake.monitor.thresholds import DRIFT, OK, WARN, Level, Thresholds

__all__ = ["DRIFT", "METRICS", "OK", "WARN", "DriftReport", "FeatureDrift", "Inputs", "Level", "Metric", "MonitorError",
           "Options", "SchemaChanges", "SourceError", "ThresholdError", "Thresholds", "drift_report"]
