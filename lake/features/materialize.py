"""Materialization: the latest feature values per entity, from gold Delta tables into the online store.

Full mode reads the source table at its current version; incremental mode reads only
the data files added since the version the last materialization read (the Delta log
says which), so its cost follows the size of the change, not of the table. In both,
DuckDB reduces the rows to the latest per entity key (event time, then created time),
and the result streams in record batches (bounded memory) into the online store in
Feast's own layout, so Feast's SDK and ``feast serve`` read what we write. A value
already online that is newer than the incoming one is kept (late data never regresses
the store). Each view's materialization is a catalog run (``features.materialize.<view>``)
whose input is the source table at the version read.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow as pa

from lake import metrics, protocol
from lake.duck import ident, shared_cursor
from lake.errors import FeatureError
from lake.features import spark_materialize
from lake.features.apply import source_table
from lake.features.encoding import timestamp_proto
from lake.features.online_store import OnlineStore
from lake.features.repo import feature_store, online_store
from lake.lakehouse import Lake
from lake.naming import feature_view_dataset
from lake.spark_files import read_file
from lake.spark_io import table_files
from lake.table import Table

Progress = Callable[[str, int, int | None], None]
"""``progress(view, rows_done, rows_total_or_None)``."""


@dataclass(frozen=True)
class MaterializeResult:
    """What one feature view's materialization did."""

    view: str
    table: str
    version: int
    previous_version: int | None
    mode: str
    """``full``, ``incremental`` or ``unchanged``."""
    files_read: int
    entities: int
    """Entity rows offered to the online store (latest per key in what was read)."""
    written: int
    """Entity rows actually written (older than what was online: skipped)."""
    seconds: float
    run_id: str | None = None
    newest_event: dt.datetime | None = None
    """The newest event time online for this view after the run (its freshness)."""


def _job(project: str, view: str) -> str:
    return f"features.materialize.{project}.{view}"


def last_version(lake: Lake, project: str, view: str) -> int | None:
    """The source version the last completed materialization of ``view`` into this online store read."""
    store_id = online_store(lake).identity
    for run in lake.catalog.runs(job=_job(project, view), status="completed", limit=50):
        stats = run.get("stats") or {}
        if stats.get("online_store") == store_id and stats.get("source_version") is not None:
            return int(stats["source_version"])
    return None


def materialize(
    lake: Lake,
    views: list[str] | None = None,
    *,
    incremental: bool = False,
    end: dt.datetime | None = None,
    batch_rows: int = 50_000,
    progress: Progress | None = None,
    store: Any = None,
    engine: str | None = None,
    spark: Any = None,
) -> list[MaterializeResult]:
    """Load the latest feature values into the online store.

    Args:
        lake: the lake holding the source tables.
        views: feature view names (default: every online view).
        incremental: read only the files added since the last materialization.
        end: ignore rows with an event time after this (default: no limit).
        batch_rows: entity rows per write batch (memory stays bounded by it).
        progress: called after each batch.
        store: a Feast ``FeatureStore`` (default: the lake's).
        engine: ``duckdb`` (this process), ``spark`` (the executors reduce and write to Redis in
            parallel; Redis online store only) or ``auto`` (Spark for a Redis store once the rows to
            read reach ``[features] spark_min_rows``). Default ``[features] engine``.
        spark: the Spark session (default: the lake's).

    Returns:
        One result per view.

    Raises:
        FeatureError: an unknown view, or a view whose source is not a lake table.
    """
    store = store or feature_store(lake)
    known = {v.name: v for v in store.list_feature_views()}
    names = views or [n for n, v in known.items() if v.online]
    missing = [n for n in names if n not in known]
    if missing:
        raise FeatureError(f"no feature view {', '.join(missing)}; known: {', '.join(sorted(known)) or 'none'}")
    wanted = engine or lake.settings.features.engine
    if wanted not in ("auto", "duckdb", "spark"):
        raise FeatureError(f"engine {wanted!r}: use one of auto, duckdb, spark")
    if wanted == "spark" and online_store(lake).kind != "redis":
        raise FeatureError("materialization on Spark writes to Redis from the executors; this lake's online store "
                           f"is {online_store(lake).kind} (set [feast] online_store = \"redis\", or use engine duckdb)")
    results = []
    for name in names:
        view = known[name]
        table = source_table(lake, view)
        if table is None:
            raise FeatureError(f"feature view {name} does not read a lake table; re-run `lake features apply`")
        results.append(_one(lake, store, view, table, incremental, end, batch_rows, progress, wanted, spark))
    return results


def _one(lake: Lake, store: Any, view: Any, table: Table, incremental: bool, end: dt.datetime | None,
         batch_rows: int, progress: Progress | None, engine: str = "duckdb", spark: Any = None) -> MaterializeResult:
    started = time.perf_counter()
    project = store.project
    backend = online_store(lake)
    version = table.version()
    previous = last_version(lake, project, view.name) if incremental else None
    params = {"view": view.name, "incremental": incremental, "end": end.isoformat() if end else None}
    with lake.run(_job(project, view.name), parameters=params) as run:
        lake.read(table, version)
        run.output(feature_view_dataset(view.name), None, kind="feature_view")
        newest: int | None = None
        mode_engine = "duckdb" if engine == "auto" else engine
        if previous is not None and previous == version:
            mode, files, entities, written = "unchanged", 0, 0, 0
        else:
            mode = "incremental" if previous is not None else "full"
            # full: DuckDB's delta_scan; incremental: the lake's file-list reader over the files added
            protocol.check(table.delta(version), protocol.FILES if previous is not None else protocol.DUCKDB,
                           table.name)
            files_uris = _new_files(table, previous, version) if previous is not None else None
            files = len(files_uris) if files_uris is not None else len(table.delta(version).file_uris())
            if engine == "auto":
                engine = "spark" if backend.kind == "redis" and _rows(table, version, files_uris) >= \
                    lake.settings.features.spark_min_rows else "duckdb"
            if engine == "spark":
                session = spark if spark is not None else lake.spark(app_name="lake-features")
                infos = _changed(table, version, files_uris) if files_uris is not None else None
                latest = spark_materialize.latest_rows(session, view, table, version, infos, end)
                entities, written, newest = spark_materialize.write_redis(latest, store.config, view)
            else:
                entities, written, newest = _load(lake, backend, store, view, table, version, files_uris, end,
                                                  batch_rows, progress)
            mode_engine = engine
        if previous is not None:  # an incremental run: the view's newest event may be older online
            newest = max(filter(None, [newest, _last_newest(lake, project, view.name)]), default=None)
        run.stats.update({"newest_event_us": newest, "source_version": version, "previous_version": previous, "mode": mode,
                          "online_store": backend.identity, "files_read": files, "entities": entities,
                          "written": written, "engine": mode_engine})
    if mode != "unchanged":
        store.registry.apply_materialization(view, project, dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
                                             end or dt.datetime.now(dt.UTC))
    result = MaterializeResult(view.name, table.name, version, previous, mode, files, entities, written,
                               time.perf_counter() - started, run.run_id,
                               dt.datetime.fromtimestamp(newest / 1e6, dt.UTC) if newest is not None else None)
    metrics.MATERIALIZED_ROWS.labels(view.name).inc(written)
    metrics.MATERIALIZE_SECONDS.labels(view.name).observe(result.seconds)
    if result.newest_event is not None:
        metrics.FEATURE_NEWEST_EVENT.labels(view.name).set(result.newest_event.timestamp())
        metrics.FEATURE_FRESHNESS.labels(view.name).set(time.time() - result.newest_event.timestamp())
    metrics.publish(lake.settings.metrics.pushgateway, lake.settings.metrics.textfile)
    return result


def _last_newest(lake: Lake, project: str, view: str) -> int | None:
    """The newest event time the last completed materialization of ``view`` put online."""
    for run in lake.catalog.runs(job=_job(project, view), status="completed", limit=1):
        value = (run.get("stats") or {}).get("newest_event_us")
        return int(value) if value is not None else None
    return None


def _new_files(table: Table, previous: int, version: int) -> list[str]:
    """Data files in ``version`` that were not in ``previous``: what the commits since then added."""
    if previous > version:
        raise FeatureError(f"{table.name} is at version {version}, older than the {previous} materialized last; "
                           "run a full materialization (without --incremental)")
    before = set(table.delta(previous).file_uris())
    return [f for f in table.delta(version).file_uris() if f not in before]


def _rows(table: Table, version: int, files: list[str] | None) -> int:
    """Rows to read: the version's, or the changed files' (from the Delta log's statistics)."""
    infos = _changed(table, version, files) if files is not None else table_files(table.delta(version))
    return int(sum(f.get("rows") or 0 for f in infos))


def _changed(table: Table, version: int, files: list[str]) -> list[dict[str, Any]]:
    """The log's description of the files added since the last materialization."""
    delta = table.delta(version)
    wanted = {_relative(f, table.uri) for f in files}
    infos = [f for f in table_files(delta, uri=table.uri) if f["path"] in wanted]
    if len(infos) != len(wanted):
        raise FeatureError(f"{table.name}: {len(wanted) - len(infos)} changed files are not in the "
                           f"table at version {version}; run a full materialization")
    return infos


def _relative(path: str, root: str) -> str:
    """A data file's path relative to the table root, whatever form it is given in."""
    path, root = unquote(path.split("://", 1)[-1]), unquote(root.split("://", 1)[-1])
    return path[len(root):].lstrip("/") if path.startswith(root) else path.lstrip("/")


def _latest_query(view: Any, source: str, end: dt.datetime | None) -> str:
    src = view.batch_source
    mapping = {v: k for k, v in (src.field_mapping or {}).items()}

    def col(name: str) -> str:
        return ident(mapping.get(name, name))

    keys = [k.name for k in view.entity_columns]
    fields = [f"__t := CAST({col(src.timestamp_field)} AS TIMESTAMPTZ)"]
    if src.created_timestamp_column:
        fields.append(f"__c := CAST({col(src.created_timestamp_column)} AS TIMESTAMPTZ)")
    fields += [f"{ident('f_' + f.name)} := {col(f.name)}" for f in view.features]
    where = f"WHERE {col(src.timestamp_field)} <= TIMESTAMPTZ '{end.isoformat()}'" if end else ""
    key_sel = ", ".join(f"{col(k)} AS {ident(k)}" for k in keys)
    nonnull = " AND ".join(f"{col(k)} IS NOT NULL" for k in keys)
    where = f"{where} AND {nonnull}" if where else f"WHERE {nonnull}"
    return f"""
        SELECT {', '.join(ident(k) for k in keys)}, epoch_us(__v.__t) AS __ts,
               {', '.join(f'__v.{ident("f_" + f.name)} AS {ident(f.name)}' for f in view.features)}
        FROM (SELECT {key_sel}, max(struct_pack({', '.join(fields)})) AS __v
              FROM {source} {where} GROUP BY ALL)
    """


def _batches(lake: Lake, view: Any, table: Table, version: int, files: list[str] | None,
             end: dt.datetime | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    con = shared_cursor(lake.storage)
    try:
        con.execute("SET TimeZone = 'UTC'")
        if files is None:
            source = f"delta_scan('{table.uri.replace(chr(39), chr(39) * 2)}', version => {int(version)})"
        else:
            if not files:
                return
            delta = table.delta(version)
            mapping = protocol.table_protocol(delta).column_mapping
            infos = _changed(table, version, files)
            schema = pa.schema(delta.schema().to_arrow())
            fs, root = table.storage.arrow_fs(), table.storage.fs_path(table.uri)
            # column mapping, deletion vectors and INT96 timestamps honored file by file
            changed = pa.RecordBatchReader.from_batches(
                schema, (b for f in infos for b in read_file(fs, root, f, schema, None, mapping)))
            con.register("__lake_changed", changed)
            source = "__lake_changed"
        reader = con.execute(_latest_query(view, source, end)).to_arrow_reader(batch_rows)
        yield from reader
    finally:
        con.close()


def _load(lake: Lake, backend: OnlineStore, store: Any, view: Any, table: Table, version: int,
          files: list[str] | None, end: dt.datetime | None, batch_rows: int,
          progress: Progress | None) -> tuple[int, int, int | None]:
    writer = backend.writer(store.config, view)
    keys = {k.name: k.dtype.to_value_type() for k in view.entity_columns}
    types = {f.name: f.dtype.to_value_type() for f in view.features}
    try:
        return spark_materialize.write_batches(
            writer, _batches(lake, view, table, version, files, end, batch_rows), keys, types,
            None if progress is None else lambda done: progress(view.name, done, None))
    finally:
        writer.close()


__all__ = ["MaterializeResult", "last_version", "materialize", "timestamp_proto"]
