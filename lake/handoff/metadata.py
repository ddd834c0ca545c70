"""What a training job is told about the data it was handed: :class:`DatasetMetadata`."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["DatasetMetadata", "Kind"]

Kind = Literal["training", "curated"]


@dataclass(frozen=True)
class DatasetMetadata:
    """What a training job needs to know about the data it was handed.

    Attributes:
        kind: ``training`` (a saved training dataset) or ``curated`` (a lake table).
        name: the training dataset's name (``churn``) or the table name (``gold.x``).
        table: the lake table holding the rows (``training.churn``, ``gold.x``).
        version: the Delta version of that table.
        location: where the table lives (folder or ``s3://`` URI).
        row_count: rows in that version (from the Delta log).
        content_hash: for a training dataset, the hash the feature store recorded for
            its content; for a curated table, a SHA-256 of the version's schema and data
            files (path, size, rows): the same version always gives the same value.
        columns: ``{"name", "type", "nullable"}`` per column, in order.
        sources: ``{table: {"version": N, ...}}``: the feature sources of a training
            dataset, or the inputs of the run that committed a curated version.
        quality_status: ``passed``/``failed`` from the catalog's validations of this
            version, ``None`` when it was never validated.
        features: feature references of a training dataset.
        feature_service: the Feast feature service, if one was used.
        training_id: the saved training dataset's id.
        entity_hash: hash of the entity frame a training dataset was built from.
        entity_location: where that entity frame was read from.
        options: retrieval options recorded with a training dataset.
        run_id: the catalog run that produced the data.
        created_at: when the training dataset was saved, or the version was committed.
    """

    kind: Kind
    name: str
    table: str
    version: int
    location: str
    row_count: int
    content_hash: str
    columns: tuple[dict[str, Any], ...]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    quality_status: str | None = None
    features: tuple[str, ...] = ()
    feature_service: str | None = None
    training_id: str | None = None
    entity_hash: str | None = None
    entity_location: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created_at: dt.datetime | None = None

    @property
    def ref(self) -> str:
        """A reference that loads exactly this data again."""
        return f"training:{self.training_id}" if self.training_id else f"{self.table}@{self.version}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (lists for tuples, ISO 8601 for the timestamp)."""
        data = asdict(self)
        data["columns"], data["features"] = list(data["columns"]), list(data["features"])
        data["created_at"] = self.created_at.isoformat() if self.created_at else None
        data["ref"] = self.ref
        return data
