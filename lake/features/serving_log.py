"""The serving log: every online request and the values it returned, in a lake table.

Rows go to ``logs.serving_<project>``, one per entity row served: ``request_id``,
``request_time`` (UTC), the entity key columns as the request named them, one column
per served feature named as it was served (``feature``, or ``view__feature`` with full
feature names) and ``feature_refs``. Monitoring compares these columns by name with
the training frames. Requests only append to a buffer in memory; a background thread
writes it every ``flush_seconds`` or ``flush_rows`` rows, and on close. A failed write
never reaches the request path: it is logged, retried with the next flush, and after
``attempts`` tries its rows are dropped and counted.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lake.naming import serving_log_table

if TYPE_CHECKING:
    from lake.features.online import OnlineResult
    from lake.lakehouse import Lake

log = logging.getLogger(__name__)

_ARROW = {2: pa.string(), 3: pa.int32(), 4: pa.int64(), 5: pa.float64(), 6: pa.float32(), 7: pa.bool_(),
          1: pa.binary(), 8: pa.timestamp("us", tz="UTC")}
"""Feast ValueType number -> the column type of a served feature."""


def log_table_name(project: str) -> str:
    """``logs.serving_<project>`` (characters a table name cannot hold become ``_``)."""
    return serving_log_table(project)


@dataclass
class _Entry:
    request_id: str
    request_time: dt.datetime
    result: OnlineResult
    attempts: int = 0


@dataclass(frozen=True)
class LogStats:
    """Counters of a serving log (``rows_dropped`` counts rows that will never be written)."""

    rows_logged: int
    rows_written: int
    rows_dropped: int
    rows_pending: int
    flush_failures: int
    last_error: str | None


class ServingLog:
    """Buffers served rows in memory and writes them to the lake from a background thread.

    Example:
        >>> log = ServingLog(lake, "stocks")
        >>> log.record(request_id, datetime.now(UTC), result)   # on the request path: an append
        >>> log.close()                                         # flushes what is left
    """

    def __init__(self, lake: Lake, project: str, *, flush_seconds: float = 5.0, flush_rows: int = 10_000,
                 max_pending_rows: int = 1_000_000, attempts: int = 3) -> None:
        """Args:
            lake: where the log table lives.
            project: the Feast project (names the table ``logs.serving_<project>``).
            flush_seconds: the longest a row waits in memory.
            flush_rows: a flush starts early once this many rows wait.
            max_pending_rows: beyond this many waiting rows, new rows are dropped (and counted).
            attempts: writes tried for a batch before its rows are dropped.
        """
        self.lake = lake
        self.table_name = log_table_name(project)
        self.flush_seconds, self.flush_rows = flush_seconds, flush_rows
        self.max_pending_rows, self.attempts = max_pending_rows, attempts
        self._pending: list[_Entry] = []
        self._pending_rows = 0
        self._logged = self._written = self._dropped = self._failures = 0
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="lake-serving-log", daemon=True)
        self._thread.start()

    def record(self, request_id: str, request_time: dt.datetime, result: OnlineResult) -> None:
        """Queue the rows of one served request (never blocks on I/O, never raises for a full buffer)."""
        rows = result.num_rows
        with self._lock:
            if self._closed or self._pending_rows + rows > self.max_pending_rows:
                self._dropped += rows
                return
            self._pending.append(_Entry(request_id, request_time, result))
            self._pending_rows += rows
            self._logged += rows
            full = self._pending_rows >= self.flush_rows
        if full:
            self._wake.set()

    @property
    def stats(self) -> LogStats:
        """The counters now."""
        with self._lock:
            return LogStats(self._logged, self._written, self._dropped, self._pending_rows, self._failures,
                            self._last_error)

    def flush(self) -> int:
        """Write every waiting row now; returns how many were written (failures are kept for a retry)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending, self._pending_rows = self._pending, [], 0
            if not batch:
                return 0
            written = 0
            for group in _groups(batch):
                rows = sum(e.result.num_rows for e in group)
                try:
                    self.lake.table(self.table_name).write(_to_arrow(group), schema_mode="merge")
                    written += rows
                except Exception as exc:  # the log must never break serving
                    self._failed(group, rows, exc)
            with self._lock:
                self._written += written
            return written

    def _failed(self, group: list[_Entry], rows: int, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        retry = [e for e in group if e.attempts + 1 < self.attempts]
        for entry in retry:
            entry.attempts += 1
        lost = rows - sum(e.result.num_rows for e in retry)
        with self._lock:
            self._failures += 1
            self._last_error = message
            self._dropped += lost
            self._pending[:0] = retry
            self._pending_rows += rows - lost
        log.warning("serving log: writing %d rows to %s failed (%s); %d rows dropped, %d kept for a retry",
                    rows, self.table_name, message, lost, rows - lost)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception:  # pragma: no cover - flush handles its own failures
            log.exception("serving log: flush failed")

    def close(self, timeout: float = 60.0) -> LogStats:
        """Stop the thread after a last flush; rows still unwritten are counted as dropped."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        self._flush_quietly()
        with self._lock:
            self._dropped += self._pending_rows
            self._pending, self._pending_rows = [], 0
        return self.stats


def _groups(batch: list[_Entry]) -> list[list[_Entry]]:
    """Entries whose results have the same columns and types, in arrival order."""
    groups: dict[tuple[Any, ...], list[_Entry]] = {}
    for entry in batch:
        res = entry.result
        groups.setdefault((tuple(res.names), tuple(str(t) for t in res.types)), []).append(entry)
    return list(groups.values())


def _column(values: list[Any], kind: pa.DataType | None) -> pa.Array:
    if kind is not None:
        try:
            return pa.array(values, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    array = pa.array(values)
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array


def _to_arrow(group: list[_Entry]) -> pa.Table:
    first = group[0].result
    ids: list[str] = []
    times: list[dt.datetime] = []
    refs: list[str] = []
    columns: list[list[Any]] = [[] for _ in first.names]
    for entry in group:
        res, n = entry.result, entry.result.num_rows
        ids += [entry.request_id] * n
        times += [entry.request_time] * n
        refs += [",".join(res.refs)] * n
        for i, values in enumerate(res.to_dict().values()):
            columns[i] += values
    data = {"request_id": pa.array(ids, pa.string()), "request_time": pa.array(times, pa.timestamp("us", tz="UTC"))}
    for i, name in enumerate(first.names):
        vt = first.types[i]
        kind = _ARROW.get(getattr(vt, "value", vt)) if vt is not None else None
        data.setdefault(name, _column(columns[i], kind))
    data["feature_refs"] = pa.array(refs, pa.string())
    return pa.table(data)
