"""Reading commit information straight from a table's ``_delta_log``.

delta-rs' ``history()`` numbers commits by their position in its answer; on object
stores, with commits racing in the same second, that numbering can be wrong. The
commit files themselves are named by version, so the lake reads them directly when
it must know which version a commit became, or which version was current at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs

from lake.storage import Storage


def commit_path(uri: str, version: int) -> str:
    return f"{uri.rstrip('/')}/_delta_log/{version:020d}.json"


def commit_info(storage: Storage, uri: str, version: int) -> dict[str, Any] | None:
    """The ``commitInfo`` of one version (with ``version`` added), or None if its file is gone."""
    fs = storage.arrow_fs()
    try:
        with fs.open_input_stream(storage.fs_path(commit_path(uri, version))) as fh:
            data = fh.read().decode("utf-8")
    except (FileNotFoundError, OSError):
        return None
    for line in data.split("\n"):  # JSON lines: \n only (splitlines would also cut at U+0085, U+2028...)
        if '"commitInfo"' in line:
            info = json.loads(line).get("commitInfo") or {}
            info["version"] = version
            return dict(info)
    return {"version": version}


def commits(storage: Storage, uri: str, latest: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Commit infos newest first, from ``latest`` down (stops where the log was cleaned up)."""
    version = latest
    count = 0
    while version >= 0 and (limit is None or count < limit):
        info = commit_info(storage, uri, version)
        if info is None:
            return
        yield info
        version -= 1
        count += 1


def exists(storage: Storage, uri: str, version: int) -> bool:
    info = storage.arrow_fs().get_file_info(storage.fs_path(commit_path(uri, version)))
    return info.type == pafs.FileType.File
