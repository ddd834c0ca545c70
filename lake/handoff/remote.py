"""Hand-off through a running ``lake serve``: :class:`RemoteDataset`, what :func:`lake.handoff.load` gives
for a lake made with :meth:`lake.lakehouse.Lake.connect`.

The service decides what leaves: it checks the principal's ``read`` grant, masks the columns the
principal may not see unmasked and audits the load. Rows arrive as an Arrow stream and go through
the same batching, split and shuffle code as a local :class:`~lake.handoff.dataset.Dataset`, so memory
stays bounded by the batches and buffers, and a split of an unmasked key is the same split as
locally. A split keyed by a masked column is refused (its rows would land in other splits than the
same split made on the lake itself). Export needs the files: run it where the lake is readable.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lake.errors import HandoffError, ServiceError, SplitError
from lake.handoff import stream as st
from lake.handoff.dataset import DEFAULT_BATCH_SIZE, Dataset
from lake.handoff.metadata import DatasetMetadata

if TYPE_CHECKING:
    import pyarrow.dataset as pads

    from lake.handoff.snapshot import ExportResult
    from lake.lakehouse import Lake
    from lake.remote import ServiceClient

__all__ = ["RemoteDataset"]


class RemoteDataset(Dataset):
    """A table or a saved training frame at one version, streamed from the lake service.

    Example:
        >>> lake = Lake.connect("https://lake.internal", token)
        >>> ds = handoff.load(lake, "training:churn_v1")
        >>> ds.metadata.sources, ds.metadata.content_hash, ds.masked
        >>> frame = ds.to_pandas()          # masked columns arrive masked
    """

    def __init__(self, lake: Lake, client: ServiceClient, metadata: DatasetMetadata,  # noqa: D107
                 masked: dict[str, str], schema: pa.Schema | None = None) -> None:
        self.lake = lake
        self.client = client
        self.metadata = metadata
        self.masked = masked
        """``{column: masking method}`` the service applies to this principal's reads."""
        self._schema = schema

    @classmethod
    def open(cls, lake: Lake, client: ServiceClient, ref: str, version: int | None) -> RemoteDataset:
        """Ask the service for ``ref``'s metadata (which checks the read grant)."""
        meta = client.load_metadata(ref, version=version)
        try:
            metadata, masked = cls._parse(meta)
            sent = meta.get("arrow_schema")  # a service before it sent one: the schema of the first row
            schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(sent, validate=True))) if sent else None
        except (KeyError, TypeError, ValueError, AttributeError, OSError, pa.ArrowException) as exc:
            raise ServiceError(f"the lake service's metadata of {ref} is not what a load describes: "
                               f"{type(exc).__name__} {str(exc)[:200]}") from None
        if version is not None and metadata.version != version:
            raise ServiceError(f"the lake service described version {metadata.version} of {ref} for version {version}")
        return cls(lake, client, metadata, masked, schema)

    @staticmethod
    def _parse(meta: Any) -> tuple[DatasetMetadata, dict[str, str]]:
        created = meta.get("created_at")
        metadata = DatasetMetadata(
            kind=meta["kind"], name=meta["name"], table=meta["table"], version=int(meta["version"]),
            location=meta["location"], row_count=int(meta["row_count"]), content_hash=meta["content_hash"],
            columns=tuple({k: c[k] for k in ("name", "type", "nullable")} for c in meta["columns"]),
            sources=meta.get("sources") or {}, quality_status=meta.get("quality_status"),
            features=tuple(meta.get("features") or ()), feature_service=meta.get("feature_service"),
            training_id=meta.get("training_id"), entity_hash=meta.get("entity_hash"),
            entity_location=meta.get("entity_location"), options=meta.get("options") or {},
            run_id=meta.get("run_id"), created_at=dt.datetime.fromisoformat(created) if created else None)
        return metadata, {str(c["name"]): str(c["masked"]) for c in meta["columns"] if c.get("masked")}

    def __repr__(self) -> str:
        return f"RemoteDataset({self.metadata.ref!r}, rows={self.metadata.row_count}, via={self.client.url!r})"

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the rows as they leave the service (a masked column may have changed type)."""
        if self._schema is None:
            self._schema = self.client.load(self._ref(), version=self.metadata.version, limit=1).schema
        return self._schema

    def arrow_dataset(self) -> pads.Dataset:
        raise HandoffError(f"{self.metadata.ref} comes through the lake service at {self.client.url}: its files "
                           "are not opened here; use batches(), to_arrow(), to_pandas() or to_polars()")

    def export(self, out: str, **kwargs: Any) -> ExportResult:
        raise HandoffError(f"an export writes the files of {self.metadata.ref} with a manifest, and this lake goes "
                           f"through the lake service at {self.client.url}: run `lake export` where the lake is "
                           "readable, or write ds.to_arrow() yourself")

    def split_counts(self, splits: st.SplitSpec) -> dict[str, int]:
        self.check_split_keys(self.schema, splits)
        counts = np.zeros(len(splits.names), dtype=np.int64)
        for batch in self._stream(list(splits.keys), unmasked=splits.keys):
            counts += np.bincount(splits.assign(batch), minlength=len(splits.names))
        return {name: int(n) for name, n in zip(splits.names, counts, strict=True)}

    def check_split_keys(self, schema: pa.Schema, splits: st.SplitSpec) -> None:
        masked = [k for k in splits.keys if k in self.masked]
        if masked:
            raise SplitError(f"split key column(s) {masked} of {self.metadata.table} reach you masked "
                             f"({', '.join(self.masked[k] for k in masked)}), so the split would not be the one "
                             "made on the lake; key the split by an unmasked column, or ask for unmask")
        super().check_split_keys(schema, splits)

    # -------------------------------------------------------------- internals

    def _ref(self) -> str:
        meta = self.metadata
        return f"training:{meta.training_id}" if meta.training_id else meta.table

    def _stream(self, columns: list[str] | None, unmasked: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        return self.client.stream(self._ref(), version=self.metadata.version, columns=columns, unmasked=unmasked)

    def _rows(self, columns: Sequence[str] | None, splits: st.SplitSpec | None, split: str | None, *,
              batch_size: int = DEFAULT_BATCH_SIZE, seed: int | None = None
              ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        full = self.schema
        cols = self._columns(full, columns, splits, split)
        names = cols or full.names
        schema = pa.schema([full.field(c) for c in names])
        if splits is None or split is None:
            return schema, self._stream(cols)
        read = sorted(set(names) | set(splits.keys), key=full.names.index)
        return schema, st.only_split(self._stream(read, unmasked=splits.keys), splits, split, names)

    @contextlib.contextmanager
    def _reading(self, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield {}  # the service audits the load; nothing is recorded here

    def _recorded(self, batches: Iterator[pa.RecordBatch], parameters: dict[str, Any]) -> Iterator[pa.RecordBatch]:
        return batches
