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
    run_id: str | None = None
    """The catalog run the commit belongs to (``lake.run_id`` in the commit info)."""

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


_METRIC_NAMES = {
    "num_added_rows": "rows_written",
    "num_output_rows": "rows_written",
    "num_added_files": "files_added",
    "num_removed_files": "files_removed",
    "num_target_rows_inserted": "rows_inserted",
    "num_target_rows_updated": "rows_updated",
    "num_target_rows_deleted": "rows_deleted",
    "num_deleted_rows": "rows_deleted",
    "num_target_files_added": "files_added",
    "num_target_files_removed": "files_removed",
    "num_source_rows": "source_rows",
}
METRICS = ("rows_written", "rows_inserted", "rows_updated", "rows_deleted", "rows_quarantined", "files_added",
           "files_removed", "source_rows", "rows_copied")
"""The lake's names for a commit's metrics (delta-rs' own names are mapped onto them)."""


def normalize_metrics(raw: dict[str, Any]) -> dict[str, Any]:
    """A commit's metrics under the lake's names (see :data:`METRICS`)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _METRIC_NAMES and isinstance(value, int | float):
            out.setdefault(_METRIC_NAMES[key], int(value))
        elif key in METRICS:
            out[key] = value
    return out
