"""Feast's online stores as the feature server reads them: Redis and SQLite, in Feast's layout.

Kept apart from :mod:`lake.features.online` (request planning, decoding, on-demand views):
each store takes ``(view, serialized entity keys)`` work and returns one raw row per key.
"""

from __future__ import annotations

import calendar
import datetime as dt
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lake.features.repo import FeatureError

if TYPE_CHECKING:
    from lake.features.online_plan import ViewRead


class ServingError(FeatureError):
    """An online request that cannot be answered; ``status`` is the HTTP status it maps to."""

    status = 400


class UnknownFeatureError(ServingError, LookupError):
    """A feature, feature view or feature service the registry does not know (HTTP 404)."""

    status = 404


class OnlineRequestError(ServingError, ValueError):
    """A malformed request: a missing join key, entity columns of different lengths... (HTTP 422)."""

    status = 422


class OnlineStoreError(ServingError, ConnectionError):
    """The online store or the registry cannot be reached (HTTP 503)."""

    status = 503


# --------------------------------------------------------------------------- stores

Row = tuple[tuple[int, int] | None, list[bytes | None]]
"""``(event time as (seconds, nanos) or None when the entity is absent, raw value per feature)``."""
_TS_PARSED: dict[Any, tuple[int, int]] = {}


def _timestamp(raw: Any) -> tuple[int, int]:
    found = _TS_PARSED.get(raw)
    if found is None:
        if raw is None:
            found = (0, 0)
        elif isinstance(raw, bytes) and not raw.isdigit():
            from google.protobuf.timestamp_pb2 import Timestamp

            ts = Timestamp.FromString(raw)
            found = (ts.seconds, ts.nanos)
        else:
            # Feast's SQLite adapter stores int(naive_utc.timestamp()) and reads it back with
            # datetime.fromtimestamp(): local wall time labelled UTC. Same arithmetic here.
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            when = (raw if isinstance(raw, dt.datetime) else dt.datetime.fromtimestamp(int(text))
                    if text.lstrip("-").isdigit() else dt.datetime.fromisoformat(text))
            if when.tzinfo is not None:
                when = when.astimezone(dt.UTC)
            found = (calendar.timegm(when.timetuple()), when.microsecond * 1000)
        if len(_TS_PARSED) > 100_000:
            _TS_PARSED.clear()
        _TS_PARSED[raw] = found
    return found


class RedisStore:
    """Feast's Redis layout, read with pre-encoded pipelined ``HMGET`` commands."""

    _OPTIONS = {"db", "password", "username", "client_name"}

    def __init__(self, url: str, project: str) -> None:
        import redis
        from feast.infra.online_stores.redis import RedisOnlineStore

        nodes, params = RedisOnlineStore._parse_connection_string(url)
        if not nodes or "host" not in nodes[0] or "port" not in nodes[0]:
            raise FeatureError(f"redis_url {url!r} must look like host:port[,db=N,password=...]")
        host, port = nodes[0]["host"], int(nodes[0]["port"])
        ssl = str(params.pop("ssl", "false")).lower() == "true"
        self._cls = redis.SSLConnection if ssl else redis.Connection
        self._kwargs = {"host": host, "port": port, "socket_timeout": 5.0, "socket_connect_timeout": 5.0,
                        **{k: v for k, v in params.items() if k in self._OPTIONS}}
        self._suffix = project.encode()
        self._local = threading.local()
        self.where = f"Redis at {host}:{port}"

    def _roundtrip(self, packed: bytes, count: int) -> list[Any]:
        import redis

        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._cls(**self._kwargs)
            try:
                conn.send_packed_command([packed], check_health=False)
                return [conn.read_response() for _ in range(count)]
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                conn.disconnect()  # a broken or half-read connection; reads are safe to repeat once
                if attempt == 2:
                    raise OnlineStoreError(f"the online store ({self.where}) is not reachable: {exc}") from exc
            except redis.RedisError as exc:
                conn.disconnect()
                raise OnlineStoreError(f"the online store ({self.where}) refused the read: {exc}") from exc
        raise AssertionError("unreachable")

    def read(self, work: list[tuple[ViewRead, list[bytes]]]) -> list[list[Row]]:
        """One row per (view, serialized entity key), in order: every ``HMGET`` in one pipelined round trip."""
        parts: list[bytes] = []
        for view, keys in work:
            for key in keys:
                parts += (view.hmget_count, b"$%d\r\n" % (len(key) + len(self._suffix)), key, self._suffix,
                          b"\r\n", view.hmget_fields)
        replies = self._roundtrip(b"".join(parts), sum(len(k) for _, k in work)) if parts else []
        out, i = [], 0
        for _, keys in work:
            rows: list[Row] = []
            for reply in replies[i:i + len(keys)]:
                ts_raw, values = reply[-1], reply[:-1]
                found = ts_raw is not None or any(v is not None for v in values)
                rows.append((_timestamp(ts_raw) if found else None, values))
            out.append(rows)
            i += len(keys)
        return out

    def ping(self) -> None:
        """Raise :class:`OnlineStoreError` unless Redis answers."""
        self._roundtrip(b"*1\r\n$4\r\nPING\r\n", 1)


class SqliteStore:
    """Feast's SQLite layout (a table ``<project>_<view>`` per view), one query per view."""

    def __init__(self, path: Path, project: str) -> None:
        self.path, self.project = path, project
        self._local = threading.local()
        self.where = f"SQLite at {path}"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.exists():
                raise OnlineStoreError(f"the online store {self.path} does not exist: run `lake features apply` "
                                       "and materialize first")
            conn = self._local.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        return conn

    def read(self, work: list[tuple[ViewRead, list[bytes]]]) -> list[list[Row]]:
        """One row per (view, serialized entity key), in order: one query per view."""
        conn, out = self._conn(), []
        for view, keys in work:
            table = f"{self.project}_{view.name}".replace('"', '""')
            # Feast's own query, so that rows come back in the same order (its timestamp is the last row's).
            sql = (f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" '
                   f"WHERE entity_key IN ({','.join('?' * len(keys))}) ORDER BY entity_key")
            try:
                fetched = conn.execute(sql, keys).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise OnlineStoreError(f"the online store ({self.where}) failed: {exc}") from exc
                fetched = []  # applied but never materialized
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
                            else (_timestamp(entry[0]), [entry[1].get(f) for f in view.features]))
            out.append(rows)
        return out

    def ping(self) -> None:
        """Raise :class:`OnlineStoreError` unless the database file can be read."""
        try:
            self._conn().execute("SELECT 1").fetchall()
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"the online store ({self.where}) cannot be read: {exc}") from exc


# --------------------------------------------------------------------------- reader
