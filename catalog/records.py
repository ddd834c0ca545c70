"""Writing the catalog's records inside one session: the upserts the store and OpenLineage ingest share.

Every function takes an open session and leaves committing to the caller, so a caller
composes several of them into one transaction. Rows are upserted on their natural keys
(``INSERT ... ON CONFLICT``), so concurrent writers neither lose nor duplicate a record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.entities import ColumnSpec, VersionRecord, schema_hash
from catalog.errors import CatalogError, CatalogInputError, DatasetNotFoundError, RunNotFoundError
from catalog.redact import redact, redact_text
from catalog.search import refresh_doc, suggest
from catalog.tags import propagate


def insert(session: Session, model: type[m.Base]) -> Any:
    """A dialect insert (for ``on_conflict_do_nothing``/``do_update``)."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(model)


def layer_of(name: str) -> str | None:
    """``bronze.events`` -> ``bronze``; names without a dot have no layer."""
    return name.split(".", 1)[0].lower() if "." in name else None


# ------------------------------------------------------------------ datasets


def find_dataset(session: Session, namespace: str, name: str) -> m.Dataset:
    """The dataset, or :class:`DatasetNotFoundError` with the closest names."""
    ds = session.scalar(select(m.Dataset).where(m.Dataset.namespace == namespace, m.Dataset.name == name))
    if ds is None:
        close = suggest(session, name)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise DatasetNotFoundError(
            f"no dataset {name!r} in namespace {namespace!r}{hint}; `lake catalog search` finds datasets",
            dataset=name,
        )
    return ds


def ensure_dataset(
    session: Session,
    namespace: str,
    name: str,
    *,
    home: bool,
    kind: str | None = None,
    layer: str | None = None,
    location: str | None = None,
    format: str | None = None,
    description: str | None = None,
) -> m.Dataset:
    """The dataset, created on first use; values given replace the stored ones.

    Args:
        home: whether ``namespace`` is the lake's own, whose names carry their layer
            (``bronze.events``) when none is given.
    """
    m.check_length(m.Dataset.namespace, namespace, "dataset namespace")
    m.check_length(m.Dataset.name, name, "dataset name")
    now = m.utcnow()
    values = {
        "namespace": namespace, "name": name, "kind": kind or "table",
        "layer": layer if layer is not None else layer_of(name) if home else None,
        "location": redact_text(location) if location else None, "format": format,
        "description": description, "created_at": now, "updated_at": now,
    }
    session.execute(insert(session, m.Dataset).values(**values).on_conflict_do_nothing(
        index_elements=["namespace", "name"]))
    ds = session.scalars(select(m.Dataset).where(m.Dataset.namespace == namespace, m.Dataset.name == name)).one()
    changed = False
    for attr, value in (("kind", kind), ("layer", layer), ("location", values["location"]),
                        ("format", format), ("description", description)):
        if value is not None and getattr(ds, attr) != value:
            setattr(ds, attr, value)
            changed = True
    if changed:
        ds.updated_at = now
        refresh_doc(session, ds)
    elif ds.created_at == now or session.get(m.SearchDoc, ds.id) is None:
        refresh_doc(session, ds)
    return ds


def annotate(session: Session, ds: m.Dataset, *, columns: list[ColumnSpec] | None = None,
             owners: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
    """Set the columns (when given), add owners and tags, and refresh the search text."""
    if columns is not None:
        set_columns(session, ds, columns)
    for owner in owners:
        add_owner(session, ds, owner)
    for tag in tags:
        add_tag(session, ds, tag)
    refresh_doc(session, ds)


def set_columns(session: Session, ds: m.Dataset, columns: list[ColumnSpec]) -> None:
    """Make the dataset's columns these, keeping descriptions of the ones that stay."""
    for spec in columns:
        m.check_length(m.Column.name, spec.name, "column name")
        if spec.type is not None:
            m.check_length(m.Column.type, spec.type, "column type")
    existing = {c.name: c for c in session.scalars(select(m.Column).where(m.Column.dataset_id == ds.id))}
    keep = {c.name for c in columns}
    for name, gone in existing.items():
        if name not in keep:
            session.delete(gone)
    for pos, spec in enumerate(columns):
        col = existing.get(spec.name)
        if col is None:
            session.add(m.Column(dataset_id=ds.id, name=spec.name, type=spec.type, nullable=spec.nullable,
                                 position=pos, description=spec.description))
        else:
            col.type, col.nullable, col.position = spec.type, spec.nullable, pos
            if spec.description:
                col.description = spec.description
    session.flush()


def find_column(session: Session, ds: m.Dataset, column: str) -> m.Column:
    col = session.scalar(select(m.Column).where(m.Column.dataset_id == ds.id, m.Column.name == column))
    if col is None:
        names = session.scalars(select(m.Column.name).where(m.Column.dataset_id == ds.id)).all()
        raise CatalogError(f"{ds.name} has no column {column!r}; its columns: {', '.join(names) or 'none'}",
                           dataset=ds.name, column=column)
    return col


def add_owner(session: Session, ds: m.Dataset, owner: str) -> None:
    owner = owner.strip()
    if not owner:
        raise CatalogInputError("an owner cannot be empty")
    m.check_length(m.DatasetOwner.owner, owner, "owner")
    session.execute(insert(session, m.DatasetOwner).values(dataset_id=ds.id, owner=owner)
                    .on_conflict_do_nothing(index_elements=["dataset_id", "owner"]))


def ensure_tag(session: Session, tag: str) -> m.Tag:
    tag = tag.strip()
    if not tag:
        raise CatalogInputError("a tag cannot be empty")
    m.check_length(m.Tag.name, tag, "tag")
    session.execute(insert(session, m.Tag).values(name=tag, propagate=False)
                    .on_conflict_do_nothing(index_elements=["name"]))
    return session.get(m.Tag, tag)  # type: ignore[return-value]


def add_tag(session: Session, ds: m.Dataset, tag: str) -> None:
    """Tag a dataset directly (a propagating tag flows downstream at once)."""
    tag = tag.strip()
    row = ensure_tag(session, tag)
    session.execute(insert(session, m.DatasetTag).values(dataset_id=ds.id, tag=tag, source_id=0)
                    .on_conflict_do_nothing(index_elements=["dataset_id", "tag", "source_id"]))
    if row.propagate:
        propagate(session, {ds.id}, from_sources=True)


def record_version(session: Session, ds: m.Dataset, record: VersionRecord, run_id: str | None) -> None:
    """One committed version (kept once however often it is recorded), output of ``run_id``."""
    values = {
        "dataset_id": ds.id, "version": record.version,
        "committed_at": record.committed_at or m.utcnow(), "operation": record.operation,
        "schema": [c.__dict__ for c in record.columns], "schema_hash": schema_hash(record.columns),
        "row_count": record.row_count, "size_bytes": record.size_bytes, "file_count": record.file_count,
        "metrics": redact(record.metrics), "run_id": run_id,
    }
    session.execute(insert(session, m.DatasetVersion).values(**values).on_conflict_do_nothing(
        index_elements=["dataset_id", "version"]))
    if ds.current_version is None or record.version >= ds.current_version:
        ds.current_version = record.version
        if record.columns:
            set_columns(session, ds, record.columns)
        ds.updated_at = m.utcnow()
        refresh_doc(session, ds)
    if run_id is not None:
        link(session, run_id, ds.id, record.version, output=True)


def column_edge(session: Session, src: tuple[m.Dataset, str], dst: tuple[m.Dataset, str], *,
                transformation: str | None, run_id: str | None, replace: bool) -> None:
    """Column ``src`` feeds column ``dst``; ``replace`` overwrites a known edge's transformation and run."""
    m.check_length(m.ColumnLineage.src_column, src[1], "column name")
    m.check_length(m.ColumnLineage.dst_column, dst[1], "column name")
    stmt = insert(session, m.ColumnLineage).values(
        src_dataset_id=src[0].id, src_column=src[1], dst_dataset_id=dst[0].id, dst_column=dst[1],
        transformation=transformation, run_id=run_id)
    keys = ["src_dataset_id", "src_column", "dst_dataset_id", "dst_column"]
    session.execute(stmt.on_conflict_do_update(index_elements=keys,
                                               set_={"transformation": transformation, "run_id": run_id})
                    if replace else stmt.on_conflict_do_nothing(index_elements=keys))


# --------------------------------------------------------------------- runs


def ensure_job(session: Session, namespace: str, name: str, description: str | None = None) -> m.Job:
    m.check_length(m.Job.namespace, namespace, "job namespace")
    m.check_length(m.Job.name, name, "job name")
    session.execute(insert(session, m.Job).values(namespace=namespace, name=name, description=description,
                                                  created_at=m.utcnow())
                    .on_conflict_do_nothing(index_elements=["namespace", "name"]))
    job = session.scalars(select(m.Job).where(m.Job.namespace == namespace, m.Job.name == name)).one()
    if description and job.description != description:
        job.description = description
    return job


def insert_run(session: Session, run_id: str, job: m.Job, *, status: str, started_at: dt.datetime,
               **values: Any) -> bool:
    """A new run (nothing happens when the id is known); whether it was inserted.

    Args:
        values: other :class:`catalog.models.Run` columns (parameters, process identity...).
    """
    result = session.execute(insert(session, m.Run).values(
        id=run_id, job_id=job.id, status=status, started_at=started_at,
        **{"parameters": {}, "stats": {}, **values},
    ).on_conflict_do_nothing(index_elements=["id"]))
    return bool(getattr(result, "rowcount", 0) == 1)


def find_run(session: Session, run_id: str) -> m.Run:
    run = session.get(m.Run, run_id)
    if run is None:
        raise RunNotFoundError(f"no run {run_id}; `lake catalog runs` lists recent runs", run=run_id)
    return run


def find_run_by_prefix(session: Session, ref: str) -> m.Run:
    """A run a person names: its id, or a unique prefix of 6+ characters (never for events or updates)."""
    run = session.get(m.Run, ref)
    if run is not None or len(ref) < 6:
        return find_run(session, ref)
    found = list(session.scalars(select(m.Run).where(m.Run.id.startswith(ref, autoescape=True)).limit(2)))
    if len(found) > 1:
        raise RunNotFoundError(f"{ref!r} matches several runs; give more of the id", run=ref)
    return found[0] if found else find_run(session, ref)


def link(session: Session, run_id: str, dataset_id: int, version: int, *, output: bool) -> None:
    """The run read (or wrote) the dataset at ``version``; dataset edges follow from its other side."""
    model = m.RunOutput if output else m.RunInput
    session.execute(insert(session, model).values(run_id=run_id, dataset_id=dataset_id, version=version)
                    .on_conflict_do_nothing(index_elements=["run_id", "dataset_id", "version"]))
    other = m.RunInput if output else m.RunOutput
    partners = set(session.scalars(select(other.dataset_id).where(other.run_id == run_id)))
    pairs = [(p, dataset_id) if output else (dataset_id, p) for p in partners if p != dataset_id]
    for src, dst in pairs:
        stmt = insert(session, m.LineageEdge).values(src_id=src, dst_id=dst, last_run_id=run_id,
                                                     updated_at=m.utcnow())
        session.execute(stmt.on_conflict_do_update(
            index_elements=["src_id", "dst_id"],
            set_={"last_run_id": run_id, "updated_at": m.utcnow()}))
    if pairs:
        propagate(session, {dst for _, dst in pairs})
