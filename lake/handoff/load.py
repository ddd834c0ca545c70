"""Loading a dataset for training: a saved training dataset or a curated table, with its provenance.

A reference names either

- a **saved training dataset** (made by the feature store, recorded in the catalog):
  ``training:<id>`` (an id or a unique id prefix of 6+ characters), ``training:<name>``,
  or simply ``<name>`` / ``<id>`` (no dot), or ``training.<name>``. Its frame is the lake
  table ``training.<name>`` at the Delta version the catalog recorded;
- a **curated table**: any lake table ``layer.name`` (``gold.customer_stats``) or path.

Either may carry a version, ``gold.x@3`` or ``version=3``: a table version for a
curated table; for a training dataset, the saved dataset whose frame is that version.

Every read is recorded in the catalog: inside the caller's own run, as an input of
that run; otherwise in a run of its own, job ``handoff.load.<name>``, whose input is the
exact table version handed over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable

from catalog.errors import CatalogError, TrainingDatasetNotFoundError
from lake import delta_log, protocol
from lake.errors import (
    DatasetRefError,
    HandoffError,
    LakeError,
    SplitError,
    UnknownDatasetError,
    UnknownVersionError,
)
from lake.handoff import stream as st
from lake.handoff.metadata import DatasetMetadata, Kind
from lake.handoff.snapshot import ExportResult, export_dataset
from lake.lakehouse import Lake, is_location
from lake.naming import training_table
from lake.recording import code_version, current_run
from lake.spark_io import file_dataset
from lake.table import Table, wrap_delta_error

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_BUFFER_SIZE", "Dataset", "DatasetMetadata", "Kind", "catalog_facts",
           "find_training", "load", "parse_ref"]
DEFAULT_BATCH_SIZE = 65_536
DEFAULT_BUFFER_SIZE = 262_144
_AT_VERSION = re.compile(r"^(?P<ref>.+?)@(?P<version>-?\d+)$")


class Dataset:
    """A dataset at one version, ready to hand to training (see :func:`load`).

    Example:
        >>> ds = load(lake, "churn_v1")
        >>> ds.metadata.sources, ds.metadata.content_hash
        >>> frame = ds.to_pandas()
        >>> spec = SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys="customer_id")
        >>> for batch in ds.batches(splits=spec, split="train", shuffle=True, seed=7):
        ...     train_step(batch)
    """

    def __init__(self, lake: Lake, table: Table, delta: DeltaTable, metadata: DatasetMetadata) -> None:
        self.lake = lake
        self.table = table
        self.metadata = metadata
        self._delta = delta

    def __repr__(self) -> str:
        return f"Dataset({self.metadata.ref!r}, rows={self.metadata.row_count})"

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the rows."""
        return self.arrow_dataset().schema

    def arrow_dataset(self) -> pads.Dataset:
        """The version's rows as a pyarrow dataset (nothing read yet)."""
        protocol.check(self._delta, protocol.HANDOFF, self.table.name)
        try:
            return file_dataset(self.table, self._delta)
        except Exception as exc:
            raise wrap_delta_error(exc, self.table.name, "read") from exc

    # ------------------------------------------------------------------ reads

    def batches(
        self,
        *,
        columns: Sequence[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        splits: st.SplitSpec | None = None,
        split: str | None = None,
        shuffle: bool = False,
        seed: int | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> pa.RecordBatchReader:
        """Stream the rows as Arrow record batches of exactly ``batch_size`` rows (the last may be shorter).

        Memory stays bounded: files are read one after another and never collected.
        Without shuffling the order is the same on every run (files in path order).

        Args:
            columns: the columns to hand over (default all).
            batch_size: rows per batch.
            splits: the split definition; with ``split``, only that split's rows.
            split: the split to stream (``train``...), needs ``splits``.
            shuffle: shuffle with a seeded, bounded buffer (see :mod:`lake.handoff.stream`).
            seed: the shuffle seed (default 0); the same seed gives the same order.
            buffer_size: rows held by the shuffle buffer (memory bound).

        Raises:
            SplitError: ``split`` without ``splits`` (or the reverse), an unknown split name
                or key column.
            HandoffError: an unknown column.
        """
        if batch_size < 1 or buffer_size < 1:
            raise SplitError(f"batch_size and buffer_size must be at least 1 (got {batch_size}, {buffer_size})")
        schema, source = self._rows(columns, splits, split, batch_size=batch_size,
                                    seed=(seed or 0) if shuffle else None)
        if shuffle:
            source = st.shuffle(source, batch_size=batch_size, buffer_size=buffer_size, seed=seed or 0)
        else:
            source = st.rebatch(source, batch_size)
        params = self._parameters("batches", splits, split, batch_size=batch_size, shuffle=shuffle,
                                  seed=(seed or 0) if shuffle else None, buffer_size=buffer_size if shuffle else None)
        return pa.RecordBatchReader.from_batches(schema, self._recorded(source, params))

    def to_arrow(
        self, *, columns: Sequence[str] | None = None, splits: st.SplitSpec | None = None, split: str | None = None
    ) -> pa.Table:
        """The rows as one Arrow table (only ``split``'s rows when given with ``splits``)."""
        return self._read("arrow", columns, splits, split)

    def to_pandas(
        self, *, columns: Sequence[str] | None = None, splits: st.SplitSpec | None = None, split: str | None = None
    ) -> pd.DataFrame:
        """The rows as a pandas DataFrame (same arguments as :meth:`to_arrow`)."""
        return self._read("pandas", columns, splits, split).to_pandas()

    def to_polars(
        self, *, columns: Sequence[str] | None = None, splits: st.SplitSpec | None = None, split: str | None = None
    ) -> pl.DataFrame:
        """The rows as a Polars DataFrame (same arguments as :meth:`to_arrow`)."""
        # heavy: polars is imported only when a Polars frame is asked for
        import polars as pl

        return pl.from_arrow(self._read("polars", columns, splits, split))  # type: ignore[return-value]

    def split_counts(self, splits: st.SplitSpec) -> dict[str, int]:
        """Rows per split, reading only the key columns."""
        dataset = self.arrow_dataset()
        self.check_split_keys(dataset.schema, splits)
        counts = np.zeros(len(splits.names), dtype=np.int64)
        for batch in st.scan(dataset, columns=list(splits.keys)):
            counts += np.bincount(splits.assign(batch), minlength=len(splits.names))
        return {name: int(n) for name, n in zip(splits.names, counts, strict=True)}

    def export(self, out: str, **kwargs: Any) -> ExportResult:
        """Export this version as Parquet plus a manifest (see :func:`lake.handoff.export.export`)."""
        return export_dataset(self, out, **kwargs)

    # -------------------------------------------------------------- internals

    def _read(self, fmt: str, columns: Sequence[str] | None, splits: st.SplitSpec | None,
              split: str | None) -> pa.Table:
        schema, source = self._rows(columns, splits, split)
        with self._reading(self._parameters(fmt, splits, split)) as stats:
            table = pa.Table.from_batches(list(source), schema=schema)
            stats["rows"] = table.num_rows
        return table

    def _rows(self, columns: Sequence[str] | None, splits: st.SplitSpec | None, split: str | None, *,
              batch_size: int = DEFAULT_BATCH_SIZE, seed: int | None = None
              ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The schema handed over and the (lazy) batches: files in order, one split's rows if asked."""
        dataset = self.arrow_dataset()
        cols = self._columns(dataset.schema, columns, splits, split)
        names = cols or dataset.schema.names
        schema = pa.schema([dataset.schema.field(c) for c in names])
        if splits is None or split is None:
            return schema, st.scan(dataset, columns=cols, batch_size=batch_size, seed=seed)
        read = sorted(set(names) | set(splits.keys), key=dataset.schema.names.index)
        scan = st.scan(dataset, columns=read, batch_size=batch_size, seed=seed)
        return schema, st.only_split(scan, splits, split, names)

    def _columns(self, schema: pa.Schema, columns: Sequence[str] | None, splits: st.SplitSpec | None,
                 split: str | None) -> list[str] | None:
        if splits is not None and split is None:
            raise SplitError(f"name the split to read: split='{splits.names[0]}' (this split defines "
                             f"{', '.join(splits.names)})")
        if split is not None and splits is None:
            raise SplitError(f"split={split!r} needs the split definition: splits=SplitSpec.parse("
                             "'train=0.8,validation=0.1,test=0.1', keys='<key column>')")
        wanted = list(columns) if columns is not None else None
        unknown = [c for c in (wanted or []) if c not in schema.names]
        if unknown:
            raise HandoffError(f"{self.metadata.table}@{self.metadata.version} has no column(s) {unknown}; "
                               f"columns: {', '.join(schema.names)}")
        if splits is not None and split is not None:
            self.check_split_keys(schema, splits)
            splits.index(split)
        return wanted

    def check_split_keys(self, schema: pa.Schema, splits: st.SplitSpec) -> None:
        """Raise :class:`SplitError` unless the split's key columns exist with stable types."""
        missing = [k for k in splits.keys if k not in schema.names]
        if missing:
            raise SplitError(f"split key column(s) {missing} are not in {self.metadata.table}; "
                             f"columns: {', '.join(schema.names)}")
        for key in splits.keys:  # refuses unstable key types before anything is read
            st.canonical_key(pa.table({key: pa.array([], schema.field(key).type)}), [key])

    def _parameters(self, fmt: str, splits: st.SplitSpec | None, split: str | None, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"ref": self.metadata.ref, "table": self.metadata.table,
                                  "version": self.metadata.version, "format": fmt}
        if splits is not None:
            params.update(split=split, splits=str(splits))
        params.update({k: v for k, v in extra.items() if v is not None})
        return params

    @contextlib.contextmanager
    def _reading(self, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """A ``handoff.load.<name>`` run around a read (or the caller's run, if inside one)."""
        stats: dict[str, Any] = {}
        if self.lake.recorder is None or current_run() is not None:
            self.lake.read(self.table, self.metadata.version)
            yield stats
            return
        with self.lake.run(f"handoff.load.{self.metadata.name}", parameters=parameters) as run:
            self.lake.read(self.table, self.metadata.version)
            yield stats
            run.stats.update(stats)

    def _recorded(self, batches: Iterator[pa.RecordBatch], parameters: dict[str, Any]) -> Iterator[pa.RecordBatch]:
        """Stream ``batches`` inside a run that starts at the first batch and ends with the stream.

        A stream closed early (the consumer stopped) still completes its run, with the
        rows actually handed over.
        """
        catalog = self.lake.catalog if self.lake.recorder is not None else None
        outer = current_run()
        run_id: str | None = None
        if catalog is not None:
            if outer is None:
                run_id = catalog.start_run(f"handoff.load.{self.metadata.name}", parameters=parameters,
                                           code_version=code_version())
            catalog.add_input(run_id or outer.run_id, self.table.name, self.metadata.version,  # type: ignore[union-attr]
                              location=self.table.uri, format="delta")
        rows = 0
        try:
            for batch in batches:
                rows += batch.num_rows
                yield batch
        except GeneratorExit:
            if catalog is not None and run_id is not None:
                catalog.finish_run(run_id, "completed", stats={"rows": rows, "complete": False})
            raise
        except BaseException as exc:
            if catalog is not None and run_id is not None:
                catalog.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}", stats={"rows": rows})
            raise
        if catalog is not None and run_id is not None:
            catalog.finish_run(run_id, "completed", stats={"rows": rows, "complete": True})


# ----------------------------------------------------------------------- loading


def load(lake: Lake, ref: str, *, version: int | None = None) -> Dataset:
    """A saved training dataset or a curated table, at a version, with its metadata.

    Args:
        lake: the lake (and its catalog).
        ref: ``training:<id or name>``, a training dataset's name or id (no dot),
            ``training.<name>``, or a curated table ``layer.name`` (or a path); any of
            them may end in ``@<version>``.
        version: the version (same as ``@<version>``).

    Returns:
        The dataset; nothing is read until you ask for rows.

    Raises:
        DatasetRefError: the reference is malformed or its two versions disagree.
        UnknownDatasetError: no saved training dataset by that name or id.
        UnknownVersionError: no saved training dataset at that version.
        TableNotFoundError, VersionNotFoundError: no such table, or table version.
    """
    text, version = parse_ref(ref, version)
    if text.startswith("training:"):
        return _load_training(lake, text, version)
    if "." not in text and not is_location(text):
        return _load_training(lake, text, version)
    saved_name = text.split(".", 1)[-1]
    if (text.lower().startswith(training_table("")) and not is_location(text) and lake.recorder is not None
            and lake.catalog.training_datasets(name=saved_name, limit=1)):
        return _load_training(lake, saved_name, version)
    return _load_curated(lake, text, version)


def parse_ref(ref: str, version: int | None = None) -> tuple[str, int | None]:
    """Split ``name@3`` into ``("name", 3)``, checking it against an explicit ``version``.

    Raises:
        DatasetRefError: empty reference, negative version, or two different versions.
    """
    text = (ref or "").strip()
    match = _AT_VERSION.match(text)
    if match:
        text, at = match["ref"].strip(), int(match["version"])
        if version is not None and version != at:
            raise DatasetRefError(f"{ref!r} names version {at} but version={version} was also given; give one")
        version = at
    if not text or text == "training:":
        raise DatasetRefError("empty dataset reference: give a training dataset name or id, or a table such as "
                              "gold.customers")
    if version is not None and version < 0:
        raise DatasetRefError(f"versions start at 0, not {version}")
    return text, version


def find_training(lake: Lake, ref: str, version: int | None = None) -> dict[str, Any]:
    """The recipe of a saved training dataset (``lake.catalog.training_dataset``) by id, prefix or name.

    Args:
        lake: the lake whose catalog records the training datasets.
        ref: an id, a unique id prefix (6+ characters) or a name (the newest with it);
            ``training:`` and ``training.`` prefixes and an ``@<version>`` suffix are accepted.
        version: with a name, the saved dataset whose frame is this table version.

    Raises:
        UnknownDatasetError: nothing saved answers to ``ref``.
        UnknownVersionError: nothing saved at that version.
    """
    text, version = parse_ref(ref, version)
    text = text.removeprefix("training:").strip()
    if lake.recorder is None:
        raise HandoffError("training datasets are recorded in the catalog, and this Lake was created with "
                           "catalog=False")
    catalog = lake.catalog
    try:
        recipe = catalog.training_dataset(text)
    except TrainingDatasetNotFoundError as exc:
        bare = text.removeprefix(training_table(""))
        raise UnknownDatasetError(f"{exc.message} (a curated table is named layer.name, e.g. gold.{bare})",
                                  dataset=text) from None
    if version is not None and recipe["version"] != version:
        if recipe["name"] != text.removeprefix(training_table("")):  # asked by id: it is one exact dataset
            raise UnknownVersionError(
                f"training dataset {recipe['id']} is version {recipe['version']} of training.{recipe['name']}, "
                f"not {version}; drop the version, or ask for {recipe['name']}@{version}", dataset=text)
        saved = catalog.training_datasets(name=recipe["name"], limit=10_000)
        match = next((r for r in saved if r["version"] == version), None)
        if match is None:
            versions = sorted({r["version"] for r in saved if r["version"] is not None})
            raise UnknownVersionError(
                f"training dataset {recipe['name']} has no saved version {version} (saved: "
                f"{', '.join(map(str, versions)) or 'none'}); `lake training list` shows them",
                dataset=text, version=version)
        recipe = match
    return recipe


def _load_training(lake: Lake, ref: str, version: int | None) -> Dataset:
    recipe = find_training(lake, ref, version)
    if recipe["version"] is None:
        raise HandoffError(f"training dataset {recipe['id']} recorded no table version, so its frame cannot be "
                           f"pinned; rebuild it with `lake training reproduce {recipe['id']}`")
    table = lake.table(training_table(recipe['name']))
    if not table.exists():
        raise UnknownDatasetError(
            f"the frame of training dataset {recipe['name']} ({recipe['id']}) is gone: no table {table.name} at "
            f"{table.uri}; rebuild it with `lake training reproduce {recipe['id']}`", dataset=recipe["name"])
    delta = table.delta(int(recipe["version"]))
    facts = catalog_facts(lake, table.name, int(recipe["version"]))
    base = _table_metadata(table, delta)
    meta = DatasetMetadata(
        kind="training", name=recipe["name"], table=table.name, version=int(recipe["version"]),
        location=table.uri, row_count=base["row_count"], content_hash=recipe["content_hash"],
        columns=base["columns"], sources={k: dict(v) if isinstance(v, dict) else {"version": v}
                                          for k, v in (recipe["sources"] or {}).items()},
        quality_status=facts["quality_status"], features=tuple(recipe["features"] or ()),
        feature_service=recipe["feature_service"], training_id=recipe["id"], entity_hash=recipe["entity_hash"],
        entity_location=recipe["entity_location"], options=dict(recipe["options"] or {}),
        run_id=recipe["run_id"], created_at=recipe["created_at"],
    )
    return Dataset(lake, table, delta, meta)


def _load_curated(lake: Lake, ref: str, version: int | None) -> Dataset:
    table = lake.existing(ref)
    delta = table.delta(version)
    at = int(delta.version())
    base = _table_metadata(table, delta)
    facts = catalog_facts(lake, table.name, at) if lake.recorder is not None else {}
    info = delta_log.commit_info(table.storage, table.uri, at) or {}
    committed = dt.datetime.fromtimestamp(info["timestamp"] / 1000, dt.UTC) if info.get("timestamp") else None
    meta = DatasetMetadata(
        kind="curated", name=table.name, table=table.name, version=at, location=table.uri,
        row_count=base["row_count"], content_hash=base["fingerprint"], columns=base["columns"],
        sources=facts.get("sources") or {}, quality_status=facts.get("quality_status"),
        run_id=facts.get("run_id") or info.get("lake.run_id"), created_at=committed,
    )
    return Dataset(lake, table, delta, meta)


def _table_metadata(table: Table, delta: DeltaTable) -> dict[str, Any]:
    """Rows, columns and a fingerprint of one version, from the Delta log alone."""
    protocol.check(delta, protocol.HANDOFF, table.name)
    try:
        files = pa.table(delta.get_add_actions(flatten=False))
        schema = pa.schema(delta.schema().to_arrow())
    except Exception as exc:
        raise wrap_delta_error(exc, table.name, "read") from exc
    columns = tuple({"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema)
    entries = sorted(zip(files.column("path").to_pylist(), files.column("size_bytes").to_pylist(),
                         files.column("num_records").to_pylist(), strict=True)) if files.num_rows else []
    row_count = sum(r or 0 for _, _, r in entries)
    if any(r is None for _, _, r in entries):  # files committed without statistics: count from footers
        row_count = int(file_dataset(table, delta).count_rows())
    digest = hashlib.sha256()
    digest.update(repr([(c["name"], c["type"], c["nullable"]) for c in columns]).encode())
    for path, size, rows in entries:
        digest.update(f"\n{path}\t{size}\t{rows}".encode())
    return {"row_count": int(row_count), "columns": columns,
            "fingerprint": digest.hexdigest()}


def catalog_facts(lake: Lake, name: str, version: int) -> dict[str, Any]:
    """Quality status, producing run and its inputs for one version, as far as the catalog knows."""
    try:
        shown = lake.catalog.show(name, version=version)
    except CatalogError:
        return {"quality_status": None, "run_id": None, "sources": {}}
    run_id = (shown.get("version") or {}).get("run_id")
    sources: dict[str, dict[str, Any]] = {}
    if run_id:
        try:
            for item in lake.catalog.run_info(run_id)["inputs"]:
                if item["name"] != name:
                    sources[item["name"]] = {"version": item["version"]}
        except LakeError:
            pass
    return {"quality_status": shown.get("quality_status"), "run_id": run_id, "sources": sources}
