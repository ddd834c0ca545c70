"""Settings resolution: arguments > LAKE_* environment > lake.toml > embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.config import load_settings, redact_url
from lake.errors import ConfigError


def test_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.root_uri == str(tmp_path / "lakehouse")
    assert s.catalog_url == f"sqlite:///{tmp_path / 'lakehouse' / 'catalog.db'}"
    assert s.spark.master == "local[*]" and s.feast.online_store == "sqlite"
    assert not s.is_s3 and s.source_file is None


def test_order_file_then_env_then_arguments(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "lake.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        'root = "data"\n[spark]\nmaster = "spark://file:7077"\nshuffle_partitions = 3\n'
        '[s3]\nendpoint = "http://file:9000"\n[spark.conf]\n"spark.executor.memory" = "1g"\n'
    )
    from_file = load_settings(env={}, config_file=cfg)
    assert from_file.root_uri == str(tmp_path / "conf" / "data")  # relative to the file
    assert from_file.spark.master == "spark://file:7077" and from_file.spark.shuffle_partitions == 3
    assert from_file.spark.conf == {"spark.executor.memory": "1g"}
    env = {"LAKE_SPARK_MASTER": "spark://env:7077", "LAKE_S3_ENDPOINT": "http://env:9000"}
    from_env = load_settings(env=env, config_file=cfg)
    assert from_env.spark.master == "spark://env:7077" and from_env.s3.endpoint == "http://env:9000"
    assert from_env.spark.shuffle_partitions == 3
    from_args = load_settings({"spark": {"master": "local[2]"}, "root": None}, env=env, config_file=cfg)
    assert from_args.spark.master == "local[2]" and from_args.s3.endpoint == "http://env:9000"
    assert from_args.root_uri == str(tmp_path / "conf" / "data")


def test_lake_config_env_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text('root = "s3://bucket/prefix/"\n[feast]\nonline_store = "redis"\n')
    s = load_settings(env={"LAKE_CONFIG": str(cfg)})
    assert s.is_s3 and s.root_uri == "s3://bucket/prefix" and s.feast.online_store == "redis"
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"LAKE_CONFIG": str(tmp_path / "missing.toml")})


def test_bad_values_and_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spark.shuffle_partitions"):
        load_settings(env={"LAKE_SPARK_SHUFFLE_PARTITIONS": "many"}, config_file=False)
    with pytest.raises(ConfigError, match="feast.online_store"):
        load_settings({"feast": {"online_store": "cassandra"}}, env={}, config_file=False)
    bad = tmp_path / "lake.toml"
    bad.write_text("root = [unclosed")
    with pytest.raises(ConfigError, match=r"lake.toml is not valid TOML"):
        load_settings(env={}, config_file=bad)
    with pytest.raises(ConfigError, match="unknown_key"):
        bad.write_text("unknown_key = 1\n")
        load_settings(env={}, config_file=bad)


def test_secrets_are_masked() -> None:
    s = load_settings(
        {"s3": {"secret_key": "hunter2"}, "catalog": {"url": "postgresql+psycopg://app:pw0rd@db:5432/lake"}},
        env={},
        config_file=False,
    )
    masked = s.masked()
    text = repr(masked) + repr(s) + str(s)
    assert "hunter2" not in text and "pw0rd" not in text
    assert masked["s3"]["secret_key"] == "****"
    assert masked["catalog"]["url"] == "postgresql+psycopg://app:****@db:5432/lake"
    assert s.catalog_url.endswith("app:pw0rd@db:5432/lake")  # the real value is still usable
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_feature_engine_settings() -> None:
    """``[features] engine`` from the file or ``LAKE_FEATURES_ENGINE``; only the three engines."""
    from lake.config import load_settings as load

    assert load({}, env={}, config_file=False).features.engine == "auto"
    assert load({}, env={"LAKE_FEATURES_ENGINE": "spark"}, config_file=False).features.engine == "spark"
    assert load({"features": {"spark_min_rows": 5}}, env={}, config_file=False).features.spark_min_rows == 5
    with pytest.raises(ConfigError):
        load({"features": {"engine": "gpu"}}, env={}, config_file=False)
