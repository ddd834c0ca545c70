"""Every error the lake raises on purpose: one root (``LakeError``), a branch per concern.

The root and the catalog's branch live in :mod:`catalog.errors` (the catalog is the
lowest layer and imports nothing from ``lake``); this module re-exports them and holds
every other branch, so ``from lake.errors import X`` finds any error. Each error carries
context fields (``table``, ``version``, ``job``, ``source_file``, ``line``, ``column``...)
set where it is raised; the CLI shows them, and ``--json`` prints them as an object.
"""

from __future__ import annotations

from typing import Any

from catalog.errors import (
    CatalogConnectionError,
    CatalogError,
    DatasetNotFoundError,
    LakeError,
    RunNotFoundError,
    TrainingDatasetNotFoundError,
)

__all__ = [
    "CatalogConnectionError",
    "CatalogError",
    "CatalogUnavailableError",
    "CommitNotRecordedError",
    "ConcurrentWriteError",
    "ConfigError",
    "ConsoleError",
    "DatasetNotFoundError",
    "DatasetRefError",
    "ExportError",
    "ExportExistsError",
    "FeatureError",
    "HandoffError",
    "InvalidPredicateError",
    "JobError",
    "JobSpecError",
    "LakeError",
    "LakeWarning",
    "MergeError",
    "MonitorError",
    "NotInstalledError",
    "PipelineError",
    "OnlineRequestError",
    "OnlineStoreError",
    "QualityError",
    "QualityGateError",
    "ReadOnlyError",
    "RetentionError",
    "RunNotFoundError",
    "SQLError",
    "SchemaMismatchError",
    "ServingError",
    "SourceError",
    "SourceFileError",
    "SparkError",
    "SplitError",
    "StorageError",
    "SuiteError",
    "TableError",
    "TableExistsError",
    "TableNotFoundError",
    "ThresholdError",
    "TrainingDatasetNotFoundError",
    "UnknownDatasetError",
    "UnknownFeatureError",
    "UnknownVersionError",
    "UnsupportedTableFeatureError",
    "VersionNotFoundError",
]


class LakeWarning(UserWarning):
    """Warnings the project itself emits (tests turn them into errors)."""


# ---------------------------------------------------------------- settings, engines


class ConfigError(LakeError, ValueError):
    """A setting is missing, malformed or contradicts another one."""


class NotInstalledError(LakeError, ImportError):
    """An optional engine is not installed; the message names what to install."""


class StorageError(LakeError, OSError):
    """The object store or local directory cannot be read or written."""


class SparkError(LakeError, RuntimeError):
    """Spark could not start or a Spark job failed."""


# -------------------------------------------------------------------------- tables


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


# ------------------------------------------------------- the commit and its record


class CatalogUnavailableError(CatalogConnectionError):
    """The catalog could not be reached before a write: nothing was committed.

    Context: ``table``, ``committed`` (always False).
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, committed=False, **context)


class CommitNotRecordedError(CatalogConnectionError):
    """The data was committed to Delta, but the catalog could not record the version.

    The Delta log is the truth: the version is recorded the next time the lake writes
    the table, or by ``lake catalog repair``; a retry of the same call does not write the
    rows again. Context: ``table``, ``version``, ``committed`` (always True).
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, committed=True, **context)


# ---------------------------------------------------------------------------- jobs


class JobSpecError(LakeError, ValueError):
    """A job is declared wrongly; the message names the job and the field."""


class JobError(LakeError):
    """A job could not run; nothing was committed (the message says why and where)."""


class SourceFileError(JobError, ValueError):
    """A source file cannot be read at all (not the format it claims, unreadable)."""


class PipelineError(LakeError):
    """Some steps of a pipeline run failed (the others ran); ``report`` says which and why."""

    def __init__(self, message: str, report: Any | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.report = report


# ------------------------------------------------------------------------- quality


class QualityError(LakeError):
    """Base of the quality gate's errors."""


class SuiteError(QualityError, ValueError):
    """A suite file is malformed; the message names the file and the entry."""


class QualityGateError(QualityError):
    """A suite with policy ``fail`` (or an unpinnable failure) stopped the commit.

    ``report`` holds the validation result (a :class:`lake.quality.gate.QualityReport`).
    """

    def __init__(self, message: str, report: Any | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.report = report


# ----------------------------------------------------------------------- console


class ConsoleError(LakeError):
    """A console request refused: ``status`` is the HTTP status (401 sign in, 403 not allowed, 400/413 bad input)."""

    def __init__(self, status: int, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.status = status


# ----------------------------------------------------------------------------- SQL


class SQLError(LakeError):
    """A query failed: the message is DuckDB's, with the position in the query."""


class ReadOnlyError(SQLError):
    """A statement would have written a lake table."""


# ---------------------------------------------------------------------- features


class FeatureError(LakeError):
    """A feature store problem; the message names the feature view, feature or entity."""


class ServingError(FeatureError):
    """An online request that cannot be answered; ``status`` is the HTTP status it maps to."""

    status = 400


class UnknownFeatureError(ServingError, LookupError):
    """A feature, feature view or feature service the registry does not know (HTTP 404)."""

    status = 404


class OnlineRequestError(ServingError, ValueError):
    """A malformed request: a missing join key, entity columns of different lengths... (HTTP 422)."""

    status = 422


class OnlineStoreError(ServingError, ConnectionError):
    """The online store or the registry cannot be reached (HTTP 503)."""

    status = 503


# ----------------------------------------------------------------------- hand-off


class HandoffError(LakeError):
    """Base of the errors raised while handing a dataset to training."""


class DatasetRefError(HandoffError, ValueError):
    """A dataset reference (``training:<id>``, ``churn_v1``, ``gold.x@3``) is malformed or contradictory."""


class UnknownDatasetError(HandoffError, LookupError):
    """No saved training dataset or curated table answers to the reference."""


class UnknownVersionError(HandoffError, LookupError):
    """The dataset exists but not at the version asked for."""


class SplitError(HandoffError, ValueError):
    """A split definition is invalid (fractions, names, key columns) or names an unknown split."""


class ExportError(HandoffError):
    """A snapshot could not be exported (target unreachable, unsupported scheme...)."""


class ExportExistsError(ExportError, FileExistsError):
    """The export target already holds files; pass ``overwrite=True`` (``--overwrite``) to replace an export."""


# --------------------------------------------------------------------- monitoring


class MonitorError(LakeError):
    """Base of the errors raised while building a drift report."""


class SourceError(MonitorError, ValueError):
    """A reference or current set cannot be resolved (bad spec, empty window, no common columns)."""


class ThresholdError(MonitorError, ValueError):
    """A threshold names an unknown metric or has a value that makes no sense."""


# ----------------------------------------------------------------------- service


class ServiceError(LakeError):
    """A request to ``lake serve`` failed: ``status`` is its HTTP status (401, 403, 404...), the message its reason."""

    def __init__(self, message: str, status: int = 0, **context: Any) -> None:
        super().__init__(message, status=status or None, **context)
        self.status = status
