"""Latest feature values for entity keys, read straight from Feast's online store.

The configured store (:mod:`lake.features.online_backends`: SQLite embedded, Redis in
production) is read in Feast's own layout through the
:class:`~lake.features.online_store.OnlineStore` interface. Requests resolve against a
registry snapshot that is cached and refreshed on a timer (:mod:`lake.features.online_plan`);
each store answers all the (view, entity key) reads of a request at once (Redis: one
pipelined round trip, its command bytes encoded once per view; SQLite: one query per
view), and the common scalar values are decoded without building protobuf objects. The values equal what ``FeatureStore.get_online_features`` returns;
on-demand feature views run Feast's own transformation code.

One difference on purpose: an entity that is not in the store is ``NOT_FOUND`` on both
stores (Feast's Redis store reports it ``PRESENT``, with null values).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lake.errors import (
    OnlineRequestError,
    OnlineStoreError,
    ServingError,
    UnknownFeatureError,
)
from lake.features.online_plan import DUMMY_KEY, SIMPLE_TYPES, Plan, Registry
from lake.features.online_redis import RedisStore
from lake.features.online_sqlite import SqliteStore
from lake.features.online_store import OnlineStore, Row
from lake.features.online_values import (
    decode,
    key_column,
    native_value,
    proto_value,
    python_value,
    ts_text,
)
from lake.features.registry_light import snapshot
from lake.features.repo import feast_dir, feature_store, online_store
from lake.lakehouse import Lake

__all__ = ["OnlineReader", "OnlineRequestError", "OnlineResult", "OnlineStore", "OnlineStoreError", "RedisStore",
           "ServingError", "SqliteStore", "UnknownFeatureError", "get_online_features", "online_reader"]

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0
"""How often the registry snapshot is reloaded."""
PRESENT, NOT_FOUND = "PRESENT", "NOT_FOUND"
EPOCH = "1970-01-01T00:00:00Z"


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
        return {name: [python_value(c, vt) for c in col] if proto else list(col)
                for name, col, proto, vt in zip(self.names, self.values, self.protos, self.types, strict=True)}

    def to_response(self) -> dict[str, Any]:
        """The body of Feast's ``POST /get-online-features`` answer (before JSON encoding)."""
        return {"results": [{"values": [native_value(c) for c in col] if proto else col, "statuses": st,
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

    def __init__(self, lake: Lake, *, refresh_seconds: float = REFRESH_SECONDS, background: bool = False,
                 light: bool = False) -> None:
        """Args:
            lake: the lake whose ``[feast]`` settings name the registry and the online store.
            refresh_seconds: how old the registry snapshot may get before it is reloaded.
            background: reload on a timer thread (a server) instead of at the first call after expiry.
            light: read the registry file without importing Feast when it can be
                (:mod:`lake.features.registry_light`; a one-off ``lake features get``), else through Feast.
        """
        self._lake = lake
        self._light = light
        self._store: Any = None if light else feature_store(lake)
        self.project: str = lake.settings.feast.project  # the FeatureStore's project too (repo_config)
        self.backend: OnlineStore = online_store(lake)
        self.online_store = self.backend.kind
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

    def _feast(self) -> Any:
        if self._store is None:
            self._store = feature_store(self._lake)
        return self._store

    def _load(self) -> Registry:
        if self._light:
            light = snapshot(self._lake.settings.feast, feast_dir(self._lake))
            if light is not None:
                return Registry(light, value_types=False)
        try:
            store = self._feast()
            store.refresh_registry()
            return Registry(store)
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
            self._feast().registry.list_projects(allow_cache=False)
        except Exception as exc:
            raise OnlineStoreError(f"the Feast registry is not reachable: {type(exc).__name__}: {exc}") from exc
        self.backend.health()

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
                    encoded[col] = key_column(col, columns[col], vt)
                parts.append(encoded[col][0])
            unique: dict[bytes, int] = {}
            index = [unique.setdefault(view.key_head + b"".join(p), len(unique)) for p in zip(*parts, strict=True)]
            work.append((view, list(unique)))
            indexes.append(index)
        rows = self.backend.read(work)
        keys = [c for c in columns if c in encoded]
        if plan.on_demand:
            return _with_on_demand(plan, n, keys, columns, rows, indexes, full_feature_names)
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
            protos.append(bool(cells) and type(cells[0]) is _value_class())
            types.append(None)
        decoded, found, view_stamps, view_protos = [], [], [], []
        for urows, view in zip(rows, plan.views, strict=True):
            nf = len(view.features)
            cells = [list(map(decode, raws)) if view.simple else
                     [decode(r) if t in SIMPLE_TYPES else proto_value(r) if r else None for r, t in zip(raws, view.types,
                                                                                                   strict=True)]
                     for _, raws in urows]
            decoded.append(cells)
            found.append([[NOT_FOUND] * nf if ts is None else [PRESENT] * nf if None not in raws
                          else [PRESENT if r is not None else NOT_FOUND for r in raws] for ts, raws in urows])
            view_stamps.append([ts_text(*ts) if ts else EPOCH for ts, _ in urows])
            view_protos.append(not view.simple or any(_value_class() in set(map(type, row)) for row in cells))
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


class _NoValue:
    """Stands for Feast's Value class while Feast is not loaded: no cell is one of it."""


def _value_class() -> type:
    """Feast's ``Value`` proto class once Feast has loaded it (a cell can be one only then: a light
    registry and the scalar decoders load no Feast), else a class no cell is of."""
    module = sys.modules.get("feast.protos.feast.types.Value_pb2")
    return module.Value if module is not None else _NoValue  # type: ignore[no-any-return]


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
    # heavy: feast is imported only for on-demand feature views
    from feast import utils
    from feast.protos.feast.serving.ServingService_pb2 import GetOnlineFeaturesResponse
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import python_values_to_proto_values
    from feast.value_type import ValueType

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
                        [[ts_text(t.seconds, t.nanos) for t in r.event_timestamps] for r in vectors],
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
