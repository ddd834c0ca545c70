"""What a point-in-time retrieval asks for, shared by both engines (DuckDB and Spark).

A request (feature references or a feature service) is resolved against the registry into a
:class:`Plan`: the feature views to join, their lake tables, the on-demand views to apply
after the join. The entity frame is checked here, and :class:`TrainingFrame` is what every
engine returns.
"""

from __future__ import annotations

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
    """A point-in-time correct frame and exactly what built it.

    Built by DuckDB it holds the Arrow table (``arrow``). Built by Spark it holds the Spark
    DataFrame (``spark``, rows in the entity frame's order) and nothing on the driver: the
    Arrow table is collected only when :attr:`data` (or a ``to_*``) is asked for.
    """

    arrow: pa.Table | None
    features: list[str]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{table: {"version": N, "location": uri}}`` for every source read."""
    feature_service: str | None = None
    spark: Any = field(default=None, repr=False)
    """The Spark DataFrame (``engine="spark"``), else ``None``."""
    engine: str = "duckdb"

    @property
    def data(self) -> pa.Table:
        """The frame as one Arrow table (collected from Spark on first use)."""
        if self.arrow is None:
            collected = self.spark.toArrow()
            object.__setattr__(self, "arrow", collected)  # a cache: the frame's value never changes
            return collected
        return self.arrow

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
        if self.arrow is None:
            return int(self.spark.count())
        return self.arrow.num_rows


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


def index_source(req: ViewRequest, source: dict[str, Any]) -> pit_index.Source:
    src = req.view.batch_source
    mapping = {v: k for k, v in (src.field_mapping or {}).items()}

    def col(name: str) -> str:
        return str(mapping.get(name, name))

    return pit_index.Source(table=req.table, version=int(source["version"]), location=source["location"],
                            keys={key: col(key) for key in req.join_keys}, timestamp=col(src.timestamp_field),
                            created=col(src.created_timestamp_column) if src.created_timestamp_column else None,
                            features={f.name: col(f.name) for f in req.view.features})


def output_names(the_plan: Plan, entity_columns: list[str], full_names: bool) -> list[str]:
    """The feature columns the join adds, in order (``view__feature`` with ``full_names``)."""
    names: list[str] = []
    seen: set[str] = set(entity_columns)
    for req in the_plan.views:
        for feat in req.features:
            name = f"{req.alias}__{feat}" if full_names else feat
            if name in seen:
                raise FeatureError(f"two requested columns are both named {name!r}; pass full_feature_names=True "
                                   "(columns become view__feature)")
            seen.add(name)
            names.append(name)
    return names


def feature_columns(the_plan: Plan, full_names: bool) -> set[str]:
    """Every column the join itself adds (features of the plain feature views)."""
    return {f"{req.alias}__{feat}" if full_names else feat for req in the_plan.views for feat in req.features}


def on_demand(data: pa.Table, the_plan: Plan, full_names: bool) -> pa.Table:
    """Apply on-demand feature views (Feast's own transformation code) to the joined frame."""
    if not the_plan.on_demand:
        return data
    return apply_on_demand(data, the_plan.on_demand, the_plan.refs, feature_columns(the_plan, full_names), full_names)


def apply_on_demand(data: pa.Table, requests: list[OnDemandRequest], refs: list[str], produced: set[str],
                    full_names: bool) -> pa.Table:
    """:func:`on_demand` from plain parts (what the Spark engine ships to its executors)."""
    wanted = {r.split(":", 1)[1] if not full_names else r.replace(":", "__") for r in refs}
    for req in requests:
        try:
            out = req.view.transform_arrow(data, full_feature_names=full_names)
        except Exception as exc:
            raise FeatureError(f"on-demand feature view {req.view.name} failed: {type(exc).__name__}: {exc}") from exc
        for feat in req.features:
            name = f"{req.view.name}__{feat}" if full_names else feat
            if name in out.column_names and name not in data.column_names:
                data = data.append_column(name, out[name])
    # Source features pulled only for a transformation are not part of the answer.
    keep = [c for c in data.column_names if c in wanted or c not in produced]
    return data.select(keep)
