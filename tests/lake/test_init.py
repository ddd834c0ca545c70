"""``lake init`` and the lake root: a project from a template, a wrong root refused, one catalog for an S3 lake."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from lake.cli.main import main
from lake.config import load_settings
from lake.pipeline.registry import discover_jobs
from lake.quality.apply import load_suites
from lake.scaffold import init_project, template
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


def test_init_makes_a_commented_project_whose_jobs_and_suite_load(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "shop"
    assert main(["init", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "lake.toml" in out and "next:" in out
    for rel in ("lake.toml", "README.md", "jobs/bronze_orders.py", "jobs/customer_stats.yaml",
                "quality/bronze_orders.yaml", "feature_repo/customers.py", ".gitignore"):
        text = (folder / rel).read_text(encoding="utf-8")
        assert "#" in text or '"""' in text, f"{rel} has no comments"
    settings = tomllib.loads((folder / "lake.toml").read_text(encoding="utf-8"))
    assert settings["root"] == "lakehouse" and settings["feast"]["project"] == "shop"
    loaded = load_settings(config_file=folder / "lake.toml", env={})
    assert loaded.root_uri == str((folder / "lakehouse").resolve())
    jobs = discover_jobs(folder / "jobs")
    assert set(jobs) == {"bronze_orders", "customer_stats"}
    assert jobs["customer_stats"].source.kind == "tables" and jobs["customer_stats"].mode == "overwrite"
    assert jobs["bronze_orders"].description
    suites = load_suites(folder / "quality")
    assert suites["bronze.orders"].policy == "quarantine"
    assert sorted(p.name for p in (folder / "lakehouse" / "landing" / "orders").iterdir()) == [
        "orders_2024-05-01.csv", "orders_2024-05-02.csv"]
    compile((folder / "feature_repo" / "customers.py").read_text(encoding="utf-8"), "customers.py", "exec")
    # Never overwrites.
    assert main(["init", str(folder)]) == 1
    assert "never overwrites" in capsys.readouterr().err


def test_the_stocks_example_is_the_demo_pipeline_with_its_data(tmp_path: Path) -> None:
    made = init_project(tmp_path / "stocks", "stocks")
    assert made.landed_rows == 560
    for rel in ("jobs/bronze_stocks.py", "jobs/silver_stock_prices.py", "jobs/gold_stock_features.py",
                "quality/bronze_stocks.yaml", "feature_repo/stocks.py"):
        # The template is the repository's own pipeline, kept in step by this test.
        assert (tmp_path / "stocks" / rel).read_text(encoding="utf-8") == (REPO / rel).read_text(encoding="utf-8"), rel
    assert len(list((tmp_path / "stocks" / "lakehouse" / "landing" / "stocks").glob("stocks_*.csv"))) == 11
    assert set(discover_jobs(tmp_path / "stocks" / "jobs")) == {"bronze_stocks", "silver_stock_prices",
                                                                 "gold_stock_features"}


def test_unknown_example_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "x"), "--example", "nope"]) == 1
    assert "unknown example 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert template("basic").joinpath("lake.toml").is_file()


def test_a_root_that_does_not_exist_is_refused_and_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LAKE_CONFIG", "")
    missing = tmp_path / "typo"
    for args in (["table", "ls"], ["sql", "select 1"], ["catalog", "search", "x"], ["jobs", "status", "abc"]):
        assert main(["--root", str(missing), *args]) == 1, args
        err = capsys.readouterr().err
        assert f"no lake at {missing}" in err and "lake init" in err, err
        assert not missing.exists()
    assert main(["--root", str(missing), "--create", "table", "ls"]) == 0
    assert missing.is_dir() and "created the lake root" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["--root", str(tmp_path / "file"), "table", "ls"]) == 1
    assert "is a file" in capsys.readouterr().err


def test_the_catalog_of_an_s3_lake_is_in_one_place_whatever_the_folder(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    urls = set()
    for cwd in (tmp_path / "a", tmp_path / "b"):
        cwd.mkdir()
        monkeypatch.chdir(cwd)
        settings = make_settings(root="s3://bucket/team/lake", home=str(tmp_path / "home"))
        urls.add(settings.catalog_url)
        assert settings.cache_path == str(tmp_path / "home" / "s3" / "bucket" / "team" / "lake" / "_cache")
    assert urls == {f"sqlite:///{tmp_path / 'home' / 's3' / 'bucket' / 'team' / 'lake' / 'catalog.db'}"}
    default = make_settings(root="s3://bucket/lake")
    assert default.state_dir == str(Path("~/.lake/s3/bucket/lake").expanduser())
    assert load_settings(env={"LAKE_HOME": str(tmp_path / "h"), "LAKE_ROOT": "s3://b/p"},
                         config_file=False).state_dir == str(tmp_path / "h" / "s3" / "b" / "p")
    local = make_settings(root=str(tmp_path / "lakehouse"))
    assert local.catalog_url == f"sqlite:///{tmp_path / 'lakehouse' / 'catalog.db'}"


def test_the_yaml_job_template_is_documented_fields_only(tmp_path: Path) -> None:
    job = yaml.safe_load(template("basic").joinpath("jobs", "customer_stats.yaml").read_text(encoding="utf-8"))
    assert set(job) <= {"name", "description", "source", "target", "mode", "keys", "partition_by", "params",
                        "quality", "schema_policy"}
