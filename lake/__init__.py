"""The lake: Delta tables written by Spark and Python, committed through delta-rs."""

from __future__ import annotations

from lake.config import Settings, load_settings
from lake.errors import LakeError
from lake.lakehouse import Lake
from lake.results import CommitResult
from lake.table import Table

__all__ = ["CommitResult", "Lake", "LakeError", "Settings", "Table", "load_settings"]
