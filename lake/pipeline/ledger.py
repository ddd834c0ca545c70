"""What each job has already ingested: files (size, mtime, checksum), watermarks, batches.

Kept as a Delta table of the lake itself (``_system.ingest_ledger``), beside the data it
describes. Each run is a numbered batch; the target commit carries the Delta app
transaction ``(job:<name>, batch)``, so a run retried after a crash between the target
commit and the ledger update skips the target write instead of duplicating it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lake.duck import literal
from lake.lakehouse import Lake
from lake.table import Table

LEDGER = "_system.ingest_ledger"
SCHEMA = pa.schema([
    ("job", pa.string()),
    ("kind", pa.string()),
    ("path", pa.string()),
    ("size", pa.int64()),
    ("mtime", pa.float64()),
    ("checksum", pa.string()),
    ("batch", pa.int64()),
    ("rows_read", pa.int64()),
    ("rows_written", pa.int64()),
    ("rows_quarantined", pa.int64()),
    ("data_files", pa.string()),
    ("watermark", pa.string()),
    ("recorded_at", pa.timestamp("us", tz="UTC")),
])


@dataclass
class FileEntry:
    path: str
    size: int
    mtime: float
    checksum: str | None
    batch: int
    data_files: list[str] = field(default_factory=list)


@dataclass
class JobState:
    """A job's ledger: the files it ingested (latest entry per path), its watermark, last batch."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    watermark: str | None = None
    last_batch: int = 0


def table(lake: Lake) -> Table:
    return lake.table(LEDGER)


def load(lake: Lake, job: str) -> JobState:
    t = table(lake)
    state = JobState()
    if not t.exists():
        return state
    rows = t.to_arrow(filter=f"job = {literal(job)}").to_pylist()
    for row in sorted(rows, key=lambda r: (r["batch"], r["recorded_at"])):
        state.last_batch = max(state.last_batch, int(row["batch"]))
        if row["kind"] == "file":
            state.files[row["path"]] = FileEntry(row["path"], row["size"], row["mtime"], row["checksum"],
                                                 row["batch"], json.loads(row["data_files"] or "[]"))
        elif row["kind"] == "watermark" and row["watermark"] is not None:
            state.watermark = row["watermark"]
    return state


def record(lake: Lake, job: str, batch: int, entries: list[dict[str, Any]]) -> None:
    """Append this batch's entries (idempotent per (job, batch))."""
    now = dt.datetime.now(dt.UTC)
    rows = [{name: e.get(name) for name in SCHEMA.names} | {"job": job, "batch": batch, "recorded_at": now}
            for e in entries]
    if not rows:
        rows = [{"job": job, "kind": "batch", "batch": batch, "recorded_at": now}]
    table(lake).write(pa.Table.from_pylist(rows, schema=SCHEMA), txn=(f"ledger:{job}", batch))
