"""Commits the catalog has not recorded yet, remembered beside the table.

When a commit succeeds but the catalog cannot record it (the database went away
between the two), the transaction leaves a small marker in ``<table>/_lake_pending/``:
the version, the commit id, and a fingerprint of the data written. The Delta log alone
is enough to repair the catalog later; the fingerprint is what lets a retry of the same
call be recognized (and not write the rows twice) once the catalog is back.
Readers of the table ignore the folder (Delta readers skip ``_`` folders).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass

from lake.naming import PENDING_DIR
from lake.storage import Storage


@dataclass(frozen=True)
class PendingCommit:
    """A committed version the catalog lacks."""

    version: int
    commit_id: str
    operation: str
    fingerprint: str | None
    """A digest of the data the commit wrote (None when it could not be computed)."""
    run_id: str | None = None


def _folder(uri: str) -> str:
    return f"{uri.rstrip('/')}/{PENDING_DIR}"


def remember(storage: Storage, uri: str, commit: PendingCommit) -> None:
    """Leave a marker for ``commit`` (best effort: the Delta log stays the truth)."""
    with contextlib.suppress(Exception):
        storage.write_bytes(f"{_folder(uri)}/{commit.version:020d}-{commit.commit_id}.json",
                            json.dumps(asdict(commit)).encode())


def pending(storage: Storage, uri: str) -> list[PendingCommit]:
    """The markers left beside the table, oldest first."""
    out = []
    for info in sorted(storage.list_files(_folder(uri)), key=lambda f: f.path):
        raw = storage.read_bytes(f"{_folder(uri)}/{info.path}")
        try:
            out.append(PendingCommit(**json.loads(raw or b"")))
        except (TypeError, ValueError):
            continue  # a torn marker: the log still has the commit
    return out


def forget(storage: Storage, uri: str, versions: set[int] | None = None) -> None:
    """Remove the markers of ``versions`` (all when None)."""
    for info in storage.list_files(_folder(uri)):
        head = info.path.split("-", 1)[0]
        if versions is None or (head.isdigit() and int(head) in versions):
            with contextlib.suppress(OSError):
                storage.delete_file(f"{_folder(uri)}/{info.path}")
