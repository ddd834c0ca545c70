"""`lake features list/show/get` read the registry file without importing Feast, with Feast's answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lake.features.apply as apply_module
from lake.errors import UnknownFeatureError
from lake.features.apply import describe, show
from lake.features.materialize import materialize
from lake.features.online import OnlineReader, get_online_features
from lake.features.registry_light import snapshot, type_name
from lake.features.repo import feast_dir, feature_store
from lake.lakehouse import Lake
from tests.lake.features.conftest import FeatureLake, OnlineLake

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_stats:city", "driver_rating:rating"]
DRIVERS = [3, 1, 999, 3, 0, 7]


def test_type_names_are_feasts() -> None:
    from feast.types import VALUE_TYPES_TO_FEAST_TYPES
    from feast.value_type import ValueType

    for value_type, feast_type in VALUE_TYPES_TO_FEAST_TYPES.items():
        assert type_name(value_type.value) == str(feast_type), value_type
    for left in (ValueType.STRUCT, ValueType.STRUCT_LIST, ValueType.VALUE_LIST, ValueType.NULL):
        assert type_name(left.value) is None  # left to Feast


def _same(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _answers_as_feast(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    materialize(lake)
    light = snapshot(lake.settings.feast, feast_dir(lake))
    assert light is not None
    names = ("driver_stats", "driver_rating", "driver_model")
    quick = (describe(lake), [show(lake, n) for n in names])
    requests: list[tuple[list[str] | None, str | None, bool]] = [
        (FEATURES, None, False), (FEATURES, None, True), (None, "driver_model", False)]
    for features, service, full in requests:
        got = OnlineReader(lake, light=True).get({"driver_id": DRIVERS}, features, feature_service=service,
                                                 full_feature_names=full)
        want = get_online_features(lake, {"driver_id": DRIVERS}, features, feature_service=service,
                                   full_feature_names=full)
        assert _same(got.to_dict()) == _same(want)
        assert got.to_dict()["driver_stats__conv_rate" if full else "conv_rate"][2] is None  # 999 is not stored
    with pytest.raises(UnknownFeatureError, match="has no feature 'nope'; it has conv_rate, trips, city"):
        OnlineReader(lake, light=True).get({"driver_id": [1]}, ["driver_stats:nope"])
    monkeypatch.setattr(apply_module, "registered", feature_store)  # the same questions through Feast
    assert _same((describe(lake), [show(lake, n) for n in names])) == _same(quick)


def test_list_show_and_get_answer_as_feast_on_every_online_store(online_lake: OnlineLake,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _answers_as_feast(online_lake.lake, monkeypatch)


def test_list_show_and_get_answer_as_feast_on_both_registries(feature_lake: FeatureLake,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The file registry (embedded) and Feast's SQL registry on PostgreSQL (production)."""
    _answers_as_feast(feature_lake.lake, monkeypatch)


def test_the_commands_do_not_import_feast(embedded_lake: FeatureLake, tmp_path: Path) -> None:
    """What made `lake features list/show/get` take 10 s and more: importing Feast."""
    lake = embedded_lake.lake
    materialize(lake)
    code = ("import sys, io, contextlib; from lake.cli.main import main\n"
            "outs = []\n"
            "for args in (['features', 'list', '--json'], ['features', 'show', 'driver_stats', '--json'],\n"
            "             ['features', 'get', '-e', 'driver_id=3', '-s', 'driver_model', '--json']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        assert main(args) == 0\n"
            "    outs.append(out.getvalue())\n"
            "print('feast' in sys.modules)\n"
            "print('\\x00'.join(outs))\n")
    env = {**os.environ, "LAKE_CONFIG": "", "LAKE_ROOT": lake.storage.root,
           "LAKE_FEAST_PROJECT": lake.settings.feast.project, "LAKE_CATALOG_URL": lake.settings.catalog_url}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    loaded, outputs = done.stdout.split("\n", 1)
    assert loaded == "False"
    listing, shown, got = (json.loads(o) for o in outputs.split("\x00"))
    assert {r["name"] for r in listing} == {"driver_stats", "driver_rating", "driver_model"}
    assert shown["ttl"] == "2 days, 0:00:00" and [f["type"] for f in shown["features"]] == ["Float64", "Int64", "String"]
    assert got == get_online_features(lake, [{"driver_id": 3}], feature_service="driver_model")
    assert "Warning" not in done.stderr
