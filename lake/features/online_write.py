"""Writers into Feast's online stores (SQLite, Redis), in Feast's exact layout.

Rows arrive already encoded (entity keys and ``Value`` bytes, see
:mod:`lake.features.encoding`). A value online that is newer than the incoming one is
kept, as Feast's own Redis writer does; an equal event time overwrites (a correction).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from lake.features.encoding import timestamp_proto
from lake.features.repo import FeatureError
from lake.lakehouse import Lake

_EPOCH = dt.datetime(1970, 1, 1)


class OnlineWriter(Protocol):
    def write(self, keys: list[bytes], values: dict[str, list[bytes]], ts_us: list[int]) -> int:
        """Write one batch; returns how many entity rows were written (not skipped as older)."""

    def close(self) -> None: ...


def writer_for(lake: Lake, store: Any, view: Any) -> OnlineWriter:
    """The writer for the lake's configured online store."""
    if lake.settings.feast.online_store == "redis":
        return RedisWriter(store, view)
    return SqliteWriter(store, view)


class SqliteWriter:
    """Upserts into the view's table of Feast's SQLite online store."""

    def __init__(self, store: Any, view: Any) -> None:
        from feast.infra.online_stores.helpers import compute_table_id
        from feast.infra.online_stores.sqlite import SqliteOnlineStore

        config = store.config
        online = SqliteOnlineStore()
        online.update(config, tables_to_delete=[], tables_to_keep=[view], entities_to_delete=[],
                      entities_to_keep=[], partial=True)
        self.conn = online._get_conn(config)
        self.table = compute_table_id(config.project, view, config.registry.enable_online_feature_view_versioning)
        cols = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{self.table}")')]
        self.has_vector = "vector_value" in cols
        self.has_num = "value_num" in cols
        self.string_features = {f.name for f in view.features if f.dtype.to_value_type().name == "STRING"}

    def write(self, keys: list[bytes], values: dict[str, list[bytes]], ts_us: list[int]) -> int:
        columns = ["entity_key", "feature_name", "value", "value_text"]
        columns += ["value_num"] if self.has_num else []
        columns += ["vector_value"] if self.has_vector else []
        columns += ["event_ts", "created_ts"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
        sql = (f'INSERT INTO "{self.table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))}) '
               f'ON CONFLICT(entity_key, feature_name) DO UPDATE SET {updates} '
               f'WHERE excluded.event_ts >= "{self.table}".event_ts')
        stamps = [_EPOCH + dt.timedelta(microseconds=t) for t in ts_us]
        extra: tuple[None, ...] = (None,) * (int(self.has_num) + int(self.has_vector))
        rows: list[tuple[Any, ...]] = []
        for name, encoded in values.items():
            text = name in self.string_features
            for key, value, stamp in zip(keys, encoded, stamps, strict=True):
                rows.append((key, name, value, _text(value) if text else None, *extra, stamp, None))
        before = self.conn.total_changes
        with self.conn:
            self.conn.executemany(sql, rows)
        changed = self.conn.total_changes - before
        return changed // max(1, len(values))

    def close(self) -> None:
        """The connection is Feast's cached one; nothing to release."""


def _text(value: bytes) -> str | None:
    from feast.protos.feast.types.Value_pb2 import Value

    proto = Value()
    proto.ParseFromString(value)
    return proto.string_val if proto.WhichOneof("val") == "string_val" else None


class RedisWriter:
    """``HSET`` per entity into Feast's Redis layout, skipping entities whose online value is newer."""

    def __init__(self, store: Any, view: Any) -> None:
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name

        config = store.config
        self.online_config = config.online_store
        try:
            self.client = RedisOnlineStore()._get_client(self.online_config)
            self.client.ping()
        except Exception as exc:
            raise FeatureError(f"cannot reach the Redis online store at {self.online_config.connection_string}: "
                               f"{exc}. Check [feast] redis_url and that Redis is up.") from exc
        name = _versioned_fv_name(view, config)
        self.ts_key = f"_ts:{name}".encode()
        self.fields = {f.name: _mmh3(f"{name}:{f.name}") for f in view.features}
        self.suffix = config.project.encode("utf-8")
        self.ttl = self.online_config.key_ttl_seconds

    def _pipeline(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        """Send commands in one go and read every reply (hiredis packs and parses, no per-command Python)."""
        import hiredis

        pool: Any = getattr(self.client, "connection_pool", None)
        conn = pool.get_connection() if pool is not None else None
        sock = getattr(conn, "_sock", None)
        if conn is None or sock is None:  # a cluster client, or no raw socket: redis-py's own pipeline
            if conn is not None and pool is not None:
                pool.release(conn)
            with self.client.pipeline(transaction=False) as pipe:
                for cmd in commands:
                    pipe.execute_command(*cmd)
                return list(pipe.execute())
        try:
            pack = hiredis.pack_command
            for start in range(0, len(commands), 5000):
                sock.sendall(b"".join(pack(c) for c in commands[start:start + 5000]))  # type: ignore[arg-type]
            reader = hiredis.Reader()
            replies: list[Any] = []
            while len(replies) < len(commands):
                data = sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                reader.feed(data)
                reply = reader.gets()
                while reply is not False:
                    if isinstance(reply, hiredis.ReplyError):
                        raise FeatureError(f"Redis refused a write: {reply}")
                    replies.append(reply)
                    reply = reader.gets()
        except BaseException:
            conn.disconnect()  # replies may be pending on it: never hand it back half-read
            raise
        finally:
            pool.release(conn)
        return replies

    def write(self, keys: list[bytes], values: dict[str, list[bytes]], ts_us: list[int]) -> int:
        from google.protobuf.timestamp_pb2 import Timestamp

        rkeys = [k + self.suffix for k in keys]
        previous = self._pipeline([(b"HGET", k, self.ts_key) for k in rkeys])
        latest: dict[bytes, int] = {}
        for k, prev in zip(rkeys, previous, strict=True):
            if prev:
                stamp = Timestamp()
                stamp.ParseFromString(prev)
                latest[k] = stamp.seconds * 1_000_000 + stamp.nanos // 1000
        names = list(values)
        columns = [values[n] for n in names]
        fields = [self.fields[n] for n in names]
        commands: list[tuple[bytes, ...]] = []
        written = 0
        for i, k in enumerate(rkeys):
            ts = ts_us[i]
            if latest.get(k, -1) > ts:
                continue
            args: list[bytes] = [b"HSET", k, self.ts_key, timestamp_proto(ts)]
            for field, column in zip(fields, columns, strict=True):
                args += (field, column[i])
            commands.append(tuple(args))
            if self.ttl:
                commands.append((b"EXPIRE", k, str(int(self.ttl)).encode()))
            written += 1
        if commands:
            self._pipeline(commands)
        return written

    def close(self) -> None:
        """The client is Feast's pooled one; nothing to release."""
