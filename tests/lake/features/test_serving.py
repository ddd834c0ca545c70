"""Online serving: Python reads and the HTTP server against Feast's own answers, and the serving log.

Every test runs on the embedded deployment (file registry, SQLite online store) and on
production (SQL registry on PostgreSQL, Redis), filled by Feast's own materialization.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import pickle
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from lake.features.online import (
    OnlineReader,
    OnlineRequestError,
    OnlineStoreError,
    RedisStore,
    SqliteStore,
    UnknownFeatureError,
    get_online_features,
)
from lake.features.repo import feature_store
from lake.features.server import FeatureServer, create_app
from lake.features.serving_log import ServingLog, log_table_name
from lake.lakehouse import Lake
from tests.conftest import make_settings
from tests.lake.features.conftest import REPO, FeatureLake, driver_rating, driver_stats, write_repo
from tests.lake.features.test_operations import samples
from tests.services import free_port, reachable, require

ON_DEMAND = '''
import pandas as pd
from feast import RequestSource
from feast.on_demand_feature_view import on_demand_feature_view

bonus = RequestSource(name="bonus", schema=[Field(name="bonus", dtype=Float64)])


@on_demand_feature_view(sources=[driver_stats, bonus], schema=[Field(name="adjusted", dtype=Float64)])
def adjusted_rate(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame()
    out["adjusted"] = inputs["conv_rate"].fillna(0.0) + inputs["bonus"]
    return out


scored = FeatureService(name="scored", features=[driver_stats[["city"]], adjusted_rate])
'''
CITIES = '''
from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Int64

city = Entity(name="city", join_keys=["city_name"], value_type=ValueType.STRING)
city_stats = FeatureView(
    name="city_stats", entities=[city], ttl=timedelta(days=3650), online=True,
    source=FileSource(name="city_src", path="gold.city_stats", file_format=DeltaFormat(),
                      timestamp_field="event_timestamp"),
    schema=[Field(name="population", dtype=Int64)])
'''
CITY_STATS = pd.DataFrame({"city_name": ["paris", "lyon", "1001"], "population": [2_100_000, 520_000, 7],
                           "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC")})
FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city", "driver_rating:rating"]
DRIVERS = [3, 1, 999, 3, 0, 7]  # a missing driver and a repeated one


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    """A PostgreSQL database for the registry and catalog of the module's production lake."""
    from tests.conftest import pg_database

    with pg_database("lake_serving_") as url:
        yield url


@pytest.fixture(scope="module", params=["embedded", pytest.param("production",
                                                                 marks=[pytest.mark.postgres, pytest.mark.redis])])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureLake]:
    """Driver features with an on-demand view, applied and materialized by Feast itself (once per deployment)."""
    from tests.lake.features.conftest import cleanup_redis

    base = tmp_path_factory.mktemp(request.param)
    feast: dict[str, Any] = {"project": "t" + uuid.uuid4().hex[:10]}
    extra: dict[str, Any] = {}
    if request.param == "production":
        require("Redis", "127.0.0.1", 6379)
        pg = request.getfixturevalue("pg_module_url")
        feast.update(registry=pg, online_store="redis", redis_url="127.0.0.1:6379")
        extra["catalog"] = {"url": pg}
    lake = Lake(make_settings(root=str(base / "lake"), feast=feast, **extra))
    lake.table("gold.driver_stats").write(driver_stats())
    lake.table("gold.driver_rating").write(driver_rating())
    lake.table("gold.city_stats").write(CITY_STATS)
    fl = FeatureLake(lake, write_repo(base / "repo"), request.param)
    (fl.repo / "drivers.py").write_text(REPO.replace("TTL_HOURS", "48") + ON_DEMAND)
    (fl.repo / "cities.py").write_text(CITIES)
    fl.apply()
    feature_store(lake).materialize(dt.datetime(2023, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC))
    yield fl
    cleanup_redis(fl)


@pytest.fixture
def app(served: FeatureLake) -> Iterator[FeatureServer]:
    server = create_app(served.lake)
    yield server
    server.close()


def _same(value: Any) -> Any:
    """NaN compares equal to NaN here."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


def _by_name(body: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(body["metadata"]["feature_names"], body["results"], strict=True))


def _call(app: Any, method: str, path: str, body: Any = None, raw: bytes | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            if raw is not None:
                return await client.request(method, path, content=raw)
            return await client.request(method, path, json=body)

    return asyncio.run(go())


REQUESTS: list[dict[str, Any]] = [
    {"features": FEATURES},
    {"features": FEATURES, "full_feature_names": True},
    {"feature_service": "driver_model"},
    {"feature_service": "scored", "extra": {"bonus": [0.5, 1.0, 2.0, 0.5, 0.25, 0.0]}},
    {"features": ["adjusted_rate:adjusted", "driver_stats:trips"], "full_feature_names": True,
     "extra": {"bonus": [1.0] * len(DRIVERS)}},
]


def _feast(fl: FeatureLake, req: dict[str, Any], entities: dict[str, list[Any]]) -> Any:
    store = feature_store(fl.lake)
    features = store.get_feature_service(req["feature_service"]) if "feature_service" in req else req["features"]
    return store.get_online_features(features, entities, full_feature_names=req.get("full_feature_names", False))


@pytest.mark.parametrize("req", REQUESTS, ids=["features", "full_names", "service", "on_demand_service", "on_demand"])
def test_python_reads_equal_feast(served: FeatureLake, req: dict[str, Any]) -> None:
    entities = {"driver_id": DRIVERS, **req.get("extra", {})}
    want = _feast(served, req, entities).to_dict()
    got = get_online_features(served.lake, entities, req.get("features"), feature_service=req.get("feature_service"),
                              full_feature_names=req.get("full_feature_names", False))
    assert _same(got) == _same(want)
    assert list(got)[0] == "driver_id" and got["driver_id"] == DRIVERS
    features = [n for n in got if n not in entities]
    assert all(got[f][DRIVERS.index(999)] is None for f in features if "adjusted" not in f)
    # Rows (a list of dicts) are the same request.
    rows = [dict(zip(entities, values, strict=True)) for values in zip(*entities.values(), strict=True)]
    again = get_online_features(served.lake, rows, req.get("features"), feature_service=req.get("feature_service"),
                                full_feature_names=req.get("full_feature_names", False))
    assert _same(again) == _same(got)


@pytest.mark.parametrize("req", REQUESTS, ids=["features", "full_names", "service", "on_demand_service", "on_demand"])
def test_http_answers_as_feast_serve(served: FeatureLake, app: FeatureServer, req: dict[str, Any]) -> None:
    from feast.feature_server_utils import convert_response_to_dict

    entities = {"driver_id": DRIVERS, **req.get("extra", {})}
    body = {k: v for k, v in req.items() if k != "extra"} | {"entities": entities}
    response = _call(app, "POST", "/get-online-features", body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json" and len(response.headers["x-request-id"]) == 16
    got = response.json()
    assert set(got) == {"metadata", "results"} and got["metadata"]["feature_names"][0] == "driver_id"
    want = convert_response_to_dict(_feast(served, req, entities).proto)
    want_cols, got_cols = _by_name(want), _by_name(got)
    assert list(got_cols) == ["driver_id", *[n for n in got_cols if n != "driver_id"]]
    assert set(got_cols) == set(want_cols)
    missing = DRIVERS.index(999)
    for name, col in want_cols.items():
        if name != "driver_id" and "adjusted" not in name:
            # Feast's Redis store calls a missing entity PRESENT; both stores here say NOT_FOUND.
            col["statuses"][missing] = "NOT_FOUND"
    assert _same(got_cols) == _same(want_cols)


def test_missing_entity_is_not_found(served: FeatureLake, app: FeatureServer) -> None:
    response = _call(app, "POST", "/get-online-features",
                     {"features": FEATURES, "entities": {"driver_id": [424242]}})
    assert response.status_code == 200
    cols = _by_name(response.json())
    assert cols["driver_id"] == {"values": [424242], "statuses": ["PRESENT"],
                                 "event_timestamps": ["1970-01-01T00:00:00Z"]}
    for name in ("conv_rate", "trips", "city", "rating"):
        assert cols[name] == {"values": [None], "statuses": ["NOT_FOUND"],
                              "event_timestamps": ["1970-01-01T00:00:00Z"]}


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"features": ["driver_stats:nope"], "entities": {"driver_id": [1]}}, 404, ["driver_stats", "'nope'", "conv_rate"]),
    ({"features": ["ghost_view:x"], "entities": {"driver_id": [1]}}, 404, ["'ghost_view'", "driver_stats"]),
    ({"feature_service": "ghost", "entities": {"driver_id": [1]}}, 404, ["'ghost'", "driver_model"]),
    ({"features": ["conv_rate"], "entities": {"driver_id": [1]}}, 422, ["'conv_rate'", "view:feature"]),
    ({"features": FEATURES}, 422, ["entities", "required"]),
    ({"features": FEATURES, "entities": {"driver_id": 1}}, 422, ["entities", "lists"]),
    ({"features": FEATURES, "entities": {"driver": [1]}}, 422, ["'driver_id'", "driver"]),
    ({"features": FEATURES, "entities": {"driver_id": [1, 2], "x": [1]}}, 422, ["same number"]),
    ({"features": FEATURES, "entities": {"driver_id": ["one"]}}, 422, ["'driver_id'", "INT64"]),
    ({"features": "driver_stats:trips", "entities": {"driver_id": [1]}}, 422, ["features", "list"]),
    ({"entities": {"driver_id": [1]}}, 422, ["features", "feature_service"]),
    ({"feature_service": "scored", "entities": {"driver_id": [1]}}, 422, ["'bonus'"]),
    ([1, 2], 422, ["JSON object"]),
])
def test_bad_requests_are_clear_4xx(served: FeatureLake, app: FeatureServer, body: Any, status: int,
                                    words: list[str]) -> None:
    response = _call(app, "POST", "/get-online-features", body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(w in detail for w in words), detail


def test_malformed_json_and_routes(served: FeatureLake, app: FeatureServer) -> None:
    response = _call(app, "POST", "/get-online-features", raw=b'{"features": [')
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]
    assert _call(app, "GET", "/get-online-features").status_code == 405
    assert _call(app, "GET", "/nowhere").status_code == 404


def test_python_errors(served: FeatureLake) -> None:
    with pytest.raises(UnknownFeatureError, match="no feature view 'ghost'"):
        get_online_features(served.lake, {"driver_id": [1]}, ["ghost:x"])
    with pytest.raises(OnlineRequestError, match="either features or feature_service"):
        get_online_features(served.lake, {"driver_id": [1]}, FEATURES, feature_service="driver_model")
    with pytest.raises(OnlineRequestError, match="would both be served as 'trips'"):
        get_online_features(served.lake, {"driver_id": [1]}, ["driver_stats:trips", "driver_stats:trips"])


def test_health(served: FeatureLake, app: FeatureServer) -> None:
    response = _call(app, "GET", "/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["project"] == served.lake.settings.feast.project
    # The online store goes away: 503 naming it, and reads fail with 503 too (not 500).
    project = app.reader.project
    app.reader.backend = (RedisStore(f"127.0.0.1:{free_port()}", project) if served.kind == "production"
                          else SqliteStore(Path(served.repo) / "gone" / "online.db", project))
    response = _call(app, "GET", "/health")
    assert response.status_code == 503 and "online store" in response.json()["detail"]
    with pytest.raises(OnlineStoreError, match="online store"):
        app.reader.get({"driver_id": [1]}, FEATURES)
    response = _call(app, "POST", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": [1]}})
    assert response.status_code == 503 and "online store" in response.json()["detail"]


def test_json_encoding_matches_feast_for_odd_values() -> None:
    import json

    from feast.protos.feast.types.Value_pb2 import Value

    from lake.features.online import OnlineResult
    from lake.features.server import dumps, encode

    values: list[list[Any]] = [[1, 2], [float("nan"), float("-inf")], ['a "quoted" é', None], [True, False],
                               [1e300, -0.0]]
    n = len(values)
    result = OnlineResult([f"c{i}" for i in range(n)], values, [["PRESENT", "NOT_FOUND"]] * n,
                          [["1970-01-01T00:00:00Z"] * 2] * n, [False] * n, [None] * n, 1, [])
    fast = json.loads(encode(result))
    assert fast == json.loads(dumps(result.to_response()))
    assert fast["results"][1]["values"] == ["NaN", "-Infinity"]  # as protobuf's JSON mapping (and Feast) write them
    with_proto = OnlineResult(["k", "t"], [[1], [Value(unix_timestamp_val=5)]], [["PRESENT"]] * 2,
                              [["1970-01-01T00:00:00Z"]] * 2, [False, True], [None, None], 1, [])
    assert json.loads(encode(with_proto))["results"][1]["values"] == [5]
    assert with_proto.to_dict()["t"] == [dt.datetime.fromtimestamp(5, dt.UTC)]


def test_registry_is_cached_then_refreshed(served: FeatureLake) -> None:
    reader = OnlineReader(served.lake, refresh_seconds=3600)
    first = reader.plan(FEATURES)
    assert reader.plan(FEATURES) is first  # resolved once, then from the cache
    with pytest.raises(UnknownFeatureError, match="no feature service 'late'"):
        reader.plan(feature_service="late")
    (served.repo / "drivers.py").write_text(REPO.replace("TTL_HOURS", "48") + ON_DEMAND
                                            + '\nlate = FeatureService(name="late", features=[driver_rating])\n')
    served.apply()
    with pytest.raises(UnknownFeatureError):  # the snapshot is cached until the next refresh
        reader.plan(feature_service="late")
    reader.refresh()
    assert reader.plan(feature_service="late").refs == ["driver_rating:rating"]
    assert reader.plan(FEATURES) is not first
    got = reader.get({"driver_id": [1]}, feature_service="late").to_dict()
    assert got == feature_store(served.lake).get_online_features(
        feature_store(served.lake).get_feature_service("late"), {"driver_id": [1]}).to_dict()


def _log(fl: FeatureLake) -> pd.DataFrame:
    return fl.lake.table(log_table_name(fl.lake.settings.feast.project)).to_pandas()


def test_serving_log_holds_what_was_served(served: FeatureLake) -> None:
    app = _logging_app(served)
    assert app.serving_log is not None and app.serving_log.table_name == "logs.serving_" + app.reader.project
    sent: list[dict[str, Any]] = [
        {"features": FEATURES, "entities": {"driver_id": DRIVERS}},
        {"features": FEATURES[:2], "entities": {"driver_id": [5]}, "full_feature_names": True},
        {"feature_service": "scored", "entities": {"driver_id": [1, 2], "bonus": [0.5, 1.5]}},
    ]
    answers = {}
    for body in sent:
        response = _call(app, "POST", "/get-online-features", body)
        assert response.status_code == 200
        answers[response.headers["x-request-id"]] = (body, response.json())
    assert app.serving_log is not None and app.serving_log.stats.rows_written == 0  # nothing on the request path
    app.close()
    stats = app.serving_log.stats
    assert (stats.rows_logged, stats.rows_written, stats.rows_dropped) == (9, 9, 0)
    logged = _log(served)
    logged = logged[logged["request_id"].isin(list(answers))]
    assert len(logged) == 9 and logged["request_id"].nunique() == 3
    assert str(logged["request_time"].dtype).startswith("datetime64") and "UTC" in str(logged["request_time"].dtype)
    for request_id, (body, answer) in answers.items():
        rows = logged[logged["request_id"] == request_id]
        cols = _by_name(answer)
        for name, col in cols.items():
            assert _same(rows[name].astype(object).where(rows[name].notna(), None).tolist()) == _same(col["values"])
        refs = body.get("features") or ["driver_stats:city", "adjusted_rate:adjusted"]
        assert set(rows["feature_refs"]) == {",".join(refs)}
        assert "bonus" not in rows.columns or rows["bonus"].isna().all()  # request data is not a served column
    assert {"driver_stats__conv_rate", "conv_rate", "adjusted", "city"} <= set(logged.columns)


def _logging_app(fl: FeatureLake, **options: Any) -> FeatureServer:
    """A server whose log flushes only when told to (or on close)."""
    app = create_app(fl.lake, log_requests=True)
    assert app.serving_log is not None
    app.serving_log.close()
    app.serving_log = ServingLog(fl.lake, app.reader.project, flush_seconds=3600, **options)
    return app


def test_serving_log_failures_never_break_serving(served: FeatureLake, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _logging_app(served, attempts=2)
    assert app.serving_log is not None

    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(type(served.lake.table("logs.x")), "write", broken)
    body = {"features": FEATURES, "entities": {"driver_id": [1, 2]}}
    first = _call(app, "POST", "/get-online-features", body)
    assert first.status_code == 200
    assert app.serving_log.flush() == 0  # failed, kept for a retry
    assert app.serving_log.stats.rows_pending == 2 and app.serving_log.stats.rows_dropped == 0
    second = _call(app, "POST", "/get-online-features", body)
    assert second.status_code == 200
    assert app.serving_log.flush() == 0
    stats = app.serving_log.stats
    assert stats.flush_failures == 2 and stats.rows_dropped == 2 and "disk full" in (stats.last_error or "")
    monkeypatch.undo()
    health = _call(app, "GET", "/health").json()
    assert health["serving_log"]["rows_dropped"] == 2
    app.close()
    ids = set(_log(served)["request_id"])
    assert second.headers["x-request-id"] in ids and first.headers["x-request-id"] not in ids  # retried, then dropped


def test_serving_log_buffer_limit(served: FeatureLake) -> None:
    log = ServingLog(served.lake, "limits", flush_seconds=3600, max_pending_rows=3)
    result = OnlineReader(served.lake).get({"driver_id": [1, 2]}, FEATURES)
    log.record("a", dt.datetime.now(dt.UTC), result)
    log.record("b", dt.datetime.now(dt.UTC), result)  # would exceed 3 pending rows: dropped
    assert (log.stats.rows_pending, log.stats.rows_dropped) == (2, 2)
    assert log.close().rows_written == 2


def test_serve_refuses_a_taken_port(served: FeatureLake) -> None:
    import socket

    from lake.errors import FeatureError
    from lake.features.server import serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(FeatureError, match="cannot listen on 127.0.0.1"):
            serve(served.lake, port=taken.getsockname()[1])


@pytest.mark.slow
def test_real_server_with_workers(served: FeatureLake, tmp_path: Path) -> None:
    """``serve()`` on a real socket, two worker processes, SIGTERM flushes the serving log."""
    port = free_port()
    settings = tmp_path / "settings.pkl"
    settings.write_bytes(pickle.dumps(served.lake.settings))
    code = ("import pickle, sys; from lake.lakehouse import Lake; from lake.features.server import serve; "
            f"serve(Lake(pickle.load(open({str(settings)!r}, 'rb'))), port={port}, workers=2, log_requests=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[3])
    try:
        deadline = time.time() + 240  # a bound for a loaded machine, not a speed check
        while not reachable("127.0.0.1", port):
            assert proc.poll() is None and time.time() < deadline, "the feature server did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):  # the first answers may wait for the second worker to start
                if client.get("/health").status_code == 200:
                    break
                time.sleep(0.2)
            assert client.get("/health").json()["status"] == "ok"
            want = get_online_features(served.lake, {"driver_id": DRIVERS}, FEATURES)
            ids = []
            for _ in range(20):
                response = client.post("/get-online-features", json={"features": FEATURES,
                                                                       "entities": {"driver_id": DRIVERS}})
                assert response.status_code == 200
                got = {n: c["values"] for n, c in _by_name(response.json()).items()}
                assert _same(got) == _same(want)
                ids.append(response.headers["x-request-id"])
            assert client.post("/get-online-features", json={"features": ["driver_stats:nope"],
                                                             "entities": {"driver_id": [1]}}).status_code == 404
            # Either worker answers /metrics with what both served (each flushes its tally every second).
            endpoint = (("endpoint", "/get-online-features"), ("server", "features"))
            for _ in range(50):
                counted = samples(client.get("/metrics").text)
                if counted.get(("lake_http_requests_total", (*endpoint, ("status", "200")))) == 20:
                    break
                time.sleep(0.1)
            assert counted[("lake_http_requests_total", (*endpoint, ("status", "200")))] == 20
            assert counted[("lake_feature_request_keys_sum", (("service", "features"),))] == 20 * len(DRIVERS)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    logged = _log(served)
    logged = logged[logged["request_id"].isin(ids)]
    assert logged["request_id"].nunique() == 20 and len(logged) == 20 * len(DRIVERS)


# --------------------------------------------------------------- the boundary


def _settings_toml(fl: FeatureLake, path: Path, **server: Any) -> Path:
    """The lake's settings as a lake.toml, as a user would write it for ``lake features serve``."""
    settings = fl.lake.settings
    lines = [f"root = {json.dumps(settings.root_uri)}", "[catalog]",
             f"url = {json.dumps(settings.catalog_url)}", "[feast]",
             f"project = {json.dumps(settings.feast.project)}",
             f"online_store = {json.dumps(settings.feast.online_store)}",
             f"redis_url = {json.dumps(settings.feast.redis_url)}"]
    if settings.feast.registry is not None:
        lines.append(f"registry = {json.dumps(settings.feast.registry.get_secret_value())}")
    lines.append("[server]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in server.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_entity_key_types_are_checked(served: FeatureLake, app: FeatureServer) -> None:
    ok = _call(app, "POST", "/get-online-features", {"features": ["city_stats:population"],
                                                    "entities": {"city_name": ["paris", "1001", "rome"]}})
    assert ok.status_code == 200, ok.text
    assert _by_name(ok.json())["population"]["values"] == [2_100_000, 7, None]
    for entities, words in [
        ({"city_name": [1001]}, "'city_name'[0] is 1001 (an integer); the join key 'city_name' takes a string"),
        ({"city_name": ["paris", 1.5]}, "'city_name'[1] is 1.5 (a float)"),
        ({"city_name": [True]}, "'city_name'[0] is True (a boolean)"),
    ]:
        response = _call(app, "POST", "/get-online-features", {"features": ["city_stats:population"],
                                                              "entities": entities})
        assert response.status_code == 422 and words in response.json()["detail"], response.text
    for value, words in [("1", "'1' (a string)"), (1.0, "1.0 (a float)"), (False, "False (a boolean)"),
                         (2**63, "out of range")]:
        response = _call(app, "POST", "/get-online-features",
                         {"features": FEATURES, "entities": {"driver_id": [1, value]}})
        assert response.status_code == 422 and "'driver_id'[1] is" in response.json()["detail"], response.text
        assert words in response.json()["detail"] and "INT64" in response.json()["detail"]
    with pytest.raises(OnlineRequestError, match="takes a string"):  # the Python API checks the same way
        get_online_features(served.lake, {"city_name": [1001]}, ["city_stats:population"])


def test_limits_and_malformed_bodies_are_4xx(served: FeatureLake) -> None:
    lake = Lake(served.lake.settings.model_copy(update={
        "feast": served.lake.settings.feast.model_copy(update={"max_keys_per_request": 1000}),
        "server": served.lake.settings.server.model_copy(update={"max_body_bytes": 64 * 1024})}))
    app = create_app(lake)
    try:
        too_many = _call(app, "POST", "/get-online-features", {"features": FEATURES,
                                                               "entities": {"driver_id": list(range(1001))}})
        assert too_many.status_code == 413 and "1001 rows" in too_many.json()["detail"]
        assert "max_keys_per_request" in too_many.json()["detail"]
        assert _call(app, "POST", "/get-online-features", {"features": FEATURES, "entities": {
            "driver_id": list(range(1000))}}).status_code == 200
        big = _call(app, "POST", "/get-online-features", raw=b'{"features": ["' + b"x" * 70_000 + b'"]}')
        assert big.status_code == 413
        for raw, status, words in [
            (b'{"features": ["driver_stats:trips"], "entities": {"driver_id": [[[[1]]]]}}', 422, "is a list"),
            (b'{"features": ["driver_stats:trips"], "entities": {"driver_id": [{"a": 1}]}}', 422, "is an object"),
            (b"[" * 50_000 + b"]" * 50_000, 400, "nest"),
            (b'{"entities": {"driver_id": [NaN]}, "features": ["driver_stats:trips"]}', 400, "NaN"),
            (b'{"features": ["driver_stats:trips"], "entities": {"driver_id": [1]}, "x": ' + b"[" * 5000
             + b"]" * 5000 + b"}", 400, "nest"),
        ]:
            response = _call(app, "POST", "/get-online-features", raw=raw)
            assert response.status_code in (status, 413 if len(raw) > 64 * 1024 else status), raw[:60]
            if response.status_code == status:
                assert words in response.json()["detail"], response.text
    finally:
        app.close()


def test_many_keys_read_in_chunks(served: FeatureLake, app: FeatureServer) -> None:
    """More keys than SQLite takes parameters in one statement: same answer as small reads."""
    import sqlite3

    if served.kind == "embedded":
        # This build of SQLite takes 250,000 parameters; most take 32,766, old ones 999: be one of those.
        conn = app.reader.backend._conn()  # type: ignore[attr-defined]
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    keys = [i % 40 for i in range(40_000)] + list(range(10_000, 45_000))  # repeats, misses, > 32766 distinct
    direct = app.reader.get({"driver_id": keys}, FEATURES).to_dict()  # this thread: the connection limited above
    response = _call(app, "POST", "/get-online-features", {"features": FEATURES, "entities": {"driver_id": keys}})
    assert response.status_code == 200, response.text[:300]
    got = {n: c["values"] for n, c in _by_name(response.json()).items()}
    want = get_online_features(served.lake, {"driver_id": list(range(40))}, FEATURES)
    for name in want:
        assert _same(got[name][:40]) == _same(want[name]) == _same(direct[name][:40])
        assert got[name][40:80] == got[name][:40]
        assert _same(direct[name]) == _same(got[name])
    assert all(v is None for v in got["trips"][40_000:])


def test_large_requests_are_served_by_a_worker_process(served: FeatureLake) -> None:
    lake = Lake(served.lake.settings.model_copy(update={
        "feast": served.lake.settings.feast.model_copy(update={"offload_keys": 10})}))
    app = create_app(lake)
    try:
        for n, offloaded in ((1, 0), (10, 0), (11, 1), (500, 2)):
            body = {"features": FEATURES, "entities": {"driver_id": [i % 30 for i in range(n)]}}
            response = _call(app, "POST", "/get-online-features", body)
            assert response.status_code == 200 and app.offloaded == offloaded
            got = {name: col["values"] for name, col in _by_name(response.json()).items()}
            assert _same(got) == _same(get_online_features(served.lake, body["entities"], FEATURES))
        # Errors found in the worker are the same 4xx.
        bad = _call(app, "POST", "/get-online-features", {"features": FEATURES, "entities": {
            "driver_id": [*range(20), "x"]}})
        assert bad.status_code == 422 and "'driver_id'[20]" in bad.json()["detail"]
        with_views = _call(app, "POST", "/get-online-features", {
            "features": FEATURES, "entities": {"driver_id": list(range(20))},
            "include_feature_view_version_metadata": True})
        assert with_views.json()["metadata"]["feature_view_metadata"] == [{"name": "driver_stats"},
                                                                            {"name": "driver_rating"}]
        assert _call(app, "GET", "/health").json()["offloaded_requests"] == 4
    finally:
        app.close()
    # The serving log holds what a worker served.
    logging_app = create_app(lake, log_requests=True)
    response = _call(logging_app, "POST", "/get-online-features", {"features": FEATURES,
                                                                  "entities": {"driver_id": list(range(25))}})
    assert response.status_code == 200 and logging_app.offloaded == 1
    logging_app.close()
    logged = _log(served)
    logged = logged[logged["request_id"] == response.headers["x-request-id"]]
    assert sorted(logged["driver_id"]) == list(range(25))


def test_tokens_guard_the_feature_server(served: FeatureLake) -> None:
    authenticator = served.lake.catalog.authenticator(cache_seconds=0)
    app = create_app(served.lake, authenticator=authenticator)
    body = {"features": FEATURES, "entities": {"driver_id": [1]}}
    info, token = served.lake.catalog.create_token("svc:ranker")
    try:
        refused = _call(app, "POST", "/get-online-features", body)
        assert refused.status_code == 401 and "requires a token" in refused.json()["detail"]
        assert _call(app, "GET", "/health").status_code == 200  # for load balancers

        async def with_token(header: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
                return await client.post("/get-online-features", json=body, headers={"Authorization": header})

        assert asyncio.run(with_token(f"Bearer {token}")).status_code == 200
        assert asyncio.run(with_token(f"Bearer {token}x")).status_code == 401
        served.lake.catalog.revoke_token(info.id)
        assert asyncio.run(with_token(f"Bearer {token}")).status_code == 401
    finally:
        app.close()
        served.lake.catalog.revoke_token(info.id)


def test_lake_features_serve_as_a_user_starts_it(served: FeatureLake, tmp_path: Path) -> None:
    import subprocess

    from tests.lake_server import lake_command, lake_env, running, wait_healthy

    config = _settings_toml(served, tmp_path / "lake.toml", token_cache_seconds=0)
    env = lake_env()
    port = free_port()
    refused = subprocess.run(lake_command("--config", str(config), "features", "serve", "--host", "0.0.0.0",
                                          "--port", str(port)), env=env, capture_output=True, text=True, timeout=180)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "refusing to serve features on 0.0.0.0" in refused.stderr
    info, token = served.lake.catalog.create_token("svc:ranker")
    base = f"http://127.0.0.1:{port}"
    try:
        with running(["--config", str(config), "features", "serve", "--host", "0.0.0.0", "--port", str(port)], port,
                     env=env, log=tmp_path / "serve.log"):
            wait_healthy(base)
            auth = {"Authorization": f"Bearer {token}"}
            body = {"features": FEATURES, "entities": {"driver_id": DRIVERS}}
            assert httpx.post(base + "/get-online-features", json=body).status_code == 401
            ok = httpx.post(base + "/get-online-features", json=body, headers=auth)
            assert ok.status_code == 200
            want = get_online_features(served.lake, {"driver_id": DRIVERS}, FEATURES)
            assert _same({n: c["values"] for n, c in _by_name(ok.json()).items()}) == _same(want)
            too_many = httpx.post(base + "/get-online-features", headers=auth, timeout=60,
                                  json={"features": FEATURES, "entities": {"driver_id": list(range(100_001))}})
            assert too_many.status_code == 413
            wrong = httpx.post(base + "/get-online-features", headers=auth,
                               json={"features": ["city_stats:population"], "entities": {"city_name": [7]}})
            assert wrong.status_code == 422 and "takes a string" in wrong.json()["detail"]
            served.lake.catalog.revoke_token(info.id)
            assert httpx.post(base + "/get-online-features", json=body, headers=auth).status_code == 401
    finally:
        served.lake.catalog.revoke_token(info.id)


def test_the_light_reader_leaves_on_demand_views_to_feast(served: FeatureLake) -> None:
    """`lake features get` reads the registry (file or SQL) without Feast when it can; here it cannot (an
    on-demand view), and answers through Feast, the same."""
    from lake.features.registry_light import snapshot
    from lake.features.repo import feast_dir

    assert snapshot(served.lake.settings.feast, feast_dir(served.lake)) is None
    got = OnlineReader(served.lake, light=True).get({"driver_id": DRIVERS}, feature_service="driver_model")
    assert _same(got.to_dict()) == _same(get_online_features(served.lake, {"driver_id": DRIVERS},
                                                             feature_service="driver_model"))
