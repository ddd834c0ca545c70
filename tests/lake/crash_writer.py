"""A Spark job that starts a large write and stalls mid-way, for the SIGKILL test.

Run as ``python -m tests.lake.crash_writer TABLE``; settings come from LAKE_* variables.
Task 0 writes its rows at once; every other task stalls, so the write is caught with
files on storage and no commit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pyarrow as pa

from lake import Lake


def stall(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None and ctx.partitionId() > 0:
        time.sleep(600)
    yield from batches


def main() -> None:
    lake = Lake()
    spark = lake.spark(app_name="crash-writer")
    df = spark.range(0, 40_000, numPartitions=4).selectExpr("id", "'crash' as tag")
    df = df.mapInArrow(stall, df.schema)
    print("writing", flush=True)
    lake.table(sys.argv[1]).write(df)
    print("committed (should not happen)", flush=True)


if __name__ == "__main__":
    main()
