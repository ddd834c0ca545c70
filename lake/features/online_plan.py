"""Resolving an online request against a registry snapshot: which views, features and keys, how encoded."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lake.errors import OnlineRequestError, UnknownFeatureError
from lake.features.online_store import ViewRead
from lake.features.online_values import U32

DUMMY_KEY, DUMMY_VIEW_ENTITY = "__dummy_id", "__dummy"
# Feast ValueType numbers of the scalar kinds decoded here without protobuf objects.
SIMPLE_TYPES = {2, 3, 4, 5, 6, 7}  # STRING, INT32, INT64, DOUBLE, FLOAT, BOOL


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


@dataclass
class _Reading:
    """A view read while the request is resolved (features added as they are met)."""

    name: str
    alias: str
    keys: list[tuple[str, str, int]]
    features: list[str] = field(default_factory=list)
    types: list[int] = field(default_factory=list)

    def finish(self) -> ViewRead:
        head = U32(len(self.keys)) + b"".join(U32(2) + U32(len(k.encode())) + k.encode() for k, _, _ in self.keys)
        return ViewRead(self.name, self.alias, tuple(self.features), tuple(self.types), tuple(self.keys), head,
                        all(t in SIMPLE_TYPES for t in self.types))


def _reading(view: Any, alias: str, jkm: Mapping[str, str], entity_types: Mapping[str, int]) -> _Reading:
    keys = []
    for col in view.entity_columns:
        vt = col.dtype.to_value_type().value
        keys.append((col.name, jkm.get(col.name, col.name), vt if vt else entity_types.get(col.name, 0)))
    if not keys and DUMMY_VIEW_ENTITY in (view.entities or []):
        keys = [(DUMMY_KEY, DUMMY_KEY, 2)]
    keys.sort()
    return _Reading(view.name, alias, keys)


def view_read(view: Any, features: Sequence[str] | None = None,
              entity_types: Mapping[str, int] | None = None) -> ViewRead:
    """How to read some features (default: all) of a Feast feature view, without a request."""
    reading = _reading(view, view.name, {}, entity_types or {})
    for f in view.features:
        if features is None or f.name in features:
            reading.features.append(f.name)
            reading.types.append(f.dtype.to_value_type().value)
    return reading.finish()


class Registry:
    """A snapshot of the registry's views, on-demand views, services and entities."""

    def __init__(self, store: Any, *, value_types: bool = True) -> None:
        """``store``: Feast's ``FeatureStore`` or a :class:`~lake.features.registry_light.LightRegistry`;
        ``value_types``: a plan's ``feature_types`` are Feast ``ValueType`` members (else their numbers,
        and Feast is not imported)."""
        reg, project = store.registry, store.project
        self.value_types = value_types
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
        reads: dict[str, _Reading] = {}
        odfvs: dict[str, Any] = {}
        refs, outputs, request_fields = [], [], []

        def add(view: Any, alias: str, feat: str, jkm: Mapping[str, str]) -> int:
            read = reads.get(alias)
            if read is None:
                read = reads[alias] = _reading(view, alias, jkm, self.entity_types)
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
        views = [r.finish() for r in reads.values()]
        outputs = [(v, views[v].features.index(ref.split(":", 1)[1]) if v >= 0 else 0, name)
                   for (v, _, name), ref in zip(outputs, refs, strict=True)]
        seen: dict[str, str] = {}
        for (_, _, name), ref in zip(outputs, refs, strict=True):
            if name in seen:
                raise OnlineRequestError(f"features: {seen[name]} and {ref} would both be served as {name!r}; "
                                         "ask for full_feature_names", feature=name)
            seen[name] = ref
        convert: Any = int
        if self.value_types:
            # heavy: feast is imported only when a request is resolved (its registry is loaded by then)
            from feast.value_type import ValueType

            convert = ValueType
        types = {}
        for read in views:
            for feat, vt in zip(read.features, read.types, strict=True):
                types[feat] = types[f"{read.alias}__{feat}"] = convert(vt)
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
