"""The pipeline as Dagster assets, materialized in process with Dagster's own API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from lake.lakehouse import Lake
from lake.orchestrate.dagster_assets import build_definitions
from tests.lake.pipeline.test_files import put
from tests.lake.test_orchestrate import STATS_CSV, project

pytestmark = pytest.mark.spark
__all__ = ["project"]  # the fixture, shared with the pipeline tests


def test_assets_materialize_in_order_with_lake_metadata(project: tuple[Lake, Path], spark: Any) -> None:
    lake, tmp = project
    defs = build_definitions(lake)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"bronze/driver_stats", "gold/driver_stats", "feature/driver_stats", "monitor/stats_drift",
            "gold/driver_rating"} <= keys
    gold = dg.AssetKey(["gold", "driver_stats"])
    assert graph.get(gold).parent_keys == {dg.AssetKey(["bronze", "driver_stats"])}
    assert dg.AssetKey(["gold", "driver_stats"]) in graph.get(dg.AssetKey(["feature", "driver_stats"])).parent_keys
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(assets, selection=["bronze/driver_stats", "gold/driver_stats", "feature/driver_stats",
                                               "monitor/stats_drift"])
    assert result.success
    events = {e.asset_key.to_user_string(): e for e in result.get_asset_materialization_events()
              if e.asset_key is not None}
    assert list(events) == ["bronze/driver_stats", "gold/driver_stats", "feature/driver_stats", "monitor/stats_drift"]
    gold_meta = events["gold/driver_stats"].materialization.metadata
    assert gold_meta["delta_version"].value == lake.table("gold.driver_stats").version()
    assert gold_meta["rows_written"].value == 20
    assert events["monitor/stats_drift"].materialization.metadata["status"].value == "drift"
    # The catalog saw the same runs: Dagster ran the lake's steps, nothing of its own.
    assert lake.catalog.runs(job="gold_stats", status="completed")


def test_sensors_and_freshness_checks(project: tuple[Lake, Path], spark: Any) -> None:
    lake, _ = project
    defs = build_definitions(lake, max_age_hours=1)
    sensor = defs.get_sensor_def("lake_landing_files")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        requests = sensor(context)
        assert [r.asset_selection for r in requests] == [[dg.AssetKey(["bronze", "driver_stats"])]]
        assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
        assert dg.materialize(assets, selection=["bronze/driver_stats"], instance=instance).success
        assert isinstance(sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)
        put(lake, "landing/stats/z.csv", STATS_CSV.encode())
        again = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert len(again) == 1 and again[0].run_key != requests[0].run_key
    def check_of(definitions: dg.Definitions, table: str) -> Any:
        return next(c for c in definitions.asset_checks or []
                    if next(iter(c.check_keys)).asset_key.to_user_string() == table)

    fresh = check_of(defs, "bronze/driver_stats")
    outcome = dg.materialize([*assets, fresh], selection=dg.AssetSelection.checks(fresh))
    (evaluation,) = outcome.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["age_hours"].value < 1
    # A bound the table cannot meet fails the check (its age is read from the Delta log).
    strict = build_definitions(lake, max_age_hours=0)
    strict_assets = [a for a in strict.assets or [] if isinstance(a, dg.AssetsDefinition)]
    stale = check_of(strict, "gold/driver_stats")
    (evaluation,) = dg.materialize([*strict_assets, stale],
                                   selection=dg.AssetSelection.checks(stale)).get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["age_seconds"].value > 0
    assert defs.get_schedule_def("lake_pipeline_daily").cron_schedule == "0 2 * * *"
