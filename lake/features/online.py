"""Latest feature values for entity keys, read straight from Feast's online store.

The SQLite (embedded) and Redis stores are read in Feast's own layout: Redis holds one
hash per entity key (``serialize_entity_key(v3) + project``) with a field per feature
(``mmh3("<view>:<feature>")``) and ``_ts:<view>``; SQLite holds a table per view with a
row per entity key and feature. Requests resolve against a registry snapshot that is
cached and refreshed on a timer; the Redis fields and command bytes are precomputed per
feature view, one pipelined ``HMGET`` per entity and view goes out per request (SQLite:
one query per view), and the common scalar values are decoded without building
protobuf objects. The values equal what ``FeatureStore.get_online_features`` returns;
on-demand feature views run Feast's own transformation code.

One difference on purpose: an entity that is not in the store is ``NOT_FOUND`` on both
stores (Feast's Redis store reports it ``PRESENT``, with null values).
"""

from __future__ import annotations

import copy
import logging
import struct
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lake.features.online_stores import (
    OnlineRequestError,
    OnlineStoreError,
    RedisStore,
    Row,
    ServingError,
    SqliteStore,
    UnknownFeatureError,
)
from lake.features.repo import feast_dir, feature_store

if TYPE_CHECKING:
    from lake.lakehouse import Lake

__all__ = ["OnlineReader", "OnlineRequestError", "OnlineResult", "OnlineStoreError", "RedisStore", "ServingError",
           "SqliteStore", "UnknownFeatureError", "get_online_features", "online_reader"]

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
"""How often the registry snapshot is reloaded."""
PRESENT, NOT_FOUND = "PRESENT", "NOT_FOUND"
EPOCH = "1970-01-01T00:00:00Z"
DUMMY_KEY, DUMMY_VIEW_ENTITY = "__dummy_id", "__dummy"
# Feast ValueType numbers of the scalar kinds decoded here without protobuf objects.
_SIMPLE_TYPES = {2, 3, 4, 5, 6, 7}  # STRING, INT32, INT64, DOUBLE, FLOAT, BOOL


# --------------------------------------------------------------------------- values

_D, _F = struct.Struct("<d").unpack_from, struct.Struct("<f").unpack_from


def _proto(raw: bytes) -> Any:
    from feast.protos.feast.types.Value_pb2 import Value

    return Value.FromString(raw)


def _decode(raw: bytes | None) -> Any:
    """A stored ``Value`` as a Python scalar (double, float, int, string, bool), else the proto."""
    if not raw:
        return None
    n, tag = len(raw), raw[0]
    if tag == 0x29 and n == 9:
        return _D(raw, 1)[0]
    if tag == 0x12 and n > 1 and raw[1] < 0x80 and n == raw[1] + 2:
        return raw[2:].decode()
    if tag == 0x20 or tag == 0x18:
        value = shift = 0
        for i in range(1, n):
            byte = raw[i]
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                if i == n - 1:
                    return value - (1 << 64) if value >= 1 << 63 else value
                break
    elif tag == 0x35 and n == 5:
        return _F(raw, 1)[0]
    elif tag == 0x38 and n == 2 and raw[1] < 2:
        return raw[1] == 1
    value = _proto(raw)
    kind = value.WhichOneof("val")
    if kind in ("double_val", "float_val", "int64_val", "int32_val", "string_val", "bool_val"):
        return getattr(value, kind)
    return value


def _python(cell: Any, value_type: Any) -> Any:
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type

    return feast_value_type_to_python_type(cell, value_type) if type(cell) is Value else cell


def _native(cell: Any) -> Any:
    from feast.feature_server_utils import _value_to_native
    from feast.protos.feast.types.Value_pb2 import Value

    return _value_to_native(cell) if type(cell) is Value else cell


_TS_CACHE: dict[tuple[int, int], str] = {}


def _ts_text(seconds: int, nanos: int) -> str:
    """RFC 3339 as Feast's server writes it (fraction only when non-zero)."""
    text = _TS_CACHE.get((seconds, nanos))
    if text is None:
        base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        if nanos == 0:
            text = base + "Z"
        elif nanos % 1_000_000 == 0:
            text = f"{base}.{nanos // 1_000_000:03d}Z"
        elif nanos % 1_000 == 0:
            text = f"{base}.{nanos // 1_000:06d}Z"
        else:
            text = f"{base}.{nanos:09d}Z"
        if len(_TS_CACHE) > 100_000:
            _TS_CACHE.clear()
        _TS_CACHE[(seconds, nanos)] = text
    return text


_KEY_TYPES = {4: (b"\x04\x00\x00\x00\x08\x00\x00\x00", struct.Struct("<q").pack, 1 << 63),
              3: (b"\x03\x00\x00\x00\x04\x00\x00\x00", struct.Struct("<i").pack, 1 << 31)}
_U32 = struct.Struct("<I").pack


def _key_column(name: str, values: Sequence[Any], value_type: int) -> tuple[list[bytes], list[Any]]:
    """Entity values of one join key in Feast's key encoding, and as cells for the response."""
    if value_type == 2 and all(type(v) is str for v in values):
        return [b"\x02\x00\x00\x00" + _U32(len(u)) + u for u in (v.encode() for v in values)], list(values)
    fixed = _KEY_TYPES.get(value_type)
    if fixed is not None and all(type(v) is int and -fixed[2] <= v < fixed[2] for v in values):
        head, pack, _ = fixed
        return [head + pack(v) for v in values], list(values)
    from feast.infra.key_encoding_utils import _serialize_val
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

    try:
        protos = python_values_to_proto_values(list(values), ValueType(value_type))
        encoded = []
        for proto in protos:
            raw, kind = _serialize_val(proto.WhichOneof("val"), proto, 3)
            encoded.append(_U32(kind) + _U32(len(raw)) + raw)
    except Exception as exc:
        raise OnlineRequestError(f"entities: {name!r} holds values that are not {ValueType(value_type).name} "
                                 f"({type(exc).__name__}: {exc})", column=name) from exc
    return encoded, protos


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class ViewRead:
    """The features read from one feature view (as a service projects it), and how."""

    name: str
    """Registry name: the SQLite table and the Redis field prefix."""
    alias: str
    features: list[str]
    types: list[int]
    """Feast ``ValueType`` number of each feature."""
    keys: list[tuple[str, str, int]]
    """``(view join key, request column, ValueType)``, sorted by join key as Feast encodes them."""
    key_head: bytes
    simple: bool
    """Every feature is a scalar kind decoded without protobuf."""
    hmget_fields: bytes
    """The RESP-encoded field arguments of the ``HMGET`` (feature hashes, then ``_ts:<view>``)."""
    hmget_count: bytes


@dataclass(frozen=True)
class Plan:
    """A resolved request: what to read from which view, and how to name it."""

    refs: list[str]
    """Every requested feature as ``view:feature`` (the service's alias for the view)."""
    outputs: list[tuple[int, int, str]]
    """``(view index, feature index, output name)`` per ref; view index -1 for on-demand features."""
    views: list[ViewRead]
    on_demand: list[Any]
    request_fields: list[str]
    feature_types: dict[str, Any]
    service: str | None


def _view_read(view: Any, alias: str, jkm: Mapping[str, str], entity_types: Mapping[str, int]) -> ViewRead:

    keys = []
    for col in view.entity_columns:
        vt = col.dtype.to_value_type().value
        keys.append((col.name, jkm.get(col.name, col.name), vt if vt else entity_types.get(col.name, 0)))
    if not keys and DUMMY_VIEW_ENTITY in (view.entities or []):
        keys = [(DUMMY_KEY, DUMMY_KEY, 2)]
    keys.sort()
    head = _U32(len(keys)) + b"".join(_U32(2) + _U32(len(k.encode())) + k.encode() for k, _, _ in keys)
    return ViewRead(view.name, alias, [], [], keys, head, True, b"", b"")


def _finish(read: ViewRead) -> ViewRead:
    import mmh3

    fields = [struct.pack("<Q", mmh3.hash(f"{read.name}:{f}", signed=False))[:4] for f in read.features]
    fields.append(f"_ts:{read.name}".encode())
    resp = b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
    simple = all(t in _SIMPLE_TYPES for t in read.types)
    return ViewRead(read.name, read.alias, read.features, read.types, read.keys, read.key_head, simple, resp,
                    b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2))


class Registry:
    """A snapshot of the registry's views, on-demand views, services and entities."""

    def __init__(self, store: Any) -> None:
        reg, project = store.registry, store.project
        self.views = {v.name: v for v in reg.list_feature_views(project, allow_cache=True)}
        self.odfvs = {v.name: v for v in reg.list_on_demand_feature_views(project, allow_cache=True)}
        self.services = {s.name: s for s in reg.list_feature_services(project, allow_cache=True)}
        self.entity_types = {e.join_key: e.value_type.value for e in reg.list_entities(project, allow_cache=True)}
        self.plans: dict[tuple[Any, ...], Plan] = {}

    def plan(self, features: Sequence[str] | None, service: str | None, full_names: bool) -> Plan:
        """The resolved request, computed once per snapshot for each distinct request shape."""
        key = (tuple(features) if features is not None else None, service, full_names)
        found = self.plans.get(key)
        if found is None:
            found = self.plans[key] = self._resolve(features, service, full_names)
        return found

    def _resolve(self, features: Sequence[str] | None, service: str | None, full_names: bool) -> Plan:
        wanted: list[tuple[str, str, str, Any]] = []  # (view name, alias, feature, projection)
        if service is not None:
            svc = self.services.get(service)
            if svc is None:
                raise UnknownFeatureError(f"no feature service {service!r}; known: "
                                          f"{', '.join(sorted(self.services)) or 'none'}", feature_service=service)
            for proj in svc.feature_view_projections:
                wanted += [(proj.name, proj.name_to_use(), f.name, proj) for f in proj.features]
        else:
            if not features:
                raise OnlineRequestError("features: give at least one feature (view:feature) or a feature_service")
            for ref in features:
                if not isinstance(ref, str) or ":" not in ref:
                    raise OnlineRequestError(f"features: {ref!r} is not a feature reference; write view:feature",
                                             feature=str(ref))
                view_name, feat = ref.split(":", 1)
                wanted.append((view_name, view_name, feat, None))
        reads: dict[str, ViewRead] = {}
        odfvs: dict[str, Any] = {}
        refs, outputs, request_fields = [], [], []

        def add(view: Any, alias: str, feat: str, jkm: Mapping[str, str]) -> int:
            read = reads.get(alias)
            if read is None:
                read = reads[alias] = _view_read(view, alias, jkm, self.entity_types)
            if feat not in read.features:
                fld = next(f for f in view.features if f.name == feat)
                read.features.append(feat)
                read.types.append(fld.dtype.to_value_type().value)
            return list(reads).index(alias)

        for view_name, alias, feat, proj in wanted:
            refs.append(f"{alias}:{feat}")
            name = f"{alias}__{feat}" if full_names else feat
            if view_name in self.odfvs:
                odfv = self.odfvs[view_name]
                if feat not in {f.name for f in odfv.features}:
                    raise UnknownFeatureError(f"on-demand feature view {view_name} has no feature {feat!r}; it has "
                                              f"{', '.join(f.name for f in odfv.features)}", feature=f"{alias}:{feat}")
                if alias not in odfvs:
                    odfvs[alias] = odfv.with_projection(copy.copy(proj)) if proj is not None else odfv
                    for src in odfv.source_feature_view_projections.values():
                        base = self._view(src.name, None)
                        for f in src.features:
                            add(base, src.name_to_use(), f.name, dict(src.join_key_map or {}))
                    request_fields += [f for f in odfv.get_request_data_schema() if f not in request_fields]
                outputs.append((-1, 0, name))
                continue
            view = self._view(view_name, feat)
            outputs.append((add(view, alias, feat, dict(getattr(proj, "join_key_map", None) or {})), 0, name))
        views = [_finish(r) for r in reads.values()]
        outputs = [(v, views[v].features.index(ref.split(":", 1)[1]) if v >= 0 else 0, name)
                   for (v, _, name), ref in zip(outputs, refs, strict=True)]
        seen: dict[str, str] = {}
        for (_, _, name), ref in zip(outputs, refs, strict=True):
            if name in seen:
                raise OnlineRequestError(f"features: {seen[name]} and {ref} would both be served as {name!r}; "
                                         "ask for full_feature_names", feature=name)
            seen[name] = ref
        from feast.value_type import ValueType

        types = {}
        for read in views:
            for feat, vt in zip(read.features, read.types, strict=True):
                types[feat] = types[f"{read.alias}__{feat}"] = ValueType(vt)
        return Plan(refs, outputs, views, list(odfvs.values()), request_fields, types, service)

    def _view(self, view_name: str, feat: str | None) -> Any:
        view = self.views.get(view_name)
        if view is None:
            known = sorted(self.views) + sorted(self.odfvs)
            raise UnknownFeatureError(f"no feature view {view_name!r}; known: {', '.join(known) or 'none'} "
                                      "(`lake features apply` registers the repository)", feature_view=view_name)
        if feat is not None and feat not in {f.name for f in view.features}:
            raise UnknownFeatureError(f"feature view {view_name} has no feature {feat!r}; it has "
                                      f"{', '.join(f.name for f in view.features)}", feature=f"{view_name}:{feat}")
        if getattr(view, "enabled", True) is False:
            raise OnlineRequestError(f"feature view {view_name} is disabled and cannot serve features")
        return view


# --------------------------------------------------------------------------- result

_STATUS = {0: "INVALID", 1: PRESENT, 2: "NULL_VALUE", 3: NOT_FOUND, 4: "OUTSIDE_MAX_AGE"}


@dataclass
class OnlineResult:
    """Served values, column by column: the join keys as given, then one column per feature."""

    names: list[str]
    values: list[list[Any]]
    """Cells: Python scalars, or Feast ``Value`` protos for the other kinds (see ``protos``)."""
    statuses: list[list[str]]
    timestamps: list[list[str]]
    """Event times as RFC 3339 text (``1970-01-01T00:00:00Z`` when not found)."""
    protos: list[bool]
    types: list[Any]
    keys: int
    """How many leading columns are join keys."""
    refs: list[str]
    feature_service: str | None = None

    @property
    def num_rows(self) -> int:
        """Entity rows served."""
        return len(self.values[0]) if self.values else 0

    def to_dict(self) -> dict[str, list[Any]]:
        """``{column: [values]}``, equal to Feast's ``OnlineResponse.to_dict()``."""
        return {name: [_python(c, vt) for c in col] if proto else list(col)
                for name, col, proto, vt in zip(self.names, self.values, self.protos, self.types, strict=True)}

    def to_response(self) -> dict[str, Any]:
        """The body of Feast's ``POST /get-online-features`` answer (before JSON encoding)."""
        return {"results": [{"values": [_native(c) for c in col] if proto else col, "statuses": st,
                             "event_timestamps": ts}
                            for col, st, ts, proto in zip(self.values, self.statuses, self.timestamps, self.protos,
                                                          strict=True)],
                "metadata": {"feature_names": self.names}}


def _columns(entities: Any) -> tuple[dict[str, list[Any]], int]:
    """Entity rows (a list of dicts) or columns (``{"key": [values]}``) as equal-length columns."""
    if isinstance(entities, Mapping):
        columns = {}
        for name, values in entities.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise OnlineRequestError(f"entities: {name!r} must be a list of values, not {type(values).__name__}",
                                         column=name)
            columns[str(name)] = values if isinstance(values, list) else list(values)
    elif isinstance(entities, Sequence) and all(isinstance(r, Mapping) for r in entities):
        names = list(entities[0]) if entities else []
        if any(list(r) != names and set(r) != set(names) for r in entities):
            raise OnlineRequestError("entity rows must all have the same keys")
        columns = {n: [r[n] for r in entities] for n in names}
    else:
        raise OnlineRequestError("entities must be {\"key\": [values, ...]} or a list of {\"key\": value} rows")
    lengths = {n: len(v) for n, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise OnlineRequestError("entities: every column needs the same number of values (got "
                                 + ", ".join(f"{n}: {k}" for n, k in lengths.items()) + ")")
    return columns, next(iter(lengths.values()), 0)


class OnlineReader:
    """Reads the latest feature values of a lake's Feast deployment, the registry cached.

    Example:
        >>> reader = OnlineReader(lake)
        >>> reader.get({"driver_id": [1001, 1002]}, ["driver_stats:conv_rate"]).to_dict()
    """

    def __init__(self, lake: Lake, *, refresh_seconds: float = REFRESH_SECONDS, background: bool = False) -> None:
        """Args:
            lake: the lake whose ``[feast]`` settings name the registry and the online store.
            refresh_seconds: how old the registry snapshot may get before it is reloaded.
            background: reload on a timer thread (a server) instead of at the first call after expiry.
        """
        settings = lake.settings.feast
        self._store = feature_store(lake)
        self.project: str = self._store.project
        self.online_store = settings.online_store
        self.backend: RedisStore | SqliteStore = (
            RedisStore(settings.redis_url, self.project) if settings.online_store == "redis"
            else SqliteStore(feast_dir(lake) / "online.db", self.project))
        self.refresh_seconds = refresh_seconds
        self.last_refresh_error: str | None = None
        self._lock = threading.Lock()
        self.registry = self._load()
        self._expires = time.monotonic() + refresh_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=_refresh_loop, args=(weakref.ref(self), self._stop),
                                            name="lake-registry-refresh", daemon=True)
            self._thread.start()

    def _load(self) -> Registry:
        try:
            self._store.refresh_registry()
            return Registry(self._store)
        except Exception as exc:
            raise OnlineStoreError(f"cannot read the Feast registry of project {self.project}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    def refresh(self) -> None:
        """Reload the registry snapshot now (a failure keeps the previous one and is recorded)."""
        with self._lock:
            try:
                self.registry = self._load()
                self.last_refresh_error = None
            except OnlineStoreError as exc:
                self.last_refresh_error = str(exc)
                log.warning("keeping the previous registry snapshot: %s", exc)
            self._expires = time.monotonic() + self.refresh_seconds

    def close(self) -> None:
        """Stop the refresh timer."""
        self._stop.set()

    def health(self) -> None:
        """Check that the registry and the online store answer.

        Raises:
            OnlineStoreError: naming the part that does not.
        """
        try:
            self._store.registry.list_projects(allow_cache=False)
        except Exception as exc:
            raise OnlineStoreError(f"the Feast registry is not reachable: {type(exc).__name__}: {exc}") from exc
        self.backend.ping()

    def plan(self, features: Sequence[str] | None = None, feature_service: str | None = None,
             full_feature_names: bool = False) -> Plan:
        """Resolve a request against the cached registry (resolutions are cached too).

        Raises:
            UnknownFeatureError: a view, feature or service is not registered.
            OnlineRequestError: a reference is malformed, or two features would share a name.
        """
        if self._thread is None and time.monotonic() > self._expires:
            self.refresh()
        if features is not None and feature_service is not None:
            raise OnlineRequestError("give either features or feature_service, not both")
        return self.registry.plan(features, feature_service, full_feature_names)

    def get(self, entities: Any, features: Sequence[str] | None = None, *, feature_service: str | None = None,
            full_feature_names: bool = False) -> OnlineResult:
        """The latest values of ``features`` (or a feature service) for each entity.

        Args:
            entities: ``{"join_key": [values, ...]}`` or a list of ``{"join_key": value}`` rows.
            features: ``["view:feature", ...]``.
            feature_service: a registered feature service, instead of ``features``.
            full_feature_names: name columns ``view__feature`` instead of ``feature``.

        Returns:
            The served columns: join keys, then features in the requested order.

        Raises:
            UnknownFeatureError: a view, feature or service is not registered.
            OnlineRequestError: a join key or request field is missing, or a value has the wrong type.
            OnlineStoreError: the online store cannot be read.
        """
        plan = self.plan(features, feature_service, full_feature_names)
        columns, n = _columns(entities)
        for name in plan.request_fields:
            if name not in columns:
                raise OnlineRequestError(f"entities: missing request field {name!r} an on-demand view needs",
                                         column=name)
        encoded: dict[str, tuple[list[bytes], list[Any]]] = {}
        work, indexes = [], []
        for view in plan.views:
            parts = []
            for _, col, vt in view.keys:
                if col == DUMMY_KEY:
                    parts.append([b"\x02\x00\x00\x00\x00\x00\x00\x00"] * n)
                    continue
                if col not in columns:
                    raise OnlineRequestError(f"entities: missing join key {col!r} (feature view {view.alias}); "
                                             f"given: {', '.join(columns) or 'nothing'}", column=col)
                if col not in encoded:
                    encoded[col] = _key_column(col, columns[col], vt)
                parts.append(encoded[col][0])
            unique: dict[bytes, int] = {}
            index = [unique.setdefault(view.key_head + b"".join(p), len(unique)) for p in zip(*parts, strict=True)]
            work.append((view, list(unique)))
            indexes.append(index)
        rows = self.backend.read(work)
        keys = [c for c in columns if c in encoded]
        if plan.on_demand:
            return _with_on_demand(plan, n, keys, columns, rows, indexes, full_feature_names)
        from feast.protos.feast.types.Value_pb2 import Value

        names: list[str] = []
        values: list[list[Any]] = []
        statuses: list[list[str]] = []
        stamps: list[list[str]] = []
        protos: list[bool] = []
        types: list[Any] = []
        for key in keys:
            cells = encoded[key][1]
            names.append(key)
            values.append(cells)
            statuses.append([PRESENT] * n)
            stamps.append([EPOCH] * n)
            protos.append(bool(cells) and type(cells[0]) is Value)
            types.append(None)
        decoded, found, view_stamps, view_protos = [], [], [], []
        for urows, view in zip(rows, plan.views, strict=True):
            nf = len(view.features)
            cells = [list(map(_decode, raws)) if view.simple else
                     [_decode(r) if t in _SIMPLE_TYPES else _proto(r) if r else None for r, t in zip(raws, view.types,
                                                                                                   strict=True)]
                     for _, raws in urows]
            decoded.append(cells)
            found.append([[NOT_FOUND] * nf if ts is None else [PRESENT] * nf if None not in raws
                          else [PRESENT if r is not None else NOT_FOUND for r in raws] for ts, raws in urows])
            view_stamps.append([_ts_text(*ts) if ts else EPOCH for ts, _ in urows])
            view_protos.append(not view.simple or any(Value in set(map(type, row)) for row in cells))
        single = n == 1 and all(index == [0] for index in indexes)
        for v, f, name in plan.outputs:
            names.append(name)
            if single:
                values.append([decoded[v][0][f]])
                statuses.append([found[v][0][f]])
                stamps.append(view_stamps[v])
            else:
                index, cells_v, found_v, ts_v = indexes[v], decoded[v], found[v], view_stamps[v]
                values.append([cells_v[j][f] for j in index])
                statuses.append([found_v[j][f] for j in index])
                stamps.append([ts_v[j] for j in index])
            protos.append(view_protos[v])
            types.append(plan.feature_types.get(name))
        return OnlineResult(names, values, statuses, stamps, protos, types, len(keys), plan.refs, plan.service)


def _refresh_loop(ref: weakref.ref[OnlineReader], stop: threading.Event) -> None:
    while True:
        reader = ref()
        if reader is None:
            return
        wait = reader.refresh_seconds
        del reader
        if stop.wait(wait):
            return
        reader = ref()
        if reader is None:
            return
        reader.refresh()
        del reader


def _with_on_demand(plan: Plan, n: int, keys: list[str], columns: dict[str, list[Any]], rows: list[list[Row]],
                    indexes: list[list[int]], full_names: bool) -> OnlineResult:
    """Hand the values read to Feast's on-demand transformation code, exactly as its SDK does."""
    from feast import utils
    from feast.protos.feast.serving.ServingService_pb2 import GetOnlineFeaturesResponse
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType
    from google.protobuf.timestamp_pb2 import Timestamp

    response = GetOnlineFeaturesResponse(results=[])
    zero = Timestamp()

    def add(name: str, values: list[Any], statuses: list[Any], stamps: list[Any]) -> None:
        response.metadata.feature_names.val.append(name)
        response.results.append(GetOnlineFeaturesResponse.FeatureVector(values=values, statuses=statuses,
                                                                         event_timestamps=stamps))

    key_types = {col: vt for view in plan.views for _, col, vt in view.keys}
    for name in keys + plan.request_fields:
        try:
            protos = python_values_to_proto_values(columns[name], ValueType(key_types.get(name, 0)))
        except Exception as exc:
            raise OnlineRequestError(f"entities: {name!r}: {type(exc).__name__}: {exc}", column=name) from exc
        add(name, protos, [1] * n, [zero] * n)
    for v, view in enumerate(plan.views):
        urows, index = rows[v], indexes[v]
        stamps = [Timestamp(seconds=ts[0], nanos=ts[1]) if ts else zero for ts, _ in urows]
        for f, feat in enumerate(view.features):
            cells = [Value.FromString(r[f]) if r[f] else Value() for _, r in urows]
            found = [1 if ts is not None and r[f] is not None else 3 for ts, r in urows]
            add(f"{view.alias}__{feat}" if full_names else feat, [cells[j] for j in index],
                [found[j] for j in index], [stamps[j] for j in index])
    try:
        utils._augment_response_with_on_demand_transforms(response, plan.refs, plan.on_demand, full_names,
                                                          feature_types=plan.feature_types)
    except Exception as exc:
        raise OnlineRequestError(f"an on-demand feature view failed: {type(exc).__name__}: {exc}") from exc
    wanted = keys + [name for _, _, name in plan.outputs]
    utils._drop_unneeded_columns(response, set(wanted))
    position = {name: i for i, name in enumerate(response.metadata.feature_names.val)}
    vectors = [response.results[position[name]] for name in wanted]
    return OnlineResult(wanted, [list(r.values) for r in vectors], [[_STATUS[s] for s in r.statuses] for r in vectors],
                        [[_ts_text(t.seconds, t.nanos) for t in r.event_timestamps] for r in vectors],
                        [True] * len(wanted), [plan.feature_types.get(name) for name in wanted], len(keys),
                        plan.refs, plan.service)


_READERS: weakref.WeakKeyDictionary[Any, OnlineReader] = weakref.WeakKeyDictionary()


def online_reader(lake: Lake) -> OnlineReader:
    """The lake's reader, made on first use and kept as long as the lake lives."""
    reader = _READERS.get(lake)
    if reader is None:
        reader = _READERS[lake] = OnlineReader(lake)
    return reader


def get_online_features(lake: Lake, entity_rows: Any, features: Sequence[str] | None = None, *,
                        feature_service: str | None = None, full_feature_names: bool = False) -> dict[str, list[Any]]:
    """The latest feature values for entity keys, as Feast's ``get_online_features(...).to_dict()``.

    Args:
        lake: the lake whose Feast deployment (registry and online store) to read.
        entity_rows: ``{"join_key": [values, ...]}`` or a list of ``{"join_key": value}`` rows.
        features: ``["view:feature", ...]``; or give ``feature_service``.
        feature_service: a registered feature service name.
        full_feature_names: name columns ``view__feature`` instead of ``feature``.

    Returns:
        ``{column: [value per entity row]}``: the join keys, then the features (``None`` when absent).

    Raises:
        UnknownFeatureError: a view, feature or service is not registered.
        OnlineRequestError: the entities or references are malformed.
        OnlineStoreError: the online store or registry cannot be read.
    """
    return online_reader(lake).get(entity_rows, features, feature_service=feature_service,
                                   full_feature_names=full_feature_names).to_dict()
