"""Delta tables written and read by Spark (executors write, the driver commits through delta-rs)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from lake.duck import connect
from lake.errors import LakeError, MergeError, SchemaMismatchError
from lake.lakehouse import Lake

pytestmark = pytest.mark.spark


def frame(spark: Any, start: int, n: int) -> Any:
    return spark.range(start, start + n).selectExpr(
        "id",
        "cast(id % 5 as int) as bucket",
        "concat('name-', id) as name",
        "cast(id as decimal(12, 2)) / 4 as price",
        "timestamp_micros(1704067200000000 + id * 3600000000 + 123) as ts",
        "date_add(date'2024-01-01', cast(id % 40 as int)) as day",
        "if(id % 7 = 0, null, id * 0.5) as maybe",
    )


def sorted_rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def read_everywhere(lake: Lake, name: str) -> dict[str, pa.Table]:
    uri, opts = lake.table(name).uri, lake.storage.delta_options()
    con = connect(lake.storage)
    return {
        "delta-rs": DeltaTable(uri, storage_options=opts).to_pyarrow_table(),
        "duckdb": con.execute(f"SELECT * FROM delta_scan('{uri}')").fetch_arrow_table(),
        "polars": pl.read_delta(uri, storage_options=opts or None).to_arrow(),
    }


def test_spark_write_is_read_identically_by_independent_readers(lake: Lake, spark: Any) -> None:
    t = lake.table("bronze.spark_events")
    result = t.write(frame(spark, 0, 500), partition_by=["bucket"])
    assert (result.operation, result.version, result.rows_written) == ("CREATE", 0, 500)
    t.write(frame(spark, 500, 100))
    expected = sorted_rows(pa.Table.from_pandas(frame(spark, 0, 600).toPandas(), preserve_index=False))
    for reader, table in read_everywhere(lake, "bronze.spark_events").items():
        rows = sorted_rows(table.select(["id", "bucket", "name", "price", "ts", "day", "maybe"]))
        assert len(rows) == 600, reader
        for got, want in zip(rows, expected, strict=True):
            assert got["name"] == want["name"] and got["bucket"] == want["bucket"], reader
            assert Decimal(str(got["price"])) == Decimal(str(want["price"])), reader
            assert got["day"] == want["day"], reader
            assert (got["maybe"] is None) == (want["maybe"] is None), reader
            assert pd.Timestamp(got["ts"]).tz_localize(None) == pd.Timestamp(want["ts"]).tz_localize(None), reader
    back = t.to_spark(spark).orderBy("id").toPandas()
    assert back["id"].tolist() == list(range(600))
    assert back.columns.tolist() == ["id", "bucket", "name", "price", "ts", "day", "maybe"]


def test_file_statistics_are_exact_and_safe(local_lake: Lake, spark: Any) -> None:
    t = local_lake.table("bronze.stats")
    t.write(frame(spark, 0, 300).repartition(3))
    log = Path(t.uri, "_delta_log", "00000000000000000000.json").read_text().splitlines()
    adds = [json.loads(line)["add"] for line in log if '"add"' in line]
    assert len(adds) == 3
    for add in adds:
        stats = json.loads(add["stats"])
        data = pq.read_table(f"{t.uri}/{add['path']}")
        assert stats["numRecords"] == data.num_rows
        ids = data.column("id").to_pylist()
        assert stats["minValues"]["id"] == min(ids) and stats["maxValues"]["id"] == max(ids)
        assert stats["nullCount"]["maybe"] == data.column("maybe").null_count
        # Timestamps keep microseconds in the data; stats (milliseconds) must still bound them.
        ts = [v.replace(tzinfo=None) for v in data.column("ts").to_pylist()]
        lo = dt.datetime.fromisoformat(stats["minValues"]["ts"].rstrip("Z"))
        hi = dt.datetime.fromisoformat(stats["maxValues"]["ts"].rstrip("Z"))
        assert lo <= min(ts) and max(ts) <= hi


def test_spark_read_prunes_files_and_filters(lake: Lake, spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    from lake.spark_io import file_key

    t = lake.table("silver.pruned")
    t.write(frame(spark, 0, 400), partition_by=["bucket"])
    for start in range(400, 800, 100):
        t.write(frame(spark, start, 100).coalesce(1))
    all_files = len(t.files())
    caplog.set_level(logging.DEBUG, logger="lake.spark_io")
    by_partition = t.to_spark(spark, filter="bucket = 3")
    by_stats = t.to_spark(spark, filter="id >= 700")
    # The file lists the lake handed Spark, on any storage.
    handed = [r.__dict__["lake_files"] for r in caplog.records if getattr(r, "lake_table", "") == t.name]
    partition_files, stats_files = handed
    assert 0 < len(partition_files) < all_files
    assert all("bucket=3/" in f for f in partition_files)
    assert 0 < len(stats_files) <= all_files // 3
    for df, files in ((by_partition, partition_files), (by_stats, stats_files)):
        if lake.storage.is_local:  # Spark's own Parquet scan: exactly these files
            assert sorted(file_key(f) for f in df.inputFiles()) == sorted(file_key(f"{t.uri}/{f}") for f in files)
        else:  # S3: the lake's data source scans one input partition per file handed over
            assert df.rdd.getNumPartitions() == len(files)
    assert sorted(r.id for r in by_partition.select("id").collect()) == [i for i in range(800) if i % 5 == 3]
    assert sorted(r.id for r in by_stats.select("id").collect()) == list(range(700, 800))
    assert t.to_spark(spark, columns=["id"], filter="id < 3").columns == ["id"]


def test_spark_merge_matches_a_pandas_oracle(lake: Lake, spark: Any) -> None:
    t = lake.table("silver.merge")
    # Keys spread over many files: ten appends of interleaved ids.
    for k in range(10):
        t.write(spark.range(0, 200).filter(f"id % 10 = {k}").selectExpr("id", "'v0' as val", "cast(id % 3 as int) as grp"))
    assert len(t.files()) >= 10
    before = t.to_pandas()
    src_pd = pd.DataFrame({"id": list(range(150, 260, 3)), "val": "v1", "grp": 9})
    src_pd.loc[src_pd.id == 153, "val"] = "gone"
    src = spark.createDataFrame(src_pd).selectExpr("id", "val", "cast(grp as int) as grp")
    result = t.merge(src, keys=["id"], delete_when="val = 'gone'")
    oracle = before.set_index("id")
    for row in src_pd.itertuples():
        if row.val == "gone":
            oracle = oracle.drop(index=row.id, errors="ignore")
        else:
            oracle.loc[row.id, ["val", "grp"]] = [row.val, row.grp]
    oracle = oracle.sort_index()
    got = t.to_pandas().set_index("id").sort_index()
    assert got.index.tolist() == oracle.index.tolist()
    assert got["val"].tolist() == oracle["val"].tolist()
    assert got["grp"].astype(int).tolist() == oracle["grp"].astype(int).tolist()
    updated = len([i for i in src_pd.id if i < 200 and i != 153])
    assert result.metrics["rows_updated"] == updated
    assert result.metrics["rows_deleted"] == 1
    assert result.metrics["rows_inserted"] == len([i for i in src_pd.id if i >= 200])
    # Only files holding a merged key were rewritten.
    assert result.metrics["files_removed"] <= 10


def test_spark_merge_refuses_duplicate_keys_and_bad_schema(local_lake: Lake, spark: Any) -> None:
    t = local_lake.table("silver.merge_bad")
    t.write(spark.range(0, 10).selectExpr("id", "'a' as val"))
    with pytest.raises(MergeError, match="several rows"):
        t.merge(spark.range(0, 3).union(spark.range(1, 2)).selectExpr("id", "'b' as val"), keys=["id"])
    with pytest.raises(SchemaMismatchError, match="'val'"):
        t.merge(spark.range(0, 3).selectExpr("id", "cast(id as int) as val"), keys=["id"])
    assert t.version() == 0


def test_spark_replace_where_by_partition_and_by_rows(lake: Lake, spark: Any) -> None:
    t = lake.table("gold.replace")
    t.write(frame(spark, 0, 100), partition_by=["bucket"])
    t.write(frame(spark, 0, 100).filter("bucket = 2").withColumn("name", pl_lit(spark, "new")),
            mode="overwrite", replace_where="bucket = 2")
    df = t.to_pandas()
    assert len(df) == 100
    assert set(df[df.bucket == 2].name) == {"new"} and "new" not in set(df[df.bucket != 2].name)
    t.write(frame(spark, 0, 10).withColumn("name", pl_lit(spark, "low")), mode="overwrite", replace_where="id < 10")
    df = t.to_pandas()
    assert len(df) == 100
    assert set(df[df.id < 10].name) == {"low"}
    with pytest.raises(LakeError, match="does not select"):
        t.write(frame(spark, 0, 20), mode="overwrite", replace_where="id < 10")
    assert len(t.to_pandas()) == 100


def pl_lit(spark: Any, value: str) -> Any:
    from pyspark.sql import functions as F

    return F.lit(value)


def test_spark_schema_enforcement_and_evolution(lake: Lake, spark: Any) -> None:
    t = lake.table("bronze.spark_schema")
    t.write(spark.range(0, 5).selectExpr("id", "'x' as tag"))
    with pytest.raises(SchemaMismatchError) as err:
        t.write(spark.range(0, 5).selectExpr("cast(id as string) as id", "'x' as tag"))
    assert "'id'" in str(err.value) and "int64" in str(err.value)
    with pytest.raises(SchemaMismatchError, match="'extra'"):
        t.write(spark.range(0, 5).selectExpr("id", "'x' as tag", "1.0 as extra"))
    assert t.version() == 0
    r = t.write(spark.range(5, 10).selectExpr("id", "'y' as tag", "1.5 as extra"), schema_mode="merge")
    assert r.schema_changed and t.schema().names == ["id", "tag", "extra"]
    pdf = t.to_pandas().sort_values("id")
    assert pdf["extra"].isna().sum() == 5 and (pdf["extra"].dropna() == 1.5).all()
    assert t.to_spark(spark).filter("extra is null").count() == 5


def test_spark_idempotent_write_and_time_travel(lake: Lake, spark: Any) -> None:
    t = lake.table("bronze.spark_idem")
    t.write(frame(spark, 0, 10), txn=("job-a", 7))
    assert t.write(frame(spark, 0, 10), txn=("job-a", 7)).skipped
    t.write(frame(spark, 10, 10), txn=("job-a", 8))
    assert t.to_spark(spark).count() == 20
    assert t.to_spark(spark, version=0).count() == 10


def test_partition_values_with_special_characters(lake: Lake, spark: Any) -> None:
    t = lake.table("bronze.special")
    rows = [(1, "a b"), (2, "x/y"), (3, "é=ü%"), (4, None), (5, "plain")]
    t.write(spark.createDataFrame(rows, "id long, part string"), partition_by=["part"])
    expected = sorted(rows, key=lambda r: r[0])
    for reader, table in read_everywhere(lake, "bronze.special").items():
        got = sorted(((r["id"], r["part"]) for r in table.to_pylist()), key=lambda r: r[0])
        assert got == expected, reader
    back = sorted((r.id, r.part) for r in t.to_spark(spark).collect())
    assert back == expected
    assert [r.id for r in t.to_spark(spark, filter="part = 'x/y'").collect()] == [2]
    # Rewrites (merge) remove exactly the files they replace, whatever the folder names.
    t.merge(spark.createDataFrame([(2, "x/y"), (3, "é=ü%"), (6, "a b")], "id long, part string"), keys=["id"])
    assert sorted(r.id for r in t.to_spark(spark).collect()) == [1, 2, 3, 4, 5, 6]
    for reader, table in read_everywhere(lake, "bronze.special").items():
        assert sorted(table.column("id").to_pylist()) == [1, 2, 3, 4, 5, 6], reader


def test_a_spark_table_from_naive_datetimes_takes_the_same_data_from_pandas(local_lake: Lake, spark: Any) -> None:
    """Issue 17: Spark makes `timestamp` (UTC instants) from naive datetimes under the lake's UTC session
    time zone; the same naive data written from pandas is taken as UTC too, not refused."""
    naive = [dt.datetime(2024, 5, 1, 12, 30), dt.datetime(2024, 5, 2, 8, 0)]
    table = local_lake.table("silver.spark_times")
    table.write(spark.createDataFrame([(1, naive[0])], "id long, at timestamp"))
    assert table.schema().field("at").type == pa.timestamp("us", tz="UTC")
    table.write(pd.DataFrame({"id": [2], "at": [naive[1]]}))
    rows = sorted(table.to_spark(spark).collect())
    assert [r["at"] for r in rows] == naive  # Spark (UTC session) gives back the same wall clock
    assert list(table.to_pandas().sort_values("id")["at"]) == [pd.Timestamp(t, tz="UTC") for t in naive]
