"""Training datasets: a point-in-time retrieval saved with its exact recipe, and rebuilt on demand.

Saving a retrieval writes the frame to the lake table ``training.<name>`` (one version per
save), the entity frame to ``<root>/_training/<id>/entities.parquet``, and records in the
catalog: the Delta version of every source table, the feature list, the feature view
definitions as they were (so a later change of TTL or mapping cannot change the answer),
the entity frame's hash and the result's content hash. ``reproduce`` rebuilds the frame
from those versions by time travel and checks that the hash matches.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lake.data import normalized
from lake.errors import FeatureError, LakeError
from lake.features.repo import feature_store
from lake.features.retrieval import TrainingFrame, entity_table, plan, retrieve
from lake.lakehouse import Lake
from lake.naming import training_table

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _canonical_type(typ: pa.DataType) -> str:
    """Type names that do not depend on the physical layout (string vs large_string...)."""
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return "string"
    if pa.types.is_large_binary(typ) or pa.types.is_binary_view(typ):
        return "binary"
    if pa.types.is_dictionary(typ):
        return _canonical_type(typ.value_type)
    return str(typ)


def content_hash(table: pa.Table) -> str:
    """A SHA-256 of a table's names, types and values that ignores chunking and bytes under nulls."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[f.name, _canonical_type(f.type)] for f in table.schema]).encode())
    digest.update(str(table.num_rows).encode())
    for column in table.itercolumns():
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        digest.update(pc.is_null(arr).to_numpy(zero_copy_only=False).tobytes())
        typ = arr.type
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            filled = pc.fill_null(arr.cast(pa.large_string()), "")
            digest.update(pc.binary_length(filled).to_numpy(zero_copy_only=False).tobytes())
            digest.update("".join(filled.to_pylist()).encode())
        elif pa.types.is_timestamp(typ) or pa.types.is_date(typ) or pa.types.is_time(typ):
            ints = arr.cast(pa.int64() if typ.bit_width == 64 else pa.int32())
            digest.update(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).tobytes())
        elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ):
            filled = pc.fill_null(arr, pa.scalar(False if pa.types.is_boolean(typ) else 0, typ))
            digest.update(filled.to_numpy(zero_copy_only=False).tobytes())
        else:
            digest.update(json.dumps(arr.to_pylist(), default=str, sort_keys=True).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class SavedTrainingDataset:
    """A saved training dataset: its id, where its frame lives, and its hashes."""

    id: str
    name: str
    table: str
    version: int
    rows: int
    content_hash: str
    entity_hash: str
    sources: dict[str, dict[str, Any]]
    run_id: str | None
    frame: TrainingFrame = field(repr=False)


@dataclass(frozen=True)
class ReproduceResult:
    """The outcome of rebuilding a training dataset from its recipe."""

    id: str
    name: str
    matches: bool
    expected_hash: str
    actual_hash: str
    rows: int
    sources: dict[str, dict[str, Any]]
    stored_matches: bool | None
    """Whether the frame stored in the lake still hashes to the recorded value (None: table gone)."""
    frame: TrainingFrame | None = field(default=None, repr=False)


def _definitions(the_plan: Any) -> dict[str, list[str]]:
    def enc(obj: Any) -> str:
        return base64.b64encode(obj.to_proto().SerializeToString()).decode()

    views = {r.view.name: r.view for r in the_plan.views}
    return {"feature_views": [enc(v) for v in views.values()],
            "on_demand": [enc(r.view) for r in the_plan.on_demand]}


class _FrozenRegistry:
    """The feature definitions recorded with a training dataset, shaped like a FeatureStore for :func:`plan`."""

    def __init__(self, defs: dict[str, list[str]], services: list[Any]) -> None:
        # heavy: feast is imported only when a recorded training dataset is rebuilt
        from feast import FeatureView, OnDemandFeatureView
        from feast.protos.feast.core.FeatureView_pb2 import FeatureView as FeatureViewProto
        from feast.protos.feast.core.OnDemandFeatureView_pb2 import OnDemandFeatureView as OdfvProto

        self.views = [FeatureView.from_proto(FeatureViewProto.FromString(base64.b64decode(b)))
                      for b in defs.get("feature_views", [])]
        self.odfvs = [OnDemandFeatureView.from_proto(OdfvProto.FromString(base64.b64decode(b)))
                      for b in defs.get("on_demand", [])]
        self.services = services

    def list_feature_views(self) -> list[Any]:
        return self.views

    def list_on_demand_feature_views(self) -> list[Any]:
        return self.odfvs

    def list_feature_services(self) -> list[Any]:
        return self.services


def save_training_dataset(
    lake: Lake,
    name: str,
    entity_df: Any,
    features: list[str] | None = None,
    *,
    feature_service: str | None = None,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
    description: str | None = None,
) -> SavedTrainingDataset:
    """Retrieve a point-in-time frame and save it as a reproducible training dataset.

    Args:
        lake: the lake.
        name: the dataset's name (letters, digits, ``_``); the frame goes to ``training.<name>``.
        entity_df: entity keys and event times (pandas, Polars or Arrow).
        features: ``["view:feature", ...]``, or give ``feature_service``.
        feature_service: a registered feature service.
        timestamp_column: the entity frame's event-time column.
        full_feature_names: name columns ``view__feature``.
        description: shown in the catalog.

    Returns:
        The saved dataset, with its id and hashes.

    Raises:
        FeatureError: a bad name, unknown features or a bad entity frame.
    """
    if not _NAME.match(name):
        raise FeatureError(f"training dataset name {name!r}: use letters, digits and _ (it becomes training.{name})")
    store = feature_store(lake)
    entities = entity_table(entity_df, timestamp_column)
    entities = normalized(entities)
    assert isinstance(entities, pa.Table)
    the_plan = plan(lake, features, feature_service, store)
    training_id = uuid.uuid4().hex
    entity_hash = content_hash(entities)
    entity_uri = lake.storage.uri("_training", training_id, "entities.parquet")
    with lake.run(f"features.training.{name}", parameters={"features": the_plan.refs,
                                                          "feature_service": feature_service}) as run:
        frame = retrieve(lake, entities, features, feature_service=feature_service, timestamp_column=timestamp_column,
                         full_feature_names=full_feature_names, store=store)
        data = normalized(frame.data)
        assert isinstance(data, pa.Table)
        fs = lake.storage.arrow_fs()
        path = lake.storage.fs_path(entity_uri)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(entities, path, filesystem=fs)
        table = lake.table(training_table(name))
        result = table.write(data, mode="overwrite", schema_mode="overwrite")
        assert result.version is not None
        stored = table.to_arrow(version=result.version)
        digest = content_hash(data)
        if content_hash(stored.select(data.column_names)) != digest:
            raise FeatureError(f"{training_table(name)} v{result.version} does not read back as written; "
                               "a column type does not survive the Delta round trip")
        options = {"timestamp_column": timestamp_column, "full_feature_names": full_feature_names,
                   "definitions": _definitions(the_plan)}
        lake.catalog.record_training_dataset(
            training_id, name, version=result.version, features=the_plan.refs, sources=frame.sources,
            entity_hash=entity_hash, content_hash=digest, row_count=data.num_rows,
            columns=[{"name": f.name, "type": str(f.type)} for f in data.schema],
            feature_service=feature_service, entity_location=entity_uri, options=options, run_id=run.run_id)
        if description:
            lake.catalog.describe(training_table(name), description)
        run.stats.update({"training_dataset": training_id, "rows": data.num_rows, "content_hash": digest})
    return SavedTrainingDataset(training_id, name, table.name, result.version, data.num_rows, digest,
                                entity_hash, frame.sources, run.run_id,
                                TrainingFrame(stored, frame.features, frame.sources, feature_service))


def reproduce(lake: Lake, ref: str) -> ReproduceResult:
    """Rebuild a saved training dataset from its recorded source versions and check its hash.

    Args:
        lake: the lake.
        ref: the training dataset's id (or a unique prefix of 6+ characters) or name (the newest).

    Returns:
        Whether the rebuilt frame hashes to the recorded content hash, and both hashes.

    Raises:
        FeatureError: the entity frame is gone or changed, or a source version was vacuumed.
    """
    rec = lake.catalog.training_dataset(ref)
    location = rec["entity_location"]
    try:
        entities = pq.read_table(lake.storage.fs_path(location), filesystem=lake.storage.arrow_fs())
    except (OSError, pa.ArrowInvalid) as exc:
        raise FeatureError(f"training dataset {rec['id']}: its entity frame {location} cannot be read ({exc})") from exc
    if content_hash(entities) != rec["entity_hash"]:
        raise FeatureError(f"training dataset {rec['id']}: the entity frame at {location} changed since it was saved")
    options = rec["options"] or {}
    services = []
    if rec["feature_service"]:
        services = [s for s in feature_store(lake).list_feature_services() if s.name == rec["feature_service"]]
    frozen = _FrozenRegistry(options.get("definitions") or {}, services)
    features = None if rec["feature_service"] else rec["features"]
    versions = {name: int(src["version"]) for name, src in rec["sources"].items()}
    with lake.run(f"features.reproduce.{rec['name']}", parameters={"training_dataset": rec["id"]}) as run:
        try:
            frame = retrieve(lake, entities, features, feature_service=rec["feature_service"],
                             timestamp_column=options.get("timestamp_column", "event_timestamp"),
                             full_feature_names=bool(options.get("full_feature_names")), versions=versions,
                             store=frozen)
        except LakeError:
            raise
        except Exception as exc:
            raise FeatureError(f"training dataset {rec['id']}: cannot rebuild it from the recorded versions "
                               f"{versions} ({str(exc).splitlines()[0]}); were they vacuumed?") from exc
        data = normalized(frame.data)
        assert isinstance(data, pa.Table)
        table = lake.table(training_table(rec['name']))
        actual = content_hash(data)
        stored_matches: bool | None = None
        if table.exists() and rec["version"] is not None:
            stored = table.to_arrow(version=int(rec["version"]))
            stored_matches = content_hash(stored.select(data.column_names)) == rec["content_hash"]
        run.stats.update({"training_dataset": rec["id"], "matches": actual == rec["content_hash"]})
    return ReproduceResult(rec["id"], rec["name"], actual == rec["content_hash"], rec["content_hash"], actual,
                           data.num_rows, frame.sources, stored_matches, frame)
