"""Errors raised by the lake: one root (``LakeError``), a subtree per concern."""

from __future__ import annotations

from catalog.errors import (
    CatalogConnectionError,
    CatalogError,
    DatasetNotFoundError,
    LakeError,
    RunNotFoundError,
)

__all__ = [
    "CatalogConnectionError",
    "CatalogError",
    "ConfigError",
    "ConcurrentWriteError",
    "DatasetNotFoundError",
    "LakeError",
    "LakeWarning",
    "NotInstalledError",
    "RunNotFoundError",
    "SchemaMismatchError",
    "StorageError",
    "TableError",
    "TableExistsError",
    "TableNotFoundError",
    "VersionNotFoundError",
    "UnsupportedTableFeatureError",
    "InvalidPredicateError",
    "MergeError",
    "SparkError",
    "RetentionError",
]


class LakeWarning(UserWarning):
    """Warnings the project itself emits (tests turn them into errors)."""


class ConfigError(LakeError, ValueError):
    """A setting is missing, malformed or contradicts another one."""


class NotInstalledError(LakeError, ImportError):
    """An optional engine is not installed; the message names what to install."""


class StorageError(LakeError, OSError):
    """The object store or local directory cannot be read or written."""


class SparkError(LakeError, RuntimeError):
    """Spark could not start or a Spark job failed."""


class TableError(LakeError):
    """Base of the errors about Delta tables."""


class TableNotFoundError(TableError, LookupError):
    """No Delta table exists at the name or location given."""


class VersionNotFoundError(TableError, LookupError):
    """The table exists but has no such version (or none at that time)."""


class TableExistsError(TableError):
    """A table already exists where a new one was to be created."""


class SchemaMismatchError(TableError, ValueError):
    """Data does not fit the table's schema (names the columns and types)."""


class InvalidPredicateError(TableError, ValueError):
    """A predicate or filter cannot be parsed or refers to unknown columns."""


class MergeError(TableError, ValueError):
    """A merge cannot be applied (e.g. several source rows match one target row)."""


class ConcurrentWriteError(TableError):
    """Another writer changed the table in a way that conflicts with this write."""


class UnsupportedTableFeatureError(TableError):
    """The table uses a Delta feature this reader cannot honor correctly."""


class RetentionError(TableError, ValueError):
    """A vacuum was asked with a retention shorter than the safe minimum."""
