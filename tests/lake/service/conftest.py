"""One team's lake behind ``lake serve``: PostgreSQL catalog and registry, an S3 (moto) lake, Redis online store.

bronze -> silver -> gold -> feature view, with ``pii`` on bronze columns; three principals:
``owner`` (manage on the lake), ``analyst`` (read on silver, gold and a feature service; no
unmask), ``svc:training`` (a service account: read on gold and the driver_stats view, write on
training). Built once per module; tests that change grants put them back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog import access as acl
from lake.features.materialize import materialize
from lake.lakehouse import Lake
from lake.service.access import ServiceAccess
from lake.service.run import build
from tests.conftest import make_settings, pg_database
from tests.lake.features.conftest import (
    FeatureLake,
    cleanup_redis,
    driver_rating,
    driver_stats,
    write_repo,
)
from tests.services import S3_KEY, S3_SECRET, S3Server, require

SALT = "pepper-for-tests"
USERS = pa.table({"id": [1, 2, 3], "email": ["ann@example.com", "bob@example.com", None],
                  "phone": ["+33 6 12 34 56 78", "+1 555 0100", "12"], "country": ["fr", "us", "de"]})


@dataclass
class Team:
    lake: Lake
    fl: FeatureLake
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _chain(lake: Lake, names: list[str], data: Any) -> None:
    """Write ``data`` to each table and record each as made from the one before (dataset lineage)."""
    for i, name in enumerate(names):
        result = lake.table(name).write(data)
        if i:
            with lake.catalog.run(f"make_{name}") as run:
                run.input(names[i - 1], 0)
                run.output(name, result.version)


@pytest.fixture(scope="module")
def team(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    require("Redis", "127.0.0.1", 6379)
    base = tmp_path_factory.mktemp("service")
    with pg_database("lake_service_") as pg:
        feast = {"project": "t" + uuid.uuid4().hex[:10], "registry": pg, "online_store": "redis",
                 "redis_url": "127.0.0.1:6379"}
        settings = make_settings(
            root=f"s3://{s3_server.new_bucket()}/lake", cache_dir=str(base / "cache"),
            s3={"endpoint": s3_server.endpoint, "access_key": S3_KEY, "secret_key": S3_SECRET},
            catalog={"url": pg}, feast=feast, service={"mask_salt": SALT, "policy_cache_seconds": 0},
            server={"token_cache_seconds": 0})
        lake = Lake(settings)
        cat = lake.catalog
        cat.define_tag("pii", propagate=True)
        _chain(lake, ["bronze.users", "silver.users"], USERS)
        cat.tag("bronze.users", "pii", column="email")
        cat.tag("bronze.users", "card", column="phone")
        contacts = lake.table("gold.contacts").write(pa.table({"id": [1, 2, 3], "contact": USERS["email"]}))
        with cat.run("make_gold.contacts") as run:
            run.input("silver.users", 0)
            run.output("gold.contacts", contacts.version)
            run.column_lineage("gold.contacts", {"contact": [("silver.users", "email")]})
        stats = driver_stats()
        _chain(lake, ["bronze.driver_stats", "silver.driver_stats", "gold.driver_stats"], stats)
        cat.tag("bronze.driver_stats", "pii", column="city")
        lake.table("gold.driver_rating").write(driver_rating())
        fl = FeatureLake(lake, write_repo(base / "repo"), "production")
        fl.apply()
        materialize(lake)
        with cat.writing() as s:
            acl.set_mask(s, "pii", "hash")
            acl.set_mask(s, "card", "last4")
            acl.create_principal(s, "owner", "user")
            acl.create_principal(s, "analyst", "user")
            acl.create_principal(s, "svc:training", "service")
            acl.create_principal(s, "readers", "group")
            acl.add_member(s, "readers", "analyst")
            acl.grant(s, "owner", "manage", "lake")
            acl.grant(s, "readers", "read", "silver")
            acl.grant(s, "analyst", "read", "gold")
            acl.grant(s, "analyst", "read", "feature_service:driver_model")
            acl.grant(s, "svc:training", "read", "gold")
            acl.grant(s, "svc:training", "read", "feature_view:driver_stats")
            acl.grant(s, "svc:training", "write", "training")
        team = Team(lake, fl)
        for who in ("owner", "analyst", "svc:training"):
            info, text = cat.create_token(who, description="tests")
            team.tokens[who], team.token_ids[who] = text, info.id
        yield team
        cleanup_redis(fl)
        lake.catalog.close()


@pytest.fixture(scope="module")
def service(team: Team) -> Iterator[tuple[TestClient, ServiceAccess]]:
    app, access, features = build(team.lake, features=True)
    yield TestClient(app, raise_server_exceptions=False), access
    features.close()
    access.close()
