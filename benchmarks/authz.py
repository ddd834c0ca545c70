"""Authorization and masking: what they add to an API request and to an online feature request.

Same run, same data, interleaved so machine noise hits both sides alike:

- API: ``GET /api/v1/datasets/silver.users/preview?limit=20`` against the service app in process
  (httpx's ASGI transport, no network), as ``analyst`` (read, no unmask: the ``email`` column,
  tagged ``pii`` upstream on bronze, comes back hashed, ``phone`` as its last 4), with the checks
  on (grants from the policy snapshot, masking, the audit append) vs the same app with
  :class:`~lake.service.access.ServiceAccess` built ``enforce=False`` (no grant check, no
  masking, no audit). Authentication (the bearer token) runs on both sides.
- The same work without the HTTP request around it (the grant check, masking 20 rows, the
  audit append), timed alone: ``added_p95_api_hook_ms``. On a loaded machine the end-to-end
  difference is within the noise of a ~20 ms preview; this figure is exact.
- Online features: the feature server's hook per request (:meth:`FeatureAccess.decide` - the
  grant on the feature service and the masked features, cached per principal and request
  shape - plus masking one row of 10 features, one of them ``pii``, plus the audit append) vs
  the hook disabled, over ``--calls`` requests. This is exactly what the service adds to the
  feature server's request path; the online store read is the same on both sides and left out.

Headline ``value``: the added p95 in ms on the API request (target <= 1 ms); ``baseline`` its
p95 with the checks off; ``ratio`` = p95 on / p95 off; ``added_p99_online_ms`` the added p99 on
an online feature request (target <= 0.1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from benchmarks.common import emit, scratch_dir


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def build(base: Any, rows: int) -> tuple[Any, str]:
    from catalog import access as acl
    from lake.config import load_settings
    from lake.lakehouse import Lake

    settings = load_settings({"root": str(base / "lake"), "service": {"mask_salt": "bench-salt"}}, env={},
                             config_file=False)
    lake = Lake(settings)
    users = pa.table({"id": list(range(rows)), "email": [f"user{i}@example.com" for i in range(rows)],
                      "phone": [f"+33 6 {i:08d}" for i in range(rows)], "country": ["fr"] * rows})
    lake.table("bronze.users").write(users)
    silver = lake.table("silver.users").write(users)
    cat = lake.catalog
    cat.define_tag("pii", propagate=True)
    with cat.run("make_silver") as run:
        run.input("bronze.users", 0)
        run.output("silver.users", silver.version)
    cat.tag("bronze.users", "pii", column="email")
    cat.tag("silver.users", "card", column="phone")
    cat.register_dataset("feature.user_fv", kind="feature_view")
    with cat.writing() as s:
        acl.set_mask(s, "pii", "hash")
        acl.set_mask(s, "card", "last4")
        for i in range(50):  # a realistic policy: a few dozen principals and grants
            acl.create_principal(s, f"user{i}", "user")
            acl.grant(s, f"user{i}", "read", f"gold.t{i}")
        acl.create_principal(s, "analyst", "user")
        acl.create_principal(s, "readers", "group")
        acl.add_member(s, "readers", "analyst")
        acl.grant(s, "readers", "read", "silver")
        acl.grant(s, "analyst", "read", "feature_service:users")
    with cat.writing() as s:
        from catalog import models as m

        ds = s.scalar(__import__("sqlalchemy").select(m.Dataset).where(m.Dataset.name == "feature.user_fv"))
        s.add(m.Column(dataset_id=ds.id, name="email_hash_src", type="string", position=0))
    with cat.run("features.apply") as run:
        run.column_lineage("feature.user_fv", {"email_hash_src": [("silver.users", "email")]})
    _, token = cat.create_token("analyst")
    return lake, token


def api_side(lake: Any, token: str, requests: int) -> dict[str, list[float]]:
    import httpx

    from lake.service.access import ServiceAccess
    from lake.service.app import create_app

    on_access, off_access = ServiceAccess(lake), ServiceAccess(lake, enforce=False)
    apps = {"on": create_app(lake, on_access), "off": create_app(lake, off_access)}
    headers = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/datasets/silver.users/preview?limit=20"
    times: dict[str, list[float]] = {"on": [], "off": []}

    async def go() -> None:
        clients = {k: httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://lake")
                   for k, a in apps.items()}
        try:
            for client in clients.values():  # warm up: caches, imports, the policy snapshot
                for _ in range(20):
                    response = await client.get(path, headers=headers)
                    assert response.status_code == 200, response.text
            on = (await clients["on"].get(path, headers=headers)).json()
            off = (await clients["off"].get(path, headers=headers)).json()
            assert on["rows"][0][1] != off["rows"][0][1] and off["rows"][0][1] == "user0@example.com"
            for _ in range(requests):
                for name, client in clients.items():
                    start = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    times[name].append(time.perf_counter() - start)
                    assert response.status_code == 200
        finally:
            for client in clients.values():
                await client.aclose()

    asyncio.run(go())
    on_access.close()
    off_access.close()
    return times


def api_hook_side(lake: Any, calls: int) -> dict[str, list[float]]:
    """What the service does per preview request besides reading: the grant check, masking 20 rows, the audit."""
    from lake.service.access import ServiceAccess

    sides = {"on": ServiceAccess(lake), "off": ServiceAccess(lake, enforce=False)}
    data = lake.table("silver.users").delta().to_pyarrow_table().slice(0, 20)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(calls):
        for name, access in sides.items():
            start = time.perf_counter()
            access.check("analyst", "read", "silver.users", audit_as="preview")
            access.mask("analyst", "silver.users", data)
            times[name].append(time.perf_counter() - start)
    for access in sides.values():
        access.close()
    return times


def online_side(lake: Any, calls: int) -> dict[str, list[float]]:
    from catalog.access import AuditLog, Policy
    from lake.features.access import FeatureAccess
    from lake.features.online import OnlineResult

    policy = Policy(lake.catalog)
    audit = AuditLog(lake.catalog)
    sides = {"on": FeatureAccess(policy, audit, b"bench-salt"), "off": FeatureAccess(policy, None, None, enforce=False)}
    refs = ["user_fv:email_hash_src"] + [f"user_fv:f{i}" for i in range(9)]
    plan: Any = SimpleNamespace(refs=refs, service="users", views=[SimpleNamespace(name="user_fv", alias="user_fv")])

    def result() -> OnlineResult:
        return OnlineResult(["user_id", *[r.split(":")[1] for r in refs]], [[7], ["user7@example.com"]]
                            + [[float(i)] for i in range(9)], [["PRESENT"]] * 11, [["2024-01-01T00:00:00Z"]] * 11,
                            [False] * 11, [None] * 11, 1, refs, "users")

    assert sides["on"].decide("analyst", plan) == {0: "hash"}
    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(calls):
        for name, access in sides.items():
            served = result()
            start = time.perf_counter()
            masked = access.decide("analyst", plan)
            if masked:
                access.mask(served, masked)
            times[name].append(time.perf_counter() - start)
    assert served.values[1] == ["user7@example.com"]  # the last one served was the unchecked side
    audit.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (under a minute)")
    parser.add_argument("--requests", type=int, default=None, help="API requests per side (default 2000)")
    parser.add_argument("--calls", type=int, default=None, help="online feature requests per side (default 50000)")
    args = parser.parse_args()
    requests = args.requests or (300 if args.quick else 2000)
    calls = args.calls or (5000 if args.quick else 50_000)
    base = scratch_dir("authz")
    lake, token = build(base, rows=1000)
    api = api_side(lake, token, requests)
    hook = api_hook_side(lake, max(requests, 2000))
    online = online_side(lake, calls)
    p95 = {k: percentile(v, 0.95) * 1000 for k, v in api.items()}
    p50 = {k: statistics.median(v) * 1000 for k, v in api.items()}
    p99_online = {k: percentile(v, 0.99) * 1000 for k, v in online.items()}
    p95_hook = {k: percentile(v, 0.95) * 1000 for k, v in hook.items()}
    print(f"  API preview p50 on/off: {p50['on']:.3f} / {p50['off']:.3f} ms; p95 on/off: {p95['on']:.3f} / "
          f"{p95['off']:.3f} ms ({requests} requests each)")
    print(f"  API hook (check + mask 20 rows + audit) p95 on/off: {p95_hook['on'] * 1000:.1f} / "
          f"{p95_hook['off'] * 1000:.1f} us")
    print(f"  online hook p99 on/off: {p99_online['on'] * 1000:.1f} / {p99_online['off'] * 1000:.1f} us "
          f"({calls} requests each)")
    emit({"metric": "authz_added_p95_api_request", "value": round(p95["on"] - p95["off"], 4), "unit": "ms",
          "baseline": round(p95["off"], 4), "ratio": round(p95["on"] / p95["off"], 4),
          "added_p50_api_ms": round(p50["on"] - p50["off"], 4),
          "added_p95_api_hook_ms": round(p95_hook["on"] - p95_hook["off"], 5),
          "added_p99_online_ms": round(p99_online["on"] - p99_online["off"], 5),
          "online_p99_on_ms": round(p99_online["on"], 5), "online_p99_off_ms": round(p99_online["off"], 5),
          "ratio_online_p99": round(p99_online["on"] / p99_online["off"], 3) if p99_online["off"] else None,
          "requests": requests, "online_calls": calls})
    lake.catalog.close()


if __name__ == "__main__":
    main()
