"""Point-in-time retrieval on a Spark cluster: the same answers as the DuckDB engine, scaled out.

No cross or range join. For each feature view, the entity rows and the source rows (read
from the pinned Delta version by the executors) are both partitioned by a hash of the join
keys into groups sized to :attr:`~lake.config.FeaturesSettings.spark_group_rows`
(``cogroup``). Each group is searched on an executor by the DuckDB engine's own code
(:func:`lake.features.pit_index.arrange`: one row per (keys, time), the latest created time
then the greatest values win; a sort and one binary search per entity row, TTL checked), so
both engines share one definition of the answer.

Hot keys: a key with more entity rows than half a group is salted: its entity rows are
spread over several groups and its source rows copied to each, so one key never puts the
job on one task. Memory: an executor task holds one group (entity rows + source rows of the
keys hashed there, about ``spark_group_rows`` rows) plus its index; one key's whole source
history must fit in a task (source-side salting by time is not done).

The per-view answers are joined back to the entity rows on their position (an equi-join),
on-demand views run on the executors (``mapInArrow``), and the frame is sorted by the
entity frame's row order. Nothing is collected to the driver.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lake.data import is_spark_dataframe
from lake.errors import FeatureError
from lake.features import pit_index
from lake.features.pit_plan import (
    OnDemandRequest,
    Plan,
    ViewRequest,
    apply_on_demand,
    feature_columns,
    index_source,
    output_names,
)
from lake.lakehouse import Lake
from lake.spark_io import quote, spark_schema_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

POS = "__lake_pos"
"""The entity row's position: the frame comes back in this order."""
MAX_SALT = 256
"""The most groups one hot key is spread over."""


def entity_frame(spark: SparkSession, entities: Any, timestamp_column: str) -> SparkDataFrame:
    """The entity rows as a Spark DataFrame with their position (``POS``).

    Arrow tables (already checked by :func:`~lake.features.pit_plan.entity_table`) are
    handed to Spark with their row numbers; a Spark DataFrame keeps its own partition order
    (``monotonically_increasing_id``), and its event times are checked here.
    """
    from pyspark.sql import functions as F  # heavy: pyspark, only on the Spark engine

    if is_spark_dataframe(entities):
        if timestamp_column not in entities.columns:
            raise FeatureError(f"the entity frame has no {timestamp_column!r} column (columns: "
                               f"{', '.join(entities.columns)}); pass timestamp_column=... to name it")
        kind = entities.schema[timestamp_column].dataType.typeName()
        if kind not in ("timestamp", "timestamp_ntz", "date"):
            raise FeatureError(f"entity column {timestamp_column!r} has type {kind}; it must hold timestamps")
        if entities.filter(F.col(quote(timestamp_column)).isNull()).limit(1).count():
            raise FeatureError(f"entity column {timestamp_column!r} has null timestamps; every entity row needs "
                               "an event time")
        return entities.withColumn(POS, F.monotonically_increasing_id())
    table = entities.append_column(POS, pa.array(np.arange(entities.num_rows, dtype=np.int64)))
    return spark.createDataFrame(table)


def micros(column: Any) -> Any:
    """A timestamp, naive timestamp (UTC) or date column as microseconds since the epoch."""
    from pyspark.sql import functions as F  # heavy: pyspark, only on the Spark engine

    return F.unix_micros(column.cast("timestamp"))


def join(spark: SparkSession, lake: Lake, entities: SparkDataFrame, the_plan: Plan,
         sources: dict[str, dict[str, Any]], timestamp_column: str, full_names: bool,
         entity_rows: int) -> SparkDataFrame:
    """The point-in-time frame (entity columns, then the features, then ``POS``), unsorted.

    The views are chained: each view's cogroup carries every column so far (entity columns
    renamed ``__lake_c<i>``, earlier features ``__lake_v<j>``) and adds its own, so no join
    back to the entity rows is needed.
    """
    from pyspark.sql import functions as F  # heavy: pyspark, only on the Spark engine

    entity_columns = [c for c in entities.columns if c != POS]
    names = output_names(the_plan, entity_columns, full_names)
    frame = entities.select(POS, micros(F.col(quote(timestamp_column))).alias("__t"),
                            *[F.col(quote(c)).alias(f"__lake_c{i}") for i, c in enumerate(entity_columns)])
    at = 0
    for req in the_plan.views:
        frame = view_frame(spark, lake, frame, req, sources[req.table.name], entity_rows, entity_columns, at)
        at += len(req.features)
    out = frame.select(*[F.col(f"__lake_c{i}").alias(c) for i, c in enumerate(entity_columns)],
                       *[F.col(f"__lake_v{j}").alias(name) for j, name in enumerate(names)], F.col(POS))
    if the_plan.on_demand:
        out = on_demand_frame(out, the_plan, full_names)
    return out


def source_rows(req: ViewRequest, version: int) -> int:
    """Rows of the pinned version, from the Delta log alone (no data read)."""
    actions = pa.table(req.table.delta(version).get_add_actions(flatten=True))
    if "num_records" not in actions.column_names or not actions.num_rows:
        return 0
    return int(pa.compute.sum(actions.column("num_records")).as_py() or 0)


def view_frame(spark: SparkSession, lake: Lake, entities: SparkDataFrame, req: ViewRequest,
               source: dict[str, Any], entity_rows: int, entity_columns: list[str], first: int) -> SparkDataFrame:
    """Every column of ``entities`` plus the view's wanted features (``__lake_v<first>...``); the entity
    frame's own columns are carried as ``__lake_c<i>`` (``entity_columns`` names them)."""
    from pyspark.sql import functions as F  # heavy: pyspark, only on the Spark engine
    from pyspark.sql.types import StructField, StructType  # heavy: pyspark, as above

    src = index_source(req, source)
    version = int(source["version"])
    data = req.table.to_spark(spark, version=version)
    types = {f.name: f.dataType for f in data.schema.fields}
    key_cols = list(src.keys.items())
    for key, col in key_cols + [("timestamp", src.timestamp)] + ([("created", src.created)] if src.created else []):
        if col not in types:
            raise FeatureError(f"feature view {req.view.name}: column {col!r} ({key}) is not in {req.table.name} "
                               f"v{version} (columns: {', '.join(types)})")
    feats = list(src.features.items())
    missing = [col for _, col in feats if col not in types]
    if missing:
        raise FeatureError(f"feature view {req.view.name}: {req.table.name} v{version} has no column(s) "
                           f"{', '.join(missing)}")
    rows = data.select(
        *[F.col(quote(col)).alias(f"k_{i}") for i, (_, col) in enumerate(key_cols)],
        micros(F.col(quote(src.timestamp))).alias("__t"),
        *([F.col(quote(src.created)).cast("timestamp").alias("__c")] if src.created else []),
        *[F.col(quote(col)).alias(f"f_{i}") for i, (_, col) in enumerate(feats)],
    ).filter(" AND ".join([f"k_{i} IS NOT NULL" for i in range(len(key_cols))] + ["__t IS NOT NULL"]))
    carried = list(entities.columns)
    position_of = {c: f"__lake_c{i}" for i, c in enumerate(entity_columns)}
    probes = entities.select(
        *carried,
        *[F.col(position_of[req.join_keys[key]]).cast(types[col]).alias(f"k_{i}")
          for i, (key, col) in enumerate(key_cols)])
    key_hash = F.xxhash64(*[F.col(f"k_{i}") for i in range(len(key_cols))])
    rows, probes = rows.withColumn("__kh", key_hash), probes.withColumn("__kh", key_hash)

    group_rows = lake.settings.features.spark_group_rows
    total = entity_rows + source_rows(req, version)
    # Enough groups for every core once there is work for them; one group for a handful of rows.
    groups = max(math.ceil(total / group_rows), min(spark.sparkContext.defaultParallelism * 2,
                                                    math.ceil(total / 50_000)), 1)
    hot: list[tuple[int, int]] = []
    if entity_rows > group_rows // 2:
        counts = (probes.groupBy("__kh").count().filter(F.col("count") > group_rows // 2)
                  .orderBy(F.desc("count")).limit(10_000).collect())
        hot = [(int(r["__kh"]), min(MAX_SALT, math.ceil(r["count"] / (group_rows // 2)))) for r in counts]
    if hot:
        salts = F.broadcast(spark.createDataFrame(hot, "__kh long, __n int"))
        probes = probes.join(salts, "__kh", "left").withColumn(
            "__salt", F.when(F.col("__n").isNull(), F.lit(0)).otherwise(F.pmod(F.xxhash64(POS), F.col("__n"))))
        rows = rows.join(salts, "__kh", "left").withColumn(
            "__salt", F.explode(F.sequence(F.lit(0), F.coalesce(F.col("__n"), F.lit(1)) - 1)))
    else:
        probes, rows = probes.withColumn("__salt", F.lit(0)), rows.withColumn("__salt", F.lit(0))
    group = F.pmod(F.pmod(F.col("__kh"), F.lit(groups)) + F.col("__salt"), F.lit(groups))
    probes = probes.select(group.alias("__g"), *carried, *[f"k_{i}" for i in range(len(key_cols))])
    rows = rows.select(group.alias("__g"), *[f"k_{i}" for i in range(len(key_cols))], "__t",
                       *(["__c"] if src.created else []), *[f"f_{i}" for i in range(len(feats))])

    position = {name: i for i, (name, _) in enumerate(feats)}
    wanted = [position[f] for f in req.features]
    out_schema = StructType(list(entities.schema.fields)
                            + [StructField(f"__lake_v{first + j}", types[feats[i][1]]) for j, i in enumerate(wanted)])
    ttl = req.view.ttl
    ttl_us = ttl // dt.timedelta(microseconds=1) if ttl and ttl > dt.timedelta(0) else None
    search = searcher(len(key_cols), len(feats), wanted, ttl_us, src.created is not None,
                      pa.schema([pa.field(f.name, _arrow_type(f.dataType)) for f in out_schema.fields]))
    return probes.groupBy("__g").cogroup(rows.groupBy("__g")).applyInArrow(search, schema=out_schema)


def _arrow_type(spark_type: Any) -> pa.DataType:
    from pyspark.sql.pandas.types import to_arrow_type  # heavy: pyspark, only on the Spark engine

    return to_arrow_type(spark_type, timezone="UTC")  # the session time zone the lake sets


def searcher(n_keys: int, n_features: int, wanted: list[int], ttl_us: int | None, created: bool,
             schema: pa.Schema) -> Any:
    """The function each cogrouped partition runs on an executor: (entity rows with every column so
    far, source rows) -> the entity rows with the view's features added."""
    keys = [str(i) for i in range(n_keys)]
    features = [str(i) for i in range(n_features)]
    carried = schema.names[:len(schema.names) - len(wanted)]

    def search(probes: pa.Table, rows: pa.Table) -> pa.Table:
        if not probes.num_rows:
            return schema.empty_table()
        index = pit_index.arrange(rows, keys, features, created)
        probe_keys = probes.select([f"k_{k}" for k in keys]).rename_columns(keys)
        times = np.asarray(probes.column("__t").to_numpy(), dtype=np.int64)
        match = index.lookup(probe_keys, times, ttl_us)
        columns = [probes.column(c) for c in carried] + [index.gather(features[i], match) for i in wanted]
        return pa.table(columns, names=schema.names).cast(schema)

    return search


def on_demand_frame(frame: SparkDataFrame, the_plan: Plan, full_names: bool) -> SparkDataFrame:
    """Apply the on-demand views (Feast's own transformation code) on the executors."""
    requests = [(base64.b64encode(r.view.to_proto().SerializeToString()).decode(), list(r.features))
                for r in the_plan.on_demand]
    refs = list(the_plan.refs)
    produced = feature_columns(the_plan, full_names)
    keep_sample = frame.limit(16).toArrow()  # a few rows: the transformations' output types
    sample = apply_on_demand(keep_sample, the_plan.on_demand, refs, produced, full_names)
    schema = sample.schema

    def transform(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # heavy: feast (protobuf definitions), loaded on the executor that runs the transformation
        from feast import OnDemandFeatureView
        from feast.protos.feast.core.OnDemandFeatureView_pb2 import OnDemandFeatureView as OdfvProto

        views = [OnDemandRequest(OnDemandFeatureView.from_proto(OdfvProto.FromString(base64.b64decode(p))), f)
                 for p, f in requests]
        for batch in batches:
            done = apply_on_demand(pa.Table.from_batches([batch]), views, refs, produced, full_names)
            yield from done.select(schema.names).cast(schema).to_batches()

    return frame.mapInArrow(transform, spark_schema_of(schema))
