"""Writing a dataset version as a Parquet snapshot plus a manifest, for training that runs elsewhere.

The writing half of :mod:`lake.handoff.export`: it takes any :class:`ExportSource` (a
loaded :class:`lake.handoff.load.Dataset`), so loading sits above it and its
``Dataset.export`` delegates here.

Layout of an export folder (local or ``s3://bucket/prefix``)::

    manifest.json                 provenance, schema, split, files with sizes and SHA-256
    data/part-00000.parquet       without a split
    train/part-00000.parquet      with a split: one folder per split
    validation/part-00000.parquet
    ...

Each folder is a Parquet dataset any engine reads (``pyarrow.parquet.read_table(out +
"/train")``, ``pandas.read_parquet``, Spark). The manifest is written last: a folder
with no manifest is not a finished export.

**Determinism.** Rows are read file by file in path order, cut into row groups of
exactly ``row_group_size`` rows and files of ``rows_per_file`` rows, and written with
fixed Parquet settings, so exporting the same version again (with the same split and
the same pyarrow release) writes byte-identical files: the manifest's checksums and
``data_sha256`` match. Only ``created_at`` and ``run_id`` in the manifest differ.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata as pkg_metadata
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from catalog.redact import redact_text
from catalog.store import RunContext
from lake.errors import ExportError, ExportExistsError, SplitError
from lake.handoff import stream as st
from lake.handoff.metadata import DatasetMetadata
from lake.lakehouse import Lake
from lake.recording import code_version, current_run
from lake.storage import storage_reaching
from lake.table import Table

__all__ = ["DEFAULT_ROWS_PER_FILE", "DEFAULT_ROW_GROUP_SIZE", "MANIFEST", "MANIFEST_FORMAT", "UNSPLIT",
           "ExportResult", "ExportSource", "ExportedFile", "export_dataset", "read_manifest", "verify_export"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "lake-handoff-export/1"
DEFAULT_ROWS_PER_FILE = 1_048_576
DEFAULT_ROW_GROUP_SIZE = 131_072
UNSPLIT = "data"


@dataclass(frozen=True)
class ExportedFile:
    """One Parquet file of an export."""

    path: str
    """Relative to the export folder, ``/``-separated (``train/part-00000.parquet``)."""
    split: str | None
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    location: str
    """The export folder (local path or ``s3://`` URI)."""
    manifest: dict[str, Any]
    """The manifest as written to ``manifest.json``."""
    files: tuple[ExportedFile, ...]
    row_count: int
    run_id: str | None
    """The catalog run of the export (job ``handoff.export.<name>``)."""

    @property
    def manifest_uri(self) -> str:
        return f"{self.location.rstrip('/')}/{MANIFEST}"


class ExportSource(Protocol):
    """What an export reads: one table version with its metadata (a loaded ``Dataset``)."""

    lake: Lake
    table: Table
    metadata: DatasetMetadata

    def arrow_dataset(self) -> pads.Dataset:
        """The version's rows as a pyarrow dataset (files in path order)."""
        ...

    def check_split_keys(self, schema: pa.Schema, splits: st.SplitSpec) -> None:
        """Raise :class:`SplitError` unless the split's key columns exist with stable types."""
        ...


@dataclass(frozen=True)
class _Target:
    fs: pafs.FileSystem
    base: str
    uri: str
    namespace: str
    """OpenLineage dataset namespace: ``file`` or ``s3://bucket``."""
    name: str
    """OpenLineage dataset name: the path, or the key prefix in the bucket."""

    @property
    def local(self) -> bool:
        return self.namespace == "file"

    def path(self, relative: str) -> str:
        return f"{self.base.rstrip('/')}/{relative}"


def export_dataset(
    ds: ExportSource,
    out: str,
    *,
    splits: st.SplitSpec | None = None,
    overwrite: bool = False,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
    progress: Callable[[int, int, int], None] | None = None,
) -> ExportResult:
    """Export an already loaded dataset (same arguments as :func:`lake.handoff.export.export`)."""
    if rows_per_file < 1 or row_group_size < 1:
        raise ExportError(f"rows_per_file and row_group_size must be at least 1 (got {rows_per_file}, "
                          f"{row_group_size})")
    lake, meta = ds.lake, ds.metadata
    target = _target(lake, out)
    dataset = ds.arrow_dataset()
    if splits is not None:
        ds.check_split_keys(dataset.schema, splits)
        if UNSPLIT in splits.names:
            raise SplitError(f"{UNSPLIT!r} cannot be a split name (it is the folder of unsplit exports)")
    names = splits.names if splits is not None else [UNSPLIT]
    parameters = {"ref": meta.ref, "table": meta.table, "version": meta.version, "out": redact_text(target.uri),
                  "splits": str(splits) if splits else None, "compression": compression,
                  "rows_per_file": rows_per_file, "row_group_size": row_group_size}
    with _export_run(lake, meta.name, parameters) as run:
        lake.read(ds.table, meta.version)
        _prepare(target, overwrite)
        writers = {name: _SplitWriter(target, name, dataset.schema, rows_per_file, compression) for name in names}
        try:
            _write_rows(dataset, splits, writers, row_group_size, progress, meta.row_count)
            files = tuple(f for w in writers.values() for f in w.close())
            total = sum(f.rows for f in files)
            if total != meta.row_count:
                raise ExportError(f"exported {total} rows but {meta.table}@{meta.version} holds {meta.row_count} "
                                  "according to its Delta log; the export was removed")
            manifest = _manifest(ds, target, files, splits, dataset.schema, run,
                                 {"compression": compression, "rows_per_file": rows_per_file,
                                  "row_group_size": row_group_size})
            _write_bytes(target, MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        if run is not None:
            run.output(target.name, meta.version, namespace=target.namespace, location=redact_text(target.uri),
                       format="parquet", kind="export")
            run.stats.update(rows=total, files=len(files), bytes=sum(f.bytes for f in files))
    return ExportResult(target.uri, manifest, files, total, run.run_id if run is not None else None)


def _write_rows(dataset: Any, splits: st.SplitSpec | None, writers: dict[str, _SplitWriter],
                row_group_size: int, progress: Callable[[int, int, int], None] | None = None,
                total: int = 0) -> None:
    cutters = {name: st.Rebatcher(row_group_size) for name in writers}
    done = 0
    for batch in st.scan(dataset, batch_size=row_group_size):
        if splits is None:
            parts = {UNSPLIT: batch}
        else:
            assigned = splits.assign(batch)
            parts = {name: batch.filter(pa.array(assigned == i)) for i, name in enumerate(splits.names)}
        for name, part in parts.items():
            for group in cutters[name].push(part):
                writers[name].write(group)
        if progress is not None:  # rows read so far, of the total, and files opened
            done += batch.num_rows
            progress(done, total, sum(len(w._opened) for w in writers.values()))
    for name, cutter in cutters.items():
        for group in cutter.flush():
            writers[name].write(group)
    if progress is not None:  # the rows held back for full row groups are written now
        progress(done, total, sum(len(w._opened) for w in writers.values()))


@contextlib.contextmanager
def _export_run(lake: Lake, name: str, parameters: dict[str, Any]) -> Iterator[RunContext | None]:
    if lake.recorder is None:
        yield None
        return
    outer = current_run()
    with lake.run(f"handoff.export.{name}", parameters={k: v for k, v in parameters.items() if v is not None},
                  parent_run_id=outer.run_id if outer is not None else None) as run:
        yield run


# ----------------------------------------------------------------------- target


def _target(lake: Lake | None, out: str) -> _Target:
    text = (out or "").strip()
    if not text:
        raise ExportError("give the export folder: a local path or s3://bucket/prefix")
    if text.startswith(("s3://", "s3a://")):
        if lake is None:
            raise ExportError(f"{out}: an s3:// location needs the lake, for its S3 settings")
        rest = text.split("://", 1)[1].strip("/")
        bucket, _, key = rest.partition("/")
        if not bucket or not key:
            raise ExportError(f"{out!r}: give a prefix inside the bucket, e.g. s3://{bucket or 'bucket'}/exports/churn")
        fs = storage_reaching(f"s3://{rest}", lake.storage, lake.settings)[0].arrow_fs()
        return _Target(fs, rest, f"s3://{rest}", f"s3://{bucket}", key)
    if "://" in text and not text.startswith("file://"):
        raise ExportError(f"cannot export to {text.split('://', 1)[0]}:// ({out}): use a local folder or "
                          "s3://bucket/prefix")
    path = Path(text.removeprefix("file://")).expanduser().resolve()
    return _Target(pafs.LocalFileSystem(), str(path), str(path), "file", str(path))


def _prepare(target: _Target, overwrite: bool) -> None:
    """Check that the target is empty, or remove the earlier export it holds when overwriting."""
    try:
        info = target.fs.get_file_info(target.base)
        if info.type == pafs.FileType.File:
            raise ExportError(f"{target.uri} is a file; give a folder to export into")
        found = [] if info.type == pafs.FileType.NotFound else [
            i for i in target.fs.get_file_info(pafs.FileSelector(target.base, recursive=True))
            if i.type == pafs.FileType.File]
    except OSError as exc:
        raise ExportError(f"cannot reach {target.uri}: {exc}") from exc
    if not found:
        return
    has_manifest = any(i.path.rstrip("/") == target.path(MANIFEST) for i in found)
    if not has_manifest:
        raise ExportExistsError(f"{target.uri} holds {len(found)} file(s) and no {MANIFEST}: it is not an export, "
                                "so nothing there is replaced; choose an empty or new folder")
    if not overwrite:
        raise ExportExistsError(f"{target.uri} already holds an export; pass overwrite=True (--overwrite) to "
                                "replace it, or choose another folder")
    old = _read_manifest(target)
    # The manifest goes first: from then on the folder no longer claims to be a finished export.
    target.fs.delete_file(target.path(MANIFEST))
    for entry in old.get("files", []):
        with contextlib.suppress(FileNotFoundError):
            target.fs.delete_file(target.path(entry["path"]))


def _write_bytes(target: _Target, relative: str, data: bytes) -> None:
    try:
        with target.fs.open_output_stream(target.path(relative)) as fh:
            fh.write(data)
    except OSError as exc:
        raise ExportError(f"cannot write {target.uri}/{relative}: {exc}") from exc


class _HashingSink:
    """A file-like object that writes through to a stream while computing its SHA-256 and size."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self._stream.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self.closed = True


class _SplitWriter:
    """The Parquet files of one split: ``<split>/part-00000.parquet``... rolled every ``rows_per_file`` rows."""

    def __init__(self, target: _Target, split: str, schema: pa.Schema, rows_per_file: int, compression: str) -> None:
        self.target, self.split, self.schema = target, split, schema
        self.rows_per_file, self.compression = rows_per_file, compression
        self.files: list[ExportedFile] = []
        self._opened: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._sink: _HashingSink | None = None
        self._rows = 0

    def _open(self) -> None:
        relative = f"{self.split}/part-{len(self.files):05d}.parquet"
        path = self.target.path(relative)
        try:
            if self.target.local:
                self.target.fs.create_dir(str(Path(path).parent), recursive=True)
            self._sink = _HashingSink(self.target.fs.open_output_stream(path))
            self._opened.append(relative)
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression=self.compression)
        except OSError as exc:
            raise ExportError(f"cannot write {self.target.uri}/{relative}: {exc}") from exc
        except (ValueError, pa.ArrowException) as exc:
            raise ExportError(f"cannot write Parquet with compression={self.compression!r}: {exc}") from exc
        self._rows = 0

    def write(self, group: pa.RecordBatch) -> None:
        """Write one row group, cut where a file reaches ``rows_per_file`` rows."""
        while group.num_rows:
            if self._writer is None:
                self._open()
            assert self._writer is not None
            room = self.rows_per_file - self._rows
            self._writer.write_batch(group.slice(0, room))
            self._rows += min(room, group.num_rows)
            group = group.slice(room)
            if self._rows >= self.rows_per_file:
                self._finish()

    def _finish(self) -> None:
        assert self._writer is not None and self._sink is not None
        self._writer.close()
        self._sink.close()
        self.files.append(ExportedFile(self._opened[-1], None if self.split == UNSPLIT else self.split, self._rows,
                                       self._sink.size, self._sink.sha256.hexdigest()))
        self._writer, self._sink = None, None

    def close(self) -> list[ExportedFile]:
        if self._writer is None and not self.files:
            self._open()  # an empty split still gets a file, so its schema can be read
        if self._writer is not None:
            self._finish()
        return self.files

    def abort(self) -> None:
        """Remove every file this writer started (after a failure)."""
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
        for relative in self._opened:
            with contextlib.suppress(Exception):
                self.target.fs.delete_file(self.target.path(relative))


# --------------------------------------------------------------------- manifest


def _manifest(ds: ExportSource, target: _Target, files: tuple[ExportedFile, ...], splits: st.SplitSpec | None,
              schema: pa.Schema, run: RunContext | None, parquet: dict[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.path}\t{f.rows}\t{f.bytes}\t{f.sha256}\n".encode())
    split = None
    if splits is not None:
        rows = {name: sum(f.rows for f in files if f.split == name) for name in splits.names}
        split = {**splits.as_dict(), "rows": rows}
    return {
        "format": MANIFEST_FORMAT,
        "location": redact_text(target.uri),
        "dataset": ds.metadata.as_dict(),
        "row_count": sum(f.rows for f in files),
        "schema": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
        "split": split,
        "files": [asdict(f) for f in files],
        "data_sha256": digest.hexdigest(),
        "parquet": parquet,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "run_id": run.run_id if run is not None else None,
        "code_version": code_version(),
        "packages": {name: _package_version(name) for name in ("lake-backbone", "pyarrow", "deltalake")},
    }


def _package_version(name: str) -> str | None:
    try:
        return pkg_metadata.version(name)
    except pkg_metadata.PackageNotFoundError:
        return None


def read_manifest(location: str, *, lake: Lake | None = None) -> dict[str, Any]:
    """The manifest of an export folder (an ``s3://`` location needs ``lake``, for its S3 settings).

    Raises:
        ExportError: there is no readable manifest there.
    """
    return _read_manifest(_target(lake, location))


def _read_manifest(target: _Target) -> dict[str, Any]:
    try:
        with target.fs.open_input_stream(target.path(MANIFEST)) as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        raise ExportError(f"no {MANIFEST} in {target.uri}: not a finished export") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {target.uri}/{MANIFEST}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ExportError(f"{target.uri}/{MANIFEST} is not a {MANIFEST_FORMAT} manifest")
    return data


def verify_export(location: str, *, lake: Lake | None = None) -> list[str]:
    """Check an export against its manifest: every file present, with its size and SHA-256.

    Args:
        location: the export folder.
        lake: needed for an ``s3://`` location (its S3 settings).

    Returns:
        The problems found (empty when the export is intact).
    """
    target = _target(lake, location)
    problems = []
    for entry in _read_manifest(target)["files"]:
        digest, size = hashlib.sha256(), 0
        try:
            with target.fs.open_input_stream(target.path(entry["path"])) as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            problems.append(f"{entry['path']}: missing")
            continue
        if size != entry["bytes"] or digest.hexdigest() != entry["sha256"]:
            problems.append(f"{entry['path']}: {size} bytes, sha256 {digest.hexdigest()[:12]}... does not match "
                            f"the manifest ({entry['bytes']} bytes, {entry['sha256'][:12]}...)")
    return problems
