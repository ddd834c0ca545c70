"""Every metric the lake exports, declared once (Prometheus, through ``prometheus-client``).

Servers expose :data:`REGISTRY` on ``/metrics``. Batch work (jobs, materialization, drift
checks, quality gates) records into the same registry and, when it ends, pushes it to a
Pushgateway (``[metrics] pushgateway``) and/or writes it to a file for node_exporter's
textfile collector (``[metrics] textfile``): :func:`publish`. The alert rules and the Grafana
dashboard in ``infra/`` use these names; a test checks every name they use is declared here.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Collection, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
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
BUCKETS_OF_SERVERS = {"lake_http_request_duration_seconds": LATENCY_BUCKETS,
                      "lake_feature_request_duration_seconds": LATENCY_BUCKETS,
                      "lake_feature_request_keys": tuple(float(b) for b in KEY_BUCKETS),
                      "lake_online_store_read_duration_seconds": LATENCY_BUCKETS}

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


Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]
MULTIPROCESS_ENV = "LAKE_METRICS_MULTIPROC_DIR"
"""Set (to an empty folder) before a server's worker processes start: ``/metrics`` then sums them all.

Our own name: importing Feast sets ``PROMETHEUS_MULTIPROC_DIR`` for the whole process (its own
metrics), so that variable says nothing about whether this server runs several processes.
"""


def share_between_processes(folder: str) -> None:
    """Make the worker processes started after this call record into files in ``folder``
    (``prometheus_client`` picks its value store when a new process imports it)."""
    os.environ[MULTIPROCESS_ENV] = folder
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


class TalliedHistogram:
    """A histogram child's observations, gathered without a lock and added to it by :meth:`flush`.

    ``Histogram.observe`` takes a lock per bucket and sum (about 5 microseconds on a busy core);
    this takes one bisection and two additions. Use it from one thread only (a server's event
    loop), flushing from the same thread.
    """

    def __init__(self, child: Any, bounds: tuple[float, ...]) -> None:
        self.child, self.bounds = child, bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush(self) -> None:
        counts, total = self.counts, self.total
        self.counts, self.total = [0] * len(counts), 0.0
        if not any(counts):
            return
        # prometheus_client has no bulk observe: its buckets and sum are added to directly (one
        # addition per bucket used; tests/lake/features/test_operations.py checks the counts).
        for i, n in enumerate(counts):
            if n:
                self.child._buckets[i].inc(n)
        self.child._sum.inc(total)


class TalliedCounter:
    """A counter child's increments, gathered without a lock (see :class:`TalliedHistogram`)."""

    def __init__(self, child: Any) -> None:
        self.child, self.count = child, 0

    def inc(self) -> None:
        self.count += 1

    def flush(self) -> None:
        if self.count:
            count, self.count = self.count, 0
            self.child.inc(count)


class Tally:
    """The metrics a server records per request, tallied on its event loop and flushed into the
    Prometheus registry before each ``/metrics`` answer and every second (so that another worker
    process's ``/metrics`` sees them too)."""

    FLUSH_SECONDS = 1.0

    def __init__(self) -> None:
        self._parts: dict[tuple[Any, ...], TalliedHistogram | TalliedCounter] = {}
        self._timer: Any = None

    def histogram(self, metric: Histogram, *labels: str) -> TalliedHistogram:
        key = (metric, *labels)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = TalliedHistogram(metric.labels(*labels), _bounds(metric))
        assert isinstance(part, TalliedHistogram)
        return part

    def counter(self, metric: Counter, *labels: str) -> TalliedCounter:
        key = (metric, *labels)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = TalliedCounter(metric.labels(*labels))
        assert isinstance(part, TalliedCounter)
        return part

    def flush(self) -> None:
        for part in list(self._parts.values()):
            part.flush()

    @property
    def flushing(self) -> bool:
        """Whether the periodic flush runs (the first request starts it)."""
        return self._timer is not None

    def keep_flushing(self, loop: Any) -> None:
        """Flush every :attr:`FLUSH_SECONDS` on ``loop`` (idempotent; the first request calls it)."""
        if self._timer is None:
            def tick() -> None:
                self.flush()
                self._timer = loop.call_later(self.FLUSH_SECONDS, tick)

            self._timer = loop.call_later(self.FLUSH_SECONDS, tick)

    async def answer(self, send: Callable[[Message], Awaitable[None]]) -> None:
        """Answer ``GET /metrics``: flush, then the exposition (:func:`exposition`)."""
        self.flush()
        body, content_type = exposition()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()


def _bounds(metric: Histogram) -> tuple[float, ...]:
    """The finite upper bounds of a server histogram's buckets (as declared above)."""
    return BUCKETS_OF_SERVERS[metric._name]


class HttpMetrics:
    """ASGI middleware recording each request's latency and status for one server.

    Endpoints outside ``endpoints`` are counted as ``other``, so a client cannot grow the number
    of series by asking for made-up paths; with ``prefixes``, a path below an endpoint counts as
    that endpoint (``/api/v1/datasets/x/schema`` as ``/api/v1/datasets``). Label children are
    resolved once (``labels()`` costs microseconds, a request on the lean feature server costs
    a few hundred).
    """

    def __init__(self, app: ASGIApp, server: str, endpoints: Collection[str], tally: Tally,
                 prefixes: bool = False) -> None:
        self.app, self.server, self.endpoints, self.tally = app, server, frozenset(endpoints), tally
        self.prefixes = sorted(self.endpoints, key=len, reverse=True) if prefixes else []
        self._latency: dict[str, TalliedHistogram] = {}
        self._count: dict[tuple[str, int], TalliedCounter] = {}

    def endpoint(self, path: str) -> str:
        """The label of a path: an endpoint, or ``other``."""
        if path in self.endpoints:
            return path
        return next((e for e in self.prefixes if path.startswith(e + "/")), "other")

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        latency = self._latency.get(endpoint)
        if latency is None:
            latency = self._latency[endpoint] = self.tally.histogram(REQUEST_SECONDS, self.server, endpoint)
        latency.observe(seconds)
        count = self._count.get((endpoint, status))
        if count is None:
            count = self._count[(endpoint, status)] = self.tally.counter(REQUESTS, self.server, endpoint, str(status))
        count.inc()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.tally.flushing:
            self.tally.keep_flushing(asyncio.get_running_loop())
        started = time.perf_counter()
        path = scope["path"]
        endpoint = path if path in self.endpoints else self.endpoint(path)
        status = 500  # an application that raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.observe(endpoint, status, time.perf_counter() - started)


def exposition() -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``: this process's metrics, or every worker's
    when the server runs several processes (:data:`MULTIPROCESS_ENV`)."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    if folder:
        registry = CollectorRegistry()
        registry.register(_LakeOnly(multiprocess.MultiProcessCollector(None, path=folder)))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class _LakeOnly:
    """The lake's metrics of a collector (Feast's own land in the same multiprocess folder)."""

    def __init__(self, collector: Any) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Any]:
        return (m for m in self.collector.collect() if m.name.startswith("lake_"))


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
