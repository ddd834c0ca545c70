"""Plain values the catalog takes and returns (no ORM objects leak out)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

RUN_STATUSES = ("running", "completed", "failed", "aborted")


@dataclass(frozen=True)
class ColumnSpec:
    """A column as a producer describes it."""

    name: str
    type: str | None = None
    nullable: bool = True
    description: str | None = None


def schema_hash(columns: list[ColumnSpec]) -> str:
    """A stable hash of names, types and nullability (order matters)."""
    payload = json.dumps([[c.name, c.type, c.nullable] for c in columns], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class VersionRecord:
    """What a producer knows about one committed version."""

    version: int
    columns: list[ColumnSpec] = field(default_factory=list)
    committed_at: dt.datetime | None = None
    operation: str | None = None
    row_count: int | None = None
    size_bytes: int | None = None
    file_count: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchHit:
    namespace: str
    name: str
    layer: str | None
    description: str | None
    score: float
    tags: list[str]
    owners: list[str]
    matched: list[str]
    """Where the query matched: ``name``, ``description``, ``tags``, ``owners``, ``columns``."""
    current_version: int | None = None
    quality: str | None = None
    kind: str | None = field(default=None, compare=False, repr=False)
    """The dataset's kind in the catalog (``table``, ``feature_view``...; None when not recorded).
    Not part of :meth:`as_dict`: the CLI's and the API's answers keep their shape."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["kind"]
        return out


@dataclass(frozen=True)
class LineageNode:
    namespace: str
    name: str
    layer: str | None
    depth: int
    """Hops from the start (negative upstream, positive downstream)."""
    version: int | None = None
    column: str | None = None


@dataclass(frozen=True)
class LineageGraph:
    root: str
    nodes: list[LineageNode]
    edges: list[tuple[str, str]]
    """(upstream node id, downstream node id); ids are ``name`` or ``name.column``/``name@v``."""
    jobs: dict[tuple[str, str], str] = field(default_factory=dict)
    """The job that made each edge, when known."""
    ids: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Dataset-level graphs: each node's dataset id in the catalog (for callers that look more up about
    the nodes in one query); empty for column and version graphs. Not part of :meth:`as_dict`."""
    kinds: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    """Dataset-level graphs: each node's kind in the catalog (``table``, ``feature_view``...). Not part
    of :meth:`as_dict`."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [
                {"from": a, "to": b, **({"job": self.jobs[(a, b)]} if (a, b) in self.jobs else {})}
                for a, b in self.edges
            ],
        }
