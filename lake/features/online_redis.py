"""The production online store: Feast's Redis layout.

One hash per entity key (``serialize_entity_key(v3) + project``) with a field per
feature (the first 4 bytes of ``mmh3("<view>:<feature>")``) holding the serialized
``Value``, and ``_ts:<view>`` holding the event time as a serialized ``Timestamp``.
Reads send pre-encoded ``HMGET`` commands, all pipelined in one round trip; writes
pipeline ``HSET`` commands through hiredis and keep a value whose event time is newer.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mmh3
from google.protobuf.timestamp_pb2 import Timestamp

from lake.errors import FeatureError, OnlineStoreError
from lake.features.encoding import timestamp_proto
from lake.features.online_store import Row, ViewRead
from lake.features.online_values import event_time

__all__ = ["RedisStore", "RedisWriter", "field_hash"]


def field_hash(view: str, feature: str) -> bytes:
    """The hash field of one feature of one view, as Feast names it."""
    return struct.pack("<Q", mmh3.hash(f"{view}:{feature}", signed=False))[:4]


def _fields(view: str, features: Sequence[str]) -> list[bytes]:
    return [*(field_hash(view, f) for f in features), f"_ts:{view}".encode()]


class RedisStore:
    """Feast's Redis online store, read with pre-encoded pipelined ``HMGET`` commands.

    Args:
        url: ``host:port[,db=N,password=...,ssl=true]`` (``[feast] redis_url``).
        project: the Feast project, the suffix of every key.
    """

    kind = "redis"
    _OPTIONS = {"db", "password", "username", "client_name"}

    def __init__(self, url: str, project: str) -> None:
        # heavy: redis and feast are imported only when a Redis store is used
        import redis
        from feast.infra.online_stores.redis import RedisOnlineStore

        self.url = url
        nodes, params = RedisOnlineStore._parse_connection_string(url)
        if not nodes or "host" not in nodes[0] or "port" not in nodes[0]:
            raise FeatureError(f"redis_url {url!r} must look like host:port[,db=N,password=...]")
        host, port = nodes[0]["host"], int(nodes[0]["port"])
        ssl = str(params.pop("ssl", "false")).lower() == "true"
        self._redis = redis
        self._cls = redis.SSLConnection if ssl else redis.Connection
        self._kwargs = {"host": host, "port": port, "socket_timeout": 5.0, "socket_connect_timeout": 5.0,
                        **{k: v for k, v in params.items() if k in self._OPTIONS}}
        self._suffix = project.encode()
        self._local = threading.local()
        self._commands: dict[tuple[str, tuple[str, ...]], tuple[bytes, bytes]] = {}
        self.where = f"Redis at {host}:{port}"
        self.identity = f"redis:{url.split(',')[0]}"

    def feast_config(self) -> Any:
        # heavy: feast is imported only when its configuration is built
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        return RedisOnlineStoreConfig(connection_string=self.url)

    def feast_yaml(self) -> dict[str, Any]:
        return {"type": "redis", "connection_string": self.url}

    def writer(self, config: Any, view: Any) -> RedisWriter:
        return RedisWriter(config, view)

    def _roundtrip(self, packed: bytes, count: int) -> list[Any]:
        redis = self._redis
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
                raise OnlineStoreError(f"the online store ({self.where}) refused the command: {exc}") from exc
        raise AssertionError("unreachable")

    def _hmget(self, view: ViewRead) -> tuple[bytes, bytes]:
        """The RESP head (``*N HMGET``) and field arguments of a view's ``HMGET``, encoded once."""
        found = self._commands.get((view.name, view.features))
        if found is None:
            fields = _fields(view.name, view.features)
            found = (b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2),
                     b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields))
            if len(self._commands) > 10_000:
                self._commands.clear()
            self._commands[(view.name, view.features)] = found
        return found

    def _key(self, key: bytes) -> bytes:
        return b"$%d\r\n" % (len(key) + len(self._suffix)) + key + self._suffix + b"\r\n"

    def read(self, work: Sequence[tuple[ViewRead, Sequence[bytes]]]) -> list[list[Row]]:
        """One row per (view, serialized entity key), in order: every ``HMGET`` in one pipelined round trip."""
        parts: list[bytes] = []
        for view, keys in work:
            head, fields = self._hmget(view)
            for key in keys:
                parts += (head, self._key(key), fields)
        replies = self._roundtrip(b"".join(parts), sum(len(k) for _, k in work)) if parts else []
        out, i = [], 0
        for _, keys in work:
            rows: list[Row] = []
            for reply in replies[i:i + len(keys)]:
                ts_raw, values = reply[-1], reply[:-1]
                found = ts_raw is not None or any(v is not None for v in values)
                rows.append((event_time(ts_raw) if found else None, values))
            out.append(rows)
            i += len(keys)
        return out

    def delete(self, view: ViewRead, keys: Sequence[bytes]) -> int:
        """``HDEL`` the view's fields of each key (Redis drops a hash left empty)."""
        if not keys:
            return 0
        fields = _fields(view.name, view.features)
        args = b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
        head = b"*%d\r\n$4\r\nHDEL\r\n" % (len(fields) + 2)
        replies = self._roundtrip(b"".join(head + self._key(k) + args for k in keys), len(keys))
        return sum(1 for r in replies if r)

    def health(self) -> None:
        """Raise :class:`OnlineStoreError` unless Redis answers."""
        self._roundtrip(b"*1\r\n$4\r\nPING\r\n", 1)


@dataclass(frozen=True)
class WriterPlan:
    """What a :class:`RedisWriter` needs, as plain values: made where Feast is loaded (the driver),
    used where it need not be (Spark's executors: importing Feast costs a Python worker seconds)."""

    ts_key: bytes
    fields: dict[str, bytes]
    suffix: bytes
    ttl: int | None
    address: str
    """The connection string, for messages."""
    connect: dict[str, Any] | None
    """``redis.Redis`` keyword arguments for a single server (Feast builds the same client), else None."""
    online_config: Any = None
    """Feast's online store configuration when ``connect`` is None (a cluster or sentinel: Feast's client)."""


def writer_plan(config: Any, view: Any) -> WriterPlan:
    """The :class:`WriterPlan` of a view in a Feast repository's Redis online store."""
    # heavy: feast is imported only when materialization writes
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisType, _versioned_fv_name

    online = config.online_store
    name = _versioned_fv_name(view, config)
    connect: dict[str, Any] | None = None
    if online.redis_type == RedisType.redis:
        nodes, params = RedisOnlineStore._parse_connection_string(online.connection_string)
        connect = {**params, "host": nodes[0]["host"], "port": nodes[0]["port"]}
    return WriterPlan(f"_ts:{name}".encode(), {f.name: field_hash(name, f.name) for f in view.features},
                      config.project.encode("utf-8"), online.key_ttl_seconds, online.connection_string, connect,
                      None if connect is not None else online)


class RedisWriter:
    """``HSET`` per entity into Feast's Redis layout, skipping entities whose online value is newer."""

    def __init__(self, config: Any, view: Any, plan: WriterPlan | None = None) -> None:
        plan = plan or writer_plan(config, view)
        try:
            if plan.connect is not None:
                import redis  # heavy: redis is imported only when materialization writes

                self.client = redis.Redis(**plan.connect)
            else:
                # heavy: feast's client for a Redis cluster or sentinel
                from feast.infra.online_stores.redis import RedisOnlineStore

                self.client = RedisOnlineStore()._get_client(plan.online_config)
            self.client.ping()
        except Exception as exc:
            raise FeatureError(f"cannot reach the Redis online store at {plan.address}: "
                               f"{exc}. Check [feast] redis_url and that Redis is up.") from exc
        self.ts_key = plan.ts_key
        self.fields = plan.fields
        self.suffix = plan.suffix
        self.ttl = plan.ttl

    def _pipeline(self, commands: list[tuple[bytes, ...]]) -> list[Any]:
        """Send commands in one go and read every reply (hiredis packs and parses, no per-command Python)."""
        # heavy: hiredis (a redis extra) is imported only when materialization writes
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
        rkeys = [k + self.suffix for k in keys]
        previous = self._pipeline([(b"HGET", k, self.ts_key) for k in rkeys])
        latest: dict[bytes, int] = {}
        for k, prev in zip(rkeys, previous, strict=True):
            if prev:
                stamp = Timestamp.FromString(prev)
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
