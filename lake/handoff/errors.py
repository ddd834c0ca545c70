"""Errors of the training hand-off: one branch of :class:`~lake.errors.LakeError`."""

from __future__ import annotations

from lake.errors import LakeError


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
