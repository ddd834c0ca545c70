"""The ``lake`` command: tables listed and inspected, errors as one message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lake.cli.main import main
from lake.lakehouse import Lake
from tests.conftest import make_settings


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    root = tmp_path / "lakehouse"
    lake = Lake(make_settings(root=str(root)))
    t = lake.table("bronze.orders")
    for i in range(3):
        t.write(pa.table({"id": [i * 2, i * 2 + 1], "country": ["FR", "DE"]}), partition_by=["country"])
    lake.table("gold.totals").write(pa.table({"country": ["FR"], "n": [3]}))
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_ls_show_history_as_json_and_tables(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--root", str(filled), "table", "ls", "--json")
    assert code == 0
    listing = {row["name"]: row for row in json.loads(out)}
    assert set(listing) == {"bronze.orders", "gold.totals"}
    assert listing["bronze.orders"]["rows"] == 6 and listing["bronze.orders"]["version"] == 2
    assert listing["bronze.orders"]["partitioned_by"] == ["country"]
    code, out, _ = run(capsys, "--root", str(filled), "table", "ls")
    assert code == 0 and "bronze.orders" in out and "gold.totals" in out
    code, out, _ = run(capsys, "--root", str(filled), "table", "show", "bronze.orders", "--json")
    details = json.loads(out)
    assert details["version"] == 2 and details["files"] == 6
    assert [c["name"] for c in details["schema"]] == ["id", "country"]
    code, out, _ = run(capsys, "--root", str(filled), "table", "history", "bronze.orders", "--json")
    assert [h["operation"] for h in json.loads(out)] == ["APPEND", "APPEND", "CREATE"]
    code, out, _ = run(capsys, "--root", str(filled), "table", "history", "bronze.orders")
    assert code == 0 and "CREATE" in out


def test_optimize_and_vacuum(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--root", str(filled), "table", "optimize", "bronze.orders", "--json")
    assert code == 0 and json.loads(out)["files_removed"] == 6
    code, _, err = run(capsys, "--root", str(filled), "table", "vacuum", "bronze.orders", "--retention-hours", "0")
    assert code == 1 and "--force" in err
    code, out, _ = run(capsys, "--root", str(filled), "table", "vacuum", "bronze.orders",
                       "--retention-hours", "0", "--force", "--json")
    assert code == 0 and len(json.loads(out)["files"]) == 6
    lake = Lake(make_settings(root=str(filled)))
    assert sorted(lake.table("bronze.orders").to_arrow().column("id").to_pylist()) == list(range(6))


def test_config_show_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_S3_SECRET_KEY", "very-secret-value")
    monkeypatch.setenv("LAKE_CATALOG_URL", "postgresql+psycopg://u:pass123@h/db")
    monkeypatch.setenv("LAKE_CONFIG", "")
    code, out, _ = run(capsys, "config", "show", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["s3"]["secret_key"] == "****" and "pass123" not in out and "very-secret-value" not in out
    code, out, _ = run(capsys, "config", "show")
    assert code == 0 and "very-secret-value" not in out and "pass123" not in out


def test_user_mistakes_print_one_line_and_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "LAKE_ROOT": str(tmp_path), "LAKE_CONFIG": ""}
    cases = [
        (["table", "show", "bronze.nope"], "does not exist"),
        (["table", "show", "nope"], "not a table name"),
        (["--config", str(tmp_path / "missing.toml"), "table", "ls"], "does not exist"),
    ]
    for args, message in cases:
        proc = subprocess.run([sys.executable, "-m", "lake.cli.main", *args], env=env, capture_output=True, text=True)
        assert proc.returncode == 1, args
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    bad_env = {**env, "LAKE_SPARK_SHUFFLE_PARTITIONS": "x"}
    proc = subprocess.run([sys.executable, "-m", "lake.cli.main", "config", "show"], env=bad_env,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "shuffle_partitions" in proc.stderr and "Traceback" not in proc.stderr
