"""The Feast registry read without importing Feast, for the quick commands.

Importing Feast takes several seconds (its classes are instrumented by typeguard at import),
which made every ``lake features list/show/get`` take 10 s or more. Those commands only
read the registry: its protobuf is decoded here with message classes built from the
descriptors Feast ships (read from its ``*_pb2.py`` files, in a private descriptor pool, so
a later ``import feast`` in the same process is unaffected), into small objects with the
attributes of Feast's own that :mod:`lake.features.apply` and :mod:`lake.features.online_plan`
read.

Only the common case is handled: the file registry or Feast's SQL registry, feature views
over file sources with plain field types, feature services, entities. :func:`snapshot`
returns ``None`` for anything else (on-demand or batch transformation views, struct
types...) and the callers use Feast itself, so the answers are the same either way.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import importlib.util
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LightRegistry", "snapshot", "type_name"]

DUMMY_ENTITY_NAME = "__dummy"

_PRIMITIVE = {0: "Invalid", 1: "Bytes", 2: "String", 3: "Int32", 4: "Int64", 5: "Float64", 6: "Float32", 7: "Bool",
              8: "UnixTimestamp", 20: "Map", 30: "PdfBytes", 31: "ImageBytes", 32: "Json", 36: "Uuid",
              37: "TimeUuid", 44: "Decimal", 47: "ScalarMap", 48: "ZonedTimestamp"}
_ARRAY = {11: 1, 12: 2, 13: 3, 14: 4, 15: 5, 16: 6, 17: 7, 18: 8, 21: 20, 33: 32, 38: 36, 39: 37, 45: 44}
_SET = {22: 1, 23: 2, 24: 3, 25: 4, 26: 5, 27: 6, 28: 7, 29: 8, 40: 36, 41: 37, 46: 44}


def type_name(value_type: int) -> str | None:
    """``str()`` of the Feast type a ``ValueType`` number stands for (``Float64``, ``Array(String)``), or
    ``None`` for the kinds left to Feast (structs, nested collections)."""
    if value_type in _PRIMITIVE:
        return _PRIMITIVE[value_type]
    if value_type in _ARRAY:
        return f"Array({_PRIMITIVE[_ARRAY[value_type]]})"
    if value_type in _SET:
        return f"Set({_PRIMITIVE[_SET[value_type]]})"
    return None


class _Unsupported(Exception):
    """The registry holds something this reader leaves to Feast."""


@dataclass(frozen=True)
class LightType:
    """A field type: the ``ValueType`` number, printed as Feast prints its type."""

    value: int

    def to_value_type(self) -> LightType:
        return self

    def __str__(self) -> str:
        return type_name(self.value) or "Invalid"


@dataclass
class LightField:
    name: str
    dtype: LightType
    description: str = ""


@dataclass
class LightSource:
    """A file data source (Feast's ``FileSource``)."""

    name: str
    path: str
    timestamp_field: str
    created_timestamp_column: str
    field_mapping: dict[str, str]
    tags: dict[str, str]


@dataclass
class LightView:
    """A feature view (Feast's ``FeatureView``, as the registry returns it)."""

    name: str
    entities: list[str]
    entity_columns: list[LightField]
    features: list[LightField]
    ttl: dt.timedelta
    batch_source: LightSource
    online: bool
    description: str
    tags: dict[str, str]
    owner: str
    enabled: bool


@dataclass
class LightProjection:
    """A feature view as a feature service selects it (Feast's ``FeatureViewProjection``)."""

    name: str
    name_alias: str | None
    features: list[LightField]
    join_key_map: dict[str, str]
    version_tag: int | None = None

    def name_to_use(self) -> str:
        base = self.name_alias or self.name
        return f"{base}@v{self.version_tag}" if self.version_tag is not None else base


@dataclass
class LightService:
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    feature_view_projections: list[LightProjection] = field(default_factory=list)


@dataclass(frozen=True)
class LightEntity:
    name: str
    join_key: str
    value_type: LightType


class LightRegistry:
    """One reading of the registry for a project, with the listing methods of Feast's ``FeatureStore``
    (``list_feature_views()``...) and of its registry (``list_feature_views(project, allow_cache=True)``...)."""

    def __init__(self, project: str, views: list[LightView], services: list[LightService],
                 entities: list[LightEntity]) -> None:
        self.project = project
        self._views, self._services, self._entities = views, services, entities

    @property
    def registry(self) -> LightRegistry:
        return self

    def list_feature_views(self, project: str | None = None, allow_cache: bool = False) -> list[LightView]:
        """The feature views; without a project (the ``FeatureStore`` call), the dummy entity hidden as Feast does."""
        if project is not None:
            return list(self._views)
        return [_hide_dummy(v) for v in self._views]

    def list_on_demand_feature_views(self, project: str | None = None, allow_cache: bool = False) -> list[Any]:
        return []  # a project with on-demand views is left to Feast

    def list_feature_services(self, project: str | None = None, allow_cache: bool = False) -> list[LightService]:
        return list(self._services)

    def list_entities(self, project: str | None = None, allow_cache: bool = False) -> list[LightEntity]:
        return list(self._entities)


def _hide_dummy(view: LightView) -> LightView:
    if view.entities and view.entities[0] == DUMMY_ENTITY_NAME:
        return LightView(**{**view.__dict__, "entities": [], "entity_columns": []})
    return view


# --------------------------------------------------------------------------- protobuf classes

_BYTES = re.compile(r"AddSerializedFile\((b'(?:[^'\\]|\\.)*')\)")
_CLASSES: dict[str, Any] = {}
_LOCK = threading.Lock()


def _classes() -> dict[str, Any]:
    """Feast's registry message classes (``Registry``, ``FeatureView``...), built in a private descriptor
    pool from Feast's descriptors."""
    with _LOCK:
        if _CLASSES:
            return _CLASSES
        # heavy: on first read only
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        spec = importlib.util.find_spec("feast")  # finds the package without running its __init__
        if spec is None or not spec.submodule_search_locations:
            raise _Unsupported("feast is not installed")
        protos = Path(next(iter(spec.submodule_search_locations))) / "protos"
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(name: str) -> None:
            if name in added:
                return
            if name.startswith("google/protobuf/"):
                module = importlib.import_module("google.protobuf." + Path(name).stem + "_pb2")
                data = module.DESCRIPTOR.serialized_pb
            else:
                source = protos / name.replace(".proto", "_pb2.py")
                found = _BYTES.search(source.read_text()) if source.is_file() else None
                if found is None:
                    raise _Unsupported(f"no descriptor for {name}")
                data = ast.literal_eval(found.group(1))
            proto = descriptor_pb2.FileDescriptorProto.FromString(data)
            for dependency in proto.dependency:
                add(dependency)
            pool.Add(proto)
            added.add(name)

        add("feast/core/Registry.proto")
        for kind in ("Registry", "FeatureView", "FeatureService", "Entity"):
            _CLASSES[kind] = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"feast.core.{kind}"))
        return _CLASSES


# --------------------------------------------------------------------------- reading

def _field(proto: Any) -> LightField:
    if type_name(proto.value_type) is None:
        raise _Unsupported(f"field {proto.name} has a type left to Feast")
    return LightField(proto.name, LightType(proto.value_type), proto.description)


def _fields(protos: Iterable[Any]) -> list[LightField]:
    return [_field(p) for p in protos]


def _view(proto: Any) -> LightView:
    spec = proto.spec
    if (spec.HasField("feature_transformation") or len(spec.source_views) or spec.HasField("stream_source")
            or not spec.HasField("batch_source") or not spec.batch_source.HasField("file_options")):
        raise _Unsupported(f"feature view {spec.name} is not a plain view over a file source")
    src = spec.batch_source
    ttl = dt.timedelta(seconds=spec.ttl.seconds, microseconds=int(spec.ttl.nanos / 1000))  # 0: no limit
    return LightView(
        name=spec.name, entities=list(spec.entities), entity_columns=_fields(spec.entity_columns),
        features=_fields(spec.features), ttl=ttl,
        batch_source=LightSource(src.name, src.file_options.uri, src.timestamp_field, src.created_timestamp_column,
                                 dict(src.field_mapping), dict(src.tags)),
        online=spec.online, description=spec.description, tags=dict(spec.tags), owner=spec.owner,
        enabled=not spec.disabled)


def _service(proto: Any) -> LightService:
    spec = proto.spec
    service = LightService(spec.name, spec.description, spec.owner, dict(spec.tags))
    for p in spec.features:
        service.feature_view_projections.append(LightProjection(
            p.feature_view_name, p.feature_view_name_alias or None, _fields(p.feature_columns), dict(p.join_key_map),
            p.version_tag if p.HasField("version_tag") else None))
    return service


def _entity(proto: Any) -> LightEntity:
    return LightEntity(proto.spec.name, proto.spec.join_key, LightType(proto.spec.value_type))


def read(data: bytes, project: str) -> LightRegistry | None:
    """A project's definitions from a serialized registry, or ``None`` if Feast must read them."""
    try:
        registry = _classes()["Registry"].FromString(data)
        if any(v.spec.project == project for v in registry.on_demand_feature_views):
            return None
        return LightRegistry(project, [_view(v) for v in registry.feature_views if v.spec.project == project],
                             [_service(s) for s in registry.feature_services if s.spec.project == project],
                             [_entity(e) for e in registry.entities if e.spec.project == project])
    except Exception:  # something left to Feast, or an unreadable or newer registry: Feast says what is wrong
        return None


def read_sql(url: str, project: str) -> LightRegistry | None:
    """A project's definitions from Feast's SQL registry (its tables, one protobuf per row; rows in the order
    Feast's own ``SELECT`` returns them), or ``None`` if Feast must read them."""
    from sqlalchemy import (  # the catalog's database layer; far lighter than Feast
        create_engine,
        text,
    )

    def blobs(conn: Any, table: str, column: str) -> list[bytes]:
        # Table and column names are Feast's fixed schema, never data; the project is a parameter.
        query = text(f"SELECT {column} FROM {table} WHERE project_id = :project")
        return [bytes(row[0]) for row in conn.execute(query, {"project": project})]

    try:
        engine = create_engine(url)
    except Exception:
        return None
    try:
        with engine.connect() as conn:
            if blobs(conn, "on_demand_feature_views", "feature_view_proto"):
                return None
            kinds = _classes()
            return LightRegistry(
                project, [_view(kinds["FeatureView"].FromString(b)) for b in blobs(conn, "feature_views",
                                                                                 "feature_view_proto")],
                [_service(kinds["FeatureService"].FromString(b)) for b in blobs(conn, "feature_services",
                                                                              "feature_service_proto")],
                [_entity(kinds["Entity"].FromString(b)) for b in blobs(conn, "entities", "entity_proto")])
    except Exception:  # no tables yet, something left to Feast, the database down: Feast says what is wrong
        return None
    finally:
        engine.dispose()


def snapshot(settings: Any, folder: Path) -> LightRegistry | None:
    """The registry of ``[feast] project``: the file ``folder/registry.db`` or the SQL registry
    ``[feast] registry``; ``None`` when Feast must read it (no registry yet, definitions this reader
    leaves to Feast).

    Args:
        settings: the ``[feast]`` settings.
        folder: the lake's Feast folder (:func:`lake.features.repo.feast_dir`).
    """
    if settings.registry is not None:
        return read_sql(settings.registry.get_secret_value(), settings.project)
    try:
        data = (folder / "registry.db").read_bytes()
    except OSError:
        return None
    return read(data, settings.project)
