"""What Prometheus metrics cost the feature server: the same server with ``[metrics] enabled``
on and off, side by side in one run.

One feature view of 50 double features in Redis (as ``benchmarks.features_serving`` builds it:
50,000 entities; ``--quick``: 5,000), two lean servers (one worker each, their own process),
one with metrics (latency and status per endpoint, latency and keys per feature service,
online store read latency, ``/metrics``), one without; a load generator in a third process
at 1 and 8 concurrent clients, runs interleaved (``--repeat``, median), answers checked equal.

Headline ``value``: the throughput the metrics cost at 8 clients, in percent (target <= 5);
``ratio`` = time per request with metrics / without (= requests/s without / with) at 8
clients, the median over rounds of each round's pair (the load on a shared machine drifts); ``ratio_p99_c1`` = p99 with / without at 1 client; ``ratio_in_process`` = time per
request with / without, both applications called directly in this process (no sockets: the
steadiest figure on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import emit, scratch_dir
from benchmarks.features_serving import (
    FEATURES,
    _check_same_answers,
    _cleanup_redis,
    _drive,
    _wait_healthy,
    build,
    median_stats,
    stop_servers,
)


def _start(lake: Any, base: Path) -> tuple[dict[str, int], list[subprocess.Popen[bytes]]]:
    from tests.services import free_port

    ports, procs = {}, []
    for name, enabled in (("metrics", True), ("plain", False)):
        settings = lake.settings.model_copy(update={"metrics": lake.settings.metrics.model_copy(
            update={"enabled": enabled})})
        path = base / f"{name}.pkl"
        path.write_bytes(pickle.dumps(settings))
        ports[name] = port = free_port()
        code = ("import pickle; from lake.lakehouse import Lake; from lake.features.server import serve; "
                f"serve(Lake(pickle.load(open({str(path)!r}, 'rb'))), port={port}, workers=1, log_requests=False)")
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    for (name, port), proc in zip(ports.items(), procs, strict=True):
        _wait_healthy(proc, port, name)
    return ports, procs


def in_process(lake: Any, keys: list[int], rounds: int) -> dict[str, float]:
    """Both applications called directly (no sockets, no other process): microseconds per request,
    blocks of 100 requests alternating between them, so load on the machine hits both alike."""
    import asyncio
    import time

    from lake.features.server import create_app

    apps = {}
    for name, enabled in (("metrics", True), ("plain", False)):
        settings = lake.settings.model_copy(update={"metrics": lake.settings.metrics.model_copy(
            update={"enabled": enabled})})
        apps[name] = create_app(type(lake)(settings), offload=False)
    bodies = [json.dumps({"features": FEATURES, "entities": {"user_id": [k]}}).encode() for k in keys]
    spent = {name: 0.0 for name in apps}

    async def one(app: Any, body: bytes) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message

        scope = {"type": "http", "path": "/get-online-features", "method": "POST",
                 "headers": [(b"content-length", b"%d" % len(body))]}
        await app(scope, receive, send)

    async def run() -> None:
        for block in range(rounds // 100):
            for name, app in (apps.items() if block % 2 else reversed(apps.items())):
                started = time.perf_counter()
                for i in range(100):
                    await one(app, bodies[(block * 100 + i) % len(bodies)])
                spent[name] += time.perf_counter() - started

    asyncio.run(run())
    for app in apps.values():
        app.close()
    return {name: round(total / rounds * 1e6, 2) for name, total in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5,000 entities, short load runs: under a minute")
    parser.add_argument("--entities", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per load run")
    parser.add_argument("--repeat", type=int, default=None, help="load runs per server and concurrency (median)")
    args = parser.parse_args()
    entities = args.entities or (5_000 if args.quick else 50_000)
    duration = args.duration or (1.5 if args.quick else 8.0)
    warmup = 0.5 if args.quick else 2.0
    repeat = args.repeat or (2 if args.quick else 5)
    base = scratch_dir("serving_metrics")
    lake = build(base, entities)
    procs: list[subprocess.Popen[bytes]] = []
    http: dict[str, dict[str, Any]] = {}
    pairs: dict[int, float] = {}
    try:
        rng = random.Random(1)
        keys = [rng.randrange(entities) for _ in range(1000)]
        direct = in_process(lake, keys, 2_000 if args.quick else 20_000)
        print(f"in process, microseconds per request: {direct}")
        ports, procs = _start(lake, base)
        _check_same_answers(ports, keys[:10] + [entities + 5])
        bodies = base / "bodies.json"
        bodies.write_text(json.dumps([{"features": FEATURES, "entities": {"user_id": [k]}} for k in keys]))
        for clients in (1, 8):
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
            for i in range(repeat):
                order = list(ports.items()) if i % 2 == 0 else list(reversed(ports.items()))
                for name, port in order:  # interleaved, alternating who goes first
                    stats = _drive(port, bodies, clients, duration, warmup)
                    assert stats["errors"] == 0, f"{name} failed requests: {stats}"
                    runs[name].append(stats)
                print(f"    round {i + 1}, {clients} clients: requests/s with metrics "
                      f"{runs['metrics'][-1]['rps']}, without {runs['plain'][-1]['rps']}")
            # The load on a shared machine drifts: compare the two sides round by round.
            pairs[clients] = statistics.median(p["rps"] / m["rps"] for m, p in zip(runs["metrics"], runs["plain"],
                                                                                      strict=True))
            for name, stats_list in runs.items():
                http[f"{name}_c{clients}"] = stats = median_stats(stats_list)
                print(f"  {name:7s} {clients:2d} clients (median of {repeat}): {stats}")
    finally:
        stop_servers(procs)
        _cleanup_redis(lake.settings.feast.project)
        shutil.rmtree(base, ignore_errors=True)
    direct_cost = direct["metrics"] / direct["plain"]
    emit({
        "benchmark": "serving_metrics",
        "metric": "throughput_cost_pct_c8",
        "value": round((1 - 1 / pairs[8]) * 100, 2),
        "unit": "%",
        "baseline": "feature_server_without_metrics",
        "ratio": round(pairs[8], 3),
        "ratio_rps_c1": round(pairs[1], 3),
        "ratio_p99_c1": round(http["metrics_c1"]["p99_ms"] / http["plain_c1"]["p99_ms"], 3),
        "ratio_in_process": round(direct_cost, 3),
        "in_process_us_per_request": direct,
        "http": http, "entities": entities, "duration_s": duration, "repeat": repeat,
        "targets": {"value": "<= 5 (% of requests/s)"},
    })


if __name__ == "__main__":
    main()
