"""What the console's pages show, read from the catalog and the lake (plain dicts, no HTTP here)."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa
from sqlalchemy import select

from catalog import models as m
from catalog.entities import SearchHit
from catalog.errors import CatalogError
from lake.errors import ConsoleError, LakeError
from lake.lakehouse import Lake
from lake.naming import FEATURE_SERVICE_PREFIX, FEATURE_VIEW_PREFIX, TABLE_NAME

SAMPLE_ROWS = 50
"""Rows of a sample (the most a page shows)."""
MAX_CELL = 200
"""Characters of a text value shown in a sample."""
SEARCH_POOL = 100
"""Hits searched to count facets; the page lists the best ``limit`` of them."""
DATASHEET = (
    ("motivation", "Motivation", "Why was this dataset created? Who funded or asked for it?"),
    ("composition", "Composition", "What does one row represent? Is anything missing, sensitive or confidential?"),
    ("collection", "Collection process", "How was the data acquired, over what time frame, with whose consent?"),
    ("preprocessing", "Preprocessing", "What cleaning, labelling or filtering was done? Is the raw data kept?"),
    ("uses", "Uses", "What is it used for, what should it not be used for?"),
    ("maintenance", "Maintenance", "Who maintains it, how often is it updated, how are errors reported?"),
)
"""The sections of "Datasheets for Datasets" (Gebru et al.): key, title, the question nobody but a person answers."""
DATASHEET_KIND = "datasheet"
"""Datasheet notes are kept as catalog reports of this kind (every edit kept; the newest is shown)."""
KINDS = {"table": "table", "feature_view": "feature view", "on_demand_feature_view": "feature view",
         "feature_service": "feature service", "training": "training set", "external": "external dataset",
         "export": "export", "query": "saved query"}


def access_object(name: str, kind: str | None = None) -> str:
    """The object an access check names for a dataset: ``feature_view:x`` for ``feature.x``, etc."""
    if name.startswith(FEATURE_VIEW_PREFIX) or kind in ("feature_view", "on_demand_feature_view"):
        return "feature_view:" + name.removeprefix(FEATURE_VIEW_PREFIX)
    if name.startswith(FEATURE_SERVICE_PREFIX) or kind == "feature_service":
        return "feature_service:" + name.removeprefix(FEATURE_SERVICE_PREFIX)
    return name


def is_table_name(name: str) -> bool:
    """Whether ``name`` is a lake table's ``layer.name`` (not a feature view, a path, another producer's name)."""
    return bool(TABLE_NAME.match(name))


def href(name: str, namespace: str | None = None, version: int | None = None) -> str:
    """A dataset page's address (another producer's dataset names its namespace)."""
    query = {k: v for k, v in (("ns", namespace), ("version", version)) if v is not None}
    return f"/datasets/{quote(name, safe='./:@')}" + (f"?{urlencode(query)}" if query else "")


def kind_of(namespace: str, kind: str | None, home: str) -> str:
    """The kind a person reads: external when another producer's namespace reported it."""
    return "external" if namespace != home else (kind or "table")


def jsonable(value: Any) -> Any:
    """A value as JSON can carry it (dates ISO 8601, bytes hex, long text cut, NaN as None)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, str):
        return value if len(value) <= MAX_CELL else value[:MAX_CELL] + "…"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return jsonable(value.hex())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return jsonable(str(value))


# ------------------------------------------------------------------- search


def search(lake: Lake, query: str, filters: dict[str, str], limit: int = 20) -> dict[str, Any]:
    """Ranked hits with their kind, and facet counts over the best :data:`SEARCH_POOL` hits.

    ``filters``: ``layer``, ``tag``, ``owner``, ``quality`` (passed|failed), ``kind``.
    """
    cat = lake.catalog
    kind = filters.get("kind") or None
    narrowed = {"layer": filters.get("layer") or None, "owner": filters.get("owner") or None,
                "quality": filters.get("quality") or None,
                "tags": [filters["tag"]] if filters.get("tag") else []}
    external = kind == "external"
    hits = cat.search(query, limit=SEARCH_POOL, kind=None if external or kind is None else kind, **narrowed)
    found = []
    for h in hits:
        k = kind_of(h.namespace, h.kind, cat.namespace)
        if external and k != "external":
            continue
        found.append({**_hit(h), "kind": k, "kind_label": KINDS.get(k, k),
                      "href": href(h.name, None if h.namespace == cat.namespace else h.namespace)})
    facets: dict[str, Counter[str]] = {f: Counter() for f in ("layer", "tag", "owner", "quality", "kind")}
    for hit in found:
        facets["layer"][hit["layer"] or "none"] += 1
        facets["kind"][hit["kind"]] += 1
        facets["quality"][hit["quality"] or "unchecked"] += 1
        facets["tag"].update(hit["tags"])
        facets["owner"].update(hit["owners"])
    return {"query": query, "hits": found[:limit], "total": len(found),
            "facets": {f: c.most_common(12) for f, c in facets.items()}}


def _hit(h: SearchHit) -> dict[str, Any]:
    # by hand: dataclasses.asdict deep-copies field by field, 0.15 ms a hit
    return {"namespace": h.namespace, "name": h.name, "layer": h.layer, "description": h.description,
            "score": h.score, "tags": list(h.tags), "owners": list(h.owners), "matched": list(h.matched),
            "current_version": h.current_version, "quality": h.quality}


# ------------------------------------------------------------------ dataset


def dataset(lake: Lake, name: str, version: int | None = None, namespace: str | None = None) -> dict[str, Any]:
    """The catalog's page of a dataset (``Catalog.show``) plus its kind, the full version timeline
    and the ``lake sql`` snippet."""
    cat = lake.catalog
    shown = cat.show(name, version=version, namespace=namespace or None)
    shown["kind"] = kind_of(shown["namespace"], shown["kind"], cat.namespace)
    shown["kind_label"] = KINDS.get(shown["kind"], shown["kind"])
    shown["timeline"] = timeline(lake, name, namespace=shown["namespace"])
    shown["sql"] = sql_snippet(name, version)
    shown["queryable"] = shown["kind"] in ("table", "training") and bool(shown["timeline"])
    return shown


def timeline(lake: Lake, name: str, limit: int = 200, namespace: str | None = None) -> list[dict[str, Any]]:
    """Versions newest first: rows, bytes, files, operation, the run (and job) that made each,
    and whether the schema changed from the version before."""
    cat = lake.catalog
    with cat.reading() as s:
        ds_id = s.scalar(select(m.Dataset.id).where(m.Dataset.namespace == (namespace or cat.namespace),
                                                    m.Dataset.name == name))
        if ds_id is None:
            return []
        rows = s.execute(
            select(m.DatasetVersion, m.Job.name)
            .outerjoin(m.Run, m.Run.id == m.DatasetVersion.run_id).outerjoin(m.Job, m.Job.id == m.Run.job_id)
            .where(m.DatasetVersion.dataset_id == ds_id).order_by(m.DatasetVersion.version.desc()).limit(limit)
        ).all()
        quality = dict(s.execute(
            select(m.QualityResult.version, m.QualityResult.success).where(m.QualityResult.dataset_id == ds_id)
        ).all())
        out = [{"version": v.version, "committed_at": v.committed_at, "operation": v.operation,
                "rows": v.row_count, "bytes": v.size_bytes, "files": v.file_count, "run_id": v.run_id,
                "job": job, "schema_hash": v.schema_hash,
                "quality": None if v.version not in quality else ("passed" if quality[v.version] else "failed")}
               for v, job in rows]
    for newer, older in zip(out, out[1:], strict=False):
        newer["schema_changed"] = newer["schema_hash"] != older["schema_hash"]
    if out:
        out[-1]["schema_changed"] = False
    return out


def schema_at(lake: Lake, name: str, version: int) -> list[dict[str, Any]]:
    cat = lake.catalog
    with cat.reading() as s:
        schema = s.scalar(select(m.DatasetVersion.schema).join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                          .where(m.Dataset.namespace == cat.namespace, m.Dataset.name == name,
                                 m.DatasetVersion.version == version))
    if schema is None:
        raise LakeError(f"{name} has no recorded version {version}; its page lists the versions",
                        table=name, version=version)
    return list(schema)


def schema_diff(lake: Lake, name: str, a: int, b: int) -> dict[str, Any]:
    """Columns added, removed and changed (type or nullability) from version ``a`` to ``b``."""
    before = {c["name"]: c for c in schema_at(lake, name, a)}
    after = {c["name"]: c for c in schema_at(lake, name, b)}
    changed = [{"name": n, "from": {"type": before[n].get("type"), "nullable": before[n].get("nullable", True)},
                "to": {"type": after[n].get("type"), "nullable": after[n].get("nullable", True)}}
               for n in after if n in before and (before[n].get("type"), before[n].get("nullable", True))
               != (after[n].get("type"), after[n].get("nullable", True))]
    return {"from": a, "to": b,
            "added": [{"name": n, "type": c.get("type")} for n, c in after.items() if n not in before],
            "removed": [{"name": n, "type": c.get("type")} for n, c in before.items() if n not in after],
            "changed": changed,
            "unchanged": sum(1 for n in after if n in before) - len(changed)}


def sample(lake: Lake, name: str, version: int | None, limit: int = SAMPLE_ROWS) -> pa.Table:
    """The first ``limit`` rows of a lake table at ``version`` (unmasked: the caller masks)."""
    limit = max(1, min(limit, SAMPLE_ROWS))
    table = lake.existing(name)
    reader = table.to_batches(version=version)
    batches, n = [], 0
    for batch in reader:
        batches.append(batch.slice(0, limit - n))
        n += min(batch.num_rows, limit - n)
        if n >= limit:
            break
    return pa.Table.from_batches(batches, schema=reader.schema)


def rows_of(data: pa.Table) -> dict[str, Any]:
    return {"columns": data.column_names, "rows": [[jsonable(v) for v in row.values()] for row in data.to_pylist()]}


def sql_snippet(name: str, version: int | None) -> str:
    at = f" --version {version}" if version is not None else ""
    return f'lake sql "SELECT * FROM {name} LIMIT 10"{at}'


def check_columns(shown: dict[str, Any], descriptions: dict[str, str]) -> None:
    """Refuse descriptions of columns the dataset does not have (``shown``: its current page)."""
    known = [c["name"] for c in shown["schema"]]
    unknown = sorted(set(descriptions) - set(known))
    if unknown:
        listed = ", ".join(repr(c[:80]) for c in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ConsoleError(400, f"{shown['name']} has no column {listed}; its columns: "
                                f"{', '.join(known[:50]) or 'none'}")


def annotate(lake: Lake, name: str, changes: dict[str, Any]) -> None:
    """Apply edits from the page: description, owners and tags added or removed, column descriptions."""
    cat = lake.catalog
    if "description" in changes:
        cat.describe(name, str(changes["description"] or ""))
    for col, text in (changes.get("column_descriptions") or {}).items():
        cat.describe(name, str(text or ""), column=str(col))
    for owner in changes.get("add_owners") or []:
        cat.add_owner(name, str(owner))
    for owner in changes.get("remove_owners") or []:
        cat.remove_owner(name, str(owner))
    for tag in changes.get("add_tags") or []:
        cat.tag(name, str(tag))
    for tag in changes.get("remove_tags") or []:
        cat.untag(name, str(tag))


# ---------------------------------------------------------------- datasheet


def datasheet(lake: Lake, shown: dict[str, Any]) -> list[dict[str, Any]]:
    """The "Datasheets for Datasets" sheet: per section what the catalog knows and the notes people wrote."""
    cat = lake.catalog
    name = shown["name"]
    notes = datasheet_notes(lake, name)
    tl = shown.get("timeline") or []
    current = tl[0] if tl else {}
    jobs = sorted({v["job"] for v in tl if v.get("job")})
    pii = [c["name"] for c in shown["schema"] if any(t in ("pii", "sensitive") for t in c.get("tags", []))]
    with cat.reading() as s:
        ds_id = s.scalar(select(m.Dataset.id).where(m.Dataset.namespace == shown["namespace"],
                                                    m.Dataset.name == name))
        transforms = [(sc, dc, t) for sc, dc, t in s.execute(
            select(m.ColumnLineage.src_column, m.ColumnLineage.dst_column, m.ColumnLineage.transformation)
            .where(m.ColumnLineage.dst_dataset_id == ds_id))] if ds_id else []
    stamps = sorted(v["committed_at"] for v in tl if v.get("committed_at"))
    cadence = None
    if len(stamps) > 1:
        cadence = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    known: dict[str, list[str]] = {
        "motivation": [shown["description"] or "No description recorded."]
        + ([f"Owners: {', '.join(shown['owners'])}"] if shown["owners"] else ["No owner recorded."]),
        "composition": [
            f"{current.get('rows', '?')} rows, {len(shown['schema'])} columns at version {current.get('version')}"
            if current else "No version recorded.",
            f"{current.get('bytes') or 0} bytes in {current.get('files') or 0} files" if current else "",
            f"Columns tagged sensitive: {', '.join(pii)}" if pii else "No column is tagged pii or sensitive.",
            f"Tags: {', '.join(shown['tags'] + shown['inherited_tags'])}" if shown["tags"] or shown["inherited_tags"]
            else "",
        ],
        "collection": [
            f"Written by {', '.join(jobs)}" if jobs else "No recorded job wrote it.",
            f"Built from: {', '.join(shown['upstream'])}" if shown["upstream"] else "No upstream dataset recorded.",
            f"{len(tl)} versions, first {stamps[0]:%Y-%m-%d %H:%M} UTC, last {stamps[-1]:%Y-%m-%d %H:%M} UTC"
            if stamps else "",
            f"Location: {shown['location']} ({shown['format'] or 'unknown format'})" if shown["location"] else "",
        ],
        "preprocessing": (
            [f"{dc} ← {sc}" + (f" ({t})" if t else "") for sc, dc, t in transforms[:20]]
            or ["No column-level lineage recorded."])
        + ([f"Quality suites at this version: {', '.join(q['suite'] for q in shown['quality'])} "
            f"({shown['quality_status']})"] if shown["quality"] else ["No quality suite ran on this version."]),
        "uses": [f"Used by: {', '.join(shown['downstream'])}" if shown["downstream"]
                 else "No downstream dataset recorded."],
        "maintenance": [
            f"Owners: {', '.join(shown['owners'])}" if shown["owners"] else "No owner recorded.",
            f"Current version {shown['current_version']}, updated {shown['updated_at']:%Y-%m-%d %H:%M} UTC"
            if shown.get("updated_at") else "",
            f"Updated every {_span(cadence)} on average" if cadence else "",
        ],
    }
    return [{"key": key, "title": title, "question": question, "known": [k for k in known[key] if k],
             "notes": notes.get(key, "")} for key, title, question in DATASHEET]


def _span(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}s"
    return f"{seconds:.0f} seconds"


def datasheet_notes(lake: Lake, name: str) -> dict[str, str]:
    try:
        found = lake.catalog.reports(dataset=name, kind=DATASHEET_KIND, limit=1)
    except CatalogError:
        return {}
    return {k: str(v) for k, v in (found[0]["body"] if found else {}).items()}


def save_datasheet(lake: Lake, name: str, notes: dict[str, Any], principal: str | None) -> dict[str, str]:
    """Keep the sheet's notes (only the known sections, at most 10,000 characters each) as a new edit."""
    keys = {k for k, _, _ in DATASHEET}
    unknown = set(notes) - keys
    if unknown:
        raise LakeError(f"unknown datasheet section(s) {sorted(unknown)}; sections: {sorted(keys)}")
    merged = {**datasheet_notes(lake, name), **{k: str(v or "")[:10_000] for k, v in notes.items()}}
    lake.catalog.record_report(DATASHEET_KIND, name, None, status="edited",
                               summary={"edited_by": principal or "anonymous", "sections": sorted(notes)},
                               body=merged)
    return merged
