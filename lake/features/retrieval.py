"""Point-in-time correct training frames: feature views joined to an entity frame.

For each entity row (join keys + an event time) and each feature view, the value is
taken from the source row with the same keys whose event timestamp is the latest at or
before the entity's event time, ties broken by the created timestamp (the latest
wins), and only if that row is within the view's TTL; otherwise the features are null.
This is Feast's own semantics. Every source table is pinned to one Delta version, so the
frame can be rebuilt exactly.

Two engines answer the same question. ``duckdb`` (one process): each (version, view) is
read once into a sorted index (:mod:`lake.features.pit_index`, built by DuckDB from the
Delta table and cached), and each entity row is then one binary search in it. ``spark``
(:mod:`lake.features.spark_retrieval`): entity and source rows are partitioned by key
hash and each partition is searched the same way on the executors. ``auto`` picks by size
(:func:`choose_engine`).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import pyarrow as pa

from lake.data import is_spark_dataframe
from lake.errors import FeatureError
from lake.features import pit_index, spark_retrieval
from lake.features.apply import source_table
from lake.features.pit_plan import (
    OnDemandRequest,
    Plan,
    TrainingFrame,
    ViewRequest,
    entity_table,
    epoch_us,
    index_source,
    on_demand,
    output_names,
    plan,
)
from lake.features.repo import feature_store
from lake.lakehouse import Lake

Engine = Literal["auto", "duckdb", "spark"]
ENGINES = ("auto", "duckdb", "spark")

__all__ = ["ENGINES", "Engine", "choose_engine", "OnDemandRequest", "Plan", "TrainingFrame", "ViewRequest", "entity_table", "epoch_us", "plan",
           "prepare", "retrieve"]


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
    engine: Engine | None = None,
    spark: Any = None,
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
        engine: ``duckdb``, ``spark`` or ``auto`` (default: ``[features] engine``; see
            :func:`choose_engine`). Both give the same frame.
        spark: the Spark session for ``engine="spark"`` (default: the lake's, :meth:`Lake.spark`).

    Returns:
        The frame (entity columns first, in the entity frame's row order) and its sources. On
        Spark the frame stays a Spark DataFrame (``frame.spark``) until asked for as Arrow.

    Raises:
        FeatureError: unknown features, missing entity columns, bad timestamps.
    """
    the_plan = plan(lake, features, feature_service, store)
    spark_input = is_spark_dataframe(entity_df)
    entities = entity_df if spark_input else entity_table(entity_df, timestamp_column)
    columns = list(entities.columns) if spark_input else entities.column_names
    for req in the_plan.views:
        missing = [c for c in req.join_keys.values() if c not in columns]
        if missing:
            raise FeatureError(f"feature view {req.view.name} joins on {', '.join(missing)}, which the entity frame "
                               f"lacks (columns: {', '.join(columns)})")
    sources: dict[str, dict[str, Any]] = {}
    for req in the_plan.views:
        name = req.table.name
        if name not in sources:
            version = (versions or {}).get(name)
            if version is None:
                version = req.table.version()
            sources[name] = {"version": int(version), "location": req.table.uri}
            lake.read(req.table, int(version))
    wanted: str = engine or lake.settings.features.engine
    if wanted not in ENGINES:
        raise FeatureError(f"engine {wanted!r}: use one of {', '.join(ENGINES)}")
    if spark_input and wanted == "duckdb":
        raise FeatureError("the entity frame is a Spark DataFrame: use engine='spark' (or pass pandas/Arrow)")
    if spark_input or (spark is not None and wanted == "auto"):
        wanted = "spark"
    if wanted == "auto":
        wanted = choose_engine(lake, entities.num_rows, the_plan, sources)
    if wanted == "spark":
        session = spark if spark is not None else lake.spark(app_name="lake-features")
        frame = spark_retrieval.entity_frame(session, entities, timestamp_column)
        rows = int(frame.count()) if spark_input else entities.num_rows
        joined = spark_retrieval.join(session, lake, frame, the_plan, sources, timestamp_column, full_feature_names,
                                      rows)
        ordered = joined.orderBy(spark_retrieval.POS).drop(spark_retrieval.POS)
        return TrainingFrame(None, the_plan.refs, sources, the_plan.service, spark=ordered, engine="spark")
    data = _join(lake, entities, the_plan, sources, timestamp_column, full_feature_names)
    data = on_demand(data, the_plan, full_feature_names)
    return TrainingFrame(data, the_plan.refs, sources, the_plan.service)


def choose_engine(lake: Lake, entity_rows: int, the_plan: Plan, sources: dict[str, dict[str, Any]]) -> str:
    """``auto``: Spark once the entity rows plus every view's source rows (at the pinned versions,
    counted from the Delta log) reach ``[features] spark_min_rows``; DuckDB below."""
    total = entity_rows
    for req in the_plan.views:
        total += spark_retrieval.source_rows(req, int(sources[req.table.name]["version"]))
    return "spark" if total >= lake.settings.features.spark_min_rows else "duckdb"


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
        index = pit_index.load(lake, index_source(request, {"version": version, "location": table.uri}))
        out.append({"view": name, "table": table.name, "version": version, "rows": len(index.search),
                    "keys": index.ukeys.num_rows, "seconds": round(time.perf_counter() - started, 3)})
        if progress is not None:
            progress(name)
    return out


def _join(lake: Lake, entities: pa.Table, the_plan: Plan, sources: dict[str, dict[str, Any]],
          timestamp_column: str, full_names: bool) -> pa.Table:
    times = epoch_us(entities.column(timestamp_column))
    names = output_names(the_plan, entities.column_names, full_names)
    orders: dict[tuple[str, ...], Any] = {}  # views joining on the same columns share one entity sort
    for req in the_plan.views:
        columns = tuple(req.join_keys.values())
        if columns not in orders:
            orders[columns] = pit_index.entity_order(pa.table({c: entities.column(c) for c in columns}), times)

    def view_columns(req: ViewRequest) -> list[pa.ChunkedArray]:
        index = pit_index.load(lake, index_source(req, sources[req.table.name]))
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
