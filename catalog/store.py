"""The catalog: datasets, versions, columns, jobs, runs, lineage, tags, owners, quality.

One :class:`Catalog` per database URL. Every write happens in one transaction;
concurrent writers (several jobs registering at once) neither lose nor duplicate a
record: rows are upserted on their natural keys (``INSERT ... ON CONFLICT``), and
SQLite writers take the write lock at ``BEGIN``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from catalog import models as m
from catalog.db import make_engine, migrate, session_factory, transaction
from catalog.entities import RUN_STATUSES, ColumnSpec, DatasetRef, VersionRecord, schema_hash
from catalog.errors import CatalogError, DatasetNotFoundError, RunNotFoundError
from catalog.redact import redact, redact_text

DEFAULT_NAMESPACE = "lake"


def _insert(session: Session, model: type[m.Base]) -> Any:
    """A dialect insert (for ``on_conflict_do_nothing``/``do_update``)."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(model)


def layer_of(name: str) -> str | None:
    """``bronze.events`` -> ``bronze``; names without a dot have no layer."""
    return name.split(".", 1)[0].lower() if "." in name else None


class Catalog:
    """The lineage-tracking metadata catalog.

    Args:
        url: SQLAlchemy URL (``sqlite:///path/catalog.db`` or ``postgresql+psycopg://...``).
        namespace: the namespace of datasets and jobs named without one.
        emitter: where OpenLineage events go besides the catalog itself (file, HTTP).
    """

    def __init__(self, url: str, *, namespace: str = DEFAULT_NAMESPACE, emitter: Any | None = None) -> None:
        from catalog.openlineage import Emitter

        self.url = url
        self.namespace = namespace
        self.engine = make_engine(url)
        migrate(self.engine)
        self._write = session_factory(self.engine)
        self._read = session_factory(self.engine, read_only=True)
        self.emitter: Emitter = emitter or Emitter()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        with transaction(self._write) as session:
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with transaction(self._read) as session:
            yield session

    # ------------------------------------------------------------------ datasets

    def _dataset(self, session: Session, name: str, namespace: str | None = None) -> m.Dataset:
        ns = namespace or self.namespace
        ds = session.scalar(select(m.Dataset).where(m.Dataset.namespace == ns, m.Dataset.name == name))
        if ds is None:
            hint = self._did_you_mean(session, name)
            raise DatasetNotFoundError(
                f"no dataset {name!r} in namespace {ns!r}{hint}; `lake catalog search` finds datasets",
                dataset=name,
            )
        return ds

    def _did_you_mean(self, session: Session, name: str) -> str:
        from catalog.search import suggest

        close = suggest(session, name)
        return f" (did you mean {', '.join(close)}?)" if close else ""

    def _ensure_dataset(
        self,
        session: Session,
        name: str,
        namespace: str | None = None,
        *,
        kind: str | None = None,
        layer: str | None = None,
        location: str | None = None,
        format: str | None = None,
        description: str | None = None,
    ) -> m.Dataset:
        ns = namespace or self.namespace
        now = m.utcnow()
        values = {
            "namespace": ns, "name": name, "kind": kind or "table",
            "layer": layer if layer is not None else layer_of(name) if ns == self.namespace else None,
            "location": redact_text(location) if location else None, "format": format,
            "description": description, "created_at": now, "updated_at": now,
        }
        session.execute(_insert(session, m.Dataset).values(**values).on_conflict_do_nothing(
            index_elements=["namespace", "name"]))
        ds = session.scalars(select(m.Dataset).where(m.Dataset.namespace == ns, m.Dataset.name == name)).one()
        changed = False
        for attr, value in (("kind", kind), ("layer", layer), ("location", values["location"]),
                            ("format", format), ("description", description)):
            if value is not None and getattr(ds, attr) != value:
                setattr(ds, attr, value)
                changed = True
        if changed:
            ds.updated_at = now
            self._refresh_doc(session, ds)
        elif ds.created_at == now or session.get(m.SearchDoc, ds.id) is None:
            self._refresh_doc(session, ds)
        return ds

    def register_dataset(
        self,
        name: str,
        *,
        namespace: str | None = None,
        kind: str | None = None,
        layer: str | None = None,
        location: str | None = None,
        format: str | None = None,
        description: str | None = None,
        columns: Sequence[ColumnSpec] | None = None,
        owners: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> DatasetRef:
        """Create or update a dataset (nothing given is changed)."""
        with self.writing() as s:
            ds = self._ensure_dataset(s, name, namespace, kind=kind, layer=layer, location=location,
                                      format=format, description=description)
            if columns is not None:
                self._set_columns(s, ds, list(columns))
            for owner in owners:
                self._add_owner(s, ds, owner)
            for tag in tags:
                self._add_tag(s, ds, tag)
            self._refresh_doc(s, ds)
            return DatasetRef(ds.namespace, ds.name)

    def _set_columns(self, session: Session, ds: m.Dataset, columns: list[ColumnSpec]) -> None:
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

    def record_version(
        self,
        name: str,
        record: VersionRecord,
        *,
        namespace: str | None = None,
        run_id: str | None = None,
        location: str | None = None,
        format: str | None = None,
        kind: str | None = None,
    ) -> DatasetRef:
        """Record one committed version (idempotent: recording it twice keeps one row)."""
        with self.writing() as s:
            ds = self._ensure_dataset(s, name, namespace, location=location, format=format, kind=kind)
            values = {
                "dataset_id": ds.id, "version": record.version,
                "committed_at": record.committed_at or m.utcnow(), "operation": record.operation,
                "schema": [c.__dict__ for c in record.columns], "schema_hash": schema_hash(record.columns),
                "row_count": record.row_count, "size_bytes": record.size_bytes, "file_count": record.file_count,
                "metrics": redact(record.metrics), "run_id": run_id,
            }
            s.execute(_insert(s, m.DatasetVersion).values(**values).on_conflict_do_nothing(
                index_elements=["dataset_id", "version"]))
            if ds.current_version is None or record.version >= ds.current_version:
                ds.current_version = record.version
                if record.columns:
                    self._set_columns(s, ds, record.columns)
                ds.updated_at = m.utcnow()
                self._refresh_doc(s, ds)
            if run_id is not None:
                self._link(s, run_id, ds.id, record.version, output=True)
            return DatasetRef(ds.namespace, ds.name)

    # --------------------------------------------------------------------- runs

    def start_run(
        self,
        job: str,
        *,
        namespace: str | None = None,
        parameters: dict[str, Any] | None = None,
        code_version: str | None = None,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        description: str | None = None,
        emit: bool = True,
    ) -> str:
        """Start a run of ``job`` (created on first use); returns its UUID."""
        run_id = run_id or str(uuid.uuid4())
        with self.writing() as s:
            job_row = self._ensure_job(s, job, namespace, description)
            s.execute(_insert(s, m.Run).values(
                id=run_id, job_id=job_row.id, status="running", started_at=m.utcnow(),
                parameters=redact(parameters or {}), code_version=code_version, stats={},
                parent_run_id=parent_run_id,
            ).on_conflict_do_nothing(index_elements=["id"]))
        if emit:
            self.emitter.emit(self, run_id, "START")
        return run_id

    def _ensure_job(self, session: Session, name: str, namespace: str | None, description: str | None) -> m.Job:
        ns = namespace or self.namespace
        session.execute(_insert(session, m.Job).values(namespace=ns, name=name, description=description,
                                                       created_at=m.utcnow())
                        .on_conflict_do_nothing(index_elements=["namespace", "name"]))
        job = session.scalars(select(m.Job).where(m.Job.namespace == ns, m.Job.name == name)).one()
        if description and job.description != description:
            job.description = description
        return job

    def _run(self, session: Session, run_id: str) -> m.Run:
        run = session.get(m.Run, run_id)
        if run is None:
            raise RunNotFoundError(f"no run {run_id}; `lake catalog runs` lists recent runs", run=run_id)
        return run

    def add_input(self, run_id: str, name: str, version: int | None = None, *, namespace: str | None = None,
                  location: str | None = None, format: str | None = None, kind: str | None = None) -> None:
        """Record that the run read ``name`` (at ``version`` when known)."""
        with self.writing() as s:
            self._run(s, run_id)
            ds = self._ensure_dataset(s, name, namespace, location=location, format=format, kind=kind)
            self._link(s, run_id, ds.id, m.UNKNOWN_VERSION if version is None else version, output=False)

    def add_output(self, run_id: str, name: str, version: int | None = None, *, namespace: str | None = None,
                   location: str | None = None, format: str | None = None, kind: str | None = None) -> None:
        """Record that the run wrote ``name`` (at ``version`` when known)."""
        with self.writing() as s:
            self._run(s, run_id)
            ds = self._ensure_dataset(s, name, namespace, location=location, format=format, kind=kind)
            self._link(s, run_id, ds.id, m.UNKNOWN_VERSION if version is None else version, output=True)

    def _link(self, session: Session, run_id: str, dataset_id: int, version: int, *, output: bool) -> None:
        model = m.RunOutput if output else m.RunInput
        session.execute(_insert(session, model).values(run_id=run_id, dataset_id=dataset_id, version=version)
                        .on_conflict_do_nothing(index_elements=["run_id", "dataset_id", "version"]))
        other = m.RunInput if output else m.RunOutput
        partners = set(session.scalars(select(other.dataset_id).where(other.run_id == run_id)))
        pairs = [(p, dataset_id) if output else (dataset_id, p) for p in partners if p != dataset_id]
        for src, dst in pairs:
            stmt = _insert(session, m.LineageEdge).values(src_id=src, dst_id=dst, last_run_id=run_id,
                                                          updated_at=m.utcnow())
            session.execute(stmt.on_conflict_do_update(
                index_elements=["src_id", "dst_id"],
                set_={"last_run_id": run_id, "updated_at": m.utcnow()}))
        if pairs:
            from catalog.tags import propagate

            propagate(session, {dst for _, dst in pairs})

    def add_column_lineage(
        self,
        run_id: str | None,
        output: str,
        mapping: dict[str, list[tuple[str, str] | tuple[str, str, str]]],
        *,
        namespace: str | None = None,
    ) -> None:
        """Declare column lineage: ``{output_column: [(input_dataset, input_column[, transformation])]}``."""
        with self.writing() as s:
            dst = self._ensure_dataset(s, output, namespace)
            for dst_col, sources in mapping.items():
                for src in sources:
                    src_ds = self._ensure_dataset(s, src[0], namespace)
                    transformation = src[2] if len(src) > 2 else None  # type: ignore[misc]
                    s.execute(_insert(s, m.ColumnLineage).values(
                        src_dataset_id=src_ds.id, src_column=src[1], dst_dataset_id=dst.id, dst_column=dst_col,
                        transformation=transformation, run_id=run_id,
                    ).on_conflict_do_update(
                        index_elements=["src_dataset_id", "src_column", "dst_dataset_id", "dst_column"],
                        set_={"transformation": transformation, "run_id": run_id}))

    def finish_run(self, run_id: str, status: str = "completed", *, error: str | None = None,
                   stats: dict[str, Any] | None = None, emit: bool = True) -> None:
        """End a run: ``completed``, ``failed`` (with the error) or ``aborted``."""
        if status not in RUN_STATUSES or status == "running":
            raise CatalogError(f"a run ends as completed, failed or aborted, not {status!r}")
        with self.writing() as s:
            run = self._run(s, run_id)
            run.status = status
            run.ended_at = m.utcnow()
            if error:
                run.error = redact_text(error)[:20_000]
            if stats:
                run.stats = {**(run.stats or {}), **redact(stats)}
        if emit:
            self.emitter.emit(self, run_id, {"completed": "COMPLETE", "failed": "FAIL", "aborted": "ABORT"}[status])

    @contextlib.contextmanager
    def run(self, job: str, **kwargs: Any) -> Iterator[RunContext]:
        """A run as a context manager: completed when the block ends, failed on an exception."""
        ctx = RunContext(self, self.start_run(job, **kwargs))
        try:
            yield ctx
        except BaseException as exc:
            self.finish_run(ctx.run_id, "failed", error=f"{type(exc).__name__}: {exc}", stats=ctx.stats)
            raise
        self.finish_run(ctx.run_id, "completed", stats=ctx.stats)

    # ------------------------------------------------------------- descriptions

    def describe(self, name: str, text: str, *, column: str | None = None, namespace: str | None = None) -> None:
        """Set the description of a dataset or of one of its columns."""
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            if column is None:
                ds.description = text
            else:
                col = self._column(s, ds, column)
                col.description = text
            ds.updated_at = m.utcnow()
            self._refresh_doc(s, ds)

    def _column(self, session: Session, ds: m.Dataset, column: str) -> m.Column:
        col = session.scalar(select(m.Column).where(m.Column.dataset_id == ds.id, m.Column.name == column))
        if col is None:
            names = session.scalars(select(m.Column.name).where(m.Column.dataset_id == ds.id)).all()
            raise CatalogError(f"{ds.name} has no column {column!r}; its columns: {', '.join(names) or 'none'}",
                               dataset=ds.name, column=column)
        return col

    def add_owner(self, name: str, owner: str, *, namespace: str | None = None) -> None:
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            self._add_owner(s, ds, owner)
            self._refresh_doc(s, ds)

    def _add_owner(self, session: Session, ds: m.Dataset, owner: str) -> None:
        session.execute(_insert(session, m.DatasetOwner).values(dataset_id=ds.id, owner=owner.strip())
                        .on_conflict_do_nothing(index_elements=["dataset_id", "owner"]))

    def remove_owner(self, name: str, owner: str, *, namespace: str | None = None) -> None:
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            s.execute(delete(m.DatasetOwner).where(m.DatasetOwner.dataset_id == ds.id, m.DatasetOwner.owner == owner))
            self._refresh_doc(s, ds)

    # --------------------------------------------------------------------- tags

    def define_tag(self, tag: str, *, propagate: bool | None = None, description: str | None = None) -> None:
        """Create a tag or change it; a propagating tag shows on every downstream dataset."""
        from catalog.tags import propagate as run_propagation
        from catalog.tags import repropagate

        with self.writing() as s:
            row = self._ensure_tag(s, tag)
            if description is not None:
                row.description = description
            if propagate is not None and row.propagate != propagate:
                row.propagate = propagate
                s.flush()
                if propagate:
                    holders = set(s.scalars(select(m.DatasetTag.dataset_id).where(m.DatasetTag.tag == tag)))
                    run_propagation(s, holders, from_sources=True)
                else:
                    repropagate(s, tag)

    def _ensure_tag(self, session: Session, tag: str) -> m.Tag:
        tag = tag.strip()
        if not tag:
            raise CatalogError("a tag cannot be empty")
        session.execute(_insert(session, m.Tag).values(name=tag, propagate=False)
                        .on_conflict_do_nothing(index_elements=["name"]))
        return session.get(m.Tag, tag)  # type: ignore[return-value]

    def tag(self, name: str, tag: str, *, column: str | None = None, namespace: str | None = None) -> None:
        """Tag a dataset (or a column of it)."""
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            if column is not None:
                col = self._column(s, ds, column)
                self._ensure_tag(s, tag)
                s.execute(_insert(s, m.ColumnTag).values(column_id=col.id, tag=tag)
                          .on_conflict_do_nothing(index_elements=["column_id", "tag"]))
            self._add_tag(s, ds, tag)
            self._refresh_doc(s, ds)

    def _add_tag(self, session: Session, ds: m.Dataset, tag: str) -> None:
        from catalog.tags import propagate

        row = self._ensure_tag(session, tag)
        session.execute(_insert(session, m.DatasetTag).values(dataset_id=ds.id, tag=tag, source_id=0)
                        .on_conflict_do_nothing(index_elements=["dataset_id", "tag", "source_id"]))
        if row.propagate:
            propagate(session, {ds.id}, from_sources=True)

    def untag(self, name: str, tag: str, *, column: str | None = None, namespace: str | None = None) -> None:
        from catalog.tags import repropagate

        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            if column is not None:
                col = self._column(s, ds, column)
                s.execute(delete(m.ColumnTag).where(m.ColumnTag.column_id == col.id, m.ColumnTag.tag == tag))
            else:
                s.execute(delete(m.DatasetTag).where(m.DatasetTag.dataset_id == ds.id, m.DatasetTag.tag == tag,
                                                     m.DatasetTag.source_id == 0))
                row = s.get(m.Tag, tag)
                if row is not None and row.propagate:
                    repropagate(s, tag)
            self._refresh_doc(s, ds)

    # ------------------------------------------------------------------ quality

    def record_quality(
        self,
        name: str,
        version: int | None,
        suite: str,
        success: bool,
        *,
        statistics: dict[str, Any] | None = None,
        results: list[dict[str, Any]] | None = None,
        policy: str | None = None,
        run_id: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Attach a validation result to a dataset version."""
        with self.writing() as s:
            ds = self._ensure_dataset(s, name, namespace)
            s.add(m.QualityResult(
                dataset_id=ds.id, version=m.UNKNOWN_VERSION if version is None else version, suite=suite,
                success=success, policy=policy, statistics=redact(statistics or {}),
                results=redact(results or []), run_id=run_id, created_at=m.utcnow()))

    # --------------------------------------------------- training datasets, reports

    def record_training_dataset(
        self,
        training_id: str,
        name: str,
        *,
        version: int | None,
        features: list[str],
        sources: dict[str, Any],
        entity_hash: str,
        content_hash: str,
        row_count: int,
        columns: list[dict[str, Any]],
        feature_service: str | None = None,
        entity_location: str | None = None,
        options: dict[str, Any] | None = None,
        run_id: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Keep the recipe of a saved training dataset (its frame is the ``training.<name>`` table)."""
        from catalog.artifacts import add_training

        with self.writing() as s:
            ds = self._ensure_dataset(s, f"training.{name}", namespace, kind="training", layer="training")
            add_training(s, ds.id, {
                "id": training_id, "name": name, "version": version, "features": features,
                "feature_service": feature_service, "sources": sources,
                "entity_location": redact_text(entity_location) if entity_location else None,
                "entity_hash": entity_hash, "content_hash": content_hash, "row_count": row_count,
                "columns": columns, "options": options or {}, "run_id": run_id})

    def training_dataset(self, ref: str) -> dict[str, Any]:
        """A saved training dataset by id (or unique id prefix) or by name (the newest)."""
        from catalog.artifacts import find_training, training_dict

        with self.reading() as s:
            return training_dict(find_training(s, ref))

    def training_datasets(self, *, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Saved training datasets, newest first."""
        from catalog.artifacts import list_training

        with self.reading() as s:
            return list_training(s, name, limit)

    def record_report(
        self,
        kind: str,
        name: str | None,
        version: int | None,
        *,
        status: str,
        summary: dict[str, Any],
        body: dict[str, Any],
        reference: str | None = None,
        location: str | None = None,
        run_id: str | None = None,
        namespace: str | None = None,
    ) -> str:
        """Attach a monitoring report (e.g. drift) to a dataset version; returns its id."""
        report_id = str(uuid.uuid4())
        with self.writing() as s:
            ds_id = self._ensure_dataset(s, name, namespace).id if name else None
            s.add(m.Report(id=report_id, kind=kind, dataset_id=ds_id,
                           version=m.UNKNOWN_VERSION if version is None else version,
                           reference=redact_text(reference) if reference else None, status=status,
                           summary=redact(summary), body=redact(body),
                           location=redact_text(location) if location else None, run_id=run_id,
                           created_at=m.utcnow()))
        return report_id

    def reports(self, *, dataset: str | None = None, kind: str | None = None, limit: int = 50,
                namespace: str | None = None) -> list[dict[str, Any]]:
        """Monitoring reports, newest first."""
        from catalog.artifacts import list_reports

        with self.reading() as s:
            ds_id = self._dataset(s, dataset, namespace).id if dataset else None
            return list_reports(s, ds_id, kind, limit)

    # ------------------------------------------------------------------- search

    def _refresh_doc(self, session: Session, ds: m.Dataset) -> None:
        from catalog.search import refresh_doc

        refresh_doc(session, ds)

    def search(self, query: str = "", **filters: Any) -> list[Any]:
        """Ranked search over names, descriptions, tags, owners and columns (see :mod:`catalog.search`)."""
        from catalog.search import search

        with self.reading() as s:
            return search(s, query, **filters)

    def lineage(self, name: str, **kwargs: Any) -> Any:
        """The lineage graph around a dataset (see :func:`catalog.lineage.lineage`)."""
        from catalog.lineage import lineage

        with self.reading() as s:
            ds = self._dataset(s, name, kwargs.pop("namespace", None))
            return lineage(s, ds, **kwargs)

    # -------------------------------------------------------------------- reads

    def show(self, name: str, *, version: int | None = None, namespace: str | None = None) -> dict[str, Any]:
        """Everything about a dataset on one screen: schema, versions, owners, tags, runs, quality, lineage."""
        from catalog.views import show

        with self.reading() as s:
            return show(s, self._dataset(s, name, namespace), version)

    def runs(self, *, job: str | None = None, status: str | None = None, dataset: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        """Recent runs, newest first."""
        from catalog.views import runs

        with self.reading() as s:
            ds_id = self._dataset(s, dataset).id if dataset else None
            return runs(s, job=job, status=status, dataset_id=ds_id, limit=limit)

    def run_info(self, run_id: str) -> dict[str, Any]:
        """One run with its inputs and outputs."""
        from catalog.views import run_info

        with self.reading() as s:
            return run_info(s, self._run(s, run_id))

    def datasets(self, *, layer: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.reading() as s:
            q = select(m.Dataset).order_by(m.Dataset.namespace, m.Dataset.name)
            if layer:
                q = q.where(m.Dataset.layer == layer)
            if namespace:
                q = q.where(m.Dataset.namespace == namespace)
            return [{"namespace": d.namespace, "name": d.name, "layer": d.layer, "kind": d.kind,
                     "current_version": d.current_version, "description": d.description}
                    for d in s.scalars(q)]

    def counts(self) -> dict[str, int]:
        with self.reading() as s:
            return {
                "datasets": s.scalar(select(func.count()).select_from(m.Dataset)) or 0,
                "versions": s.scalar(select(func.count()).select_from(m.DatasetVersion)) or 0,
                "runs": s.scalar(select(func.count()).select_from(m.Run)) or 0,
                "edges": s.scalar(select(func.count()).select_from(m.LineageEdge)) or 0,
            }


    # Provisional: the catalog branch replaces these with its own versions at merge time.
    def recorded_versions(self, name: str, *, namespace: str | None = None) -> set[int]:
        """Versions of the dataset recorded in the catalog (empty if the dataset is unknown)."""
        ns = namespace or self.namespace
        with self.reading() as s:
            rows = s.scalars(select(m.DatasetVersion.version).join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                             .where(m.Dataset.namespace == ns, m.Dataset.name == name))
            return {int(v) for v in rows}

    def run_status(self, run_id: str) -> str | None:
        """The run's status, or None when no such run."""
        with self.reading() as s:
            run = s.get(m.Run, run_id)
            return run.status if run is not None else None


class RunContext:
    """An open run: record what it reads and writes, and its statistics."""

    def __init__(self, catalog: Catalog, run_id: str) -> None:
        self.catalog = catalog
        self.run_id = run_id
        self.stats: dict[str, Any] = {}

    def input(self, name: str, version: int | None = None, **kwargs: Any) -> None:
        self.catalog.add_input(self.run_id, name, version, **kwargs)

    def output(self, name: str, version: int | None = None, **kwargs: Any) -> None:
        self.catalog.add_output(self.run_id, name, version, **kwargs)

    def column_lineage(self, output: str, mapping: dict[str, list[Any]], **kwargs: Any) -> None:
        self.catalog.add_column_lineage(self.run_id, output, mapping, **kwargs)
