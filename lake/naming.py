"""The names of things in the lake, declared once.

Tables are ``layer.name`` (``bronze.events`` lives in ``<root>/bronze/events``). A few
layers and folders belong to the lake itself; every module that needs one of those
names takes it from here rather than writing the literal again.
"""

from __future__ import annotations

import re

import pyarrow as pa

TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
"""A table name: ``layer.name`` (letters, digits, ``_``)."""

SYSTEM_PREFIX = "_"
"""Layers and folders starting with this belong to the lake's bookkeeping, not to datasets."""

QUARANTINE_LAYER = "quarantine"
TRAINING_LAYER = "training"
LOGS_LAYER = "logs"
FEATURE_VIEW_PREFIX = "feature."
FEATURE_SERVICE_PREFIX = "feature_service."

STAGING_DIR = "_lake_staging"
"""Inside a table folder: Parquet files written but not yet committed (vacuum removes leftovers)."""

PENDING_DIR = "_lake_pending"
"""Inside a table folder: commits the catalog could not record yet (see :mod:`lake.recording`)."""

QUARANTINE_SCHEMA = pa.schema([
    ("source_file", pa.string()),
    ("line", pa.int64()),
    ("byte_offset", pa.int64()),
    ("column_name", pa.string()),
    ("error_type", pa.string()),
    ("reason", pa.string()),
    ("raw", pa.string()),
    ("job", pa.string()),
    ("batch", pa.int64()),
    ("quarantined_at", pa.timestamp("us", tz="UTC")),
])
"""Rows set aside by ingestion or by a quality gate: where they came from and why."""


def is_location(ref: str) -> bool:
    """Whether ``ref`` is a path or URI rather than a ``layer.name`` table name."""
    return "/" in ref or "\\" in ref or "://" in ref or ref.startswith(".")


def is_system(name: str) -> bool:
    """Whether a table belongs to the lake's own bookkeeping (``_system.ingest_ledger``)."""
    return name.startswith(SYSTEM_PREFIX)


def quarantine_name(target: str) -> str:
    """``bronze.orders`` -> ``quarantine.bronze_orders``."""
    return f"{QUARANTINE_LAYER}." + target.replace(".", "_")


def training_table(name: str) -> str:
    """The table holding a saved training frame: ``training.<name>``."""
    return f"{TRAINING_LAYER}.{name}"


def serving_log_table(project: str) -> str:
    """The table of a feature server's request log: ``logs.serving_<project>``."""
    return f"{LOGS_LAYER}.serving_" + re.sub(r"[^a-z0-9_]", "_", project.lower())


def feature_view_dataset(view: str) -> str:
    """The catalog dataset of a feature view: ``feature.<view>``."""
    return FEATURE_VIEW_PREFIX + view


def feature_service_dataset(service: str) -> str:
    """The catalog dataset of a feature service: ``feature_service.<service>``."""
    return FEATURE_SERVICE_PREFIX + service
