"""The training hand-off: datasets with provenance, streamed, split and exported for training.

- :func:`load` a saved training dataset (``training:<id>``, ``churn_v1``) or a curated
  table (``gold.customer_stats@3``) as Arrow, pandas or Polars, with its
  :class:`DatasetMetadata` (features, source versions, rows, content hash, quality);
- stream it as Arrow record batches in bounded memory, one split of a stable
  :class:`SplitSpec` (by entity key), optionally shuffled with a seed
  (:meth:`Dataset.batches`);
- :func:`export` a version to Parquet (local or S3) with a ``manifest.json`` recording
  its provenance and the checksum of every file, for training that runs elsewhere.

Every load and export is a catalog run (jobs ``handoff.load.<name>`` and
``handoff.export.<name>``), so lineage reaches from the raw sources to what left the lake.

Example:
    >>> from lake import Lake, handoff
    >>> lake = Lake()
    >>> ds = handoff.load(lake, "churn_v1")
    >>> ds.metadata.sources                      # {"gold.customers": {"version": 12}, ...}
    >>> spec = handoff.SplitSpec.parse("train=0.8,validation=0.1,test=0.1", keys="customer_id")
    >>> for batch in ds.batches(splits=spec, split="train", shuffle=True, seed=7):
    ...     ...
    >>> handoff.export(lake, "churn_v1", "s3://ml/exports/churn_v1", splits=spec)
"""

from __future__ import annotations

from lake.errors import (
    DatasetRefError,
    ExportError,
    ExportExistsError,
    HandoffError,
    SplitError,
    UnknownDatasetError,
    UnknownVersionError,
)
from lake.handoff.export import ExportedFile, ExportResult, export, read_manifest, verify_export
from lake.handoff.load import Dataset, DatasetMetadata, load
from lake.handoff.stream import SplitSpec, key_hash

__all__ = [
    "Dataset",
    "DatasetMetadata",
    "DatasetRefError",
    "ExportError",
    "ExportExistsError",
    "ExportResult",
    "ExportedFile",
    "HandoffError",
    "SplitError",
    "SplitSpec",
    "UnknownDatasetError",
    "UnknownVersionError",
    "export",
    "key_hash",
    "load",
    "read_manifest",
    "verify_export",
]
