"""``lake training``: list, show and export from the command line; mistakes are one line and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lake.cli.main import main
from lake.handoff import SplitSpec
from lake.lakehouse import Lake
from tests.conftest import make_settings
from tests.lake.handoff import build_sources, save_training
from tests.services import S3_KEY, S3_SECRET, S3Server


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    for name in [k for k in os.environ if k.startswith("LAKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKE_CONFIG", "")
    root = tmp_path / "lakehouse"
    lake = Lake(make_settings(root=str(root)))
    build_sources(lake, rows=400)
    first = save_training(lake, rows=300)
    second = save_training(lake)
    return root, first, second


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_and_show(saved: tuple[Path, dict[str, Any], dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    root, first, second = saved
    code, out, _ = run(capsys, "--root", str(root), "training", "list", "--json")
    listing = json.loads(out)
    assert code == 0 and [r["id"] for r in listing] == [second["id"], first["id"]]
    assert [r["version"] for r in listing] == [1, 0] and [r["row_count"] for r in listing] == [400, 300]
    code, out, _ = run(capsys, "--root", str(root), "training", "list")
    assert code == 0 and first["id"] in out and "gold.customers@0" in out

    code, out, _ = run(capsys, "--root", str(root), "training", "show", first["id"][:8], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == first["id"] and shown["table"] == "training.churn"
    assert shown["features"] == ["customers:spend", "customers:churned"]
    assert shown["sources"]["gold.customers"]["version"] == 0
    assert shown["content_hash"] == first["content_hash"] and shown["row_count"] == 300
    assert [c["name"] for c in shown["columns"]] == ["customer_id", "spend", "churned"]
    code, out, _ = run(capsys, "--root", str(root), "training", "show", "churn", "--version", "0", "--json")
    assert json.loads(out)["id"] == first["id"]
    code, out, _ = run(capsys, "--root", str(root), "training", "show", "churn")
    assert code == 0 and second["id"] in out and second["content_hash"] in out
    assert "customers:spend" in out and "gold.customers" in out and "churn_service" in out


def test_export_with_split_and_json_manifest(saved: tuple[Path, dict[str, Any], dict[str, Any]],
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root, first, _ = saved
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "--root", str(root), "training", "export", "churn", "--version", "0",
                         "--out", str(out_dir), "--split", "train=0.8,validation=0.1,test=0.1",
                         "--key", "customer_id", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert manifest == json.loads((out_dir / "manifest.json").read_text())
    assert manifest["dataset"]["training_id"] == first["id"] and manifest["row_count"] == 300
    assert sum(manifest["split"]["rows"].values()) == 300
    spec = SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys="customer_id")
    train = pq.read_table(out_dir / "train")
    assert train.num_rows == manifest["split"]["rows"]["train"] and set(spec.labels(train).to_pylist()) == {"train"}

    code, out, _ = run(capsys, "--root", str(root), "training", "export", "gold.customers", "--out",
                       str(tmp_path / "gold"))
    assert code == 0 and "exported gold.customers@0: 400 rows in 1 files" in out and "manifest.json" in out
    code, _, err = run(capsys, "--root", str(root), "training", "export", "gold.customers", "--out",
                       str(tmp_path / "gold"))
    assert code == 1 and "--overwrite" in err
    code, _, _ = run(capsys, "--root", str(root), "training", "export", "gold.customers", "--out",
                     str(tmp_path / "gold"), "--overwrite")
    assert code == 0


def test_mistakes_print_one_line_and_exit_1(saved: tuple[Path, dict[str, Any], dict[str, Any]], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    root, _, _ = saved
    out = str(tmp_path / "x")
    cases = [
        (["training", "show", "nope"], "no training dataset 'nope'"),
        (["training", "show", "churn", "--version", "5"], "no saved version 5 (saved: 0, 1)"),
        (["training", "export", "gold.nope", "--out", out], "gold.nope does not exist"),
        (["training", "export", "churn", "--out", out, "--split", "train=0.9,test=0.2", "--key", "customer_id"],
         "sum to 1"),
        (["training", "export", "churn", "--out", out, "--split", "train=0.8,test=0.2"], "key column"),
        (["training", "export", "churn", "--out", out, "--key", "customer_id"], "--key needs --split"),
        (["training", "export", "churn", "--out", out, "--split", "train=0.8,test=0.2", "--key", "country"],
         "not in training.churn"),
        (["training", "export", "churn", "--out", "ftp://host/x"], "cannot export to ftp://"),
    ]
    for args, message in cases:
        code, _, err = run(capsys, "--root", str(root), *args)
        assert code == 1 and message in err, (args, err)
        assert err.startswith("error:") and err.strip().count("\n") == 0, err
    assert not Path(out).exists()
    # As a program: the same one line, no traceback.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKE_")}
    env.update(LAKE_ROOT=str(root), LAKE_CONFIG="")
    proc = subprocess.run([sys.executable, "-m", "lake.cli.main", "training", "export", "chrun", "--out", out],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "no training dataset 'chrun'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.s3
def test_export_from_a_local_lake_to_s3(saved: tuple[Path, dict[str, Any], dict[str, Any]], s3_server: S3Server,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.fs as pafs

    root, first, _ = saved
    bucket = s3_server.new_bucket()
    monkeypatch.setenv("LAKE_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("LAKE_S3_ACCESS_KEY", S3_KEY)
    monkeypatch.setenv("LAKE_S3_SECRET_KEY", S3_SECRET)
    code, out, err = run(capsys, "--root", str(root), "training", "export", first["id"], "--out",
                         f"s3://{bucket}/ml/churn", "--json")
    assert code == 0, err
    manifest = json.loads(out)
    assert S3_SECRET not in out and manifest["location"] == f"s3://{bucket}/ml/churn"
    fs = pafs.S3FileSystem(access_key=S3_KEY, secret_key=S3_SECRET, endpoint_override=s3_server.endpoint[7:],
                           scheme="http", region="us-east-1")
    table = pq.read_table(f"{bucket}/ml/churn/data", filesystem=fs)
    assert table.num_rows == 300 and sorted(table.column("customer_id").to_pylist()) == list(range(300))
    lake = Lake(make_settings(root=str(root)))
    runs = lake.catalog.runs(job="handoff.export.churn")
    outputs = lake.catalog.run_info(runs[0]["run_id"])["outputs"]
    assert outputs == [{"namespace": f"s3://{bucket}", "name": "ml/churn", "version": 0}]
    assert S3_SECRET not in json.dumps(runs, default=str)
