"""File sources: discover new or changed files, parse them on the executors, commit once."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lake.duck import ident, literal
from lake.errors import JobError, SchemaMismatchError, SourceFileError, StorageError
from lake.lakehouse import Lake
from lake.naming import QUARANTINE_SCHEMA, STAGING_DIR, quarantine_name
from lake.pipeline import ledger, parse
from lake.pipeline.context import FilesProgress, SourceRun, commit_files
from lake.pipeline.spec import FileSource, Job
from lake.schema import normalize_schema, widens_to
from lake.storage import Storage, storage_reaching
from lake.table import Table
from lake.transaction import DataFile

_GLOB = set("*?[")


@dataclass(frozen=True)
class SourceFile:
    path: str
    """Path inside the file system (no scheme)."""
    uri: str
    """What DuckDB opens (a local path or ``s3://bucket/key``)."""
    size: int
    mtime: float


def discover(lake: Lake, source: FileSource) -> tuple[Storage, list[SourceFile]]:
    """Every file the source's path or glob names, sorted by path."""
    storage, loc = storage_reaching(source.path, lake.storage, lake.settings)
    fs = storage.arrow_fs()
    parts = loc.split("/")
    fixed = []
    for part in parts:
        if _GLOB & set(part):
            break
        fixed.append(part)
    base = "/".join(fixed)
    pattern = loc[len(base):].lstrip("/") or None
    base_path = storage.fs_path(base)
    try:
        info = fs.get_file_info(base_path)
    except OSError as exc:
        raise StorageError(f"cannot read the source {source.path}: {exc}") from exc
    if info.type == pafs.FileType.File and pattern is None:
        infos = [info]
    elif info.type == pafs.FileType.NotFound:
        raise JobError(f"the source path {source.path} does not exist ({loc}); check the job's FileSource path")
    else:
        infos = [i for i in fs.get_file_info(pafs.FileSelector(base_path, recursive=True))
                 if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_"))]
        if pattern:
            infos = [i for i in infos if _match(i.path[len(base_path):].lstrip("/"), pattern)]
    files = [SourceFile(i.path, storage.location_uri(i.path), int(i.size or 0),
                        i.mtime.timestamp() if i.mtime else 0.0) for i in infos]
    return storage, sorted(files, key=lambda f: f.path)


def _match(rel: str, pattern: str) -> bool:
    if "**" in pattern:
        head, _, tail = pattern.partition("**/")
        return rel.startswith(head.rstrip("*")) and fnmatch.fnmatch(rel.split("/")[-1], tail or "*")
    return fnmatch.fnmatch(rel, pattern) and rel.count("/") == pattern.count("/")


def _task_base(ctx: SourceRun, storage: Storage, job: Job) -> dict[str, Any]:
    """What every parse task needs: the lake's file system, DuckDB's S3 access, the job."""
    lake_storage = ctx.lake.storage
    fs_kind, fs_kwargs = lake_storage.fs_spec()
    return {
        "fs_kind": fs_kind, "fs_kwargs": fs_kwargs,
        "s3": storage.duckdb_s3() or lake_storage.duckdb_s3(), "job": job.name,
        "ingested_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def _duck_types(schema: pa.Schema) -> list[tuple[str, str]]:
    """Arrow schema -> DuckDB types for reading (the table's types decide once it exists)."""
    import duckdb  # heavy: DuckDB loads on first use

    con = duckdb.connect()
    con.register("t", pa.Table.from_batches([], schema=schema))
    rel = con.sql("SELECT * FROM t")
    return [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]


def _arrow_schema(columns: list[tuple[str, str]]) -> pa.Schema:
    import duckdb  # heavy: DuckDB loads on first use

    select = ", ".join(f"CAST(NULL AS {parse.type_sql(t)}) AS {ident(n)}" for n, t in columns) or "1 AS _"
    return normalize_schema(duckdb.sql(f"SELECT {select} LIMIT 0").to_arrow_table().schema)


SYSTEM = pa.schema([("_source_file", pa.string()), ("_batch", pa.int64()),
                    ("_ingested_at", pa.timestamp("us", tz="UTC"))])


@dataclass(frozen=True)
class FilePlan:
    """How one source file is read: its columns in its own order, the table's it lacks."""

    columns: list[tuple[str, str]]
    missing: list[tuple[str, str]]
    header: list[str] | None = None
    header_ok: bool = True
    """False when a CSV file's header line is not readable: its lines are all set aside."""


def _sniffed(job: Job, storage: Storage, files: list[SourceFile], opts: dict[str, Any],
             base: dict[str, Any]) -> list[tuple[str, str]]:
    """Column types inferred from the first file that can be read (empty and garbled files skipped)."""
    source = job.source
    assert isinstance(source, FileSource)
    reasons = []
    for f in files:
        if f.size == 0:
            continue
        try:
            if source.format == "csv":
                if source.csv.header and parse.read_header(storage.arrow_fs(), f.path, opts) is None:
                    raise SourceFileError(f"{f.uri}: the first line is not a readable CSV header")
                return parse.sniff_csv(f.uri, opts, base)
            if source.format == "json":
                con = parse.duck(base)
                rel = con.sql(f"SELECT * FROM read_json({literal(f.uri)}, format='newline_delimited', "
                              "ignore_errors=true, sample_size=20000) LIMIT 0")
                return [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]
            return _duck_types(_parquet_schema(storage, f))
        except (SourceFileError, JobError) as exc:
            reasons.append(str(exc))
        except Exception as exc:  # DuckDB could not make sense of the bytes
            reasons.append(f"{f.uri}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}")
    raise JobError(f"job {job.name}: no file to infer the columns from ("
                   + ("; ".join(reasons[:3]) if reasons else "every file is empty")
                   + "); declare the columns in the job's FileSource(columns=...)", job=job.name)


def plan_columns(job: Job, storage: Storage, files: list[SourceFile], table_schema: pa.Schema | None,
                 base: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, FilePlan]]:
    """The columns to read, and how each (non-empty) file is read.

    Raises:
        SchemaMismatchError: a file adds a column under ``schema_policy="strict"``, or a
            column's type changed; nothing is committed.
    """
    source = job.source
    assert isinstance(source, FileSource)
    opts = source.csv.__dict__ | {"null_values": list(source.csv.null_values)}
    if source.columns:
        declared = [(n, t.upper()) for n, t in source.columns.items()]
    elif table_schema is not None:
        declared = [c for c in _duck_types(table_schema) if c[0] not in SYSTEM.names]
    else:
        declared = _sniffed(job, storage, files, opts, base)
    for _, kind in declared:
        parse.type_sql(kind)  # a declared type is a type, nothing else
    if table_schema is not None:
        known = {f.name: f for f in table_schema}
        changed = [
            f"column {n!r}: the table has {known[n].type}, the job now reads {t}"
            for n, t in declared
            if n in known and not widens_to(_arrow_schema([(n, t)]).field(n).type, known[n].type)
        ]
        if changed:
            raise SchemaMismatchError(f"job {job.name}: a column type changed; nothing was committed:\n  - "
                                      + "\n  - ".join(changed), table=job.target)
    if table_schema is not None and source.format == "parquet":  # typed files: their types must fit
        known = {f.name: f for f in table_schema}
        changed = [f"column {fld.name!r}: the table has {known[fld.name].type}, {f.uri} has {fld.type}"
                   for f in files for fld in normalize_schema(_parquet_schema(storage, f))
                   if fld.name in known and not widens_to(fld.type, known[fld.name].type)]
        if changed:
            raise SchemaMismatchError(f"job {job.name}: a column type changed; nothing was committed:\n  - "
                                      + "\n  - ".join(changed), table=job.target)
    types = dict(declared)
    headers: dict[str, list[str] | None] = {}
    added: list[str] = []
    for f in files:
        names = _file_columns(storage, f, source, opts)
        headers[f.path] = names
        for n in names or []:
            if n not in types:
                added.append(f"{n!r} (in {f.uri})")
                types[n] = "VARCHAR"
    if added and (table_schema is not None or source.columns) and job.schema_policy != "add_columns":
        raise SchemaMismatchError(
            f"job {job.name}: the source has new column(s) {', '.join(sorted(set(added)))}; nothing was "
            "committed. Declare them, or set schema_policy='add_columns' to add them as nullable columns.",
            table=job.target)
    plans = {}
    for f in files:
        names = headers[f.path]
        unreadable = source.format == "csv" and source.csv.header and names is None
        if names is None or source.format != "csv":
            # JSON lines (any key may be absent on any line), Parquet (read by name), header-less
            # CSV (by position), or a CSV header that cannot be read (every line set aside).
            plans[f.path] = FilePlan(list(types.items()),
                                     [(n, t) for n, t in types.items() if names is not None and n not in names],
                                     names, not unreadable)
        else:
            plans[f.path] = FilePlan([(n, types[n]) for n in names],
                                     [(n, t) for n, t in types.items() if n not in names], names)
    return list(types.items()), plans


def _file_columns(storage: Storage, f: SourceFile, source: FileSource, opts: dict[str, Any]) -> list[str] | None:
    if source.format == "csv":
        return parse.read_header(storage.arrow_fs(), f.path, opts) if source.csv.header else None
    if source.format == "parquet":
        return list(_parquet_schema(storage, f).names)
    return None  # JSON lines: any key may be absent on any line


def _parquet_schema(storage: Storage, f: Any) -> pa.Schema:
    try:
        return pq.read_schema(storage.arrow_fs().open_input_file(f.path))
    except Exception as exc:
        raise JobError(f"{f.uri} is not a readable Parquet file: {exc}") from None


def pending_files(files: list[SourceFile], state: ledger.JobState) -> list[SourceFile]:
    """The files the job has not ingested yet (new, or changed since)."""
    return [f for f in files if f.path not in state.files
            or (state.files[f.path].size, state.files[f.path].mtime) != (f.size, f.mtime)]


def _parse_files(ctx: SourceRun, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parse the files on the executors (one task each); meanwhile tell ``ctx.progress`` how many are
    done and how many rows they held (Spark accumulators, merged as each task finishes)."""
    sc = ctx.spark.sparkContext
    files_done, rows_read = sc.accumulator(0), sc.accumulator(0)

    def parse_one(task: dict[str, Any]) -> dict[str, Any]:
        result = parse.ingest_file(task)
        files_done.add(1)
        rows_read.add(int(result["rows_read"]))
        return result

    outcome: dict[str, Any] = {}
    group = f"lake-ingest-{ctx.write_id()}"

    def collect() -> None:
        try:
            sc.setJobGroup(group, f"lake job {ctx.job.name}: parse {len(tasks)} file(s)")
            outcome["results"] = sc.parallelize(tasks, len(tasks)).map(parse_one).collect()
        except BaseException as exc:  # raised again in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=collect, name="lake-ingest-collect", daemon=True)
    worker.start()
    shown = (-1, -1)
    try:
        while worker.is_alive():
            worker.join(0.25)
            now = (files_done.value, rows_read.value)
            if now != shown and worker.is_alive():
                ctx.progress(FilesProgress(now[0], len(tasks), now[1]))
                shown = now
    except BaseException:  # interrupted (Ctrl-C): the executors stop too
        sc.cancelJobGroup(group)
        raise
    if "error" in outcome:
        raise outcome["error"]
    results: list[dict[str, Any]] = outcome["results"]
    ctx.progress(FilesProgress(len(results), len(tasks), sum(int(r["rows_read"]) for r in results)))
    return results


def run_files(ctx: SourceRun) -> list[dict[str, Any]]:
    job, report, state, batch = ctx.job, ctx.report, ctx.state, ctx.batch
    source = job.source
    assert isinstance(source, FileSource)
    lake = ctx.lake
    target = ctx.target
    storage, files = discover(lake, source)
    ctx.run.input(source.path, namespace=storage.scheme, format=source.format)
    if ctx.full_refresh:
        todo, changed = files, []
    else:
        todo = pending_files(files, state)
        changed = [f for f in todo if f.path in state.files]
    if not todo:
        report.notes.append(f"no new or changed files among {len(files)}")
        report.skipped = True
        return []
    empty = [f for f in todo if f.size == 0]
    todo = [f for f in todo if f.size > 0]
    if empty:
        report.notes.append(f"{len(empty)} empty file(s), nothing to read: " + ", ".join(f.uri for f in empty[:5]))
    if not todo:  # only empty files: nothing to commit, but they are recorded as seen
        report.files = len(empty)
        return [_empty_entry(f) for f in empty]
    ctx.progress(f"{len(todo)} file(s) to ingest ({len(changed)} changed)")
    exists = target.exists() and not ctx.full_refresh
    table_schema = target.schema() if exists else None
    base = _task_base(ctx, storage, job)
    try:
        columns, plans = plan_columns(job, storage, todo, table_schema, base)
    except SourceFileError as exc:
        raise JobError(f"job {job.name}: {exc}; nothing was committed", job=job.name) from None
    data_schema = pa.schema([*_arrow_schema(columns), *SYSTEM])
    if table_schema is not None:
        data_schema = target.check_fit(data_schema, "merge", table_schema).target
    partition_by = list(job.partition_by) if not exists else target.partition_columns
    staged = job.mode == "merge" and exists  # merge: parse into a staging folder, then upsert
    write_id = ctx.write_id()
    target_root = lake.storage.fs_path(target.uri) + (f"/{STAGING_DIR}/{write_id}" if staged else "")
    file_partitions = [] if staged else partition_by
    stored = pa.schema([f for f in data_schema if f.name not in file_partitions])
    quarantine = lake.table(quarantine_name(job.target))
    fs_kind, fs_kwargs = storage.fs_spec()
    threads = max(1, (os.cpu_count() or 2) // max(1, min(len(todo), os.cpu_count() or 2)))
    tasks = [{
        **base, "index": i, "path": f.path, "uri": f.uri, "size": f.size, "mtime": f.mtime,
        "format": source.format, "columns": plans[f.path].columns, "missing": plans[f.path].missing,
        "header": plans[f.path].header, "header_ok": plans[f.path].header_ok,
        "csv": source.csv.__dict__ | {"null_values": list(source.csv.null_values)},
        "batch": batch, "write_id": write_id, "threads": threads,
        "target_root": target_root, "quarantine_root": lake.storage.fs_path(quarantine.uri),
        "partition_by": file_partitions, "data_schema": stored.serialize().to_pybytes(),
        # The source's own file system (it may differ from the lake's).
        "src_fs_kind": fs_kind, "src_fs_kwargs": fs_kwargs,
    } for i, f in enumerate(todo)]
    results = _parse_files(ctx, tasks)
    data: list[DataFile] = [_decoded(info) for r in results for info in r["data_files"]]
    bad: list[DataFile] = [_decoded(info) for r in results for info in r["quarantine_files"]]
    report.rows_written = sum(r["rows_written"] for r in results)
    report.rows_quarantined = sum(r["rows_quarantined"] for r in results)
    report.rows_read = sum(r["rows_read"] for r in results)
    report.files = len(results) + len(empty)
    metrics = {"rows_written": report.rows_written, "rows_quarantined": report.rows_quarantined,
               "source_files": len(results), "files_added": len(data)}
    removes = [p for f in changed for p in state.files[f.path].data_files]
    if staged:
        result = _merge_staged(ctx, target, target_root, data)
    else:
        with ctx.transaction() as tx:
            result = commit_files(tx, data, data_schema, partition_by,
                                  overwrite=job.mode == "overwrite" or ctx.full_refresh, metrics=metrics,
                                  removes=removes)
            gated = int((tx.quality or {}).get("rows_quarantined") or 0)
        report.rows_written -= gated
        report.rows_quarantined += gated
    report.version = result.version
    if ctx.full_refresh and quarantine.exists():
        # The rebuilt table replaces what earlier batches wrote; their set-aside rows are
        # set aside again by this run, so the earlier ones go (this run's gate rows stay).
        quarantine.delete(f"job = {literal(job.name)} AND batch < {int(batch)}")
    if bad or quarantine.exists():
        with ctx.transaction(quarantine, gated=False) as tx:
            q = commit_files(tx, bad, QUARANTINE_SCHEMA, [], overwrite=False,
                             metrics={"rows_written": sum(int(b["rows"]) for b in bad), "files_added": len(bad)})
        report.quarantine_version = q.version
    by_path = {r["path"]: r for r in results}
    return [{
        "kind": "file", "path": p, "size": r["size"], "mtime": r["mtime"], "checksum": r["checksum"],
        "rows_read": r["rows_read"], "rows_written": r["rows_written"], "rows_quarantined": r["rows_quarantined"],
        "data_files": json.dumps([] if staged else [d["path"] for d in r["data_files"]]),
    } for p, r in by_path.items()] + [_empty_entry(f) for f in empty]


def _empty_entry(f: SourceFile) -> dict[str, Any]:
    """The ledger entry of an empty file: seen, nothing in it."""
    return {"kind": "file", "path": f.path, "size": 0, "mtime": f.mtime, "checksum": None, "rows_read": 0,
            "rows_written": 0, "rows_quarantined": 0, "data_files": "[]"}


def _decoded(info: dict[str, Any]) -> DataFile:
    """A file description from an executor (partition values as JSON) as the transaction takes it."""
    values = info["partition_values"]
    return {**info, "partition_values": json.loads(values) if isinstance(values, str) else values}


def _merge_staged(ctx: SourceRun, target: Table, root: str, data: list[DataFile]) -> Any:
    """Merge mode: the parsed rows were staged beside the table; upsert them, then drop them."""
    job = ctx.job
    fs = ctx.lake.storage.arrow_fs()
    try:
        tables = [pq.read_table(fs.open_input_file(f"{root}/{d['path']}")) for d in data]
        if not tables:
            raise JobError(f"job {job.name}: every row was quarantined; nothing to merge", job=job.name)
        rows = pa.concat_tables(tables, promote_options="permissive")
        return target.merge(rows, keys=list(job.keys), txn=ctx.txn, job=job.name,
                            schema_mode="merge" if job.schema_policy == "add_columns" else None)
    finally:
        fs.delete_dir(root)
