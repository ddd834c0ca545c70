"""The catalog's tables (SQLAlchemy 2.x). Schema changes go through Alembic migrations.

Identity: a dataset is ``(namespace, name)``; the lake's own tables live in the
settings' namespace (default ``lake``) under their table names (``bronze.events``).
Versions are Delta versions. Runs are UUIDs. Lineage is kept twice on purpose:
exact run inputs/outputs (dataset@version, for historical lineage) and one
dataset-level edge per (upstream, downstream) pair (for fast graph traversal).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column

from catalog.errors import CatalogInputError

UNKNOWN_VERSION = -1
"""Stored when a lineage input's version is unknown (e.g. a source file, an external table)."""
MAX_INT = 2**31 - 1
"""The largest version or count an ``Integer`` column holds on every backend (PostgreSQL's int4)."""
MAX_BIGINT = 2**63 - 1
"""The largest ``BigInteger`` (row counts, sizes)."""


def check_length(column: InstrumentedAttribute[Any], value: str, what: str) -> str:
    """``value`` if it fits ``column`` (PostgreSQL enforces ``String(n)``; SQLite would not, so both check here).

    Raises:
        CatalogInputError: naming ``what`` and the limit.
    """
    limit = getattr(column.type, "length", None)
    if limit is not None and len(value) > limit:
        raise CatalogInputError(f"{what} is {len(value)} characters long; the catalog keeps at most {limit}: "
                                f"{value[:60]!r}...", field=what)
    return value


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored and returned as UTC-aware (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_datasets_namespace_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32), default="table")
    layer: Mapped[str | None] = mapped_column(String(64), index=True)
    location: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    current_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class DatasetOwner(Base):
    __tablename__ = "dataset_owners"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class Tag(Base):
    __tablename__ = "tags"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    propagate: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)


class DatasetTag(Base):
    """A tag on a dataset; ``source_id`` is 0 when set directly, else the upstream it came from."""

    __tablename__ = "dataset_tags"
    __table_args__ = (Index("ix_dataset_tags_tag", "tag", "dataset_id"),)

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)


class Column(Base):
    __tablename__ = "columns"
    __table_args__ = (
        UniqueConstraint("dataset_id", "name", name="uq_columns_dataset_name"),
        Index("ix_columns_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    type: Mapped[str | None] = mapped_column(String(255))
    nullable: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str | None] = mapped_column(Text)


class ColumnTag(Base):
    __tablename__ = "column_tags"

    column_id: Mapped[int] = mapped_column(ForeignKey("columns.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("namespace", "name", name="uq_jobs_namespace_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_job_started", "job_id", "started_at"), Index("ix_runs_status", "status"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    code_version: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_run_id: Mapped[str | None] = mapped_column(String(36))
    host: Mapped[str | None] = mapped_column(String(255))
    """The host of the process that opened the run (None: ingested, or recorded before 0003)."""
    pid: Mapped[int | None] = mapped_column(Integer)
    """That process's id on its host."""
    process_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """When that process started, so a reused pid is not taken for it."""
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """Refreshed while the run is open; a stale one means its process is gone."""


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_dataset_versions"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    committed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    operation: Mapped[str | None] = mapped_column(String(32))
    schema: Mapped[list[Any]] = mapped_column(JSON, default=list)
    schema_hash: Mapped[str | None] = mapped_column(String(64))
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    file_count: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)


class RunInput(Base):
    __tablename__ = "run_inputs"
    __table_args__ = (Index("ix_run_inputs_dataset", "dataset_id", "version"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, default=UNKNOWN_VERSION)


class RunOutput(Base):
    __tablename__ = "run_outputs"
    __table_args__ = (Index("ix_run_outputs_dataset", "dataset_id", "version"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, default=UNKNOWN_VERSION)


class LineageEdge(Base):
    """Dataset-level lineage: ``src`` feeds ``dst`` (the latest graph)."""

    __tablename__ = "lineage_edges"
    __table_args__ = (Index("ix_lineage_edges_dst", "dst_id", "src_id"),)

    src_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    dst_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ColumnLineage(Base):
    __tablename__ = "column_lineage"
    __table_args__ = (Index("ix_column_lineage_dst", "dst_dataset_id", "dst_column"),)

    src_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    src_column: Mapped[str] = mapped_column(String(512), primary_key=True)
    dst_dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    dst_column: Mapped[str] = mapped_column(String(512), primary_key=True)
    transformation: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(36))


class QualityResult(Base):
    __tablename__ = "quality_results"
    __table_args__ = (Index("ix_quality_dataset_version", "dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=UNKNOWN_VERSION)
    suite: Mapped[str] = mapped_column(String(255))
    success: Mapped[bool] = mapped_column(Boolean)
    policy: Mapped[str | None] = mapped_column(String(16))
    statistics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    results: Mapped[list[Any]] = mapped_column(JSON, default=list)
    run_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LineageEvent(Base):
    """Every OpenLineage event the catalog produced or ingested (credentials redacted)."""

    __tablename__ = "lineage_events"
    __table_args__ = (Index("ix_lineage_events_run", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str | None] = mapped_column(String(16))
    event_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    producer: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class SearchDoc(Base):
    """The text a dataset is found by (kept current by the store; indexed per dialect)."""

    __tablename__ = "search_docs"

    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[str] = mapped_column(Text, default="")
    owners: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[str] = mapped_column(Text, default="")
    doc: Mapped[str] = mapped_column(Text, default="")
    """Everything above, lower-cased in one string (PostgreSQL's trigram index is on it)."""


class SearchTerm(Base):
    """Every word datasets are found by: the vocabulary typos are corrected against."""

    __tablename__ = "search_terms"

    term: Mapped[str] = mapped_column(String(128), primary_key=True)
    in_name: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether some dataset name contains the word (else only other fields do)."""


class TrainingDataset(Base):
    """A saved point-in-time retrieval: exactly what built it, so it can be rebuilt and checked.

    The frame itself is a lake table (``training.<name>``, a catalog dataset of kind
    ``training``); this row keeps the recipe: features, source table versions, the
    entity frame's location and hash, and the result's content hash.
    """

    __tablename__ = "training_datasets"
    __table_args__ = (Index("ix_training_datasets_name", "name", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    version: Mapped[int | None] = mapped_column(Integer)
    """The version of the ``training.<name>`` table that holds this frame."""
    features: Mapped[list[Any]] = mapped_column(JSON, default=list)
    feature_service: Mapped[str | None] = mapped_column(String(255))
    sources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """``{table name: {"version": N, "location": ...}}`` for every feature source read."""
    entity_location: Mapped[str | None] = mapped_column(Text)
    entity_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[Any]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Report(Base):
    """A monitoring report (drift, quality over time) attached to a dataset version."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_dataset_version", "dataset_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    """``drift`` for now."""
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, default=UNKNOWN_VERSION)
    reference: Mapped[str | None] = mapped_column(Text)
    """What the current data was compared with (e.g. ``training:<id>`` or ``gold.x@3``)."""
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    location: Mapped[str | None] = mapped_column(Text)
    """Where the HTML rendering was written, if anywhere."""
    run_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SavedQuery(Base):
    """A SQL query saved by name, shared by everyone who may read it; re-run from the console or
    ``lake sql --saved NAME``. Its result is the catalog dataset ``query.<name>`` (kind ``query``),
    with lineage from the tables it reads."""

    __tablename__ = "saved_queries"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    sql: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(255))
    """Who saved it last (a principal, or ``user@host`` of the CLI)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiToken(Base):
    """A bearer token for the HTTP servers; only the SHA-256 of its secret is kept.

    A token belongs to a principal (a user or a service account, by name); what a principal may
    do is decided elsewhere. The token text is ``lake_<id>_<secret>``: the id finds the row, the
    hash of the whole text must match.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    principal: Mapped[str] = mapped_column(String(255), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    """Hex SHA-256 of the whole token text (the secret has 256 random bits: no salt or slow hash needed)."""
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    """Who created it (``user@host`` of the CLI, or a principal)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    """Refreshed at most once a minute while the token is used."""
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)


class Principal(Base):
    """Who may be granted something: a user, a service account or a group (issue 18)."""

    __tablename__ = "principals"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``user``, ``service`` (a service account) or ``group``."""
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class GroupMember(Base):
    """``member`` (a user, a service account or another group) belongs to ``group``."""

    __tablename__ = "group_members"

    group: Mapped[str] = mapped_column(ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True)
    member: Mapped[str] = mapped_column(ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True,
                                        index=True)


class Grant(Base):
    """``principal`` holds ``privilege`` on ``object`` and everything below it."""

    __tablename__ = "grants"

    principal: Mapped[str] = mapped_column(ForeignKey("principals.name", ondelete="CASCADE"), primary_key=True)
    privilege: Mapped[str] = mapped_column(String(16), primary_key=True)
    """``read``, ``write``, ``manage`` or ``unmask``."""
    object: Mapped[str] = mapped_column(String(512), primary_key=True, index=True)
    """``lake``, a layer (``bronze``), a dataset (``bronze.trades``), ``feature_view:NAME``, ``feature_service:NAME``."""
    granted_by: Mapped[str | None] = mapped_column(String(255))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MaskPolicy(Base):
    """How a column carrying ``tag`` leaves the service for a principal without ``unmask``."""

    __tablename__ = "mask_policies"

    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    method: Mapped[str] = mapped_column(String(16))
    """``null``, ``hash`` (HMAC-SHA256 with the service's secret salt, never stored) or ``last4``."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditRecord(Base):
    """One request that passed the service: who did what to which object, and how it ended."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_principal_at", "principal", "at"), Index("ix_audit_object_at", "object", "at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    principal: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    object: Mapped[str | None] = mapped_column(String(512))
    version: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    """``allowed``, ``denied``, ``error`` (a client's mistake or the server's) or ``ok``."""
    detail: Mapped[str | None] = mapped_column(Text)
