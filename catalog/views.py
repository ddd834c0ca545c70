"""Read views of the catalog: one dataset on one screen, runs, one run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.errors import CatalogError
from catalog.lineage import walk


def _version_dict(v: m.DatasetVersion) -> dict[str, Any]:
    return {
        "version": v.version, "committed_at": v.committed_at, "operation": v.operation,
        "rows": v.row_count, "bytes": v.size_bytes, "files": v.file_count,
        "schema_hash": v.schema_hash, "run_id": v.run_id, "metrics": v.metrics,
    }


def show(session: Session, ds: m.Dataset, version: int | None) -> dict[str, Any]:
    versions = list(session.scalars(select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == ds.id)
                                    .order_by(m.DatasetVersion.version.desc()).limit(20)))
    chosen = None
    if version is not None:
        chosen = session.scalar(select(m.DatasetVersion).where(m.DatasetVersion.dataset_id == ds.id,
                                                               m.DatasetVersion.version == version))
        if chosen is None:
            raise CatalogError(f"{ds.name} has no recorded version {version}; recorded: "
                               f"{', '.join(str(v.version) for v in versions) or 'none'}",
                               dataset=ds.name, version=version)
    cols = list(session.scalars(select(m.Column).where(m.Column.dataset_id == ds.id).order_by(m.Column.position)))
    col_tags: dict[int, list[str]] = {}
    for cid, tag in session.execute(select(m.ColumnTag.column_id, m.ColumnTag.tag)
                                    .where(m.ColumnTag.column_id.in_([c.id for c in cols]))):
        col_tags.setdefault(cid, []).append(tag)
    if chosen is not None:
        described = {c.name: c for c in cols}
        schema = [{"name": c["name"], "type": c.get("type"), "nullable": c.get("nullable", True),
                   "description": described[c["name"]].description if c["name"] in described else None,
                   "tags": col_tags.get(described[c["name"]].id, []) if c["name"] in described else []}
                  for c in chosen.schema]
    else:
        schema = [{"name": c.name, "type": c.type, "nullable": c.nullable, "description": c.description,
                   "tags": sorted(col_tags.get(c.id, []))} for c in cols]
    tags = session.execute(select(m.DatasetTag.tag, m.DatasetTag.source_id)
                           .where(m.DatasetTag.dataset_id == ds.id)).all()
    sources = {s for _, s in tags if s}
    source_names = dict(session.execute(select(m.Dataset.id, m.Dataset.name).where(m.Dataset.id.in_(sources)))
                        .all()) if sources else {}
    quality_version = chosen.version if chosen is not None else ds.current_version
    quality = [
        {"suite": q.suite, "success": q.success, "policy": q.policy, "version": q.version,
         "statistics": q.statistics, "created_at": q.created_at}
        for q in session.scalars(select(m.QualityResult).where(
            m.QualityResult.dataset_id == ds.id, m.QualityResult.version == quality_version)
            .order_by(m.QualityResult.created_at.desc()))
    ]
    ups = walk(session, ds.id, "upstream", 1)
    downs = walk(session, ds.id, "downstream", 1)
    near = {i for i in ups if i != ds.id} | {i for i in downs if i != ds.id}
    near_names = dict(session.execute(select(m.Dataset.id, m.Dataset.name).where(m.Dataset.id.in_(near))).all()) \
        if near else {}
    last_runs = runs(session, dataset_id=ds.id, limit=5)
    return {
        "namespace": ds.namespace, "name": ds.name, "kind": ds.kind, "layer": ds.layer,
        "location": ds.location, "format": ds.format, "description": ds.description,
        "created_at": ds.created_at, "updated_at": ds.updated_at, "current_version": ds.current_version,
        "version": _version_dict(chosen) if chosen is not None else (
            _version_dict(versions[0]) if versions else None),
        "owners": sorted(session.scalars(select(m.DatasetOwner.owner).where(m.DatasetOwner.dataset_id == ds.id))),
        "tags": sorted({t for t, s in tags if not s}),
        "inherited_tags": sorted({f"{t} (from {source_names.get(s, s)})" for t, s in tags if s}),
        "schema": schema,
        "versions": [_version_dict(v) for v in versions],
        "quality": quality,
        "quality_status": None if not quality else ("passed" if all(q["success"] for q in quality) else "failed"),
        "upstream": sorted(near_names[i] for i in ups if i in near_names),
        "downstream": sorted(near_names[i] for i in downs if i in near_names),
        "runs": last_runs,
    }


def _run_dict(run: m.Run, job: m.Job) -> dict[str, Any]:
    return {
        "run_id": run.id, "job": job.name, "namespace": job.namespace, "status": run.status,
        "started_at": run.started_at, "ended_at": run.ended_at,
        "duration_s": round((run.ended_at - run.started_at).total_seconds(), 3)
        if run.ended_at and run.started_at else None,
        "parameters": run.parameters, "code_version": run.code_version, "error": run.error, "stats": run.stats,
        "host": run.host, "pid": run.pid, "heartbeat_at": run.heartbeat_at, "parent_run_id": run.parent_run_id,
    }


def runs(session: Session, *, job: str | None = None, status: str | None = None, dataset_id: int | None = None,
         limit: int = 50, parent: str | None = None) -> list[dict[str, Any]]:
    q = select(m.Run, m.Job).join(m.Job, m.Job.id == m.Run.job_id)
    if job:
        q = q.where(m.Job.name == job)
    if parent:
        q = q.where(m.Run.parent_run_id == parent)
    if status:
        q = q.where(m.Run.status == status)
    if dataset_id is not None:
        touched = select(m.RunOutput.run_id).where(m.RunOutput.dataset_id == dataset_id).union(
            select(m.RunInput.run_id).where(m.RunInput.dataset_id == dataset_id))
        q = q.where(m.Run.id.in_(touched))
    q = q.order_by(m.Run.started_at.desc()).limit(limit)
    return [_run_dict(run, job_row) for run, job_row in session.execute(q)]


def run_info(session: Session, run: m.Run) -> dict[str, Any]:
    job = session.get(m.Job, run.job_id)
    assert job is not None
    out = _run_dict(run, job)
    for key, model in (("inputs", m.RunInput), ("outputs", m.RunOutput)):
        rows = session.execute(select(m.Dataset.namespace, m.Dataset.name, model.version)
                               .join(model, model.dataset_id == m.Dataset.id).where(model.run_id == run.id)
                               .order_by(m.Dataset.name))
        out[key] = [{"namespace": ns, "name": n, "version": None if v == m.UNKNOWN_VERSION else v}
                    for ns, n, v in rows]
    return out
