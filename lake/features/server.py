"""A lean HTTP feature server speaking Feast's ``POST /get-online-features`` format.

A raw ASGI application (no framework on the request path) run by uvicorn with
httptools and uvloop, behind :class:`catalog.guard.Guard` (bearer tokens once any exists,
the body size limit). Small reads go straight to the online store through
:class:`lake.features.online.OnlineReader` on the event loop (a Redis round trip or a
SQLite index lookup); requests with more than ``[feast] offload_keys`` entity rows are read
and encoded in ``[feast] offload_workers`` worker processes (each with its own registry
snapshot), so single-key requests keep their latency while large ones run; requests with
on-demand feature views (pandas code) go to a thread. A request
may ask for at most ``[feast] max_keys_per_request`` rows. The registry is cached and
refreshed on a timer.
Once principals exist (``lake principal``), a request needs ``read`` on the feature service it
names (or on each feature view), and features derived from a masked column are masked for a
principal without ``unmask`` (:class:`lake.features.access.FeatureAccess`; 403 otherwise).
With the serving log on, each answer is queued for ``logs.serving_<project>``
(see :mod:`lake.features.serving_log`), off the request path.

Endpoints: ``POST /get-online-features`` (Feast's request and response bodies),
``GET /health`` (200 when the registry and the online store answer, else 503),
``GET /metrics`` (Prometheus: latency and status per endpoint, latency and keys per feature
service, online store read latency; see :mod:`lake.metrics`; ``[metrics] enabled``).
The registry is reloaded every ``[feast] registry_refresh_seconds``: ``lake features apply``
changes what is served without a restart; SIGTERM lets in-flight requests finish.
Errors are JSON ``{"detail": "..."}``: 400 for a body that is not JSON or nests too
deeply, 401 without a valid token where one is required, 404 for an unknown feature, view
or service, 413 for a body or a key count over the limits, 422 for a malformed request
(an entity value of the wrong type included), 503 when the online store is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import logging
import math
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

import uvicorn

from catalog.access import AuditLog, Policy
from catalog.errors import RequestError
from catalog.guard import (
    PRINCIPAL_KEY,
    Guard,
    Limits,
    Receive,
    Scope,
    Send,
    check_binding,
    is_loopback,
    reject_constant,
)
from catalog.tokens import Authenticator
from lake import metrics
from lake.config import Settings
from lake.errors import FeatureError, LakeError, ServingError
from lake.features.access import FeatureAccess, mask_result
from lake.features.online import OnlineReader, OnlineResult
from lake.features.serving_log import ServingLog
from lake.lakehouse import Lake

log = logging.getLogger(__name__)


_HEADERS = [(b"content-type", b"application/json")]
_UTC = dt.UTC


def dumps(body: Any) -> bytes:
    """Compact JSON; NaN and infinities as the strings protobuf's JSON mapping (and Feast) use."""
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        return json.dumps(_finite(body), ensure_ascii=False, separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _json_float(value: float) -> str:
    text = repr(value)
    return text if text[-1] not in "nf" else '"NaN"' if text == "nan" else '"Infinity"' if text == "inf" else '"-Infinity"'


def _json_any(value: Any) -> str:
    return dumps(value).decode()


_JSON: dict[type, Any] = {float: _json_float, int: int.__repr__, str: encode_basestring, type(None): lambda _: "null",
                          bool: lambda b: "true" if b else "false"}


def encode(result: OnlineResult) -> bytes:
    """``result.to_response()`` as JSON, built by hand: a third faster than ``json.dumps`` of the nested dicts."""
    if any(result.protos):
        return dumps(result.to_response())
    enc, parts = _JSON.get, []
    for col, st, ts in zip(result.values, result.statuses, result.timestamps, strict=True):
        if len(col) == 1:
            v = col[0]
            parts.append(f'{{"values":[{enc(type(v), _json_any)(v)}],"statuses":["{st[0]}"],'
                         f'"event_timestamps":["{ts[0]}"]}}')
        else:
            parts.append('{"values":[' + ",".join([enc(type(c), _json_any)(c) for c in col]) + '],"statuses":'
                         + json.dumps(st) + ',"event_timestamps":' + json.dumps(ts) + "}")
    names = json.dumps(result.names, ensure_ascii=False)
    return ('{"results":[' + ",".join(parts) + '],"metadata":{"feature_names":' + names + "}}").encode()


_ENDPOINTS = ("/get-online-features", "/health", "/metrics")


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


_SCALARS = (str, int, float, bool, type(None))


def _parse(body: bytes, max_keys: int) -> tuple[dict[str, Any], list[str] | None, str | None, bool, bool, int]:
    """Feast's ``GetOnlineFeaturesRequest``, checked by hand (pydantic costs more than the read).

    Returns the entities, features, service, the two flags and the number of entity rows.
    """
    try:
        req = json.loads(body, parse_constant=reject_constant)
    except RecursionError:
        raise _BadRequest(400, "the request body nests too deeply") from None
    except ValueError as exc:
        raise _BadRequest(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(req, dict):
        raise _BadRequest(422, "the request body must be a JSON object with entities and features or feature_service")
    entities = req.get("entities")
    if entities is None:
        raise _BadRequest(422, 'entities: field required ({"join_key": [values, ...]})')
    if not isinstance(entities, dict) or not all(isinstance(v, list) for v in entities.values()):
        raise _BadRequest(422, 'entities: must be an object of lists, e.g. {"driver_id": [1001, 1002]}')
    rows = max((len(v) for v in entities.values()), default=0)
    if rows > max_keys:
        raise _BadRequest(413, f"entities: {rows} rows asked; a request may ask for at most {max_keys} "
                               "([feast] max_keys_per_request): split it")
    for name, values in entities.items():
        # Values are scalars: a nested list or object is refused here, whatever its depth.
        if not all(type(v) in _SCALARS for v in values):
            i, bad = next((i, v) for i, v in enumerate(values) if type(v) not in _SCALARS)
            kind = "an object" if isinstance(bad, dict) else "a list" if isinstance(bad, list) else type(bad).__name__
            raise _BadRequest(422, f"entities: {name!r}[{i}] is {kind}; entity values are strings or numbers")
    service = req.get("feature_service")
    if service is not None and not isinstance(service, str):
        raise _BadRequest(422, "feature_service: must be a string")
    features = req.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise _BadRequest(422, 'features: must be a list of "view:feature" strings')
    flags = []
    for name in ("full_feature_names", "include_feature_view_version_metadata"):
        flag = req.get(name, False)
        if not isinstance(flag, bool):
            raise _BadRequest(422, f"{name}: must be true or false")
        flags.append(flag)
    if not service and not features:
        raise _BadRequest(422, "give features (a list of view:feature) or a feature_service")
    return entities, (None if service else features), service or None, flags[0], flags[1], rows


class FeatureServer:
    """The ASGI application: ``await app(scope, receive, send)``."""

    def __init__(self, lake: Lake, *, log_requests: bool = False, refresh_seconds: float | None = None,
                 offload: bool = True, authenticator: Authenticator | None = None,
                 access: FeatureAccess | None = None) -> None:
        """Args:
            lake: the lake whose Feast deployment is served.
            log_requests: queue every answer for the serving log table.
            refresh_seconds: how often the registry snapshot is reloaded (default
                ``[feast] registry_refresh_seconds``).
            offload: serve requests over ``[feast] offload_keys`` rows in worker processes (False: every
                request on the event loop, as before; the isolation benchmark compares the two).
            authenticator: who may call; default the lake catalog's tokens, as ``[server]`` says.
            access: grants per feature service and masking (default: the catalog's, enforced once
                principals exist; ``lake serve`` passes its own).
        """
        feast, server = lake.settings.feast, lake.settings.server
        self.authenticator = authenticator or lake.catalog.authenticator(mode=server.auth,
                                                                         cache_seconds=server.token_cache_seconds)
        measured = lake.settings.metrics
        self.measured = measured.enabled
        public = ("/health", "/metrics") if measured.public else ("/health",)
        guarded = Guard(self._asgi, self.authenticator, Limits(server.max_body_bytes, server.max_json_depth),
                        public=public)
        # Outermost, so that a 401 or 413 from the guard is counted too.
        self.tally = metrics.Tally()
        self._app: Any = metrics.HttpMetrics(guarded, "features", _ENDPOINTS, self.tally) if measured.enabled else guarded
        self._own_audit: AuditLog | None = None
        if access is None:
            self._own_audit = AuditLog(lake.catalog)
            salt = lake.settings.service.mask_salt
            access = FeatureAccess(Policy(lake.catalog, cache_seconds=lake.settings.service.policy_cache_seconds),
                                   self._own_audit, salt.get_secret_value().encode() if salt else None,
                                   namespace=lake.settings.catalog.namespace)
        self.access = access
        self.reader = OnlineReader(lake, refresh_seconds=refresh_seconds or feast.registry_refresh_seconds,
                                   background=True)
        self._store_seconds = self.tally.histogram(metrics.ONLINE_STORE_SECONDS, self.reader.online_store)
        self._per_service: dict[str, tuple[metrics.TalliedHistogram, metrics.TalliedHistogram]] = {}
        self.serving_log = ServingLog(lake, self.reader.project) if log_requests else None
        self.max_keys = feast.max_keys_per_request
        self.max_body = lake.settings.server.max_body_bytes
        self.offload_keys = feast.offload_keys if offload else None
        self.offloaded = 0
        """Requests served by the worker processes so far (``/health`` shows it)."""
        self._settings = lake.settings
        self._workers = feast.offload_workers
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def start_workers(self) -> None:
        """Start the processes that serve large requests (else they start with the first one).

        Each holds its own registry snapshot and online store connection; starting one costs
        a few seconds (Feast's imports), so a server starts them before it takes requests.
        """
        if self._pool is None and not self._closed:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(self._settings,))
            for _ in range(self._workers):
                self._pool.submit(_ready)

    def close(self) -> None:
        """Stop the registry timer and flush the serving log (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.tally.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.reader.close()
        if self._own_audit is not None:
            self._own_audit.close()
        if self.serving_log is not None:
            stats = self.serving_log.close()
            if stats.rows_dropped:
                log.warning("serving log: %d rows were dropped (last error: %s)", stats.rows_dropped,
                            stats.last_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def _observe(self, service: str | None, keys: int, seconds: float) -> None:
        """A served feature request: latency and keys, by feature service (``features`` for a list)."""
        name = service or "features"
        children = self._per_service.get(name)
        if children is None:  # only names the registry resolved get here: the label set stays bounded
            children = self._per_service[name] = (self.tally.histogram(metrics.FEATURE_REQUEST_SECONDS, name),
                                                  self.tally.histogram(metrics.FEATURE_KEYS, name))
        children[0].observe(seconds)
        children[1].observe(keys)

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.get_running_loop().run_in_executor(None, self.close)
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        request_id = os.urandom(8).hex()
        if path == "/get-online-features":
            if method != "POST":
                return await _answer(send, 405, {"detail": "use POST /get-online-features"}, request_id)
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.max_body:
                    return await _answer(send, 413, {"detail": f"the request body exceeds {self.max_body} bytes"},
                                         request_id)
                if not message.get("more_body"):
                    break
            principal = scope.get(PRINCIPAL_KEY)
            status, answer = await self._features(b"".join(chunks), request_id,
                                                  principal.name if principal is not None else None)
            return await _answer(send, status, answer, request_id)
        if path == "/health":
            if method != "GET":
                return await _answer(send, 405, {"detail": "use GET /health"}, request_id)
            status, answer = await self._health()
            return await _answer(send, status, answer, request_id)
        if path == "/metrics" and self.measured:
            if method != "GET":
                return await _answer(send, 405, {"detail": "use GET /metrics"}, request_id)
            return await self.tally.answer(send)
        return await _answer(send, 404, {"detail": f"no endpoint {path}; use POST /get-online-features, "
                                                   "GET /health or GET /metrics"}, request_id)

    async def _features(self, body: bytes, request_id: str, principal: str | None = None) -> tuple[int, Any]:
        started = time.perf_counter()
        try:
            entities, features, service, full_names, with_views, rows = _parse(body, self.max_keys)
            plan = self.reader.plan(features, service, full_names)
            masked = self.access.decide(principal, plan)  # 403 before anything is read

            read_seconds: list[float] = []  # observed on the event loop's thread (a tally takes no lock)

            def answer() -> tuple[int, Any]:
                read_started = time.perf_counter()
                result = self.reader.get(entities, features, feature_service=service, full_feature_names=full_names)
                read_seconds.append(time.perf_counter() - read_started)
                if masked:
                    self.access.mask(result, masked)
                if self.serving_log is not None:
                    self.serving_log.record(request_id, dt.datetime.now(_UTC), result)
                if with_views:
                    out = result.to_response()
                    out["metadata"]["feature_view_metadata"] = [{"name": v.alias} for v in plan.views]
                    return 200, dumps(out)
                return 200, encode(result)

            loop = asyncio.get_running_loop()
            if self.offload_keys is not None and rows > self.offload_keys:
                # A large read and its encoding hold the interpreter for seconds: in another process, so
                # the small requests behind it keep their latency (a thread would share the GIL with them).
                self.start_workers()
                assert self._pool is not None
                self.offloaded += 1
                status, data, result = await loop.run_in_executor(self._pool, _serve_large, _LargeRequest(
                    entities, features, service, full_names, with_views, self.serving_log is not None, masked))
                if result is not None and self.serving_log is not None:
                    self.serving_log.record(request_id, dt.datetime.now(_UTC), result)
            elif plan.on_demand:  # pandas transformations: off the event loop
                status, data = await loop.run_in_executor(None, answer)
            else:
                status, data = answer()
            if self.measured and status == 200:
                self._observe(service, rows, time.perf_counter() - started)
                if read_seconds:
                    self._store_seconds.observe(read_seconds[0])
            return status, data
        except _BadRequest as exc:
            return exc.status, {"detail": exc.detail}
        except RequestError as exc:  # 403: no grant on the service or view
            return exc.status, {"detail": exc.message}
        except ServingError as exc:
            return exc.status, {"detail": str(exc)}
        except LakeError as exc:
            return 400, {"detail": str(exc)}
        except Exception as exc:
            log.exception("get-online-features failed")
            return 500, {"detail": f"internal error: {type(exc).__name__}: {exc}"}

    async def _health(self) -> tuple[int, Any]:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.reader.health)
        except ServingError as exc:
            return 503, {"status": "unavailable", "detail": str(exc)}
        except Exception as exc:
            return 503, {"status": "unavailable", "detail": f"{type(exc).__name__}: {exc}"}
        answer: dict[str, Any] = {"status": "ok", "project": self.reader.project,
                                  "online_store": self.reader.online_store}
        if self.reader.last_refresh_error:
            answer["registry_refresh_error"] = self.reader.last_refresh_error
        if self.serving_log is not None:
            answer["serving_log"] = {"table": self.serving_log.table_name, **vars(self.serving_log.stats)}
        answer["offloaded_requests"] = self.offloaded
        return 200, answer


@dataclass(frozen=True)
class _LargeRequest:
    entities: dict[str, Any]
    features: list[str] | None
    service: str | None
    full_names: bool
    with_views: bool
    keep_result: bool
    """Send the result back too (for the serving log), not only its JSON."""
    masked: dict[int, str]
    """Feature positions to mask, and how (see :class:`~lake.features.access.FeatureAccess`)."""


_WORKER: list[OnlineReader] = []
_SALT: list[bytes | None] = []
"""In a worker process only: its reader (a process pool's initializer can only leave state behind)."""


def _start_worker(settings: Settings) -> None:
    _WORKER.append(OnlineReader(Lake(settings), background=True))
    _SALT.append(settings.service.mask_salt.get_secret_value().encode() if settings.service.mask_salt else None)


def _ready() -> None:
    """A task that only makes a worker process start (its initializer runs first)."""


def _serve_large(req: _LargeRequest) -> tuple[int, bytes, OnlineResult | None]:
    """In a worker process: the whole answer (status, JSON), and the result when the log needs it."""
    reader = _WORKER[0]
    try:
        result = reader.get(req.entities, req.features, feature_service=req.service,
                            full_feature_names=req.full_names)
        if req.masked:
            mask_result(result, req.masked, _SALT[0])
        if req.with_views:
            out = result.to_response()
            plan = reader.plan(req.features, req.service, req.full_names)
            out["metadata"]["feature_view_metadata"] = [{"name": v.alias} for v in plan.views]
            data = dumps(out)
        else:
            data = encode(result)
        return 200, data, result if req.keep_result else None
    except ServingError as exc:
        return exc.status, dumps({"detail": str(exc)}), None
    except LakeError as exc:
        return 400, dumps({"detail": str(exc)}), None
    except Exception as exc:
        log.exception("get-online-features failed in a worker process")
        return 500, dumps({"detail": f"internal error: {type(exc).__name__}: {exc}"}), None


async def _answer(send: Send, status: int, body: Any, request_id: str) -> None:
    data = body if isinstance(body, bytes) else dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_HEADERS, (b"content-length", b"%d" % len(data)), (b"x-request-id", request_id.encode())]})
    await send({"type": "http.response.body", "body": data})


def create_app(lake: Lake, log_requests: bool = False, *, authenticator: Authenticator | None = None,
               offload: bool = True, access: FeatureAccess | None = None) -> FeatureServer:
    """The feature server as an ASGI application (for uvicorn, or httpx's ASGI transport in tests).

    Args:
        lake: the lake whose Feast deployment (registry, online store) is served.
        log_requests: log every request and the values served to ``logs.serving_<project>``.
        authenticator: who may call (default: the catalog's tokens, as ``[server] auth`` says).
        offload: large requests off the event loop (see :class:`FeatureServer`).
        access: grants per feature service and masking (default: the catalog's).

    Returns:
        The application; call ``close()`` (or let the ASGI lifespan shutdown do it) to flush the log.

    Raises:
        OnlineStoreError: the registry cannot be read.
    """
    return FeatureServer(lake, log_requests=log_requests, authenticator=authenticator, offload=offload,
                         access=access)


def serve(lake: Lake, host: str = "127.0.0.1", port: int = 6566, workers: int = 1,
          log_requests: bool | None = None) -> None:
    """Serve online features over HTTP until interrupted (Ctrl-C or SIGTERM).

    The same request and response bodies as Feast's ``feast serve``:
    ``POST /get-online-features`` with ``{"features": ["view:feature", ...]}`` or
    ``{"feature_service": "name"}``, ``"entities": {"join_key": [values, ...]}`` and
    ``"full_feature_names": false``; and ``GET /health``.

    Args:
        lake: the lake whose Feast deployment (registry and online store) is served.
        host: the interface to listen on.
        port: the TCP port (Feast's default, 6566).
        workers: server processes sharing the port (each with its own registry cache).
        log_requests: log requests and served values to ``logs.serving_<project>``;
            default the ``[feast] serving_log`` setting.

    Requests need ``Authorization: Bearer <token>`` once any API token exists (``lake token
    create``), or always with ``[server] auth = "required"``; with no token, only a loopback
    ``host`` is served.

    Raises:
        FeatureError: the registry or the online store cannot be opened, or the port is taken.
        UnsafeBindError: ``host`` is not loopback and requests would need no token.
    """
    log_requests = lake.settings.feast.serving_log if log_requests is None else log_requests
    settings = lake.settings.server
    authenticator = lake.catalog.authenticator(mode=settings.auth, cache_seconds=settings.token_cache_seconds)
    check_binding(host, port, authenticator, "features")
    # Open the registry here, so that a bad deployment fails with its message, not a crash-looping worker.
    app = create_app(lake, log_requests, authenticator=authenticator) if workers <= 1 else None
    if app is None:
        OnlineReader(lake).close()
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        if app is not None:
            app.close()
        raise FeatureError(f"cannot listen on {host}:{port}: {exc}; pick another --port") from exc
    sock.set_inheritable(True)
    if app is not None:
        try:
            _run(app, host, port, sock)
        finally:
            app.close()
            sock.close()
        return
    _supervise(lake.settings, sock, host, port, workers, log_requests)


def _run(app: FeatureServer, host: str, port: int, sock: socket.socket) -> None:
    config = uvicorn.Config(app, host=host, port=port, loop="auto", http="auto", lifespan="on", access_log=False,
                            log_level="info", timeout_graceful_shutdown=10)
    # Feast's imports leave a large heap; without freezing it, every full collection walks it (ms of p99).
    app.start_workers()
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=[sock])


def _worker(settings: Settings, sock: socket.socket, host: str, port: int, log_requests: bool) -> None:
    app = create_app(Lake(settings), log_requests)
    if not is_loopback(host):  # as the parent decided in check_binding: beyond loopback, always a token
        app.authenticator.require()
    try:
        _run(app, host, port, sock)
    finally:
        app.close()


def _supervise(settings: Settings, sock: socket.socket, host: str, port: int, workers: int,
               log_requests: bool) -> None:
    """Start ``workers`` processes on one listening socket; restart any that dies; stop all on a signal."""
    spawn = multiprocessing.get_context("spawn")
    scratch, environ = None, dict(os.environ)
    if settings.metrics.enabled:
        # Each worker writes its metrics to files here; any worker's /metrics sums them all.
        scratch = tempfile.TemporaryDirectory(prefix="lake-metrics-")
        metrics.share_between_processes(scratch.name)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        proc = spawn.Process(target=_worker, args=(settings, sock, host, port, log_requests), daemon=False)
        proc.start()
        return proc

    procs = [start() for _ in range(workers)]
    log.info("serving features on http://%s:%d with %d workers", host, port, workers)
    try:
        while not stop.wait(0.5):
            for i, proc in enumerate(procs):
                if not proc.is_alive():
                    log.warning("feature server worker %d exited (code %s); restarting it", proc.pid, proc.exitcode)
                    time.sleep(0.5)
                    procs[i] = start()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn shuts down gracefully and the serving log flushes
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        if scratch is not None:
            os.environ.clear()
            os.environ.update(environ)
            scratch.cleanup()


__all__ = ["FeatureServer", "create_app", "serve"]
