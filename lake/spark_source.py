"""A Spark Python data source that reads a list of Delta data files through pyarrow.

Used where Spark's JVM cannot reach the files (``s3://`` without s3a). Each
input partition is a group of files; executors read them with pyarrow and
yield Arrow record batches.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from lake.spark_files import read_files

SOURCE_NAME = "lake_delta_files"


class _Files(InputPartition):
    def __init__(self, files: list[dict[str, Any]]) -> None:
        super().__init__(files)
        self.files = files


class LakeFilesReader(DataSourceReader):
    def __init__(self, options: dict[str, str], schema: StructType) -> None:
        self.options = options
        self.arrow_schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(options["arrow_schema"])))

    def partitions(self) -> list[InputPartition]:
        files = json.loads(self.options["files"])
        per_task = max(1, int(self.options.get("files_per_task", "1")))
        return [_Files(files[i : i + per_task]) for i in range(0, len(files), per_task)] or [_Files([])]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        files = partition.files if isinstance(partition, _Files) else partition.value
        yield from read_files(
            self.options["fs_kind"],
            json.loads(self.options["fs_kwargs"]),
            self.options["root"],
            files,
            self.arrow_schema,
            self.options.get("path_column") or None,
            self.options.get("mapping") or "none",
        )


class LakeFilesSource(DataSource):
    """``spark.read.format("lake_delta_files")``: options built by :mod:`lake.spark_io`."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> StructType:
        # JSON, not a DDL string: column names may hold spaces, dots, quotes, colons
        return StructType.fromJson(json.loads(self.options["spark_schema"]))

    def reader(self, schema: StructType) -> DataSourceReader:
        return LakeFilesReader(dict(self.options), schema)
