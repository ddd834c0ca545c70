"""A sorted, per-version index of a feature view's source for point-in-time joins.

A point-in-time join asks, for each entity row, for the source row with the same keys
and the latest event time at or before the entity's. Answered from scratch, that means
sorting the whole source table by (keys, time) on every retrieval (DuckDB's ASOF join
does exactly that). A Delta version never changes, so the sort is done once per
(table version, view definition) and kept:

- the source's rows reduced to one per (keys, event time): the latest created
  timestamp wins, the row's own values break a full tie (so the answer never depends
  on file order), rows with a null key or time dropped;
- sorted by (keys, time), stored as a composite search key per row (key rank and
  time), plus the view's feature columns in that order (Arrow IPC, memory-mapped).

A lookup is then a rank lookup of the entity keys (a hash probe of the distinct source
keys), a sort of the entity rows and one binary search per row. The index lives in the
lake's cache folder (``<root>/_cache`` for a local lake, ``./lakehouse/_cache`` for an
S3 lake, or ``cache_dir``); it is rebuilt whenever it is missing, and it is named by the
table's identity, version and the view's columns, so a stale index cannot be used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake import protocol
from lake.duck import ident, literal, shared_cursor
from lake.errors import FeatureError
from lake.lakehouse import Lake
from lake.table import Table

FORMAT = 1
INT_LIMIT = 2**62
"""Composite int64 search keys are used while (keys x time span) stays below this."""
KEEP_VERSIONS = 3
"""Indexes kept per (table, view definition): the most recently used."""
_MEMO: OrderedDict[str, ViewIndex] = OrderedDict()
_MEMO_SIZE = 8
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Source:
    """What an index is built from: one Delta version read through one view's columns."""

    table: Table
    version: int
    location: str
    keys: dict[str, str]
    """View join key -> source column."""
    timestamp: str
    created: str | None
    features: dict[str, str]
    """Feature name -> source column (every feature of the view)."""

    def signature(self, table_id: str) -> str:
        spec = {"format": FORMAT, "location": self.location, "id": table_id, "version": self.version,
                "keys": self.keys, "ts": self.timestamp, "created": self.created, "features": self.features}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]

    def family(self, table_id: str) -> str:
        """The signature without the version: the indexes of one view over one table."""
        spec = {"location": self.location, "id": table_id, "keys": self.keys, "ts": self.timestamp,
                "created": self.created, "features": self.features}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ViewIndex:
    ukeys: pa.Table
    """The distinct keys, sorted; a key's rank is its row number."""
    search: np.ndarray
    """Per source row, sorted, int64: ``rank * step + (time - base + 1)``; or, when keys x time span
    would overflow, ``rank * step + (rank of the time among the distinct times) + 1``."""
    step: int
    base: int
    values: pa.Table
    """The feature columns, one row per search entry."""
    times: np.ndarray | None = None
    """The distinct event times, sorted, when the search uses time ranks."""

    def composite(self, rank: np.ndarray, time: np.ndarray) -> np.ndarray:
        if self.times is not None:
            return rank * self.step + np.searchsorted(self.times, time, side="right")
        offset = np.clip(time - self.base + 1, 0, self.step - 1)
        return rank * self.step + offset

    def split(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(key rank, event time) of search entries."""
        if self.times is not None:
            return entries // self.step, self.times[entries % self.step - 1]
        return entries // self.step, entries % self.step + self.base - 1

    def lookup(self, keys: pa.Table, time: np.ndarray, ttl_us: int | None,
               hint: np.ndarray | None = None) -> Match:
        """Match each entity row to the source row at or before its time, within the TTL.

        ``hint``: the entity rows in (keys, time) order (:func:`entity_order`), shared by the
        views that join on the same columns; checked, and ignored if it does not sort the probes.
        """
        rank = _ranks(self.ukeys, keys, hint)
        valid = rank >= 0
        rows = hint[valid[hint]] if hint is not None else np.flatnonzero(valid)
        query = self.composite(rank[rows], time[rows])
        if hint is None or not bool(np.all(query[1:] >= query[:-1])):
            order = np.argsort(query)  # sorted probes walk the index in order: ~20x faster than random ones
            rows, query = rows[order], query[order]
        if not len(self.search):
            return Match(np.zeros(0, dtype=np.int64), np.full(len(time), -1, dtype=np.int64))
        pos = np.searchsorted(self.search, query, side="right") - 1
        found_rank, found_time = self.split(self.search[np.maximum(pos, 0)])
        hit = (pos >= 0) & (found_rank == rank[rows])
        if ttl_us is not None:  # a difference, so a huge TTL cannot overflow
            hit &= (time[rows] - found_time) <= ttl_us
        positions = pos[hit]
        inverse = np.full(len(time), -1, dtype=np.int64)
        inverse[rows[hit]] = np.arange(len(positions))
        return Match(positions, inverse)

    def gather(self, feature: str, match: Match) -> pa.ChunkedArray:
        """The feature's values for every entity row (null where nothing matched)."""
        # Read the source rows in index order (near-sequential), then place them per entity row.
        found = self.values.column(feature).take(match.positions)
        return found.take(pa.array(match.inverse, mask=match.inverse < 0))


@dataclass(frozen=True)
class Match:
    positions: np.ndarray
    """Matched index rows, ascending."""
    inverse: np.ndarray
    """Per entity row: its entry in ``positions``, or ``-1``."""


def entity_order(keys: pa.Table, time: np.ndarray) -> np.ndarray:
    """Entity rows sorted by (keys, time), in the order the indexes sort their keys."""
    return _sort(_key_codes(keys), time)


def _ranks(ukeys: pa.Table, keys: pa.Table, hint: np.ndarray | None = None) -> np.ndarray:
    """The rank of each entity key among the index's keys, ``-1`` where absent."""
    if ukeys.num_columns == 1 and _plain_int(ukeys.column(0)) and _plain_int(keys.column(0)) \
            and not keys.column(0).null_count:
        # Integer keys are indexed in numeric order: a binary search, in key order when a hint gives it.
        have = np.asarray(ukeys.column(0).to_numpy(), dtype=np.int64)
        want = np.asarray(keys.column(0).to_numpy(), dtype=np.int64)
        probe = want[hint] if hint is not None else want
        at = np.minimum(np.searchsorted(have, probe), max(len(have) - 1, 0))
        found = np.where((have[at] == probe) if len(have) else np.zeros(len(probe), dtype=bool), at, -1)
        if hint is None:
            return found
        rank = np.empty(len(want), dtype=np.int64)
        rank[hint] = found
        return rank
    if ukeys.num_columns == 1:
        want = ukeys.column(0)
        have = keys.column(0)
        if have.type != want.type:
            try:
                have = pc.cast(have, want.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise FeatureError(f"entity column for key {ukeys.column_names[0]!r} has type {keys.column(0).type}, "
                                   f"the feature source has {want.type}; convert it ({exc})") from exc
        found = pc.index_in(have, value_set=want.combine_chunks() if isinstance(want, pa.ChunkedArray) else want)
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    con = shared_cursor()
    try:
        con.register("__lake_ukeys", ukeys.append_column("__rank", pa.array(np.arange(ukeys.num_rows))))
        con.register("__lake_keys", keys.append_column("__pos", pa.array(np.arange(keys.num_rows))))
        on = " AND ".join(f"k.{ident(c)} = u.{ident(c)}" for c in ukeys.column_names)
        result = con.execute(f"SELECT coalesce(u.__rank, -1) AS r FROM __lake_keys k LEFT JOIN __lake_ukeys u ON {on} "
                             "ORDER BY k.__pos").fetchnumpy()
        return np.asarray(result["r"], dtype=np.int64)
    except Exception as exc:
        raise FeatureError(f"entity keys do not match the feature source's keys: {str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


# ------------------------------------------------------------------ building and caching

def cache_root(lake: Lake) -> Path:
    return Path(lake.settings.cache_path) / "feature_index"


def load(lake: Lake, source: Source) -> ViewIndex:
    """The index for ``source``: from memory, from the cache folder, or built now."""
    delta = source.table.delta(source.version)
    protocol.check(delta, protocol.DUCKDB, source.table.name)  # the index reads through delta_scan
    table_id = str(delta.metadata().id)
    sig = source.signature(table_id)
    with _LOCK:
        hit = _MEMO.get(sig)
        if hit is not None:
            _MEMO.move_to_end(sig)
            return hit
    folder = cache_root(lake) / source.family(table_id) / f"v{source.version}-{sig}"
    index = _read(folder) if (folder / "meta.json").exists() else None
    if index is None:
        _build(lake, source, folder)
        index = _read(folder)
        _prune(folder.parent)
        if index is None:
            raise FeatureError(f"the point-in-time index of {source.table.name} v{source.version} in {folder} cannot "
                               "be read; delete the folder and retry")
    else:
        with contextlib.suppress(OSError):
            os.utime(folder)  # pruning keeps the most recently used
    with _LOCK:
        _MEMO[sig] = index
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return index


def forget() -> None:
    """Drop the indexes held in memory (the cache folder keeps them)."""
    with _LOCK:
        _MEMO.clear()


def _read(folder: Path) -> ViewIndex | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        search = np.load(folder / "search.npy", mmap_mode="r").view(np.ndarray)
        times = np.load(folder / "times.npy") if (folder / "times.npy").exists() else None
        values = pa.ipc.open_file(pa.memory_map(str(folder / "values.arrow"))).read_all()
        ukeys = pa.ipc.open_file(pa.memory_map(str(folder / "keys.arrow"))).read_all()
    except (OSError, ValueError, pa.ArrowInvalid):
        return None  # half-removed or foreign: rebuilt
    return ViewIndex(ukeys, search, int(meta["step"]), int(meta["base"]), values, times)


def arrange(data: pa.Table, keys: list[str], features: list[str], created: bool) -> ViewIndex:
    """The index of source rows already read, in memory: columns ``k_<key>``, ``__t`` (event time in
    microseconds), ``__c`` (created time, when ``created``) and ``f_<feature>``.

    The one definition of the point-in-time order and tie-break: the cached indexes are built by it,
    and so is each partition of the Spark engine (:mod:`lake.features.spark_retrieval`).
    """
    key_columns = [f"k_{k}" for k in keys]
    time = np.asarray(data.column("__t").to_numpy(), dtype=np.int64)
    code = _key_codes(data.select(key_columns))
    order = _sort(code, time)
    code, time = code[order], time[order]
    same = (code[1:] == code[:-1]) & (time[1:] == time[:-1])
    if same.any():
        keep = _resolve_ties(data, order, same, created, features)
        order, code, time = order[keep], code[keep], time[keep]
    first = np.ones(len(order), dtype=bool)
    first[1:] = code[1:] != code[:-1]
    rank = np.cumsum(first) - 1
    n_keys = int(first.sum())
    base = int(time.min()) if len(time) else 0
    step = (int(time.max()) - base + 2) if len(time) else 2
    distinct = None
    if n_keys * step < INT_LIMIT:
        search = rank * step + (time - base + 1)
    else:  # times far apart (a far-future sentinel, say): search on time ranks, exact for any range
        distinct = np.unique(time)
        step = len(distinct) + 1
        search = rank * step + np.searchsorted(distinct, time) + 1
    values = data.select([f"f_{f}" for f in features]).take(order).rename_columns(list(features))
    ukeys = data.select(key_columns).take(order[first]).rename_columns(list(keys))
    return ViewIndex(ukeys, np.asarray(search, dtype=np.int64), step, base, values, distinct)


def _build(lake: Lake, source: Source, folder: Path) -> None:
    index = arrange(_read_source(lake, source), list(source.keys), list(source.features), source.created is not None)
    search, distinct, step, base, values, ukeys = (index.search, index.times, index.step, index.base, index.values,
                                                   index.ukeys)
    tmp = folder.parent / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "search.npy", search)
        if distinct is not None:
            np.save(tmp / "times.npy", distinct)
        _write_ipc(tmp / "values.arrow", values)
        _write_ipc(tmp / "keys.arrow", ukeys)
        (tmp / "meta.json").write_text(json.dumps({"step": step, "base": base, "rows": len(search),
                                                  "keys": ukeys.num_rows,
                                                  "table": source.table.name, "version": source.version}))
        try:
            os.rename(tmp, folder)
        except OSError:
            if _read(folder) is None:  # a broken or half-removed folder is in the way: replace it
                trash = folder.parent / f".trash-{uuid.uuid4().hex}"
                with contextlib.suppress(OSError):
                    os.rename(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
                os.rename(tmp, folder)
            else:  # another process built it first: theirs is as good
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_source(lake: Lake, source: Source) -> pa.Table:
    """Keys (``k_*``), event time in microseconds (``__t``), created time (``__c``) and features (``f_*``)."""
    scan = f"delta_scan({literal(source.location)}, version => {int(source.version)})"
    ts = f"epoch_us(CAST({ident(source.timestamp)} AS TIMESTAMPTZ))"
    cols = ([f"{ident(col)} AS {ident('k_' + key)}" for key, col in source.keys.items()] + [f"{ts} AS __t"]
            + ([f"CAST({ident(source.created)} AS TIMESTAMPTZ) AS __c"] if source.created else [])
            + [f"{ident(col)} AS {ident('f_' + f)}" for f, col in source.features.items()])
    not_null = " AND ".join([f"{ident(col)} IS NOT NULL" for col in source.keys.values()] + [f"{ts} IS NOT NULL"])
    con = shared_cursor(lake.storage)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(f"SELECT {', '.join(cols)} FROM {scan} WHERE {not_null}").to_arrow_table()
    except Exception as exc:
        raise FeatureError(f"reading {source.table.name} v{source.version} for the point-in-time index failed: "
                           f"{str(exc).splitlines()[0]}") from exc
    finally:
        con.close()


def _plain_int(column: pa.ChunkedArray) -> bool:
    return pa.types.is_integer(column.type) and column.type != pa.uint64()


def _key_codes(keys: pa.Table) -> np.ndarray:
    """An int64 per row that orders the rows by their keys (equal keys, equal codes)."""
    code: np.ndarray | None = None
    for column in keys.columns:
        if pa.types.is_dictionary(column.type):  # categoricals order by their values
            column = pc.cast(column, column.type.value_type)
        if pa.types.is_string_view(column.type):
            column = pc.cast(column, pa.large_string())
        if _plain_int(column):
            part = np.asarray(pc.fill_null(column, 0).to_numpy(), dtype=np.int64)  # null keys never match
            low, high = (int(part.min()), int(part.max())) if len(part) else (0, 0)
            # A span that would wrap around int64 (hashed ids) gets dense ranks, which keep the order.
            part = _dense(part) if high - low >= INT_LIMIT else part - low
        else:
            part = np.asarray(pc.rank(column, sort_keys="ascending", tiebreaker="dense").to_numpy(), dtype=np.int64)
        if code is None:
            code = part
            continue
        width = int(part.max()) + 1 if len(part) else 1
        if (int(code.max()) + 1 if len(code) else 1) * width >= INT_LIMIT:
            code = _dense(np.column_stack((code, part)))
        else:
            code = code * width + part
    assert code is not None
    return code


def _dense(values: np.ndarray) -> np.ndarray:
    """Order-preserving dense ranks (of rows, for a 2-D array)."""
    inverse = np.unique(values, axis=0 if values.ndim == 2 else None, return_inverse=True)[1]
    return np.asarray(inverse, dtype=np.int64).reshape(-1)


def _sort(code: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Row order by (key code, time); rows with equal keys and time in no particular order."""
    if not len(code):
        return np.arange(0)
    base = int(time.min())
    step = int(time.max()) - base + 1
    if (int(code.max()) + 1) * step >= INT_LIMIT:  # sparse codes: make them dense first
        code = _dense(code)
    if (int(code.max()) + 1) * step < INT_LIMIT:
        return np.argsort(code * step + (time - base))
    return np.lexsort((time, code))


def _resolve_ties(data: pa.Table, order: np.ndarray, same: np.ndarray, created: bool,
                  features: list[str]) -> np.ndarray:
    """Keep one row per (keys, time): the latest created time, then the greatest values (as DuckDB's
    ``max`` of a struct orders them), so the answer never depends on the order of the files."""
    involved = np.zeros(len(order), dtype=bool)
    involved[1:] |= same
    involved[:-1] |= same
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = ~same
    group = np.cumsum(starts) - 1
    where = np.flatnonzero(involved)
    fields = (["__c"] if created else []) + [f"f_{f}" for f in features]
    ties = data.select(fields).take(order[where]).append_column("__p", pa.array(where)).append_column(
        "__g", pa.array(group[where]))
    struct = ", ".join(f"{ident(f)} := {ident(f)}" for f in fields)
    con = shared_cursor()
    try:
        con.register("__lake_ties", ties)
        winners = con.execute(f"SELECT arg_max(__p, struct_pack({struct})) AS p FROM __lake_ties GROUP BY __g"
                              ).fetchnumpy()["p"]
    finally:
        con.close()
    keep = ~involved
    keep[np.asarray(winners, dtype=np.int64)] = True
    return keep


def _write_ipc(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())


def _prune(family: Path) -> None:
    """Keep the newest ``KEEP_VERSIONS`` indexes of a view over a table."""
    used = []
    for folder in family.iterdir():
        with contextlib.suppress(OSError):  # another process may be pruning too
            if folder.is_dir() and folder.name.startswith("v"):
                used.append((folder.stat().st_mtime, folder))
    for _, old in sorted(used, reverse=True)[KEEP_VERSIONS:]:
        shutil.rmtree(old, ignore_errors=True)
