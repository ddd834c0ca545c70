"""A dataset at one version handed to training: :class:`Dataset` (what :func:`lake.handoff.load.load` gives).

Rows are read from the version's files one after another, in path order, batched, split by entity
key and shuffled with a seeded bounded buffer (:mod:`lake.handoff.stream`); every read is a catalog
run (or an input of the caller's run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
from deltalake import DeltaTable

from lake import protocol
from lake.errors import (
    HandoffError,
    SplitError,
)
from lake.handoff import stream as st
from lake.handoff.metadata import DatasetMetadata
from lake.handoff.snapshot import ExportResult, export_dataset
from lake.lakehouse import Lake
from lake.recording import code_version, current_run
from lake.spark_io import file_dataset
from lake.table import Table, wrap_delta_error

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_BUFFER_SIZE", "Dataset"]
DEFAULT_BATCH_SIZE = 65_536
DEFAULT_BUFFER_SIZE = 262_144


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
