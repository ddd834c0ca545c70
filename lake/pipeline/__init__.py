"""Jobs: declared sources into lake tables, run locally or on a Spark cluster."""

from __future__ import annotations

from lake.pipeline.spec import CsvOptions, FileSource, Job, SqlSource, TableSource

__all__ = ["CsvOptions", "FileSource", "Job", "SqlSource", "TableSource"]
