"""Point-in-time correct training frames: feature views joined to an entity frame.

For each entity row (join keys + an event time) and each feature view, the value is
taken from the source row with the same keys whose event timestamp is the latest at or
before the entity's event time, ties broken by the created timestamp (the latest
wins), and only if that row is within the view's TTL; otherwise the features are null.
This is Feast's own semantics. Every source table is pinned to one Delta version, so the
frame can be rebuilt exactly; each (version, view) is read once into a sorted index
(:mod:`lake.features.pit_index`, built by DuckDB from the Delta table and cached), and
each entity row is then one binary search in it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.data import to_arrow
from lake.errors import FeatureError
from lake.features import pit_index
from lake.features.apply import source_table
from lake.features.repo import feature_store
from lake.lakehouse import Lake
from lake.table import Table

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl


@dataclass(frozen=True)
class ViewRequest:
    """The features wanted from one feature view (as projected by a service, if any)."""

    view: Any
    alias: str
    features: list[str]
    join_keys: dict[str, str]
    """View join key -> entity frame column."""
    table: Table


@dataclass(frozen=True)
class OnDemandRequest:
    view: Any
    features: list[str]


@dataclass(frozen=True)
class Plan:
    views: list[ViewRequest]
    on_demand: list[OnDemandRequest]
    refs: list[str]
    """Every requested feature as ``view:feature``, in order."""
    service: str | None = None


@dataclass(frozen=True)
class TrainingFrame:
    """A point-in-time correct frame and exactly what built it."""

    data: pa.Table
    features: list[str]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{table: {"version": N, "location": uri}}`` for every source read."""
    feature_service: str | None = None

    def to_arrow(self) -> pa.Table:
        return self.data

    def to_pandas(self) -> pd.DataFrame:
        return self.data.to_pandas()

    def to_polars(self) -> pl.DataFrame:
        # heavy: polars is imported only when a Polars frame is asked for
        import polars as pl

        frame = pl.from_arrow(self.data)
        assert isinstance(frame, pl.DataFrame)
        return frame

    @property
    def num_rows(self) -> int:
        return self.data.num_rows


def plan(lake: Lake, features: list[str] | None = None, feature_service: str | None = None,
         store: Any = None) -> Plan:
    """Resolve feature references (``view:feature``) or a feature service against the registry."""
    store = store or feature_store(lake)
    if (features is None) == (feature_service is None):
        raise FeatureError("give either a list of features (view:feature) or a feature service, not both")
    views = {v.name: v for v in store.list_feature_views()}
    odfvs = {v.name: v for v in store.list_on_demand_feature_views()}
    wanted: list[tuple[str, str, str, dict[str, str]]] = []  # (view, alias, feature, join key map)
    if feature_service is not None:
        services = {s.name: s for s in store.list_feature_services()}
        if feature_service not in services:
            raise FeatureError(f"no feature service {feature_service!r}; known: {', '.join(sorted(services)) or 'none'}")
        for proj in services[feature_service].feature_view_projections:
            for feat in proj.features:
                wanted.append((proj.name, proj.name_to_use(), feat.name, dict(proj.join_key_map or {})))
    else:
        for ref in features or []:
            if ":" not in ref:
                raise FeatureError(f"feature {ref!r}: write it as view:feature (e.g. stock_features:price)")
            view, feat = ref.split(":", 1)
            wanted.append((view, view, feat, {}))
    requests: dict[str, ViewRequest] = {}
    on_demand: dict[str, OnDemandRequest] = {}
    refs: list[str] = []
    for view_name, alias, feat, jkm in wanted:
        refs.append(f"{alias}:{feat}")
        if view_name in odfvs:
            odfv = odfvs[view_name]
            if feat not in {f.name for f in odfv.features}:
                raise FeatureError(f"on-demand view {view_name} has no feature {feat!r}; it has "
                                   f"{', '.join(f.name for f in odfv.features)}")
            on_demand.setdefault(view_name, OnDemandRequest(odfv, [])).features.append(feat)
            for proj in odfv.source_feature_view_projections.values():
                for f in proj.features:
                    _add(requests, views, proj.name, proj.name_to_use(), f.name, dict(proj.join_key_map or {}),
                         lake, source_table)
            continue
        if view_name not in views:
            known = sorted(views) + sorted(odfvs)
            raise FeatureError(f"no feature view {view_name!r}; known: {', '.join(known) or 'none'} "
                               "(`lake features apply` registers the repository)")
        _add(requests, views, view_name, alias, feat, jkm, lake, source_table)
    return Plan(list(requests.values()), list(on_demand.values()), refs, feature_service)


def _add(requests: dict[str, ViewRequest], views: dict[str, Any], view_name: str, alias: str, feat: str,
         jkm: dict[str, str], lake: Lake, source_table: Any) -> None:
    view = views[view_name]
    if feat not in {f.name for f in view.features}:
        raise FeatureError(f"feature view {view_name} has no feature {feat!r}; it has "
                           f"{', '.join(f.name for f in view.features)}")
    req = requests.get(alias)
    if req is None:
        table = source_table(lake, view)
        if table is None:
            raise FeatureError(f"feature view {view_name} does not read a lake table; re-run `lake features apply`")
        keys = {k.name: jkm.get(k.name, k.name) for k in view.entity_columns}
        req = requests[alias] = ViewRequest(view, alias, [], keys, table)
    if feat not in req.features:
        req.features.append(feat)


def entity_table(entity_df: Any, timestamp_column: str) -> pa.Table:
    try:
        table = to_arrow(entity_df)
        if isinstance(table, pa.RecordBatchReader):
            table = table.read_all()
    except Exception as exc:
        raise FeatureError(f"the entity frame must be pandas, Polars or Arrow ({type(exc).__name__}: {exc})") from exc
    if timestamp_column not in table.column_names:
        raise FeatureError(f"the entity frame has no {timestamp_column!r} column (columns: "
                           f"{', '.join(table.column_names)}); pass timestamp_column=... to name it")
    kind = table.schema.field(timestamp_column).type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            parsed = pc.cast(pc.strptime(table[timestamp_column], format="%Y-%m-%dT%H:%M:%S", unit="us",
                                         error_is_null=False), pa.timestamp("us", "UTC"))
        except pa.ArrowInvalid as exc:
            raise FeatureError(f"entity column {timestamp_column!r} holds text that is not an ISO timestamp "
                               f"({exc}); give it a timestamp type") from exc
        table = table.set_column(table.schema.get_field_index(timestamp_column), timestamp_column, parsed)
    elif not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise FeatureError(f"entity column {timestamp_column!r} has type {kind}; it must hold timestamps")
    if table[timestamp_column].null_count:
        raise FeatureError(f"entity column {timestamp_column!r} has {table[timestamp_column].null_count} null "
                           "timestamps; every entity row needs an event time")
    return table


def retrieve(
    lake: Lake,
    entity_df: Any,
    features: list[str] | None = None,
    *,
    feature_service: str | None = None,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
    versions: dict[str, int] | None = None,
    store: Any = None,
) -> TrainingFrame:
    """Point-in-time correct features for every row of ``entity_df``.

    Args:
        lake: the lake holding the feature views' source tables.
        entity_df: pandas, Polars or Arrow with the join keys and ``timestamp_column``.
        features: ``["view:feature", ...]``; or give ``feature_service``.
        feature_service: a registered feature service name.
        timestamp_column: the entity frame's event-time column (naive times are UTC).
        full_feature_names: name columns ``view__feature`` instead of ``feature``.
        versions: pin source tables to these Delta versions (default: their latest).
        store: a Feast ``FeatureStore`` (default: the lake's).

    Returns:
        The frame (entity columns first, in the entity frame's row order) and its sources.

    Raises:
        FeatureError: unknown features, missing entity columns, bad timestamps.
    """
    the_plan = plan(lake, features, feature_service, store)
    entities = entity_table(entity_df, timestamp_column)
    for req in the_plan.views:
        missing = [c for c in req.join_keys.values() if c not in entities.column_names]
        if missing:
            raise FeatureError(f"feature view {req.view.name} joins on {', '.join(missing)}, which the entity frame "
                               f"lacks (columns: {', '.join(entities.column_names)})")
    sources: dict[str, dict[str, Any]] = {}
    for req in the_plan.views:
        name = req.table.name
        if name not in sources:
            version = (versions or {}).get(name)
            if version is None:
                version = req.table.version()
            sources[name] = {"version": int(version), "location": req.table.uri}
            lake.read(req.table, int(version))
    data = _join(lake, entities, the_plan, sources, timestamp_column, full_feature_names)
    data = _on_demand(data, the_plan, full_feature_names)
    return TrainingFrame(data, the_plan.refs, sources, the_plan.service)


def prepare(lake: Lake, views: list[str] | None = None, *, store: Any = None,
            progress: Any = None) -> list[dict[str, Any]]:
    """Build the point-in-time index of each feature view at its source's latest version.

    Run it after a pipeline writes the gold tables (``lake features index``) and the next
    training retrieval finds the indexes ready instead of building them. Returns a row per
    view: its table, version, index rows and keys, and the seconds spent (near 0: it existed).
    """
    store = store or feature_store(lake)
    known = {v.name: v for v in store.list_feature_views()}
    unknown = [v for v in views or [] if v not in known]
    if unknown:
        raise FeatureError(f"no feature view {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known)) or 'none'}")
    out = []
    for name in views or sorted(known):
        view = known[name]
        table = source_table(lake, view)
        if table is None:
            raise FeatureError(f"feature view {name} does not read a lake table; re-run `lake features apply`")
        version = table.version()
        request = ViewRequest(view, name, [], {k.name: k.name for k in view.entity_columns}, table)
        started = time.perf_counter()
        index = pit_index.load(lake, _index_source(request, {"version": version, "location": table.uri}))
        out.append({"view": name, "table": table.name, "version": version, "rows": len(index.search),
                    "keys": index.ukeys.num_rows, "seconds": round(time.perf_counter() - started, 3)})
        if progress is not None:
            progress(name)
    return out


def _join(lake: Lake, entities: pa.Table, the_plan: Plan, sources: dict[str, dict[str, Any]],
          timestamp_column: str, full_names: bool) -> pa.Table:
    times = epoch_us(entities.column(timestamp_column))
    names: list[str] = []
    seen: set[str] = set(entities.column_names)
    for req in the_plan.views:
        for feat in req.features:
            name = f"{req.alias}__{feat}" if full_names else feat
            if name in seen:
                raise FeatureError(f"two requested columns are both named {name!r}; pass full_feature_names=True "
                                   "(columns become view__feature)")
            seen.add(name)
            names.append(name)
    orders: dict[tuple[str, ...], Any] = {}  # views joining on the same columns share one entity sort
    for req in the_plan.views:
        columns = tuple(req.join_keys.values())
        if columns not in orders:
            orders[columns] = pit_index.entity_order(pa.table({c: entities.column(c) for c in columns}), times)

    def view_columns(req: ViewRequest) -> list[pa.ChunkedArray]:
        index = pit_index.load(lake, _index_source(req, sources[req.table.name]))
        keys = pa.table({key: entities.column(column) for key, column in req.join_keys.items()})
        ttl = req.view.ttl
        ttl_us = ttl // dt.timedelta(microseconds=1) if ttl and ttl > dt.timedelta(0) else None
        match = index.lookup(keys, times, ttl_us, orders[tuple(req.join_keys.values())])
        return [index.gather(feat, match) for feat in req.features]

    # Views are built (first use) and searched concurrently: the heavy parts run outside the GIL.
    with ThreadPoolExecutor(max(1, min(len(the_plan.views), os.cpu_count() or 1, 4))) as pool:
        found = [col for cols in pool.map(view_columns, the_plan.views) for col in cols]
    out = entities
    for name, column in zip(names, found, strict=True):
        out = out.append_column(name, column)
    return out


def epoch_us(column: pa.ChunkedArray) -> Any:
    """Event times as microseconds since the epoch (naive times and dates are UTC)."""
    kind = column.type
    if pa.types.is_date(kind):
        days = np.asarray(pc.cast(pc.cast(column, pa.date32()), pa.int32()).to_numpy(), dtype=np.int64)
        return days * 86_400_000_000
    ticks = np.asarray(pc.cast(column, pa.int64()).to_numpy(), dtype=np.int64)
    if kind.unit == "ns":  # floor, not toward zero: a time just before another never reads as after it
        return np.floor_divide(ticks, 1000)
    return ticks * {"s": 1_000_000, "ms": 1_000, "us": 1}[kind.unit]


def _index_source(req: ViewRequest, source: dict[str, Any]) -> pit_index.Source:
    src = req.view.batch_source
    mapping = {v: k for k, v in (src.field_mapping or {}).items()}

    def col(name: str) -> str:
        return str(mapping.get(name, name))

    return pit_index.Source(table=req.table, version=int(source["version"]), location=source["location"],
                            keys={key: col(key) for key in req.join_keys}, timestamp=col(src.timestamp_field),
                            created=col(src.created_timestamp_column) if src.created_timestamp_column else None,
                            features={f.name: col(f.name) for f in req.view.features})


def _on_demand(data: pa.Table, the_plan: Plan, full_names: bool) -> pa.Table:
    """Apply on-demand feature views (Feast's own transformation code) to the joined frame."""
    if not the_plan.on_demand:
        return data
    wanted = {r.split(":", 1)[1] if not full_names else r.replace(":", "__") for r in the_plan.refs}
    for req in the_plan.on_demand:
        try:
            out = req.view.transform_arrow(data, full_feature_names=full_names)
        except Exception as exc:
            raise FeatureError(f"on-demand feature view {req.view.name} failed: {type(exc).__name__}: {exc}") from exc
        for feat in req.features:
            name = f"{req.view.name}__{feat}" if full_names else feat
            if name in out.column_names and name not in data.column_names:
                data = data.append_column(name, out[name])
    # Source features pulled only for a transformation are not part of the answer.
    keep = [c for c in data.column_names if c in wanted or not _is_feature_column(c, the_plan, full_names)]
    return data.select(keep)


def _is_feature_column(name: str, the_plan: Plan, full_names: bool) -> bool:
    for req in the_plan.views:
        for feat in req.features:
            if name == (f"{req.alias}__{feat}" if full_names else feat):
                return True
    return False
