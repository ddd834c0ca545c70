"""Small requests keep their latency while 100k-key requests run: the feature server's isolation.

One feature view of 10 double features over 100,000 entities (``--quick``: 20,000 entities and
20,000-key requests, shorter runs), materialized by the lake into the online store (SQLite by
default; ``--online-store redis``).
``lake features serve`` is started as a user starts it, twice, in the same run:

- protected: the defaults (requests over ``[feast] offload_keys`` = 1,000 rows are read and
  encoded in a thread pool, off the event loop);
- unprotected: ``LAKE_FEAST_OFFLOAD_KEYS`` = the maximum, so every request is served on the
  event loop, as before issue 16.

Against each: one client sends single-key requests at a fixed rate (200/s over 16 keep-alive
connections, raw HTTP/1.1, its own process; latency from each request's scheduled time, so a
stall counts for every request it delays) while another sends 100,000-key requests back to
back (its own process); first the single-key client alone (idle), then with the large
requests running. Reported: p50/p99 of the single-key requests in both phases, and how long
the large requests took.

Headline ``value``: the protected server's single-key p99 under the 100k-key load, in ms;
``baseline``: the unprotected server's; ``ratio`` = value / baseline (lower is better).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import emit, scratch_dir

FEATURES = [f"user_features:f{i}" for i in range(10)]
RATE = 200.0
"""Single-key requests per second, sent on schedule whatever the answers' latency."""
CONNECTIONS = 16
"""Keep-alive connections the single-key requests are spread over."""
REPO = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(name="iso_src", path="gold.user_features", file_format=DeltaFormat(),
                    timestamp_field="event_timestamp")
user_features = FeatureView(name="user_features", entities=[user], ttl=timedelta(days=3650), source=source,
                            online=True, schema=[Field(name=f"f{i}", dtype=Float64) for i in range(10)])
'''


# ----------------------------------------------------------------------------- clients (own processes)


def _request(port: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /get-online-features HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (port, len(data), data))


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
    await reader.readexactly(length)
    return head[9:12]


def small_load(port: int, entities: int, duration: float, warmup: float, rate: float = RATE,
               connections: int = CONNECTIONS) -> dict[str, Any]:
    """Single-key requests at a fixed ``rate`` (open loop, as wrk2 does); latency stats after ``warmup``.

    Each request has a scheduled send time; its latency runs from that time, not from when a
    free connection sent it. A closed loop (send, wait, send) would send one request during a
    4-second stall and count one slow request out of thousands: the stall would vanish from p99.
    """
    rng = random.Random(7)
    requests = [_request(port, {"features": FEATURES, "entities": {"user_id": [rng.randrange(entities)]}})
                for _ in range(500)]
    latencies: list[int] = []
    errors = 0
    start = stop = 0.0
    slots = iter(range(10**9))

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            i = next(slots)
            due = start + i / rate
            if due >= stop:
                break
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            status = await _exchange(reader, writer, requests[i % len(requests)])
            if due >= start + warmup:
                latencies.append(int((time.perf_counter() - due) * 1e9))
                errors += status != b"200"
        writer.close()

    async def run() -> None:
        nonlocal start, stop
        start = time.perf_counter() + 0.2
        stop = start + warmup + duration
        await asyncio.gather(*[worker() for _ in range(connections)])

    asyncio.run(run())
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "errors": errors, "rate": rate, "p50_ms": round(latencies[n // 2] / 1e6, 3),
            "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] / 1e6, 3),
            "max_ms": round(latencies[-1] / 1e6, 3)}


def heavy_load(port: int, keys: int, entities: int, duration: float) -> dict[str, Any]:
    """``keys``-key requests back to back for ``duration`` seconds; how long each took."""
    body = _request(port, {"features": FEATURES, "entities": {"user_id": [i % entities for i in range(keys)]}})
    times: list[float] = []
    errors = 0

    async def run() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**26)
        stop = time.perf_counter() + duration
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            errors += await _exchange(reader, writer, body) != b"200"
            times.append(time.perf_counter() - t0)
        writer.close()

    asyncio.run(run())
    return {"requests": len(times), "errors": errors, "p50_s": round(statistics.median(times), 3) if times else None}


def _client(kind: str, port: int, entities: int, duration: float, extra: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.serving_isolation", f"--{kind}", str(port),
                             "--entities", str(entities), "--duration", str(duration), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=600)
    if proc.returncode:
        raise RuntimeError(f"a load client failed: {err[-2000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- setup


def build(base: Path, entities: int, online_store: str) -> tuple[Any, Path]:
    """The lake, its features materialized by Feast, and a lake.toml for ``lake features serve``."""
    import numpy as np
    import pandas as pd

    from lake import Lake, load_settings
    from lake.features.apply import apply
    from lake.features.materialize import materialize

    feast: dict[str, Any] = {"project": "iso_" + uuid.uuid4().hex[:8], "online_store": online_store}
    if online_store == "redis":
        feast["redis_url"] = "127.0.0.1:6379"
    lake = Lake(load_settings({"root": str(base / "lake"), "feast": feast}, env={}, config_file=False))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((entities, 10)).round(6), columns=[f"f{i}" for i in range(10)])
    frame.insert(0, "user_id", np.arange(entities, dtype="int64"))
    frame["event_timestamp"] = pd.Timestamp("2024-05-01", tz="UTC")
    lake.table("gold.user_features").write(frame)
    repo = base / "repo"
    repo.mkdir()
    (repo / "definitions.py").write_text(REPO)
    apply(lake, repo)
    start = time.perf_counter()
    materialize(lake)
    print(f"materialized {entities:,} entities x 10 features into {online_store} in {time.perf_counter() - start:.1f}s")
    config = base / "lake.toml"
    config.write_text(f"root = {json.dumps(str(base / 'lake'))}\n[feast]\n"
                      + "".join(f"{k} = {json.dumps(v)}\n" for k, v in feast.items()))
    return lake, config


def _serve(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "lake.cli.main", "--config", str(config), "features", "serve",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"lake features serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError("lake features serve did not become healthy")


def measure(config: Path, env: dict[str, str], entities: int, keys: int, duration: float,
            warmup: float) -> dict[str, Any]:
    import httpx

    from tests.services import free_port

    port = free_port()
    server = _serve(config, port, env)
    try:
        # One large request first: the worker process is up and warm before anything is timed.
        warm = httpx.post(f"http://127.0.0.1:{port}/get-online-features", timeout=600, json={
            "features": FEATURES, "entities": {"user_id": list(range(min(keys, 5_000)))}})
        assert warm.status_code == 200, warm.text[:300]
        idle = _result(_client("small", port, entities, min(duration, 5.0), ["--warmup", str(warmup)]))
        heavy = _client("heavy", port, entities, duration + 1.5, ["--keys", str(keys)])
        time.sleep(1.0)  # the first large request is in flight
        loaded = _result(_client("small", port, entities, duration, ["--warmup", "0"]))
        large = _result(heavy)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return {"idle": idle, "under_load": loaded, "large_requests": large}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 entities and keys, short runs: under a minute")
    parser.add_argument("--entities", type=int, default=None, help="entities in the store (default 100,000)")
    parser.add_argument("--keys", type=int, default=None, help="entity rows per large request (default 100,000)")
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per phase")
    parser.add_argument("--online-store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--small", type=int, default=None, help=argparse.SUPPRESS)  # client processes
    parser.add_argument("--heavy", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.small is not None or args.heavy is not None:
        args.entities = args.entities or 100_000
        args.keys = args.keys or args.entities
    if args.small is not None:
        print(json.dumps(small_load(args.small, args.entities, args.duration, args.warmup)))
        return
    if args.heavy is not None:
        print(json.dumps(heavy_load(args.heavy, args.keys, args.entities, args.duration)))
        return
    args.entities = args.entities or (20_000 if args.quick else 100_000)
    args.keys = args.keys or args.entities
    duration = args.duration or (5.0 if args.quick else 30.0)
    warmup = 1.0 if args.quick else 2.0
    base = scratch_dir("serving_isolation")
    lake, config = build(base, args.entities, args.online_store)
    env = {**os.environ, "LAKE_CONFIG": str(config)}
    sides = {"protected": env,
             "unprotected": {**env, "LAKE_FEAST_OFFLOAD_KEYS": str(lake.settings.feast.max_keys_per_request)}}
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, side_env in sides.items():
            results[name] = stats = measure(config, side_env, args.entities, args.keys, duration, warmup)
            print(f"  {name:11s} single-key idle p50/p99 {stats['idle']['p50_ms']}/{stats['idle']['p99_ms']} ms; "
                  f"under {args.keys:,}-key load p50/p99 {stats['under_load']['p50_ms']}/"
                  f"{stats['under_load']['p99_ms']} ms (max {stats['under_load']['max_ms']} ms); large requests: "
                  f"{stats['large_requests']['requests']} at {stats['large_requests']['p50_s']} s each")
    finally:
        if args.online_store == "redis":
            _cleanup_redis(lake.settings.feast.project)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    for name, stats in results.items():
        assert stats["idle"]["errors"] == stats["under_load"]["errors"] == stats["large_requests"]["errors"] == 0, (
            name, stats)
    value = results["protected"]["under_load"]["p99_ms"]
    baseline = results["unprotected"]["under_load"]["p99_ms"]
    emit({
        "benchmark": "serving_isolation",
        "metric": f"single_key_p99_ms_under_{args.keys}_key_requests",
        "value": value,
        "unit": "ms",
        "baseline": "unprotected: every request on the event loop",
        "baseline_value": baseline,
        "ratio": round(value / baseline, 4),
        "sides": results,
        "entities": args.entities,
        "keys_per_large_request": args.keys,
        "features": len(FEATURES),
        "online_store": args.online_store,
        "duration_s": duration,
        "cpus": os.cpu_count(),
    })


def _cleanup_redis(project: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    suffix = project.encode()
    batch = [k for k in client.scan_iter(count=5000) if k.endswith(suffix)]
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i:i + 1000])


if __name__ == "__main__":
    main()
