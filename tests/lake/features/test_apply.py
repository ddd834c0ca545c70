"""Applying the repository: the registry, checks on definitions, catalog registration and lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

from lake.errors import FeatureError
from lake.features.apply import apply, describe, show
from lake.features.repo import load_definitions
from tests.lake.features.conftest import REPO, FeatureLake, write_repo


def test_apply_registers_views_in_registry_and_catalog(feature_lake: FeatureLake) -> None:
    lake = feature_lake.lake
    rows = {r["name"]: r for r in describe(lake)}
    assert rows["driver_stats"]["source"] == "gold.driver_stats" and rows["driver_stats"]["features"] == 3
    assert rows["driver_model"]["kind"] == "feature_service"
    info = show(lake, "driver_stats")
    assert info["source"]["table"] == "gold.driver_stats" and info["source"]["version"] == 0
    assert info["ttl"] == "2 days, 0:00:00" and info["join_keys"] == ["driver_id"]
    assert [f["name"] for f in info["features"]] == ["conv_rate", "trips", "city"]
    ds = lake.catalog.show("feature.driver_stats")
    assert ds["kind"] == "feature_view" and "gold.driver_stats" in ds["upstream"]
    assert ds["owners"] == ["mobility@example.com"] and "team" in ds["tags"]
    assert {c["name"] for c in ds["schema"]} == {"driver_id", "conv_rate", "trips", "city"}
    assert "feature.driver_stats" in lake.catalog.show("feature_service.driver_model")["upstream"]
    col = lake.catalog.lineage("feature.driver_stats", column="trips", direction="upstream")
    assert any("gold.driver_stats" in n.name for n in col.nodes)
    hits = lake.catalog.search("conversion")
    assert any(h.name == "feature.driver_stats" for h in hits)


def test_reapply_deletes_removed_definitions(embedded_lake: FeatureLake) -> None:
    lake = embedded_lake.lake
    text = REPO.replace("TTL_HOURS", "48").split("driver_model = ")[0]
    (embedded_lake.repo / "drivers.py").write_text(text)
    result = apply(lake, embedded_lake.repo)
    assert result.deleted == ["FeatureService driver_model"]
    assert "driver_model" not in {r["name"] for r in describe(lake)}


@pytest.mark.parametrize(("change", "message"), [
    (('path="gold.driver_stats"', 'path="gold.missing"'), "source table gold.missing does not exist"),
    (('Field(name="city", dtype=String)', 'Field(name="city_x", dtype=String)'), "feature 'city_x' is not a column"),
    (('timestamp_field="event_timestamp"', 'timestamp_field="city"'), "cannot serve as a timestamp field"),
    (('path="gold.driver_stats"', 'path="/tmp/x.parquet"'), "is not a lake table"),
    (('path="gold.driver_stats", file_format=DeltaFormat(),', 'path="gold.driver_stats",'), "DeltaFormat"),
])
def test_bad_definitions_name_the_view_and_column(embedded_lake: FeatureLake, tmp_path: Path,
                                                  change: tuple[str, str], message: str) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "drivers.py").write_text(REPO.replace("TTL_HOURS", "48").replace(*change))
    with pytest.raises(FeatureError, match=message):
        apply(embedded_lake.lake, folder)


def test_broken_definition_file(tmp_path: Path) -> None:
    folder = write_repo(tmp_path / "r")
    (folder / "broken.py").write_text("import nope_not_a_module\n")
    with pytest.raises(FeatureError, match="broken.py failed to load: ModuleNotFoundError"):
        load_definitions(folder)
    with pytest.raises(FeatureError, match="does not exist"):
        load_definitions(tmp_path / "absent")


def test_show_unknown_name(embedded_lake: FeatureLake) -> None:
    with pytest.raises(FeatureError, match="no feature view or service 'ghost'; known: driver_model, driver_rating"):
        show(embedded_lake.lake, "ghost")
