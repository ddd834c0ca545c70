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
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lake.data import normalized
from lake.errors import FeatureError, LakeError
from lake.features.repo import feature_store
from lake.features.retrieval import Engine, TrainingFrame, entity_table, plan, retrieve
from lake.lakehouse import Lake
from lake.naming import training_table
from lake.spark_io import arrow_schema_of, table_files

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


class ContentHasher:
    """:func:`content_hash` of a table given as record batches in row order, in bounded memory.

    The hash digests each column whole (nulls, then lengths, then values), so the parts of
    every column are spooled to files in ``folder`` as batches arrive and digested at the end.
    Gives exactly :func:`content_hash` of the concatenated batches.
    """

    def __init__(self, schema: pa.Schema, folder: Path) -> None:
        self.schema = schema
        self.rows = 0
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.parts: list[list[Any]] = []
        for i, f in enumerate(schema):
            count = 3 if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) else 2
            self.parts.append([open(folder / f"c{i}-{j}", "wb") for j in range(count)])  # noqa: SIM115 - closed in digest
        self.json_started = [False] * len(schema)

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        if not batch.num_rows:
            return
        self.rows += batch.num_rows
        for i, column in enumerate(batch.columns):
            arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            files = self.parts[i]
            files[0].write(pc.is_null(arr).to_numpy(zero_copy_only=False).tobytes())
            typ = arr.type
            if pa.types.is_string(typ) or pa.types.is_large_string(typ):
                filled = pc.fill_null(arr.cast(pa.large_string()), "")
                files[1].write(pc.binary_length(filled).to_numpy(zero_copy_only=False).tobytes())
                files[2].write("".join(filled.to_pylist()).encode())
            elif pa.types.is_timestamp(typ) or pa.types.is_date(typ) or pa.types.is_time(typ):
                ints = arr.cast(pa.int64() if typ.bit_width == 64 else pa.int32())
                files[1].write(pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).tobytes())
            elif pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ):
                filled = pc.fill_null(arr, pa.scalar(False if pa.types.is_boolean(typ) else 0, typ))
                files[1].write(filled.to_numpy(zero_copy_only=False).tobytes())
            else:  # json.dumps of the whole list, written item by item
                text = json.dumps(arr.to_pylist(), default=str, sort_keys=True)[1:-1]
                files[1].write(((", " if self.json_started[i] else "[") + text).encode())
                self.json_started[i] = True

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([[f.name, _canonical_type(f.type)] for f in self.schema]).encode())
        digest.update(str(self.rows).encode())
        for i, files in enumerate(self.parts):
            as_json = len(files) == 2 and not _plain(self.schema.field(i).type)
            for j, fh in enumerate(files):
                fh.close()
                if as_json and j == 1 and not self.json_started[i]:
                    digest.update(b"[]")
                    continue
                with open(fh.name, "rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                if as_json and j == 1:
                    digest.update(b"]")
        shutil.rmtree(self.folder, ignore_errors=True)
        return digest.hexdigest()


def _plain(typ: pa.DataType) -> bool:
    return (pa.types.is_timestamp(typ) or pa.types.is_date(typ) or pa.types.is_time(typ) or pa.types.is_integer(typ)
            or pa.types.is_floating(typ) or pa.types.is_boolean(typ))


def _scratch(lake: Lake) -> Path:
    return Path(lake.settings.cache_path) / "training_hash" / uuid.uuid4().hex


def stored_hash(lake: Lake, name: str, version: int) -> tuple[str, int, pa.Schema]:
    """:func:`content_hash` of a stored training frame, streamed file by file (bounded memory).

    The frame's files hold consecutive runs of its rows (Spark writes the sorted frame one file
    per range, delta-rs one file after another), so they are read in the order of their names.
    """
    table = lake.table(name)
    delta = table.delta(version)
    files = sorted(table_files(delta, None, table.uri), key=lambda f: f["path"])
    if any(f.get("deleted") for f in files):
        raise FeatureError(f"{name} v{version} has deleted rows (deletion vectors); it was changed after it was saved")
    schema = pa.schema(delta.schema().to_arrow())
    fs = lake.storage.arrow_fs()
    root = lake.storage.fs_path(table.uri)
    return _hash_files(lake, fs, [f"{root}/{f['path']}" for f in files], schema)


def _hash_files(lake: Lake, fs: Any, paths: list[str], schema: pa.Schema) -> tuple[str, int, pa.Schema]:
    hasher: ContentHasher | None = None
    for path in paths:
        with fs.open_input_file(path) as fh:
            parquet = pq.ParquetFile(fh)
            for batch in parquet.iter_batches(batch_size=65_536, columns=schema.names):
                if hasher is None:
                    hasher = ContentHasher(batch.schema, _scratch(lake))
                hasher.update(batch)
    if hasher is None:
        hasher = ContentHasher(schema, _scratch(lake))
    return hasher.hexdigest(), hasher.rows, hasher.schema


def spark_hash(lake: Lake, frame: Any) -> tuple[str, int]:
    """:func:`content_hash` of a Spark frame (sorted in its row order): the executors write it as
    Parquet to a scratch folder, the driver streams the files in order."""
    folder = _scratch(lake)
    frame.write.mode("overwrite").parquet(str(folder / "frame"))
    try:
        paths = sorted(str(p) for p in (folder / "frame").glob("*.parquet"))
        digest, rows, _ = _hash_files(lake, pafs.LocalFileSystem(), paths, arrow_schema_of(frame))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return digest, rows


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
    engine: Engine | None = None,
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
        engine: ``duckdb``, ``spark`` or ``auto`` (default ``[features] engine``). On Spark the
            executors write ``training.<name>`` and the driver only streams it once for the hash.

    Returns:
        The saved dataset, with its id and hashes (the same whichever engine built it).

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
                         full_feature_names=full_feature_names, store=store, engine=engine)
        fs = lake.storage.arrow_fs()
        path = lake.storage.fs_path(entity_uri)
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(entities, path, filesystem=fs)
        table = lake.table(training_table(name))
        if frame.spark is not None:  # the executors write the frame; the driver streams it once for the hash
            result = table.write(frame.spark, mode="overwrite", schema_mode="overwrite")
            assert result.version is not None
            digest, rows, schema = stored_hash(lake, table.name, result.version)
            saved_frame = frame
        else:
            data = normalized(frame.data)
            assert isinstance(data, pa.Table)
            result = table.write(data, mode="overwrite", schema_mode="overwrite")
            assert result.version is not None
            stored = table.to_arrow(version=result.version)
            digest = content_hash(data)
            if content_hash(stored.select(data.column_names)) != digest:
                raise FeatureError(f"{training_table(name)} v{result.version} does not read back as written; "
                                   "a column type does not survive the Delta round trip")
            rows, schema = data.num_rows, data.schema
            saved_frame = TrainingFrame(stored, frame.features, frame.sources, feature_service)
        options = {"timestamp_column": timestamp_column, "full_feature_names": full_feature_names,
                   "definitions": _definitions(the_plan), "engine": frame.engine}
        lake.catalog.record_training_dataset(
            training_id, name, version=result.version, features=the_plan.refs, sources=frame.sources,
            entity_hash=entity_hash, content_hash=digest, row_count=rows,
            columns=[{"name": f.name, "type": str(f.type)} for f in schema],
            feature_service=feature_service, entity_location=entity_uri, options=options, run_id=run.run_id)
        if description:
            lake.catalog.describe(training_table(name), description)
        run.stats.update({"training_dataset": training_id, "rows": rows, "content_hash": digest,
                          "engine": frame.engine})
    return SavedTrainingDataset(training_id, name, table.name, result.version, rows, digest,
                                entity_hash, frame.sources, run.run_id, saved_frame)


def reproduce(lake: Lake, ref: str, *, engine: Engine | None = None) -> ReproduceResult:
    """Rebuild a saved training dataset from its recorded source versions and check its hash.

    Args:
        lake: the lake.
        ref: the training dataset's id (or a unique prefix of 6+ characters) or name (the newest).
        engine: the engine that rebuilds it (default ``[features] engine``); either gives the same hash.

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
                             store=frozen, engine=engine)
        except LakeError:
            raise
        except Exception as exc:
            raise FeatureError(f"training dataset {rec['id']}: cannot rebuild it from the recorded versions "
                               f"{versions} ({str(exc).splitlines()[0]}); were they vacuumed?") from exc
        if frame.spark is not None:
            actual, rows = spark_hash(lake, frame.spark)
        else:
            data = normalized(frame.data)
            assert isinstance(data, pa.Table)
            actual, rows = content_hash(data), data.num_rows
        table = lake.table(training_table(rec['name']))
        stored_matches: bool | None = None
        if table.exists() and rec["version"] is not None:
            stored_matches = stored_hash(lake, table.name, int(rec["version"]))[0] == rec["content_hash"]
        run.stats.update({"training_dataset": rec["id"], "matches": actual == rec["content_hash"],
                          "engine": frame.engine})
    return ReproduceResult(rec["id"], rec["name"], actual == rec["content_hash"], rec["content_hash"], actual,
                           rows, frame.sources, stored_matches, frame)
