"""Exporting a dataset version as a Parquet snapshot plus a manifest, for training that runs elsewhere.

Layout of an export folder (local or ``s3://bucket/prefix``)::

    manifest.json                 provenance, schema, split, files with sizes and SHA-256
    data/part-00000.parquet       without a split
    train/part-00000.parquet      with a split: one folder per split
    validation/part-00000.parquet
    ...

Each folder is a Parquet dataset any engine reads (``pyarrow.parquet.read_table(out +
"/train")``, ``pandas.read_parquet``, Spark). The manifest is written last: a folder
with no manifest is not a finished export. Exporting the same version again (same split,
same pyarrow release) writes byte-identical files; see :mod:`lake.handoff.snapshot`,
which does the writing.
"""

from __future__ import annotations

from collections.abc import Callable

from lake.handoff import stream as st
from lake.handoff.load import load
from lake.handoff.snapshot import (
    DEFAULT_ROW_GROUP_SIZE,
    DEFAULT_ROWS_PER_FILE,
    MANIFEST,
    MANIFEST_FORMAT,
    UNSPLIT,
    ExportedFile,
    ExportResult,
    ExportSource,
    export_dataset,
    read_manifest,
    verify_export,
)
from lake.lakehouse import Lake

__all__ = ["DEFAULT_ROWS_PER_FILE", "DEFAULT_ROW_GROUP_SIZE", "MANIFEST", "MANIFEST_FORMAT", "UNSPLIT",
           "ExportResult", "ExportSource", "ExportedFile", "export", "export_dataset", "read_manifest",
           "verify_export"]


def export(
    lake: Lake,
    ref: str,
    out: str,
    *,
    version: int | None = None,
    splits: st.SplitSpec | None = None,
    overwrite: bool = False,
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    compression: str = "zstd",
    progress: Callable[[int, int, int], None] | None = None,
) -> ExportResult:
    """Export a training dataset or curated table version to Parquet files plus ``manifest.json``.

    Args:
        lake: the lake; an ``s3://`` target is reached with its S3 settings.
        ref: what to export (see :func:`lake.handoff.load.load`).
        out: a local folder or ``s3://bucket/prefix``; must be empty or new, or hold an
            earlier export and ``overwrite`` be set.
        version: the version (default: a training dataset's saved version, a table's latest).
        splits: write one folder per split (rows assigned by a stable hash of the key columns).
        overwrite: replace an earlier export in ``out`` (only files its manifest lists are removed).
        rows_per_file: rows per Parquet file.
        row_group_size: rows per Parquet row group.
        compression: Parquet codec (``zstd``, ``snappy``, ``gzip``, ``none``...).
        progress: called as batches are written: ``(rows so far, rows in all, files opened)``.

    Returns:
        The files written and the manifest.

    Raises:
        ExportExistsError: ``out`` is not empty (and not an export to overwrite).
        ExportError: ``out`` cannot be written, or has an unsupported scheme.
        SplitError: the split definition does not fit the data.
    """
    return load(lake, ref, version=version).export(
        out, splits=splits, overwrite=overwrite, rows_per_file=rows_per_file, row_group_size=row_group_size,
        compression=compression, progress=progress)
