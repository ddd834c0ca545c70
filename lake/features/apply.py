"""``lake features apply``: feature definitions over lake tables into the Feast registry and the catalog.

Definitions name their sources by lake table (``FileSource(path="gold.drivers",
file_format=DeltaFormat(), ...)``), so one repository works on any lake. Applying
resolves each name to the table's location, checks that every column the view needs
exists with a usable type, writes the registry (file or SQL), and registers each
feature view in the catalog (``feature.<view>``) with lineage from its source table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from catalog.entities import ColumnSpec
from lake.errors import FeatureError
from lake.features.repo import feast_dir, feature_repo_folder, feature_store, load_definitions
from lake.lakehouse import NAME, Lake
from lake.naming import feature_service_dataset, feature_view_dataset
from lake.table import Table

TABLE_TAG = "lake.table"
"""Tag on a resolved data source naming the lake table it reads."""


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` changed."""

    entities: list[str] = field(default_factory=list)
    feature_views: list[str] = field(default_factory=list)
    on_demand_views: list[str] = field(default_factory=list)
    feature_services: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{view: {"table": name, "version": N}}``."""


def source_table(lake: Lake, view: Any) -> Table | None:
    """The lake table a feature view reads (``None`` for a source outside the lake)."""
    source = view.batch_source
    if source is None:
        return None
    tagged = (source.tags or {}).get(TABLE_TAG)
    path = getattr(source, "path", None)
    if tagged:
        return lake.table(tagged)
    if isinstance(path, str) and NAME.match(path.strip()):
        return lake.table(path.strip())
    return None


def _arrow_fields(table: Table) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in table.schema()}


def _check_view(lake: Lake, view: Any) -> Table:
    # heavy: feast is imported only when definitions are applied
    from feast.data_format import DeltaFormat
    from feast.infra.offline_stores.file_source import FileSource

    source = view.batch_source
    if not isinstance(source, FileSource):
        raise FeatureError(f"feature view {view.name}: its source must be a FileSource over a lake table "
                           f"(got {type(source).__name__})")
    table = source_table(lake, view)
    if table is None:
        raise FeatureError(f"feature view {view.name}: source path {source.path!r} is not a lake table; "
                           "write FileSource(path='gold.name', file_format=DeltaFormat(), ...)")
    if not isinstance(source.file_format, DeltaFormat):
        raise FeatureError(f"feature view {view.name}: the source {table.name} is a Delta table; "
                           "set file_format=DeltaFormat()")
    if not table.exists():
        raise FeatureError(f"feature view {view.name}: source table {table.name} does not exist at {table.uri}; "
                           "run the job that builds it first (`lake jobs list`)")
    columns = _arrow_fields(table)
    mapping = dict(source.field_mapping or {})
    reverse = {v: k for k, v in mapping.items()}

    def need(name: str, what: str, check: Any = None) -> None:
        col = reverse.get(name, name)
        if col not in columns:
            raise FeatureError(
                f"feature view {view.name}: {what} {col!r} is not a column of {table.name} "
                f"(columns: {', '.join(columns)})")
        if check is not None and not check(columns[col]):
            raise FeatureError(f"feature view {view.name}: {what} {col!r} of {table.name} has type "
                               f"{columns[col]}, which cannot serve as a {what}")

    is_time = pa.types.is_timestamp
    need(source.timestamp_field, "timestamp field", lambda t: is_time(t) or pa.types.is_date(t))
    if source.created_timestamp_column:
        need(source.created_timestamp_column, "created timestamp column", lambda t: is_time(t) or pa.types.is_date(t))
    for key in view.entity_columns:
        need(key.name, "join key")
    for feat in view.features:
        need(feat.name, "feature")
    return table


def apply(lake: Lake, folder: Path | None = None) -> ApplyResult:
    """Apply the repository's definitions to the registry and register them in the catalog.

    Args:
        lake: the lake whose tables the definitions read.
        folder: the feature repository (default ``[feast] repo`` or ``./feature_repo``).

    Returns:
        What was applied and deleted.

    Raises:
        FeatureError: a definition is invalid or its source table is missing.
    """
    # heavy: feast is imported only when definitions are applied
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView

    defs = load_definitions(folder or feature_repo_folder(lake))
    views: list[Any] = defs.of(FeatureView)
    sources: dict[str, dict[str, Any]] = {}
    for view in views:
        table = _check_view(lake, view)
        view.batch_source.file_options.uri = table.uri
        view.batch_source.tags = {**(view.batch_source.tags or {}), TABLE_TAG: table.name}
        sources[view.name] = {"table": table.name, "version": table.version()}
    names = {type(o).__name__ + ":" + o.name for o in defs.objects}
    if len(names) != len(defs.objects):
        raise FeatureError("two definitions share a name; every entity, view and service needs its own")
    store = feature_store(lake)
    project = store.project
    stale: list[Any] = []
    for listed, kind in ((store.list_feature_services(), FeatureService),
                         (store.list_on_demand_feature_views(), OnDemandFeatureView),
                         (store.list_feature_views(), FeatureView), (store.list_entities(), Entity)):
        stale += [o for o in listed if f"{kind.__name__}:{o.name}" not in names and not o.name.startswith("__")]
    try:
        store.apply(defs.objects, objects_to_delete=stale, partial=False)
    except Exception as exc:
        raise FeatureError(f"Feast refused the definitions: {type(exc).__name__}: {exc}") from exc
    _register(lake, project, views, defs.of(OnDemandFeatureView), defs.of(FeatureService), sources)
    return ApplyResult(
        entities=sorted(e.name for e in defs.of(Entity)), feature_views=sorted(v.name for v in views),
        on_demand_views=sorted(v.name for v in defs.of(OnDemandFeatureView)),
        feature_services=sorted(s.name for s in defs.of(FeatureService)),
        deleted=sorted(f"{type(o).__name__} {o.name}" for o in stale), sources=sources)


def _register(lake: Lake, project: str, views: list[Any], odfvs: list[Any], services: list[Any],
              sources: dict[str, dict[str, Any]]) -> None:
    """Feature views and services as catalog datasets, with lineage from their sources."""
    cat = lake.catalog
    with lake.run("features.apply", parameters={"project": project}) as run:
        for view in views:
            name = feature_view_dataset(view.name)
            cols = [ColumnSpec(k.name, str(k.dtype), True, "join key") for k in view.entity_columns]
            cols += [ColumnSpec(f.name, str(f.dtype), True, f.description or None) for f in view.features]
            cat.register_dataset(name, kind="feature_view", layer="feature", location=f"feast://{project}/{view.name}",
                                 format="feast", description=view.description or None, columns=cols,
                                 owners=[view.owner] if view.owner else [], tags=list((view.tags or {}).keys()))
            src = sources[view.name]
            run.input(src["table"], src["version"], format="delta")
            run.output(name, None, kind="feature_view")
            mapping = {v: k for k, v in (view.batch_source.field_mapping or {}).items()}
            run.column_lineage(name, {f.name: [(src["table"], mapping.get(f.name, f.name))] for f in view.features})
        for odfv in odfvs:
            name = feature_view_dataset(odfv.name)
            cat.register_dataset(name, kind="on_demand_feature_view", layer="feature",
                                 location=f"feast://{project}/{odfv.name}", format="feast",
                                 description=odfv.description or None,
                                 columns=[ColumnSpec(f.name, str(f.dtype)) for f in odfv.features])
            run.output(name, None, kind="on_demand_feature_view")
            for proj in odfv.source_feature_view_projections.values():
                run.input(feature_view_dataset(proj.name), None)
        for service in services:
            name = feature_service_dataset(service.name)
            cat.register_dataset(name, kind="feature_service", layer="feature",
                                 location=f"feast://{project}/services/{service.name}", format="feast",
                                 description=service.description or None,
                                 columns=[ColumnSpec(f"{p.name}:{f.name}", str(f.dtype))
                                          for p in service.feature_view_projections for f in p.features],
                                 owners=[service.owner] if service.owner else [])
            run.output(name, None, kind="feature_service")
            for proj in service.feature_view_projections:
                run.input(feature_view_dataset(proj.name), None)


def registered(lake: Lake) -> Any:
    """The registry's definitions, with ``FeatureStore``'s listing methods: read straight from the
    registry file when it can be (Feast, seconds to import, is not loaded), else through Feast."""
    # deferred: protobuf descriptors load only for listings
    from lake.features.registry_light import snapshot

    light = snapshot(lake.settings.feast, feast_dir(lake))
    return light if light is not None else feature_store(lake)


def describe(lake: Lake) -> list[dict[str, Any]]:
    """Every registered feature view, on-demand view and service, for ``lake features list``."""
    store = registered(lake)
    rows: list[dict[str, Any]] = []
    for view in store.list_feature_views():
        table = source_table(lake, view)
        rows.append({"kind": "feature_view", "name": view.name, "entities": ", ".join(view.entities),
                     "features": len(view.features), "ttl": str(view.ttl) if view.ttl else "",
                     "source": table.name if table else getattr(view.batch_source, "path", ""), "online": view.online})
    for odfv in store.list_on_demand_feature_views():
        rows.append({"kind": "on_demand_feature_view", "name": odfv.name, "entities": "",
                     "features": len(odfv.features), "ttl": "",
                     "source": ", ".join(odfv.source_feature_view_projections), "online": True})
    for service in store.list_feature_services():
        rows.append({"kind": "feature_service", "name": service.name, "entities": "",
                     "features": sum(len(p.features) for p in service.feature_view_projections), "ttl": "",
                     "source": ", ".join(p.name for p in service.feature_view_projections), "online": True})
    return rows


def show(lake: Lake, name: str) -> dict[str, Any]:
    """One feature view or service in detail (features, types, entities, source, TTL)."""
    store = registered(lake)
    for view in store.list_feature_views():
        if view.name == name:
            table = source_table(lake, view)
            src: Any = view.batch_source
            return {"kind": "feature_view", "name": view.name, "description": view.description,
                    "entities": list(view.entities), "join_keys": [k.name for k in view.entity_columns],
                    "ttl": str(view.ttl) if view.ttl else None, "online": view.online, "owner": view.owner,
                    "tags": dict(view.tags or {}), "source": {
                        "table": table.name if table else None, "location": src.path,
                        "timestamp_field": src.timestamp_field,
                        "created_timestamp_column": src.created_timestamp_column or None,
                        "version": table.version() if table is not None and table.exists() else None},
                    "features": [{"name": f.name, "type": str(f.dtype), "description": f.description}
                                 for f in view.features]}
    for odfv in store.list_on_demand_feature_views():
        if odfv.name == name:
            return {"kind": "on_demand_feature_view", "name": odfv.name, "description": odfv.description,
                    "sources": list(odfv.source_feature_view_projections),
                    "request_sources": list(odfv.source_request_sources),
                    "features": [{"name": f.name, "type": str(f.dtype), "description": f.description}
                                 for f in odfv.features]}
    for service in store.list_feature_services():
        if service.name == name:
            return {"kind": "feature_service", "name": service.name, "description": service.description,
                    "features": [f"{p.name}:{f.name}" for p in service.feature_view_projections
                                 for f in p.features]}
    known = [v.name for v in store.list_feature_views()] + [s.name for s in store.list_feature_services()]
    raise FeatureError(f"no feature view or service {name!r}; known: {', '.join(sorted(known)) or 'none'} "
                       "(`lake features apply` registers the repository)")
