"""Principals, groups, grants inherited downward, masking derived through lineage, the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest

from catalog import access
from catalog.entities import ColumnSpec
from catalog.errors import AccessError, PermissionDeniedError, PrincipalNotFoundError, TokenError
from catalog.store import Catalog


def test_grants_are_inherited_downward_and_through_groups(catalog: Catalog) -> None:
    policy = access.Policy(catalog, cache_seconds=0)
    assert policy.allows(None, "manage", "lake")  # embedded: nothing defined, nothing enforced
    with catalog.writing() as s:
        access.create_principal(s, "owner", "user")
        access.create_principal(s, "analyst", "user")
        access.create_principal(s, "svc:training", "service")
        access.create_principal(s, "ml", "group")
        access.create_principal(s, "everyone", "group")
        access.add_member(s, "ml", "svc:training")
        access.add_member(s, "everyone", "ml")  # nested groups
        access.grant(s, "owner", "manage", "lake")
        access.grant(s, "analyst", "read", "gold")
        access.grant(s, "everyone", "read", "feature_service:driver")
        access.grant(s, "ml", "write", "training.frames")
        assert not access.grant(s, "analyst", "read", "gold")  # held already
    assert not policy.allows(None, "read", "gold.x")  # anonymous once principals exist
    assert not policy.allows("nobody", "read", "gold.x")
    assert policy.allows("owner", "unmask", "bronze.trades")  # manage covers everything
    assert policy.allows("analyst", "read", "gold.daily")
    assert not policy.allows("analyst", "write", "gold.daily")
    assert not policy.allows("analyst", "read", "silver.daily")
    assert not policy.allows("analyst", "read", "lake")  # a grant below does not reach up
    assert not policy.allows("analyst", "unmask", "gold.daily")
    assert policy.allows("svc:training", "read", "feature_service:driver")  # via ml, via everyone
    assert not policy.allows("svc:training", "read", "feature_service:other")
    assert policy.allows("svc:training", "read", "training.frames")  # write covers read
    with catalog.writing() as s:
        assert access.revoke(s, "analyst", "read", "gold")
        assert not access.revoke(s, "analyst", "read", "gold")
        access.remove_member(s, "everyone", "ml")
    assert not policy.allows("analyst", "read", "gold.daily")
    assert not policy.allows("svc:training", "read", "feature_service:driver")
    with catalog.reading() as s:
        assert {(g["principal"], g["object"]) for g in access.grants(s, obj="gold.daily")} == {("owner", "lake")}
        assert [g["object"] for g in access.grants(s, principal="owner")] == ["lake"]


def test_bad_names_objects_and_privileges_are_refused(catalog: Catalog) -> None:
    with catalog.writing() as s:
        access.create_principal(s, "alice", "user")
        for bad in ["", "a b", "x'; drop table grants; --", "é" * 300]:
            with pytest.raises(AccessError):
                access.create_principal(s, bad, "user")
        with pytest.raises(AccessError, match="exists already"):
            access.create_principal(s, "alice", "user")
        with pytest.raises(AccessError, match="kind"):
            access.create_principal(s, "bob", "robot")
        with pytest.raises(AccessError, match="privilege"):
            access.grant(s, "alice", "own", "lake")
        for obj in ["gold;x", "feature_view:", "../etc", "a b"]:
            with pytest.raises(AccessError, match="object"):
                access.grant(s, "alice", "read", obj)
        with pytest.raises(PrincipalNotFoundError):
            access.grant(s, "carol", "read", "lake")
        with pytest.raises(AccessError, match="not a group"):
            access.add_member(s, "alice", "alice")


def test_tokens_need_a_defined_principal_and_die_with_it(catalog: Catalog) -> None:
    catalog.create_token("anyone")  # before principals: any name, as before
    with catalog.writing() as s:
        access.create_principal(s, "alice", "user")
    with pytest.raises(TokenError, match="define it first"):
        catalog.create_token("bob")
    info, _ = catalog.create_token("alice", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    with catalog.writing() as s:
        access.delete_principal(s, "alice")
    assert catalog.tokens(principal="alice")[0].status() == "revoked"
    assert info.id == catalog.tokens(principal="alice")[0].id


def _pipeline(catalog: Catalog) -> None:
    """bronze.users (email tagged pii) -> silver.users -> gold.contacts (email renamed) -> feature.contact_fv."""
    cols = [ColumnSpec("id", "bigint"), ColumnSpec("email", "string"), ColumnSpec("phone", "string")]
    for name in ("bronze.users", "silver.users"):
        catalog.register_dataset(name, columns=cols)
    catalog.register_dataset("gold.contacts", columns=[ColumnSpec("id", "bigint"), ColumnSpec("contact", "string"),
                                                       ColumnSpec("n", "bigint")])
    catalog.register_dataset("feature.contact_fv", kind="feature_view",
                             columns=[ColumnSpec("id", "bigint"), ColumnSpec("contact", "string")])
    catalog.define_tag("pii", propagate=True)
    catalog.tag("bronze.users", "pii", column="email")
    catalog.tag("bronze.users", "card", column="phone")
    with catalog.run("silver") as run:  # dataset lineage only: the tag propagates, email matched by name
        run.input("bronze.users", 1)
        run.output("silver.users", 1)
    with catalog.run("gold") as run:  # column lineage: email becomes contact
        run.input("silver.users", 1)
        run.output("gold.contacts", 1)
        run.column_lineage("gold.contacts", {"contact": [("silver.users", "email")], "n": [("silver.users", "id")]})
    with catalog.run("features.apply") as run:
        run.input("gold.contacts", 1)
        run.output("feature.contact_fv", None)
        run.column_lineage("feature.contact_fv", {"contact": [("gold.contacts", "contact")]})


def test_masked_columns_follow_tags_and_lineage_downstream(catalog: Catalog) -> None:
    _pipeline(catalog)
    policy = access.Policy(catalog, cache_seconds=0)
    assert policy.masked_columns("bronze.users") == {}  # no policy yet: tags alone mask nothing
    with catalog.writing() as s:
        access.set_mask(s, "pii", "hash")
        access.set_mask(s, "card", "last4")
        access.create_principal(s, "owner", "user")
        access.create_principal(s, "analyst", "user")
        access.grant(s, "owner", "manage", "lake")
        access.grant(s, "analyst", "read", "lake")
        access.grant(s, "analyst", "unmask", "bronze")
    assert policy.masked_columns("bronze.users") == {"email": "hash", "phone": "last4"}
    assert policy.masked_columns("silver.users") == {"email": "hash"}  # pii propagates; card does not
    assert policy.masked_columns("gold.contacts") == {"contact": "hash"}
    assert policy.masked_columns("feature.contact_fv") == {"contact": "hash"}
    assert policy.mask_for("owner", "gold.contacts") == {}
    assert policy.mask_for("analyst", "gold.contacts") == {"contact": "hash"}
    assert policy.mask_for("analyst", "bronze.users") == {}  # unmask on bronze
    with catalog.writing() as s:
        access.set_mask(s, "card", "null")
    assert policy.masked_columns("bronze.users") == {"email": "hash", "phone": "null"}


def test_the_audit_log_writes_in_batches_and_filters(catalog: Catalog) -> None:
    log = access.AuditLog(catalog, interval=60)
    log.record("alice", "read", "bronze.users", "allowed", version=3)
    log.record("bob", "read", "bronze.users", "denied", detail="no read on bronze.users")
    log.record("alice", "sql", "gold.daily", "allowed", detail="token lake_0123456789ab_" + "s" * 30)
    log.flush()
    with catalog.reading() as s:
        everything = access.audit_records(s)
        assert [r["principal"] for r in everything] == ["alice", "bob", "alice"]
        assert [r["outcome"] for r in access.audit_records(s, principal="bob")] == ["denied"]
        assert len(access.audit_records(s, obj="bronze")) == 2
        assert access.audit_records(s, obj="bronze.users", principal="alice")[0]["version"] == 3
        assert access.audit_records(s, since=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)) == []
    assert "s" * 30 not in str(everything)  # a secret in a detail is redacted
    log.close()


def test_claimed_groups_go_with_the_claimant_not_the_name(catalog: Catalog) -> None:
    """A JWT's groups (a Claimant) give their grants to that request only: the plain name holds its own, and
    the feature server's decision cache does not hand one's decision to the other."""
    from lake.features.access import FeatureAccess
    from lake.features.online_plan import Plan

    with catalog.writing() as s:
        access.create_principal(s, "svc", "service")
        access.create_principal(s, "ml", "group")
        access.grant(s, "ml", "read", "feature_service:driver")
    policy = access.Policy(catalog, cache_seconds=60)
    claimant = access.Claimant("svc", ["ml", "nosuchgroup"])
    assert claimant == "svc" and access.claimed_groups(claimant) == {"ml", "nosuchgroup"}
    assert policy.allows(claimant, "read", "feature_service:driver")
    assert not policy.allows("svc", "read", "feature_service:driver")
    assert policy.closure(claimant) == {"svc", "ml"} and policy.closure("svc") == {"svc"}
    assert policy.allows(access.Claimant("carol", ["ml"]), "read", "feature_service:driver")  # not listed
    assert not policy.allows(access.Claimant("carol", ["nosuchgroup"]), "read", "feature_service:driver")
    features = FeatureAccess(policy, None, None)
    plan = Plan(refs=[], outputs=[], views=[], on_demand=[], request_fields=[], feature_types={}, service="driver")
    assert features.decide(claimant, plan) == {}
    with pytest.raises(PermissionDeniedError, match="may not read feature_service:driver"):
        features.decide("svc", plan)
    assert features.decide(claimant, plan) == {}
