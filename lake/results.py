"""What a table operation reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CommitResult:
    """One Delta commit made (or skipped) by the lake."""

    table: str
    """The table's name (or location when addressed by path)."""
    operation: str
    """``CREATE``, ``APPEND``, ``OVERWRITE``, ``MERGE``, ``DELETE``, ``OPTIMIZE``..."""
    version: int | None
    """The committed version; for a skipped idempotent write, the table's current version."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Row and file counts: ``rows_written``, ``rows_inserted``, ``rows_updated``,
    ``rows_deleted``, ``files_added``, ``files_removed``."""
    skipped: bool = False
    """True when an idempotent write with this (app id, version) had already committed."""
    commit_id: str | None = None
    """The id the lake stamped on the commit (``lake.commit_id`` in the commit info)."""
    schema_changed: bool = False
    """True when the commit added columns to the table."""

    @property
    def rows_written(self) -> int:
        return int(self.metrics.get("rows_written", 0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "operation": self.operation,
            "version": self.version,
            "skipped": self.skipped,
            "schema_changed": self.schema_changed,
            **self.metrics,
        }
