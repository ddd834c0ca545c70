"""The embedded online store: Feast's SQLite layout, one table ``<project>_<view>`` per feature view.

Each table holds a row per (entity key, feature) with the serialized ``Value``, its text
(``value_text``: the string, or the number or boolean as Python writes it) and the event
time in whole seconds (Feast's adapter), exactly as Feast's own writer leaves them. Reads use Feast's own query (so rows come back
in the same order); writes upsert and keep a value whose event time is newer.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lake.errors import OnlineStoreError
from lake.features.online_store import Row, ViewRead
from lake.features.online_values import decode, event_time

__all__ = ["SqliteStore", "SqliteWriter"]

_EPOCH = dt.datetime(1970, 1, 1)
CHUNK = 10_000
"""Entity keys per statement at most (fewer where the SQLite build allows fewer parameters)."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteStore:
    """Feast's SQLite online store (a file beside the lake), read with one query per view.

    Args:
        path: the database file (``<feast dir>/online.db``).
        project: the Feast project; its views are the tables ``<project>_<view>``.
    """

    kind = "sqlite"
    identity = "sqlite"

    def __init__(self, path: Path, project: str) -> None:
        self.path, self.project = Path(path), project
        self._local = threading.local()
        self.where = f"SQLite at {self.path}"

    def feast_config(self) -> Any:
        # heavy: feast is imported only when its configuration is built
        from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

        return SqliteOnlineStoreConfig(path=str(self.path))

    def feast_yaml(self) -> dict[str, Any]:
        return {"type": "sqlite", "path": str(self.path)}

    def writer(self, config: Any, view: Any) -> SqliteWriter:
        return SqliteWriter(config, view)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.exists():
                raise OnlineStoreError(f"the online store {self.path} does not exist: run `lake features apply` "
                                       "and materialize first")
            conn = self._local.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return conn

    def _table(self, view: ViewRead) -> str:
        return _quote(f"{self.project}_{view.name}")

    def read(self, work: Sequence[tuple[ViewRead, Sequence[bytes]]]) -> list[list[Row]]:
        """One row per (view, serialized entity key), in order: one query per view and CHUNK keys."""
        conn, out = self._conn(), []
        # SQLite takes a bounded number of parameters per statement (999 before 3.32, then 32766 unless
        # built otherwise): many keys are read a chunk at a time.
        chunk = max(1, min(CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)))
        for view, keys in work:
            fetched: list[Any] = []
            for start in range(0, len(keys), chunk):
                part = list(keys[start:start + chunk])
                # Feast's own query, so that rows come back in the same order (its timestamp is the last row's).
                sql = (f"SELECT entity_key, feature_name, value, event_ts FROM {self._table(view)} "
                       f"WHERE entity_key IN ({','.join('?' * len(part))}) ORDER BY entity_key")
                try:
                    fetched += conn.execute(sql, part).fetchall()
                except sqlite3.OperationalError as exc:
                    if "no such table" not in str(exc):
                        raise OnlineStoreError(f"the online store ({self.where}) failed: {exc}") from exc
                    break  # applied but never materialized
            found: dict[bytes, list[Any]] = {}
            for key, feat, value, ts in fetched:
                entry = found.get(key)
                if entry is None:
                    entry = found[key] = [None, {}]
                entry[0] = ts
                entry[1][feat] = value
            rows: list[Row] = []
            for key in keys:
                entry = found.get(key)
                rows.append((None, [None] * len(view.features)) if entry is None
                            else (event_time(entry[0]), [entry[1].get(f) for f in view.features]))
            out.append(rows)
        return out

    def delete(self, view: ViewRead, keys: Sequence[bytes]) -> int:
        """Remove the view's rows of these entity keys (CHUNK keys per statement, one transaction)."""
        if not keys or not self.path.exists():
            return 0
        removed = 0
        with sqlite3.connect(self.path) as conn:
            chunk = max(1, min(CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)))
            try:
                for start in range(0, len(keys), chunk):
                    part = list(keys[start:start + chunk])
                    marks = ",".join("?" * len(part))
                    found = conn.execute(f"SELECT count(DISTINCT entity_key) FROM {self._table(view)} "
                                         f"WHERE entity_key IN ({marks})", part).fetchone()
                    conn.execute(f"DELETE FROM {self._table(view)} WHERE entity_key IN ({marks})", part)
                    removed += int(found[0]) if found else 0
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return 0
                raise OnlineStoreError(f"the online store ({self.where}) refused the delete: {exc}") from exc
        return removed

    def health(self) -> None:
        """Raise :class:`OnlineStoreError` unless the database file can be read."""
        try:
            self._conn().execute("SELECT 1").fetchall()
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"the online store ({self.where}) cannot be read: {exc}") from exc


class SqliteWriter:
    """Upserts into the view's table of Feast's SQLite online store (created as Feast creates it)."""

    def __init__(self, config: Any, view: Any) -> None:
        # heavy: feast is imported only when materialization writes
        from feast.infra.online_stores.helpers import compute_table_id
        from feast.infra.online_stores.sqlite import SqliteOnlineStore

        online = SqliteOnlineStore()
        online.update(config, tables_to_delete=[], tables_to_keep=[view], entities_to_delete=[],
                      entities_to_keep=[], partial=True)
        self.conn = online._get_conn(config)
        self.table = compute_table_id(config.project, view, config.registry.enable_online_feature_view_versioning)
        cols = [r[1] for r in self.conn.execute(f"PRAGMA table_info({_quote(self.table)})")]
        self.has_vector = "vector_value" in cols
        self.has_num = "value_num" in cols

    def write(self, keys: list[bytes], values: dict[str, list[bytes]], ts_us: list[int]) -> int:
        columns = ["entity_key", "feature_name", "value", "value_text"]
        columns += ["value_num"] if self.has_num else []
        columns += ["vector_value"] if self.has_vector else []
        columns += ["event_ts", "created_ts"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
        table = _quote(self.table)
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
               f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {updates} "
               f"WHERE excluded.event_ts >= {table}.event_ts")
        stamps = [_EPOCH + dt.timedelta(microseconds=t) for t in ts_us]
        extra: tuple[None, ...] = (None,) * (int(self.has_num) + int(self.has_vector))
        rows: list[tuple[Any, ...]] = []
        for name, encoded in values.items():
            for key, value, stamp in zip(keys, encoded, stamps, strict=True):
                rows.append((key, name, value, value_text(value), *extra, stamp, None))
        before = self.conn.total_changes
        with self.conn:
            self.conn.executemany(sql, rows)
        changed = self.conn.total_changes - before
        return changed // max(1, len(values))

    def close(self) -> None:
        """The connection is Feast's cached one; nothing to release."""


def value_text(raw: bytes) -> str | None:
    """Feast's ``value_text`` of a serialized value: a string as is, a number or boolean as ``str()``
    writes it, anything else (lists, bytes, timestamps, null) ``None``."""
    value = decode(raw)
    if value is None or type(value) is str:
        return value
    if type(value) in (int, float, bool):
        return str(value)
    return None
