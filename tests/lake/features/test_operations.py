"""Operating the feature server: ``/metrics``, ``lake features apply`` under load with no failed
request, and a graceful shutdown (SIGTERM lets the request in flight finish).

The servers run as a user starts them (``lake features serve`` in a subprocess); the load comes
from a second process.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lake.features.materialize import materialize
from lake.features.server import create_app
from lake.lakehouse import Lake
from tests.lake.features.conftest import REPO, FeatureLake, build
from tests.lake_server import lake_command, lake_env, running, wait_healthy
from tests.services import free_port

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips"]
DRIVERS = [1, 2, 3]
NEW_VIEW = '''
driver_trips = FeatureView(name="driver_trips", entities=[driver], ttl=timedelta(hours=48), source=stats_source,
                           online=True, schema=[Field(name="trips", dtype=Int64)])
'''


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def settings_toml(fl: FeatureLake, path: Path, **feast: Any) -> Path:
    """The lake's settings as the lake.toml a user would write for ``lake features serve``."""
    s = fl.lake.settings
    lines = [f"root = {json.dumps(s.root_uri)}", "[catalog]", f"url = {json.dumps(s.catalog_url)}", "[feast]",
             f"project = {json.dumps(s.feast.project)}", f"online_store = {json.dumps(s.feast.online_store)}",
             f"redis_url = {json.dumps(s.feast.redis_url)}", f"repo = {json.dumps(str(fl.repo))}"]
    if s.feast.registry is not None:
        lines.append(f"registry = {json.dumps(s.feast.registry.get_secret_value())}")
    lines += [f"{k} = {json.dumps(v)}" for k, v in feast.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def materialized(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureLake:
    fl = build("embedded", tmp_path, request)
    materialize(fl.lake)
    return fl


def test_metrics_endpoint_counts_requests_by_endpoint_service_and_status(materialized: FeatureLake) -> None:
    app = create_app(materialized.lake)

    async def go() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
            for _ in range(3):
                ok = await client.post("/get-online-features", json={"features": FEATURES,
                                                                      "entities": {"driver_id": DRIVERS}})
                assert ok.status_code == 200
            served = await client.post("/get-online-features", json={"feature_service": "driver_model",
                                                                      "entities": {"driver_id": [1001]}})
            assert served.status_code == 200
            unknown = await client.post("/get-online-features", json={"features": ["driver_stats:nope"],
                                                                       "entities": {"driver_id": [1]}})
            assert unknown.status_code == 404
            for path in ("/made-up-1", "/made-up-2"):
                assert (await client.get(path)).status_code == 404
            response = await client.get("/metrics")
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
            return response.text

    before = samples(asyncio.run(_scrape(app)))
    try:
        after = samples(asyncio.run(go()))
    finally:
        app.close()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    endpoint = {"server": "features", "endpoint": "/get-online-features"}
    assert delta("lake_http_requests_total", **endpoint, status="200") == 4
    assert delta("lake_http_requests_total", **endpoint, status="404") == 1
    # Made-up paths share one label value: a client cannot grow the number of series.
    assert delta("lake_http_requests_total", server="features", endpoint="other", status="404") == 2
    assert not any("made-up" in str(labels) for _, labels in after)
    assert delta("lake_http_request_duration_seconds_count", **endpoint) == 5
    assert delta("lake_feature_request_duration_seconds_count", service="features") == 3
    assert delta("lake_feature_request_duration_seconds_count", service="driver_model") == 1
    assert delta("lake_feature_request_keys_sum", service="features") == 3 * len(DRIVERS)
    assert delta("lake_feature_request_keys_bucket", service="features", le="5.0") == 3
    assert delta("lake_feature_request_keys_bucket", service="features", le="2.0") == 0
    assert delta("lake_online_store_read_duration_seconds_count", backend="sqlite") == 4


async def _scrape(app: Any) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
        return (await client.get("/metrics")).text


def test_metrics_need_a_token_once_tokens_exist_unless_public(materialized: FeatureLake) -> None:
    lake = materialized.lake
    info, token = lake.catalog.create_token("svc:prometheus")
    try:
        closed = create_app(lake)
        assert asyncio.run(_status(closed, "/metrics")) == 401
        assert asyncio.run(_status(closed, "/metrics", token)) == 200
        closed.close()
        public = create_app(Lake(lake.settings.model_copy(update={"metrics": lake.settings.metrics.model_copy(
            update={"public": True})})))
        assert asyncio.run(_status(public, "/metrics")) == 200
        assert asyncio.run(_status(public, "/get-online-features")) == 401
        public.close()
        off = create_app(Lake(lake.settings.model_copy(update={"metrics": lake.settings.metrics.model_copy(
            update={"enabled": False})})))
        assert asyncio.run(_status(off, "/metrics", token)) == 404
        off.close()
    finally:
        lake.catalog.revoke_token(info.id)


async def _status(app: Any, path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
        return (await client.get(path, headers=headers)).status_code


LOAD = textwrap.dedent('''
    import json, sys, time
    import httpx
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    body = {"features": ["driver_stats:conv_rate", "driver_stats:trips"], "entities": {"driver_id": [1, 2]}}
    statuses, failures, started = {}, [], time.time()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while time.time() - started < seconds:
            try:
                response = client.post("/get-online-features", json=body)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code != 200:
                    failures.append(response.text[:200])
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
    print(json.dumps({"statuses": statuses, "failures": failures[:5], "errors": len(failures)}))
''')


@pytest.mark.slow
def test_apply_under_load_changes_what_is_served_without_a_failed_request(materialized: FeatureLake,
                                                                          tmp_path: Path) -> None:
    fl = materialized
    config = settings_toml(fl, tmp_path / "lake.toml", registry_refresh_seconds=0.5)
    port, env = free_port(), lake_env()
    base = f"http://127.0.0.1:{port}"
    new = {"features": ["driver_trips:trips"], "entities": {"driver_id": DRIVERS}}
    with running(["--config", str(config), "features", "serve", "--port", str(port)], port, env=env,
                 log=tmp_path / "serve.log"):
        wait_healthy(base)
        assert httpx.post(base + "/get-online-features", json=new).status_code == 404
        load = subprocess.Popen([sys.executable, "-c", LOAD, str(port), "12"], stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(2)
            (fl.repo / "drivers.py").write_text(REPO.replace("TTL_HOURS", "48") + NEW_VIEW)
            for command in (["features", "apply"], ["features", "materialize", "driver_trips"]):
                done = subprocess.run(lake_command("--config", str(config), *command), env=env, capture_output=True,
                                      text=True, timeout=300)
                assert done.returncode == 0, done.stderr
            deadline = time.time() + 30
            while (answer := httpx.post(base + "/get-online-features", json=new)).status_code != 200:
                assert time.time() < deadline, f"the new view was never served: {answer.text}"
                time.sleep(0.2)
            served = {n: c["values"] for n, c in zip(answer.json()["metadata"]["feature_names"],
                                                     answer.json()["results"], strict=True)}
            # The same source, materialized by the same code: the new view serves what the old one does.
            old = httpx.post(base + "/get-online-features", json={"features": ["driver_stats:trips"],
                                                                  "entities": {"driver_id": DRIVERS}}).json()
            assert served["trips"] == old["results"][1]["values"] and None not in served["trips"]
            out, _ = load.communicate(timeout=60)
        finally:
            if load.poll() is None:
                load.kill()
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["errors"] == 0, stats
    assert stats["statuses"]["200"] > 50, stats


@pytest.mark.slow
def test_sigterm_lets_the_request_in_flight_finish(materialized: FeatureLake, tmp_path: Path) -> None:
    """The request's headers are in when SIGTERM arrives; its body comes after: it is still answered, in full."""
    config = settings_toml(materialized, tmp_path / "lake.toml")
    port = free_port()
    body = json.dumps({"features": FEATURES, "entities": {"driver_id": DRIVERS}}).encode()
    with running(["--config", str(config), "features", "serve", "--port", str(port)], port,
                 log=tmp_path / "serve.log") as proc:
        wait_healthy(f"http://127.0.0.1:{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10]))
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert proc.poll() is None, "the server quit with a request in flight"
            conn.sendall(body[10:])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        # uvicorn re-raises the signal once it has shut down: the exit says SIGTERM, as for any process it stops.
        assert proc.wait(30) in (0, -signal.SIGTERM)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    result = json.loads(payload)
    assert result["metadata"]["feature_names"] == ["driver_id", "conv_rate", "trips"]
    assert result["results"][0]["values"] == DRIVERS
