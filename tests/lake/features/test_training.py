"""Training datasets: saved with their recipe, rebuilt exactly after the sources moved on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lake.cli.main import main
from lake.errors import FeatureError
from lake.features.apply import apply
from lake.features.training import content_hash, reproduce, save_training_dataset
from tests.lake.features.conftest import (
    FeatureLake,
    build,
    driver_rating,
    driver_stats,
    entities,
    write_repo,
)


@pytest.fixture(params=["embedded", pytest.param("s3", marks=pytest.mark.s3)])
def any_lake(request: pytest.FixtureRequest, tmp_path: Path) -> FeatureLake:
    return build(request.param, tmp_path, request)


def test_save_and_reproduce_after_sources_move_on(any_lake: FeatureLake) -> None:
    lake = any_lake.lake
    saved = save_training_dataset(lake, "churn", entities(), feature_service="driver_model",
                                  description="Churn model training set")
    assert saved.table == "training.churn" and saved.version == 0 and saved.rows == 300
    assert saved.sources == {"gold.driver_stats": {"version": 0, "location": lake.table("gold.driver_stats").uri},
                             "gold.driver_rating": {"version": 0, "location": lake.table("gold.driver_rating").uri}}
    stored = lake.table("training.churn").to_arrow()
    assert content_hash(stored) == saved.content_hash
    rec = lake.catalog.training_dataset("churn")
    assert rec["id"] == saved.id and rec["features"] == ["driver_stats:conv_rate", "driver_stats:trips",
                                                         "driver_rating:rating"]
    assert rec["entity_hash"] == saved.entity_hash and rec["feature_service"] == "driver_model"
    # The sources move on: new data, and a changed definition (TTL) re-applied.
    lake.table("gold.driver_stats").write(driver_stats(seed=5), mode="overwrite")
    lake.table("gold.driver_stats").write(driver_stats(seed=6))
    write_repo(any_lake.repo, ttl_hours=1)
    apply(lake, any_lake.repo)
    result = reproduce(lake, saved.id[:10])
    assert result.matches and result.actual_hash == saved.content_hash and result.stored_matches
    assert result.sources["gold.driver_stats"]["version"] == 0 and result.rows == 300
    # A fresh retrieval with the same entities now differs (the data did move on).
    again = save_training_dataset(lake, "churn", entities(), feature_service="driver_model")
    assert again.version == 1 and again.content_hash != saved.content_hash
    assert again.sources["gold.driver_stats"]["version"] == 2
    assert reproduce(lake, "churn").id == again.id  # by name: the newest
    ds = lake.catalog.show("training.churn")
    assert ds["kind"] == "training" and ds["description"] == "Churn model training set"
    assert {"gold.driver_stats", "gold.driver_rating"} <= set(ds["upstream"])


def test_changed_entity_frame_is_detected(embedded_lake: FeatureLake) -> None:
    lake = embedded_lake.lake
    saved = save_training_dataset(lake, "t1", entities(20), ["driver_stats:trips"])
    rec = lake.catalog.training_dataset(saved.id)
    path = rec["entity_location"]
    pq.write_table(pq.read_table(path).slice(0, 5), path)
    with pytest.raises(FeatureError, match="entity frame .* changed since it was saved"):
        reproduce(lake, saved.id)


def test_tampered_stored_frame_is_reported(embedded_lake: FeatureLake) -> None:
    lake = embedded_lake.lake
    saved = save_training_dataset(lake, "t2", entities(20), ["driver_stats:trips"])
    lake.table("training.t2").delete("driver_id >= 0")  # the stored version stays; a new one is empty
    result = reproduce(lake, saved.id)
    assert result.matches and result.stored_matches  # time travel still reads the saved version


def test_bad_names_and_refs(embedded_lake: FeatureLake) -> None:
    from catalog.errors import TrainingDatasetNotFoundError

    with pytest.raises(FeatureError, match="use letters, digits and _"):
        save_training_dataset(embedded_lake.lake, "bad-name", entities(3), ["driver_stats:trips"])
    with pytest.raises(TrainingDatasetNotFoundError, match="no training dataset 'ghost'"):
        reproduce(embedded_lake.lake, "ghost")


def test_content_hash_ignores_layout_not_values() -> None:
    a = pa.table({"x": [1, None, 3], "s": ["a", None, "c"]})
    b = pa.Table.from_batches([a.slice(0, 1).to_batches()[0], a.slice(1).to_batches()[0]])
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) == content_hash(a.cast(pa.schema([("x", pa.int64()), ("s", pa.large_string())])))
    assert content_hash(a) != content_hash(pa.table({"x": [1, None, 4], "s": ["a", None, "c"]}))
    assert content_hash(a) != content_hash(pa.table({"x": [1, 0, 3], "s": ["a", None, "c"]}))


def test_cli_apply_training_materialize(embedded_lake: FeatureLake, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    lake = embedded_lake.lake
    root = lake.settings.root_uri
    monkeypatch.setenv("LAKE_FEAST_PROJECT", lake.settings.feast.project)
    monkeypatch.setenv("LAKE_FEAST_REPO", str(embedded_lake.repo))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--root", root, *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("features", "apply", "--json")
    assert code == 0 and json.loads(out)["feature_views"] == ["driver_rating", "driver_stats"]
    code, out, _ = run("features", "list", "--json")
    assert {r["name"] for r in json.loads(out)} == {"driver_stats", "driver_rating", "driver_model"}
    code, out, _ = run("features", "show", "driver_stats")
    assert code == 0 and "conversion rate" in out and "gold.driver_stats" in out
    ents = tmp_path / "ents.parquet"
    pq.write_table(pa.Table.from_pandas(entities(30), preserve_index=False), ents)
    out_file = tmp_path / "frame.parquet"
    code, out, _ = run("features", "training", str(ents), "-f", "driver_stats:trips,driver_rating:rating",
                       "--out", str(out_file), "--save", "cli_set", "--json")
    info = json.loads(out)
    assert code == 0 and info["rows"] == 30 and pq.read_table(out_file).num_rows == 30
    assert pq.read_table(out_file).column_names[-2:] == ["trips", "rating"]
    code, out, _ = run("features", "index", "--json")
    indexed = {r["view"]: r for r in json.loads(out)}
    assert code == 0 and set(indexed) == {"driver_stats", "driver_rating"}
    assert indexed["driver_rating"]["rows"] == len(driver_rating().drop_duplicates(["driver_id", "ts"]))
    code, out, err = run("features", "index", "nope")
    assert code == 1 and "no feature view 'nope'" in err
    code, out, _ = run("features", "index")
    assert code == 0 and "driver_stats" in out and "point-in-time indexes" in out
    code, out, _ = run("training", "reproduce", "cli_set", "--json")
    assert code == 0 and json.loads(out)["matches"] is True and json.loads(out)["id"] == info["training_dataset"]
    code, out, _ = run("training", "reproduce", "cli_set")
    assert code == 0 and "reproduced" in out
    code, out, _ = run("features", "materialize", "--json")
    assert code == 0 and {r["view"]: r["mode"] for r in json.loads(out)} == {"driver_stats": "full",
                                                                             "driver_rating": "full"}
    code, out, _ = run("features", "materialize", "--incremental", "driver_stats")
    assert code == 0 and "unchanged" in out
    code, _, err = run("features", "training", str(ents), "-f", "driver_stats:nope")
    assert code == 1 and "no feature 'nope'" in err and "Traceback" not in err
    code, _, err = run("features", "training", str(tmp_path / "absent.csv"), "-f", "driver_stats:trips")
    assert code == 1 and "does not exist" in err


@pytest.mark.spark
def test_the_same_hash_whichever_engine_builds_or_rebuilds(embedded_lake: FeatureLake, spark: Any) -> None:
    """Saved on Spark (the executors write training.<name>) or on DuckDB: one content hash, and
    `reproduce` on either engine matches it."""
    lake = embedded_lake.lake
    ents = entities(400)
    by_duck = save_training_dataset(lake, "churn_duck", ents, feature_service="driver_model", engine="duckdb")
    by_spark = save_training_dataset(lake, "churn_spark", ents, feature_service="driver_model", engine="spark")
    assert by_spark.content_hash == by_duck.content_hash and by_spark.rows == 400
    assert by_spark.frame.arrow is None  # nothing collected to the driver
    stored = lake.table("training.churn_spark")
    assert len(stored.delta(by_spark.version).file_uris()) >= 1
    rec = lake.catalog.training_dataset(by_spark.id)
    assert rec["options"]["engine"] == "spark" and rec["row_count"] == 400
    lake.table("gold.driver_stats").write(driver_stats(seed=5), mode="overwrite")  # the sources move on
    for saved, engine in ((by_spark, "duckdb"), (by_duck, "spark"), (by_spark, "spark")):
        result = reproduce(lake, saved.id, engine=engine)
        assert result.matches and result.stored_matches, (saved.name, engine)
        assert result.rows == 400


def test_streamed_hash_equals_the_hash_of_the_whole_table(tmp_path: Path) -> None:
    """The hash the Spark engine computes batch by batch (bounded memory) is `content_hash` exactly."""
    import datetime as dt

    from lake.features.training import ContentHasher

    table = pa.table({"a": [1, None, 3, 4], "s": ["x", None, "yz", "é"],
                      "ts": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)],
                                     pa.timestamp("us", "UTC")),
                      "l": [[1], None, [2, 3], []], "b": [True, None, False, True], "f": [1.5, None, 2.0, float("nan")]})
    for size in (1, 3, 4):
        hasher = ContentHasher(table.schema, tmp_path / f"h{size}")
        for batch in table.to_batches(max_chunksize=size):
            hasher.update(batch)
        assert hasher.hexdigest() == content_hash(table)
    assert ContentHasher(table.schema, tmp_path / "empty").hexdigest() == content_hash(table.slice(0, 0))
