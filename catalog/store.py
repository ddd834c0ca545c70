"""The catalog: datasets, versions, columns, jobs, runs, lineage, tags, owners, quality.

One :class:`Catalog` per database URL. Every write happens in one transaction;
concurrent writers (several jobs registering at once) neither lose nor duplicate a
record: rows are upserted on their natural keys (``INSERT ... ON CONFLICT``, see
:mod:`catalog.records`), and SQLite writers take the write lock at ``BEGIN``.

Runs remember the process that opened them and carry a heartbeat, so a run whose
process was killed does not stay ``running`` forever: listing runs (or
:meth:`Catalog.reap_dead_runs`) ends it as ``failed`` (see :mod:`catalog.liveness`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from catalog import artifacts, liveness, queries, records, tokens, views
from catalog import models as m
from catalog.db import make_engine, migrate, ping, session_factory, transaction
from catalog.entities import (
    RUN_STATUSES,
    ColumnSpec,
    DatasetRef,
    LineageGraph,
    SearchHit,
    VersionRecord,
)
from catalog.errors import CatalogConnectionError, CatalogError, TokenError
from catalog.lineage import lineage as lineage_graph
from catalog.openlineage import Emitter
from catalog.redact import redact, redact_text
from catalog.search import refresh_doc
from catalog.search import search as search_docs
from catalog.tags import propagate as propagate_tags
from catalog.tags import repropagate
from catalog.tokens import Authenticator, AuthMode, TokenInfo

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "lake"
HEARTBEAT_INTERVAL = 30.0
"""Seconds between two heartbeats of a process's open runs."""
STALE_AFTER = 600.0
"""Seconds without a heartbeat after which a run's process is taken for dead."""

_END_EVENTS = {"completed": "COMPLETE", "failed": "FAIL", "aborted": "ABORT"}


class Catalog:
    """The lineage-tracking metadata catalog.

    Args:
        url: SQLAlchemy URL (``sqlite:///path/catalog.db`` or ``postgresql+psycopg://...``).
        namespace: the namespace of datasets and jobs named without one.
        emitter: where OpenLineage events go besides the catalog itself (file, HTTP).
        heartbeat_interval: seconds between heartbeats of the runs this catalog opened
            (one UPDATE for all of them from one daemon thread); None records no heartbeat,
            and such runs are then ended only when their pid is gone.
        stale_after: seconds without a heartbeat after which a run is ended as dead,
            whatever host it ran on. Must be more than twice ``heartbeat_interval``.

    Raises:
        CatalogConnectionError: the database cannot be reached or prepared.
    """

    def __init__(self, url: str, *, namespace: str = DEFAULT_NAMESPACE, emitter: Emitter | None = None,
                 heartbeat_interval: float | None = HEARTBEAT_INTERVAL, stale_after: float = STALE_AFTER) -> None:
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise CatalogError(f"heartbeat_interval must be positive (or None for no heartbeat), "
                               f"not {heartbeat_interval}")
        if stale_after <= 0 or (heartbeat_interval is not None and stale_after <= 2 * heartbeat_interval):
            raise CatalogError(f"stale_after ({stale_after} s) must be more than twice heartbeat_interval "
                               f"({heartbeat_interval} s), or a live run could be ended as dead")
        self.url = url
        self.namespace = namespace
        self.stale_after = dt.timedelta(seconds=stale_after)
        self.engine = make_engine(url)
        migrate(self.engine)
        self._write = session_factory(self.engine)
        self._read = session_factory(self.engine, read_only=True)
        self.emitter: Emitter = emitter or Emitter()
        self.heartbeat: liveness.Heartbeat | None = (
            liveness.Heartbeat(self._beat, heartbeat_interval) if heartbeat_interval else None)
        """Beats the runs this catalog opened (None when ``heartbeat_interval`` is None)."""

    def close(self) -> None:
        """Stop the heartbeat and release the connections (open runs stay open)."""
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        """A read-write transaction; :class:`CatalogConnectionError` when the database goes away."""
        with transaction(self._write, self.url) as session:
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction; :class:`CatalogConnectionError` when the database goes away."""
        with transaction(self._read, self.url) as session:
            yield session

    def ping(self) -> None:
        """Check that the database answers (one ``SELECT 1``).

        Raises:
            CatalogConnectionError: it does not; the message names the (redacted) URL.
        """
        ping(self.engine)

    # ------------------------------------------------------------------ datasets

    def _dataset(self, session: Session, name: str, namespace: str | None = None) -> m.Dataset:
        return records.find_dataset(session, namespace or self.namespace, name)

    def _ensure_dataset(self, session: Session, name: str, namespace: str | None = None, **values: Any) -> m.Dataset:
        ns = namespace or self.namespace
        return records.ensure_dataset(session, ns, name, home=ns == self.namespace, **values)

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
            records.annotate(s, ds, columns=None if columns is None else list(columns), owners=owners, tags=tags)
            return DatasetRef(ds.namespace, ds.name)

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
            records.record_version(s, ds, record, run_id)
            return DatasetRef(ds.namespace, ds.name)

    def recorded_versions(self, name: str, *, namespace: str | None = None) -> set[int]:
        """The versions of a dataset the catalog has recorded (empty when it knows no such dataset).

        One query, whatever the number of versions.
        """
        with self.reading() as s:
            rows = s.scalars(select(m.DatasetVersion.version)
                             .join(m.Dataset, m.Dataset.id == m.DatasetVersion.dataset_id)
                             .where(m.Dataset.namespace == (namespace or self.namespace), m.Dataset.name == name))
            return set(rows)

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
        """Start a run of ``job`` (created on first use); returns its UUID.

        The run records this process (host, pid, start time) and, until it is finished,
        a heartbeat every ``heartbeat_interval`` seconds.
        """
        run_id = run_id or str(uuid.uuid4())
        me = liveness.this_process()
        now = m.utcnow()
        with self.writing() as s:
            job_row = records.ensure_job(s, namespace or self.namespace, job, description)
            records.insert_run(s, run_id, job_row, status="running", started_at=now,
                               parameters=redact(parameters or {}), code_version=code_version,
                               parent_run_id=parent_run_id, host=me.host, pid=me.pid,
                               process_started_at=me.started_at,
                               heartbeat_at=now if self.heartbeat is not None else None)
        if self.heartbeat is not None:
            self.heartbeat.add(run_id)
        if emit:
            self.emitter.emit(self, run_id, "START")
        return run_id

    def _beat(self, run_ids: list[str]) -> set[str]:
        """Refresh the heartbeat of these runs; the ones still running."""
        with self.writing() as s:
            s.execute(update(m.Run).where(m.Run.id.in_(run_ids), m.Run.status == "running")
                      .values(heartbeat_at=m.utcnow()))
            return set(s.scalars(select(m.Run.id).where(m.Run.id.in_(run_ids), m.Run.status == "running")))

    def add_input(self, run_id: str, name: str, version: int | None = None, *, namespace: str | None = None,
                  location: str | None = None, format: str | None = None, kind: str | None = None) -> None:
        """Record that the run read ``name`` (at ``version`` when known)."""
        self._add_link(run_id, name, version, namespace, output=False, location=location, format=format, kind=kind)

    def add_output(self, run_id: str, name: str, version: int | None = None, *, namespace: str | None = None,
                   location: str | None = None, format: str | None = None, kind: str | None = None) -> None:
        """Record that the run wrote ``name`` (at ``version`` when known)."""
        self._add_link(run_id, name, version, namespace, output=True, location=location, format=format, kind=kind)

    def _add_link(self, run_id: str, name: str, version: int | None, namespace: str | None, *, output: bool,
                  **values: Any) -> None:
        with self.writing() as s:
            records.find_run(s, run_id)
            ds = self._ensure_dataset(s, name, namespace, **values)
            records.link(s, run_id, ds.id, m.UNKNOWN_VERSION if version is None else version, output=output)

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
                    records.column_edge(s, (src_ds, src[1]), (dst, dst_col), transformation=transformation,
                                        run_id=run_id, replace=True)

    def finish_run(self, run_id: str, status: str = "completed", *, error: str | None = None,
                   stats: dict[str, Any] | None = None, emit: bool = True) -> None:
        """End a run: ``completed``, ``failed`` (with the error) or ``aborted``."""
        if status not in RUN_STATUSES or status == "running":
            raise CatalogError(f"a run ends as completed, failed or aborted, not {status!r}")
        with self.writing() as s:
            run = records.find_run(s, run_id)
            run.status = status
            run.ended_at = m.utcnow()
            if error:
                run.error = redact_text(error)[:20_000]
            if stats:
                run.stats = {**(run.stats or {}), **redact(stats)}
        # Only once the end is recorded: a finish that could not reach the catalog leaves the run
        # beating while this process lives, and ended as dead after it exits.
        if self.heartbeat is not None:
            self.heartbeat.discard(run_id)
        if emit:
            self.emitter.emit(self, run_id, _END_EVENTS[status])

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

    def run_status(self, run_id: str) -> str | None:
        """The run's status (``running``, ``completed``, ``failed``, ``aborted``), None when no such run.

        A ``running`` run whose process is gone is ended first and reads ``failed``.
        """
        with self.reading() as s:
            status = s.scalar(select(m.Run.status).where(m.Run.id == run_id))
        if status == "running" and self._reap_quietly([run_id]):
            return "failed"
        return status

    def reap_dead_runs(self, run_ids: Iterable[str] | None = None) -> list[str]:
        """End as ``failed`` every running run whose process is gone; returns the ids it ended.

        A run is dead when, on this host, its pid no longer exists or belongs to a process
        started at another time, or (from any host) when its heartbeat is older than
        ``stale_after``. Runs that recorded neither a pid nor a heartbeat are left alone.
        Each ended run gets the reason as its error and an OpenLineage FAIL event.

        Args:
            run_ids: only consider these runs (default: every running run).
        """
        now = m.utcnow()
        here = liveness.this_process().host
        q = select(m.Run.id, m.Run.host, m.Run.pid, m.Run.process_started_at, m.Run.heartbeat_at).where(
            m.Run.status == "running", (m.Run.pid.is_not(None)) | (m.Run.heartbeat_at.is_not(None)))
        if run_ids is not None:
            q = q.where(m.Run.id.in_(list(run_ids)))
        with self.reading() as s:
            candidates = s.execute(q).all()
        dead: dict[str, tuple[dt.datetime | None, str]] = {}
        for run_id, host, pid, started, heartbeat in candidates:
            reason = liveness.dead_reason(host=host, pid=pid, process_started_at=started, heartbeat_at=heartbeat,
                                          now=now, stale_after=self.stale_after, here=here)
            if reason is not None:
                dead[run_id] = (heartbeat, reason)
        if not dead:
            return []
        ended = []
        with self.writing() as s:
            for run_id, (heartbeat, reason) in dead.items():
                # Only if nothing changed since it was judged: a beat or a finish in between wins.
                same_beat = m.Run.heartbeat_at.is_(None) if heartbeat is None else m.Run.heartbeat_at == heartbeat
                done = s.execute(update(m.Run).where(m.Run.id == run_id, m.Run.status == "running", same_beat)
                                 .values(status="failed", error=reason, ended_at=heartbeat or now))
                if getattr(done, "rowcount", 0) == 1:
                    ended.append(run_id)
        for run_id in ended:
            log.warning("run %s ended as failed: %s", run_id, dead[run_id][1])
            self.emitter.emit(self, run_id, "FAIL")
        return ended

    def _reap_quietly(self, run_ids: Iterable[str] | None = None) -> list[str]:
        """Reap before showing runs; a catalog this user may only read still shows them."""
        try:
            return self.reap_dead_runs(run_ids)
        except CatalogConnectionError:
            raise
        except SQLAlchemyError as exc:
            log.warning("could not end dead runs: %s", redact_text(str(exc).splitlines()[0]))
            return []

    # ------------------------------------------------------------- descriptions

    def describe(self, name: str, text: str, *, column: str | None = None, namespace: str | None = None) -> None:
        """Set the description of a dataset or of one of its columns."""
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            if column is None:
                ds.description = text
            else:
                records.find_column(s, ds, column).description = text
            ds.updated_at = m.utcnow()
            refresh_doc(s, ds)

    def add_owner(self, name: str, owner: str, *, namespace: str | None = None) -> None:
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            records.annotate(s, ds, owners=[owner])

    def remove_owner(self, name: str, owner: str, *, namespace: str | None = None) -> None:
        owner = owner.strip()
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            s.execute(delete(m.DatasetOwner).where(m.DatasetOwner.dataset_id == ds.id, m.DatasetOwner.owner == owner))
            refresh_doc(s, ds)

    # --------------------------------------------------------------------- tags

    def define_tag(self, tag: str, *, propagate: bool | None = None, description: str | None = None) -> None:
        """Create a tag or change it; a propagating tag shows on every downstream dataset."""
        tag = tag.strip()
        with self.writing() as s:
            row = records.ensure_tag(s, tag)
            if description is not None:
                row.description = description
            if propagate is not None and row.propagate != propagate:
                row.propagate = propagate
                s.flush()
                if propagate:
                    holders = set(s.scalars(select(m.DatasetTag.dataset_id).where(m.DatasetTag.tag == tag)))
                    propagate_tags(s, holders, from_sources=True)
                else:
                    repropagate(s, tag)

    def tag(self, name: str, tag: str, *, column: str | None = None, namespace: str | None = None) -> None:
        """Tag a dataset (or a column of it)."""
        tag = tag.strip()
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            if column is not None:
                col = records.find_column(s, ds, column)
                records.ensure_tag(s, tag)
                s.execute(records.insert(s, m.ColumnTag).values(column_id=col.id, tag=tag)
                          .on_conflict_do_nothing(index_elements=["column_id", "tag"]))
            records.annotate(s, ds, tags=[tag])

    def untag(self, name: str, tag: str, *, column: str | None = None, namespace: str | None = None) -> None:
        tag = tag.strip()
        with self.writing() as s:
            ds = self._dataset(s, name, namespace)
            if column is not None:
                col = records.find_column(s, ds, column)
                s.execute(delete(m.ColumnTag).where(m.ColumnTag.column_id == col.id, m.ColumnTag.tag == tag))
            else:
                s.execute(delete(m.DatasetTag).where(m.DatasetTag.dataset_id == ds.id, m.DatasetTag.tag == tag,
                                                     m.DatasetTag.source_id == 0))
                row = s.get(m.Tag, tag)
                if row is not None and row.propagate:
                    repropagate(s, tag)
            refresh_doc(s, ds)

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
        with self.writing() as s:
            ds = self._ensure_dataset(s, f"training.{name}", namespace, kind="training", layer="training")
            artifacts.add_training(s, ds.id, {
                "id": training_id, "name": name, "version": version, "features": features,
                "feature_service": feature_service, "sources": sources,
                "entity_location": redact_text(entity_location) if entity_location else None,
                "entity_hash": entity_hash, "content_hash": content_hash, "row_count": row_count,
                "columns": columns, "options": options or {}, "run_id": run_id})

    def training_dataset(self, ref: str) -> dict[str, Any]:
        """A saved training dataset by id (or unique id prefix) or by name (the newest)."""
        with self.reading() as s:
            return artifacts.training_dict(artifacts.find_training(s, ref))

    def training_datasets(self, *, name: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Saved training datasets, newest first."""
        with self.reading() as s:
            return artifacts.list_training(s, name, limit)

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
        with self.reading() as s:
            ds_id = self._dataset(s, dataset, namespace).id if dataset else None
            return artifacts.list_reports(s, ds_id, kind, limit)

    # ------------------------------------------------------------- saved queries

    def save_query(self, name: str, sql: str, *, description: str | None = None,
                   owner: str | None = None) -> dict[str, Any]:
        """Keep ``sql`` under ``name`` (replacing its text if the name exists); returns the record.

        Raises:
            CatalogInputError: a bad name (see :data:`catalog.queries.QUERY_NAME`) or empty/oversized SQL.
        """
        with self.writing() as s:
            return queries.save(s, name, sql, description=description, owner=owner)

    def saved_query(self, name: str) -> dict[str, Any]:
        """A saved query by name (``x`` or ``query.x``).

        Raises:
            SavedQueryNotFoundError: no such saved query.
        """
        with self.reading() as s:
            return queries.query_dict(queries.find(s, name))

    def saved_queries(self) -> list[dict[str, Any]]:
        """Every saved query, by name."""
        with self.reading() as s:
            return queries.listing(s)

    def delete_query(self, name: str) -> None:
        """Forget a saved query (its dataset and lineage stay, as history)."""
        with self.writing() as s:
            s.delete(queries.find(s, name))

    # ------------------------------------------------------------------- tokens

    def create_token(self, principal: str, *, expires_at: dt.datetime | None = None,
                     description: str | None = None, created_by: str | None = None) -> tuple[TokenInfo, str]:
        """A new API token for ``principal``: its record and its text (shown once; only its hash is kept).

        Raises:
            TokenError: the principal's name is not allowed, the expiry is in the past, or principals
                are defined and this one is not.
        """
        with self.writing() as s:
            if s.scalar(select(m.Principal.name).limit(1)) is not None and s.get(m.Principal, principal.strip()) is None:
                raise TokenError(f"no principal {principal[:80]!r}: define it first (`lake principal create "
                                 f"{principal[:80]} --kind user|service`)", principal=principal[:80])
            return tokens.create(s, principal, expires_at=expires_at, description=description, created_by=created_by)

    def tokens(self, *, principal: str | None = None, include_inactive: bool = True) -> list[TokenInfo]:
        """API tokens (never their text), newest first."""
        with self.reading() as s:
            return tokens.listing(s, principal=principal, include_inactive=include_inactive)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke an API token by id; servers stop taking it within their cache time.

        Raises:
            TokenNotFoundError: no token has this id.
        """
        with self.writing() as s:
            return tokens.revoke(s, token_id)

    def authenticator(self, *, mode: AuthMode = "auto", cache_seconds: float = 5.0) -> Authenticator:
        """What an HTTP server asks about the ``Authorization`` header of each request."""
        return Authenticator(self, mode=mode, cache_seconds=cache_seconds)

    # ------------------------------------------------------------------- search

    def search(self, query: str = "", **filters: Any) -> list[SearchHit]:
        """Ranked search over names, descriptions, tags, owners and columns (see :mod:`catalog.search`)."""
        with self.reading() as s:
            return search_docs(s, query, **filters)

    def lineage(self, name: str, **kwargs: Any) -> LineageGraph:
        """The lineage graph around a dataset (see :func:`catalog.lineage.lineage`)."""
        return self.lineage_and(name, lambda _s, _g: None, **kwargs)[0]

    def lineage_and(self, name: str, more: Callable[[Session, LineageGraph], T], **kwargs: Any) -> tuple[LineageGraph, T]:
        """The lineage graph and what ``more(session, graph)`` looks up about it, in one read transaction
        (a page that shows more about the nodes saves a transaction's round trips)."""
        with self.reading() as s:
            ds = self._dataset(s, name, kwargs.pop("namespace", None))
            graph = lineage_graph(s, ds, **kwargs)
            return graph, more(s, graph)

    # -------------------------------------------------------------------- reads

    def show(self, name: str, *, version: int | None = None, namespace: str | None = None) -> dict[str, Any]:
        """Everything about a dataset on one screen: schema, versions, owners, tags, runs, quality, lineage."""
        self._reap_quietly()
        with self.reading() as s:
            return views.show(s, self._dataset(s, name, namespace), version)

    def runs(self, *, job: str | None = None, status: str | None = None, dataset: str | None = None,
             limit: int = 50, parent: str | None = None) -> list[dict[str, Any]]:
        """Recent runs, newest first (runs whose process died are ended as failed first);
        ``parent`` keeps the runs a run started (a pipeline's steps)."""
        self._reap_quietly()
        with self.reading() as s:
            ds_id = self._dataset(s, dataset).id if dataset else None
            return views.runs(s, job=job, status=status, dataset_id=ds_id, limit=limit, parent=parent)

    def run_info(self, run_id: str) -> dict[str, Any]:
        """One run (by id or a unique id prefix) with its inputs and outputs (ended as failed first if its
        process died)."""
        self._reap_quietly([run_id])
        with self.reading() as s:
            return views.run_info(s, records.find_run_by_prefix(s, run_id))

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
