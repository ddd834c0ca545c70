"""Online serving: 1 entity x 50 features from Redis, the lake's reader and server vs Feast's.

One feature view of 50 double features over a gold table (50,000 entities; ``--quick``:
5,000), materialized into Redis by Feast itself, file registry. Same data, same run:

- Python: ``lake.features.online`` vs Feast's ``FeatureStore.get_online_features``
  (``.to_dict()`` both), one entity per call, p50/p99.
- HTTP: the lean server (``lake.features.server.serve``, one worker) vs stock
  ``feast serve`` (one worker; by default with its access log and gunicorn's worker
  recycling off, so Feast is not charged for logging or restarts: ``--feast-flags ''``
  runs it exactly as shipped), both in their own process, driven by a
  load generator in a third process (raw HTTP/1.1 keep-alive connections on asyncio) at
  1, 8 and 32 concurrent clients: p50/p99 latency and requests per second, the median
  of ``--repeat`` interleaved runs (3; ``--quick``: 2 runs of 1.5 s).

Headline ``value``: the lean server's p99 at 1 client, in ms (target < 2 ms);
``ratio`` = that p99 / Feast's p99 at 1 client; ``ratio_throughput_<c>`` = lean server
requests/s / Feast requests/s at ``c`` clients (target >= 2); ``ratio_python_p50`` =
Python read p50 / Feast SDK p50. Responses are checked equal (values, statuses, times)
before anything is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import pickle
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

FEATURES = [f"user_features:f{i:02d}" for i in range(50)]
REPO = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(name="bench_src", path="gold.user_features", file_format=DeltaFormat(),
                    timestamp_field="event_timestamp")
user_features = FeatureView(name="user_features", entities=[user], ttl=timedelta(days=3650), source=source,
                            online=True, schema=[Field(name=f"f{i:02d}", dtype=Float64) for i in range(50)])
'''


# ----------------------------------------------------------------------------- load generator


async def _client(port: int, bodies: list[bytes], start: float, stop: float, out: list[int], errors: list[int]) -> None:
    """One keep-alive connection in a loop; reconnects when the server closes it (counted as an error if mid-request)."""
    i = random.randrange(len(bodies))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop:
        now = time.perf_counter()
        t0 = time.perf_counter_ns()
        writer.write(bodies[i % len(bodies)])
        i += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, False
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
                close |= line.startswith(b"connection:") and b"close" in line
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            errors.append(1)
            head, close = b"", True
        elapsed = time.perf_counter_ns() - t0
        if now >= start and head:
            out.append(elapsed)
            if head[9:12] != b"200":
                errors.append(1)
        if close:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()



def stop_servers(procs: list[subprocess.Popen[Any]]) -> None:
    """Ask every server to stop, then kill those still up after 30 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def median_stats(stats_list: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the rounds of one side."""
    return {k: round(statistics.median(s[k] for s in stats_list), 3) for k in stats_list[0]}

def _requests(bodies: list[dict[str, Any]], port: int) -> list[bytes]:
    out = []
    for body in bodies:
        data = json.dumps(body).encode()
        out.append(b"POST /get-online-features HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (port, len(data), data))
    return out


def load(port: int, bodies_file: str, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    """Drive ``concurrency`` keep-alive connections for ``warmup + duration`` seconds; stats of the last part."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    bodies = _requests(json.loads(Path(bodies_file).read_text()), port)
    latencies: list[int] = []
    errors: list[int] = []

    async def run() -> None:
        start = time.perf_counter() + warmup
        await asyncio.gather(*[_client(port, bodies, start, start + duration, latencies, errors)
                               for _ in range(concurrency)])

    asyncio.run(run())
    latencies.sort()
    n = len(latencies)
    return {"requests": n, "errors": len(errors), "rps": round(n / duration, 1),
            "p50_ms": round(latencies[n // 2] / 1e6, 3), "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] / 1e6, 3),
            "mean_ms": round(statistics.fmean(latencies) / 1e6, 3)}


def _drive(port: int, bodies_file: Path, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.features_serving", "--load", str(port), "--bodies",
                          str(bodies_file), "--concurrency", str(concurrency), "--duration", str(duration),
                          "--warmup", str(warmup)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the load generator failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- setup


def build(base: Path, entities: int) -> Any:
    import numpy as np
    import pandas as pd

    from lake import Lake, load_settings
    from lake.features.apply import apply
    from lake.features.repo import feature_store

    project = "bench_" + uuid.uuid4().hex[:8]
    settings = load_settings({"root": str(base / "lake"), "feast": {
        "project": project, "online_store": "redis", "redis_url": "127.0.0.1:6379"}}, env={}, config_file=False)
    lake = Lake(settings)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((entities, 50)).round(6), columns=[f"f{i:02d}" for i in range(50)])
    frame.insert(0, "user_id", np.arange(entities, dtype="int64"))
    frame["event_timestamp"] = pd.Timestamp("2024-05-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 86_400, entities), unit="s")
    lake.table("gold.user_features").write(frame)
    repo = base / "repo"
    repo.mkdir()
    (repo / "definitions.py").write_text(REPO)
    apply(lake, repo)
    start = time.perf_counter()
    feature_store(lake).materialize(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
    print(f"materialized {entities:,} entities x 50 features into Redis with Feast in {time.perf_counter() - start:.1f}s")
    return lake


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, name: str) -> None:
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{name} did not become healthy on port {port}")


def _start_servers(lake: Any, base: Path, feast_flags: list[str]) -> tuple[dict[str, int], list[subprocess.Popen[bytes]]]:
    from lake.features.repo import feast_dir
    from tests.services import free_port

    (base / "settings.pkl").write_bytes(pickle.dumps(lake.settings))
    ports = {"lake": free_port(), "feast": free_port()}
    code = ("import pickle; from lake.lakehouse import Lake; from lake.features.server import serve; "
            f"serve(Lake(pickle.load(open({str(base / 'settings.pkl')!r}, 'rb'))), port={ports['lake']}, "
            "workers=1, log_requests=False)")
    feast_bin = str(Path(sys.executable).with_name("feast"))
    commands = [[sys.executable, "-c", code],
                [feast_bin, "-c", str(feast_dir(lake)), "serve", "-p", str(ports["feast"]), *feast_flags]]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for cmd in commands]
    for (name, port), proc in zip(ports.items(), procs, strict=True):
        _wait_healthy(proc, port, name)
    return ports, procs


def _python_latency(lake: Any, keys: list[int], rounds: int) -> dict[str, dict[str, float]]:
    from lake.features.online import OnlineReader
    from lake.features.repo import feature_store

    reader, store = OnlineReader(lake), feature_store(lake)
    sides = {"lake": lambda k: reader.get({"user_id": [k]}, FEATURES).to_dict(),
             "feast": lambda k: store.get_online_features(FEATURES, [{"user_id": k}]).to_dict()}
    for k in keys[:20]:
        assert sides["lake"](k) == sides["feast"](k)
    gc.collect()
    gc.freeze()  # the frame and the imports would otherwise make full collections land in both sides' p99
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(rounds):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn(keys[i % len(keys)])
            times[name].append(time.perf_counter() - t0)
    out = {}
    for name, values in times.items():
        values.sort()
        out[name] = {"p50_ms": round(values[len(values) // 2] * 1e3, 4),
                     "p99_ms": round(values[int(len(values) * 0.99)] * 1e3, 4)}
    return out


def _check_same_answers(ports: dict[str, int], keys: list[int]) -> None:
    import httpx

    for key in keys:
        answers = []
        for port in ports.values():
            body = httpx.post(f"http://127.0.0.1:{port}/get-online-features",
                              json={"features": FEATURES, "entities": {"user_id": [key]}}).json()
            answers.append(dict(zip(body["metadata"]["feature_names"], body["results"], strict=True)))
        for name, col in answers[1].items():  # Feast's Redis store calls a missing entity PRESENT
            if name != "user_id" and col["values"] == [None]:
                col["statuses"] = ["NOT_FOUND"]
        assert answers[0] == answers[1], f"the servers disagree on user {key}"


def _cleanup_redis(project: str) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    suffix = project.encode()
    batch = [k for k in client.scan_iter(count=5000) if k.endswith(suffix)]
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i:i + 1000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5,000 entities, short load runs: under a minute")
    parser.add_argument("--entities", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per load run")
    parser.add_argument("--repeat", type=int, default=None, help="load runs per server and concurrency (median)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--feast-flags", default="--no-access-log --max-requests 0",
                        help="extra `feast serve` options, as --feast-flags='...' ('' for its defaults: access log, worker recycling)")
    parser.add_argument("--load", type=int, default=None, help=argparse.SUPPRESS)  # the load-generator process
    parser.add_argument("--bodies", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        print(json.dumps(load(args.load, args.bodies, args.concurrency, args.duration, args.warmup)))
        return
    entities = args.entities or (5_000 if args.quick else 50_000)
    duration = args.duration or (1.5 if args.quick else 10.0)
    warmup = 0.5 if args.quick else 2.0
    repeat = args.repeat or (2 if args.quick else 3)
    base = scratch_dir("features_serving")
    lake = build(base, entities)
    project = lake.settings.feast.project
    procs: list[subprocess.Popen[bytes]] = []
    try:
        rng = random.Random(1)
        keys = [rng.randrange(entities) for _ in range(1000)]
        python = _python_latency(lake, keys, 300 if args.quick else 3000)
        print(f"python read, 1 entity x 50 features: {python}")
        ports, procs = _start_servers(lake, base, args.feast_flags.split())
        _check_same_answers(ports, keys[:10] + [entities + 5])
        bodies = base / "bodies.json"
        bodies.write_text(json.dumps([{"features": FEATURES, "entities": {"user_id": [k]}} for k in keys]))
        http: dict[str, dict[str, Any]] = {}
        for clients in (1, 8, 32):
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
            for _ in range(repeat):  # interleaved, so that machine noise hits both alike
                for name, port in ports.items():
                    stats = _drive(port, bodies, clients, duration, warmup)
                    assert name != "lake" or stats["errors"] == 0, f"the lean server failed requests: {stats}"
                    runs[name].append(stats)
            for name, stats_list in runs.items():
                http[f"{name}_c{clients}"] = stats = median_stats(stats_list)
                print(f"  {name:5s} {clients:2d} clients (median of {repeat}): {stats}")
    finally:
        stop_servers(procs)
        _cleanup_redis(project)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    result: dict[str, Any] = {
        "benchmark": "features_serving",
        "metric": "http_p99_ms_1_client",
        "value": http["lake_c1"]["p99_ms"],
        "unit": "ms",
        "baseline": "feast_serve",
        "ratio": round(http["lake_c1"]["p99_ms"] / http["feast_c1"]["p99_ms"], 3),
    }
    for clients in (1, 8, 32):
        result[f"ratio_throughput_{clients}"] = round(http[f"lake_c{clients}"]["rps"] / http[f"feast_c{clients}"]["rps"], 2)
    result["ratio_python_p50"] = round(python["lake"]["p50_ms"] / python["feast"]["p50_ms"], 3)
    result.update({
        "http": http, "python": python, "entities": entities, "features": 50, "duration_s": duration,
        "repeat": repeat,
        "feast_serve_flags": args.feast_flags,
        "targets": {"value": 2.0, "ratio_throughput_c": ">= 2 (lake requests/s over Feast's)"},
        "cpus": os.cpu_count(),
    })
    emit(result)


if __name__ == "__main__":
    main()
