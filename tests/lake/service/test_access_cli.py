"""``lake principal|grant|revoke|grants|mask|audit`` and tokens bound to principals, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import access as acl
from lake.cli.main import main
from lake.lakehouse import Lake
from lake.service.access import ServiceAccess
from tests.conftest import make_settings


def run(capsys: pytest.CaptureFixture[str], root: str, *args: str) -> tuple[int, str, str]:
    code = main(["--root", root, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_principals_grants_masks_and_audit_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "lake")
    assert run(capsys, root, "principal", "create", "alice")[0] == 0
    assert run(capsys, root, "principal", "create", "svc:training", "--kind", "service")[0] == 0
    assert run(capsys, root, "principal", "create", "ml", "--kind", "group")[0] == 0
    assert run(capsys, root, "principal", "add-member", "ml", "svc:training")[0] == 0
    assert run(capsys, root, "grant", "read", "gold", "--to", "ml")[0] == 0
    assert run(capsys, root, "grant", "unmask", "feature_service:churn", "--to", "alice")[0] == 0
    code, out, _ = run(capsys, root, "grants", "--object", "gold.daily", "--json")
    assert code == 0 and [(g["principal"], g["privilege"]) for g in json.loads(out)] == [("ml", "read")]
    code, out, _ = run(capsys, root, "principal", "list", "--json")
    assert {p["name"]: p["groups"] for p in json.loads(out)}["svc:training"] == ["ml"]
    assert run(capsys, root, "mask", "set", "pii", "last4")[0] == 0
    code, out, _ = run(capsys, root, "mask", "list", "--json")
    assert json.loads(out) == [{"tag": "pii", "method": "last4"}]
    # Mistakes: one line, exit 1, no traceback.
    for args, words in [(("grant", "own", "lake", "--to", "alice"), "privilege"),
                        (("grant", "read", "gold;drop", "--to", "alice"), "object"),
                        (("grant", "read", "gold", "--to", "nobody"), "no principal"),
                        (("mask", "set", "pii", "rot13"), "masking method"),
                        (("token", "create", "--principal", "mallory"), "define it first"),
                        (("audit", "--since", "yesterday"), "--since")]:
        code, _, err = run(capsys, root, *args)
        assert code == 1 and words in err and "Traceback" not in err, (args, err)
    code, out, _ = run(capsys, root, "token", "create", "--principal", "svc:training", "--expires", "1h", "--json")
    token = json.loads(out)["token"]
    # The service's access (what the console mounts): a bearer header or the lake_token cookie.
    lake = Lake(make_settings(root=root))
    access = ServiceAccess(lake)
    try:
        assert access.principal({"authorization": f"Bearer {token}"}, {}) == "svc:training"
        assert access.principal({}, {"lake_token": token}) == "svc:training"
        assert access.principal({}, {}) is None  # principals exist: sign in
        assert access.can("svc:training", "read", "gold.daily") and not access.can("svc:training", "read", "silver")
        access.audit("svc:training", "read", "gold.daily", "allowed")
        access.audit_log.flush()
    finally:
        access.close()
    assert run(capsys, root, "revoke", "read", "gold", "--from", "ml")[0] == 0
    code, out, _ = run(capsys, root, "audit", "--principal", "svc:training", "--since", "1h", "--json")
    actions = [(r["action"], r["object"], r["outcome"]) for r in json.loads(out)]
    assert ("read", "gold.daily", "allowed") in actions and ("token", None, "allowed") in actions
    assert run(capsys, root, "principal", "delete", "svc:training")[0] == 0
    with lake.catalog.reading() as s:
        assert not acl.grants(s, principal="svc:training")
    assert lake.catalog.tokens(principal="svc:training")[0].status() == "revoked"
