"""Every metric the lake exports, declared once (Prometheus, through ``prometheus-client``).

Servers expose :data:`REGISTRY` on ``/metrics``. Batch work (jobs, materialization, drift
checks, quality gates) records into the same registry and, when it ends, pushes it to a
Pushgateway (``[metrics] pushgateway``) and/or writes it to a file for node_exporter's
textfile collector (``[metrics] textfile``): :func:`publish`. The alert rules and the Grafana
dashboard in ``infra/`` use these names; a test checks every name they use is declared here.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    push_to_gateway,
    write_to_textfile,
)

REGISTRY = CollectorRegistry(auto_describe=True)
"""The lake's own registry (not the process-global default), so embedding apps are unaffected."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
KEY_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 10_000, 100_000, 1_000_000)

# ---------------------------------------------------------------- servers

REQUESTS = Counter("lake_http_requests_total", "HTTP requests answered, by server, endpoint and status.",
                   ["server", "endpoint", "status"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("lake_http_request_duration_seconds", "HTTP request latency, by server and endpoint.",
                            ["server", "endpoint"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
FEATURE_REQUEST_SECONDS = Histogram("lake_feature_request_duration_seconds",
                                    "Online feature request latency, by feature service (or 'features').",
                                    ["service"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
FEATURE_KEYS = Histogram("lake_feature_request_keys", "Entity keys per online feature request.", ["service"],
                         buckets=KEY_BUCKETS, registry=REGISTRY)
ONLINE_STORE_SECONDS = Histogram("lake_online_store_read_duration_seconds", "Online store read latency, by backend.",
                                 ["backend"], buckets=LATENCY_BUCKETS, registry=REGISTRY)

# ------------------------------------------------------------- batch work

JOB_RUNS = Counter("lake_job_runs_total", "Job runs, by job and outcome (completed, failed, skipped).",
                   ["job", "outcome"], registry=REGISTRY)
JOB_ROWS = Counter("lake_job_rows_total", "Rows handled by job runs, by job and kind (read, written, quarantined).",
                   ["job", "kind"], registry=REGISTRY)
JOB_SECONDS = Histogram("lake_job_duration_seconds", "Job run duration, by job.", ["job"],
                        buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600), registry=REGISTRY)
JOB_LAST_SUCCESS = Gauge("lake_job_last_success_timestamp_seconds", "When each job last completed.", ["job"],
                         registry=REGISTRY)
QUALITY_GATES = Counter("lake_quality_gate_total", "Quality gate outcomes, by table and outcome (passed, "
                        "warned, quarantined, failed).", ["table", "outcome"], registry=REGISTRY)
MATERIALIZED_ROWS = Counter("lake_materialized_rows_total", "Entity rows written to the online store, by view.",
                            ["view"], registry=REGISTRY)
MATERIALIZE_SECONDS = Histogram("lake_materialize_duration_seconds", "Materialization duration, by view.", ["view"],
                                buckets=(0.5, 1, 5, 15, 60, 300, 900, 3600), registry=REGISTRY)
FEATURE_FRESHNESS = Gauge("lake_feature_freshness_seconds", "Age of the newest event time materialized, by view "
                          "(now minus the latest event timestamp online).", ["view"], registry=REGISTRY)
FEATURE_NEWEST_EVENT = Gauge("lake_feature_newest_event_timestamp_seconds",
                             "The newest event time materialized, by view (for freshness at query time).", ["view"],
                             registry=REGISTRY)
DRIFT_STATUS = Gauge("lake_drift_status", "Latest drift status of a monitored table: 0 ok, 1 warn, 2 drift.",
                     ["table"], registry=REGISTRY)
DRIFT_FEATURES = Gauge("lake_drift_features", "Features of a monitored table by status in its latest report.",
                       ["table", "status"], registry=REGISTRY)

STATUS_LEVELS = {"ok": 0, "warn": 1, "drift": 2}
_PUBLISH_LOCK = threading.Lock()


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    """Observe how long the block takes."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def names() -> set[str]:
    """Every metric (sample) name this module exports, as PromQL sees them."""
    out = set()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            out.add(sample.name)
        out.add(metric.name)
        if metric.type == "counter":
            out.add(metric.name + "_total")
        if metric.type == "histogram":
            out |= {metric.name + suffix for suffix in ("_bucket", "_sum", "_count")}
    return out


def publish(pushgateway: str | None, textfile: str | None, job: str = "lake_batch") -> None:
    """Send the registry to a Pushgateway and/or a textfile (never fails the work it reports on)."""
    with _PUBLISH_LOCK:
        if textfile:
            with suppress(OSError):
                os.makedirs(os.path.dirname(os.path.abspath(textfile)), exist_ok=True)
                # write_to_textfile renames a temp file: node_exporter never reads half a file
                write_to_textfile(textfile, REGISTRY)
        if pushgateway:
            with suppress(OSError):
                push_to_gateway(pushgateway, job=job, registry=REGISTRY, timeout=5)


def scratch_textfile() -> str:
    """A textfile path in the temp folder (tests, demos)."""
    return os.path.join(tempfile.gettempdir(), f"lake-metrics-{os.getpid()}.prom")
