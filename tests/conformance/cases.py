"""One hand-built table per protocol feature or edge case, with the rows the protocol defines.

Each case writes its table with :class:`~tests.conformance.delta_builder.DeltaBuilder` and
returns the expected rows per version, computed from the rows it wrote (minus what its
deletion vectors delete), never from a reader. ``refused`` declares which readers refuse
the table (and the feature they must name); every other reader must return exactly the
expected rows. The README's features x readers table is generated from these
declarations, which the suite checks (``tests/conformance/test_conformance.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conformance import roaring
from tests.conformance.delta_builder import Array, DeltaBuilder, Field, Map, Struct

Rows = list[dict[str, Any]]
UTC = dt.UTC

ALL_READERS = ("to_arrow", "to_arrow_filter", "to_pandas", "to_polars", "to_spark", "to_spark_filter",
               "lake_sql", "lake_at", "feature_index", "drift_source", "file_reader", "handoff")
"""Every reader the suite drives (see :mod:`tests.conformance.readers`)."""

LABELS = {
    "to_arrow": "`to_arrow`", "to_arrow_filter": "`to_arrow(filter=)`", "to_pandas": "`to_pandas`",
    "to_polars": "`to_polars`", "to_spark": "`to_spark`", "to_spark_filter": "`to_spark(filter=)`",
    "lake_sql": "`lake sql`", "lake_at": "`lake_at`", "feature_index": "feature index",
    "drift_source": "drift source", "file_reader": "incremental materialize", "handoff": "hand-off",
}


@dataclass
class Built:
    """What a case built: the table's versions and their rows."""

    versions: dict[int, Rows | None]
    """Rows per version (None: the version cannot be rebuilt; readers must say so)."""
    filter: str = "id >= 0"
    """The predicate filtered readers use."""
    keep: Callable[[dict[str, Any]], bool] = lambda r: r["id"] >= 0
    """The same predicate in Python: which expected rows a filtered read returns."""
    time_column: str | None = None
    """A timestamp column (the point-in-time index reads it as event time)."""

    @property
    def latest(self) -> int:
        return max(self.versions)


@dataclass
class Case:
    name: str
    feature: str
    """The row of the README table."""
    build: Callable[[Path], Built]
    refused: dict[str, str] = field(default_factory=dict)
    """Reader (or ``*``) -> the feature its refusal must name."""
    refused_versions: dict[int, str] = field(default_factory=dict)
    """Versions every reader refuses (time travel), with what the refusal must name."""

    def refused_by(self, reader: str) -> str | None:
        return self.refused.get(reader, self.refused.get("*"))


def matching(rows: Rows, pred: Callable[[dict[str, Any]], bool]) -> Rows:
    return [r for r in rows if pred(r)]


# ------------------------------------------------------------------ the basics


def plain(path: Path) -> Built:
    b = DeltaBuilder(path, [Field("id", "long"), Field("name", "string"), Field("x", "double"),
                            Field("d", "date"), Field("t", "timestamp")])
    rows = [{"id": i, "name": f"n{i}" if i % 3 else None, "x": i / 4, "d": dt.date(2024, 1, 1 + i),
             "t": dt.datetime(2024, 1, 1, i, tzinfo=UTC)} for i in range(6)]
    b.commit([b.add(b.add_file(rows[:3])), b.add(b.add_file(rows[3:]))])
    more = [{"id": 10, "name": "late", "x": 9.0, "d": dt.date(2025, 1, 1), "t": dt.datetime(2025, 1, 1, tzinfo=UTC)}]
    b.commit([b.add(b.add_file(more))])
    return Built({0: rows, 1: rows + more}, filter="x >= 1 AND name IS NOT NULL", time_column="t",
                 keep=lambda r: r["x"] >= 1 and r["name"] is not None)


def partitions(path: Path) -> Built:
    """Partition values with special characters, nulls, and typed (int, date, timestamp) partitions;
    folders escaped as delta-spark escapes them, the log's paths URI-encoded."""
    b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp"), Field("p", "string"),
                            Field("n", "integer"), Field("day", "date")], partition_by=["p", "n", "day"])
    values = ["plain", "a b", "x/y=z", "50%", "it's", "ünï©ødé", "", None]
    actions, rows = [], []
    for i, v in enumerate(values):
        n = None if i == 3 else i
        day = None if i == 5 else dt.date(2024, 2, i + 1)
        chunk = [{"id": i * 10 + k, "t": dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(hours=i * 10 + k),
                  "p": v or None, "n": n, "day": day} for k in range(2)]
        rows += chunk
        actions.append(b.add(b.add_file(chunk, partition={"p": v, "n": None if n is None else str(n),
                                                          "day": None if day is None else day.isoformat()})))
    b.commit(actions)
    return Built({0: rows}, filter="p = 'x/y=z' OR n IS NULL OR p IS NULL", time_column="t",
                 keep=lambda r: r["p"] == "x/y=z" or r["n"] is None or r["p"] is None)


def _mapped_fields() -> list[Field]:
    return [
        Field("id", "long"), Field("t", "timestamp"), Field("my col", "string"), Field("a.b", "double"),
        Field('q"uote\'s', "long"), Field("ünï", "string"),
        Field("s t", Struct([Field("x.y", "long"), Field("z z", "string")])),
        Field("arr", Array(Struct([Field("e f", "long")]))),
        Field("m", Map("string", "long")),
        Field("part col", "string"),
    ]


def _mapped_rows() -> Rows:
    return [{"id": i, "t": dt.datetime(2024, 3, 1, tzinfo=UTC) + dt.timedelta(minutes=i), "my col": f"v{i}",
             "a.b": i * 1.5, 'q"uote\'s': i * 7, "ünï": f"ü{i}", "s t": {"x.y": i, "z z": f"z{i}"},
             "arr": [{"e f": i}, {"e f": -i}], "m": {"k": i}, "part col": "A b/c" if i % 2 else None}
            for i in range(6)]


def column_mapping(mode: str, reader_version: int, *, partitioned: bool = True) -> Callable[[Path], Built]:
    def build(path: Path) -> Built:
        features = ["columnMapping"] if reader_version == 3 else None
        b = DeltaBuilder(path, _mapped_fields(), partition_by=["part col"] if partitioned else [], mapping=mode,
                         protocol=(reader_version, 7 if reader_version == 3 else 5),
                         reader_features=features, writer_features=features)
        rows = _mapped_rows()
        if partitioned:
            b.commit([b.add(b.add_file([r for r in rows if r["part col"]], partition={"part col": "A b/c"})),
                      b.add(b.add_file([r for r in rows if not r["part col"]], partition={"part col": None}))])
        else:
            b.commit([b.add(b.add_file(rows[:3])), b.add(b.add_file(rows[3:]))])
        return Built({0: rows}, filter="`my col` >= 'v2' AND `part col` IS NOT NULL", time_column="t",
                     keep=lambda r: r["my col"] >= "v2" and r["part col"] is not None)
    return build


# ------------------------------------------------------------- deletion vectors

_DV_PROTOCOL = {"protocol": (3, 7), "reader_features": ["deletionVectors"], "writer_features": ["deletionVectors"]}


def _dv_fields() -> list[Field]:
    return [Field("id", "long"), Field("t", "timestamp"), Field("v", "string")]


def _dv_rows(start: int, n: int) -> Rows:
    return [{"id": start + i, "t": dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=start + i),
             "v": f"r{start + i}"} for i in range(n)]


def deletion_vectors(kind: str) -> Callable[[Path], Built]:
    """Version 0: two files. Version 1: rows deleted from the first by a deletion vector
    (``inline``, on disk by UUID with a prefix and another vector before it, by absolute
    path, or a large one with bitmap and run containers)."""
    def build(path: Path) -> Built:
        b = DeltaBuilder(path, _dv_fields(), **_DV_PROTOCOL)  # type: ignore[arg-type]
        n = 10_000 if kind == "large" else 8
        first, second = _dv_rows(0, n), _dv_rows(100_000, 4)
        a1 = b.add_file(first, row_group_size=3000 if kind == "large" else None)
        a2 = b.add_file(second)
        b.commit([b.add(a1), b.add(a2)])
        if kind == "large":
            deleted = list(range(0, 5000)) + list(range(6000, 10_000, 3))
            dv = roaring.inline_descriptor(deleted, use_runs=True)
        else:
            deleted = [0, 3, 7]
            dv = {"inline": lambda: roaring.inline_descriptor(deleted),
                  "disk": lambda: b.dv_on_disk(deleted, prefix="ab", extra_before=[[1, 2]]),
                  "absolute": lambda: b.dv_absolute(deleted)}[kind]()
        b.commit([b.remove(a1), b.add({**a1, "deletionVector": dv, "dataChange": True})], operation="DELETE")
        kept = [r for i, r in enumerate(first) if i not in set(deleted)] + second
        return Built({0: first + second, 1: kept}, filter="id >= 4", time_column="t", keep=lambda r: r["id"] >= 4)
    return build


def dv_protocol_example(path: Path) -> Built:
    """The inline vector printed in PROTOCOL.md (rows 3, 4, 7, 11, 18, 29): its bytes carry
    magic 1681511376 big endian, not the 1681511377 little endian the text specifies."""
    b = DeltaBuilder(path, _dv_fields(), **_DV_PROTOCOL)  # type: ignore[arg-type]
    rows = _dv_rows(0, 32)
    dv = {"storageType": "i", "pathOrInlineDv": "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L",
          "sizeInBytes": 40, "cardinality": 6}
    b.commit([b.add(b.add_file(rows, dv=dv))])
    gone = {3, 4, 7, 11, 18, 29}
    return Built({0: [r for i, r in enumerate(rows) if i not in gone]}, time_column="t")


# ------------------------------------------------------------------ timestamps

EDGES = [dt.datetime(1, 1, 1), dt.datetime(1582, 10, 4, 23, 59, 59, 999999), dt.datetime(1899, 12, 31, 23, 59, 59),
         dt.datetime(1970, 1, 1), dt.datetime(2024, 1, 1, 12, 0, 0, 999),
         dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]
NS_EDGES = [dt.datetime(1677, 9, 22), dt.datetime(1970, 1, 1, 0, 0, 0, 1), dt.datetime(2024, 1, 1, 12, 0, 0, 999),
            dt.datetime(2262, 4, 11)]


def timestamps(storage: str) -> Callable[[Path], Built]:
    """``timestamp`` and ``timestamp_ntz`` columns stored as INT96 or INT64 (ms, us, ns) at
    the edges of the calendar; each value in its own file so statistics skip files."""
    def build(path: Path) -> Built:
        b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp"), Field("n", "timestamp_ntz")],
                         timestamps=storage, protocol=(3, 7), reader_features=["timestampNtz"],
                         writer_features=["timestampNtz"])
        edges = NS_EDGES if storage == "ns" else EDGES
        rows = []
        for i, t in enumerate(edges):
            if storage == "ms":
                t = t.replace(microsecond=t.microsecond // 1000 * 1000)
            rows.append({"id": i, "t": t.replace(tzinfo=UTC), "n": t})
        b.commit([b.add(b.add_file([r])) for r in rows])
        # stats truncate 12:00:00.000999 to .000: a true upper bound needs the lost millisecond
        return Built({0: rows}, filter="t > TIMESTAMP '2024-01-01 12:00:00.0005'", time_column="t",
                     keep=lambda r: r["t"] > dt.datetime(2024, 1, 1, 12, 0, 0, 500, tzinfo=UTC))
    return build


def timestamp_far_filter(path: Path) -> Built:
    """A filter at the far end of the calendar, on microsecond timestamps."""
    b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp")])
    rows = [{"id": i, "t": t.replace(tzinfo=UTC)} for i, t in enumerate(EDGES)]
    b.commit([b.add(b.add_file([r])) for r in rows])
    return Built({0: rows}, filter="t >= TIMESTAMP '9999-12-31 23:59:59.9999'", time_column="t",
                 keep=lambda r: r["t"] >= dt.datetime(9999, 12, 31, 23, 59, 59, 999900, tzinfo=UTC))


# ----------------------------------------------------------------- checkpoints


def checkpoint(kind: str, *, stats_as: str = "json", last: str = "fresh", cleanup: bool = False) -> Callable[[Path], Built]:
    """Five commits (an add per commit, a remove in version 3), a checkpoint of version 2 of
    ``kind``; ``last`` is how ``_last_checkpoint`` reads: ``fresh``, ``missing``, ``stale`` (a
    classic checkpoint of version 1 too, and the pointer left at it) or ``dangling`` (pointing at
    version 1, which has no checkpoint); ``cleanup`` deletes the JSON commits up to the
    checkpoint (versions 0 and 1 are gone then)."""
    def build(path: Path) -> Built:
        v2 = kind.startswith("v2")
        b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp"), Field("p", "string")],
                         partition_by=["p"], protocol=(3, 7) if v2 else (1, 2),
                         reader_features=["v2Checkpoint"] if v2 else None,
                         writer_features=["v2Checkpoint"] if v2 else None)
        versions: dict[int, Rows | None] = {}
        live: list[tuple[dict[str, Any], Rows]] = []
        for v in range(5):
            rows = [{"id": v * 10 + i, "t": dt.datetime(2024, 1, 1 + v, i, tzinfo=UTC), "p": f"p{v % 2}"}
                    for i in range(3)]
            add = b.add_file(rows, partition={"p": f"p{v % 2}"})
            actions = [b.add(add)]
            if v == 3:
                gone = live.pop(0)
                actions.append(b.remove(gone[0]))
            live.append((add, rows))
            b.commit(actions)
            versions[v] = [r for _, rs in live for r in rs]
        if last == "stale":
            b.checkpoint(1, kind="classic")
        b.checkpoint(2, kind=kind, stats_as=stats_as, sidecars=2 if v2 else 0, parts=3,
                     last_checkpoint=last not in ("missing", "stale"),
                     last_checkpoint_version=1 if last == "dangling" else None)
        if cleanup:
            b.delete_commits(1)
            versions[0] = versions[1] = None
        return Built(versions, filter="id >= 20 AND p = 'p0'", time_column="t",
                     keep=lambda r: r["id"] >= 20 and r["p"] == "p0")
    return build


def stats_struct_only(path: Path) -> Built:
    """File statistics only as ``stats_parsed`` structs in a checkpoint (the commits before it
    cleaned up), partition values also as ``partitionValues_parsed``."""
    return checkpoint("classic", stats_as="struct", cleanup=True)(path)


# ----------------------------------------------------------------- other shapes


def cdf_files(path: Path) -> Built:
    """Change data feed on: a ``cdc`` action with a ``_change_data`` file, and a data file holding
    the extra ``_change_type`` column the schema lacks (readers of the table ignore both)."""
    b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp"), Field("v", "string")],
                     protocol=(1, 4), configuration={"delta.enableChangeDataFeed": "true"})
    rows = _dv_rows(0, 4)
    b.commit([b.add(b.add_file(rows))])
    updated = [{**r, "v": "new"} for r in rows[:1]]
    rel = "part-cdf-with-change-type.parquet"
    size = b.write_parquet(updated, rel, extra={"_change_type": ["insert"]})
    cdc_rel = "_change_data/cdc-00001.c000.snappy.parquet"
    cdc_size = b.write_parquet(updated + rows[:1], cdc_rel, extra={"_change_type": ["update_postimage",
                                                                                   "update_preimage"]})
    first = json.loads((path / "_delta_log" / f"{0:020d}.json").read_text().splitlines()[-1])["add"]
    b.commit([b.remove(first), b.add(b.add_file(rows[1:])),
              {"add": {"path": rel, "partitionValues": {}, "size": size, "modificationTime": 1, "dataChange": True}},
              {"cdc": {"path": cdc_rel, "partitionValues": {}, "size": cdc_size, "dataChange": False}}],
             operation="UPDATE")
    return Built({0: rows, 1: updated + rows[1:]}, time_column="t")


def evolved_schema(path: Path) -> Built:
    """A column added in version 1: files written before it lack it (null, per the protocol)."""
    b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp")])
    old = [{"id": i, "t": dt.datetime(2024, 1, 1, i, tzinfo=UTC)} for i in range(3)]
    b.commit([b.add(b.add_file(old))])
    b.fields.append(Field("extra", "string"))
    meta = dict(b.metadata)
    meta["schemaString"] = json.dumps({"type": "struct", "fields": [
        {"name": f.name, "type": f.type, "nullable": True, "metadata": {}} for f in b.fields]})
    new = [{"id": 3, "t": dt.datetime(2024, 1, 2, tzinfo=UTC), "extra": "e"}]
    b.commit([b.add(b.add_file(new))], metadata=meta)
    return Built({0: old, 1: [{**r, "extra": None} for r in old] + new}, filter="extra IS NULL", time_column="t",
                 keep=lambda r: r.get("extra") is None)


def reader_feature(name: str, reader_version: int = 3) -> Callable[[Path], Built]:
    """A table listing a reader feature the lake does not honor (or an unknown reader version)."""
    def build(path: Path) -> Built:
        b = DeltaBuilder(path, [Field("id", "long"), Field("t", "timestamp")], protocol=(reader_version, 7),
                         reader_features=[name] if reader_version == 3 else None,
                         writer_features=[name] if reader_version == 3 else [])
        rows = [{"id": i, "t": dt.datetime(2024, 1, 1, i, tzinfo=UTC)} for i in range(3)]
        b.commit([b.add(b.add_file(rows))])
        return Built({0: rows}, time_column="t")
    return build


# --------------------------------------------------------------------- catalog

_MAPPED_HANDOFF = {"handoff": "columnMapping"}
_DUCKDB = ("lake_sql", "lake_at", "feature_index", "drift_source")
_MAPPED_PARTITIONED = {**_MAPPED_HANDOFF, **{r: "columnMapping" for r in _DUCKDB}}
_DV_HANDOFF = {"handoff": "deletionVectors"}

CASES: list[Case] = [
    Case("plain", "reader v1, no features (baseline, time travel)", plain),
    Case("partitions", "partition values: spaces, `/`, `=`, `%`, quotes, unicode, empty, null; int/date", partitions),
    Case("cm_name_v2", "column mapping `name`, reader v2 (no readerFeatures); nested, partition, odd names",
         column_mapping("name", 2), _MAPPED_PARTITIONED),
    Case("cm_name_flat", "column mapping `name`, reader v2, unpartitioned", column_mapping("name", 2, partitioned=False),
         _MAPPED_HANDOFF),
    Case("cm_id_flat", "column mapping `id`, reader v3, unpartitioned", column_mapping("id", 3, partitioned=False),
         _MAPPED_HANDOFF),
    Case("cm_name_v3", "column mapping `name`, reader v3 (`columnMapping` listed)", column_mapping("name", 3),
         _MAPPED_PARTITIONED),
    Case("cm_id_v2", "column mapping `id`, reader v2", column_mapping("id", 2), _MAPPED_PARTITIONED),
    Case("cm_id_v3", "column mapping `id`, reader v3", column_mapping("id", 3), _MAPPED_PARTITIONED),
    Case("dv_inline", "deletion vectors inline (Z85), time travel before/after", deletion_vectors("inline"),
         _DV_HANDOFF),
    Case("dv_disk", "deletion vectors on disk (UUID path with prefix, offset past another vector)",
         deletion_vectors("disk"), _DV_HANDOFF),
    Case("dv_absolute", "deletion vectors on disk by absolute path", deletion_vectors("absolute"), _DV_HANDOFF),
    Case("dv_large", "deletion vectors with bitmap and run containers (10k-row file)", deletion_vectors("large"),
         _DV_HANDOFF),
    Case("dv_protocol_example", "deletion vector in PROTOCOL.md's example bytes (magic 1681511376)",
         dv_protocol_example, {"*": "deletionVectors"}),
    Case("ts_int96", "timestamps INT96, years 1 to 9999, `timestampNtz`", timestamps("int96")),
    Case("ts_millis", "timestamps INT64 millis, years 1 to 9999", timestamps("ms")),
    Case("ts_micros", "timestamps INT64 micros, years 1 to 9999", timestamps("us")),
    Case("ts_nanos", "timestamps INT64 nanos (1677 to 2262)", timestamps("ns")),
    Case("ts_far_filter", "filter `t >= TIMESTAMP '9999-12-31 23:59:59.9999'`", timestamp_far_filter),
    Case("cp_classic", "checkpoint classic (V1), `_last_checkpoint` current", checkpoint("classic")),
    Case("cp_multipart", "checkpoint multi-part (3 parts)", checkpoint("multipart")),
    Case("cp_v2_parquet", "checkpoint v2 (UUID-named Parquet, 2 sidecars)", checkpoint("v2-parquet")),
    Case("cp_v2_json", "checkpoint v2 (UUID-named JSON, 2 sidecars)", checkpoint("v2-json")),
    Case("cp_v2_classic", "checkpoint v2 spec under the classic name", checkpoint("v2-classic")),
    Case("cp_no_last", "checkpoint without `_last_checkpoint`", checkpoint("classic", last="missing")),
    Case("cp_stale_last", "`_last_checkpoint` pointing at an older checkpoint", checkpoint("classic", last="stale")),
    Case("cp_dangling_last", "`_last_checkpoint` pointing at a missing checkpoint (time travel to that "
         "version refused)", checkpoint("classic", last="dangling"), refused_versions={1: "checkpoint"}),
    Case("cp_cleaned", "log cleaned up below a checkpoint: older versions refused clearly",
         checkpoint("classic", cleanup=True)),
    Case("cp_v2_cleaned", "v2 checkpoint with sidecars, log cleaned up below it",
         checkpoint("v2-parquet", cleanup=True)),
    Case("stats_struct", "statistics only as structs (`stats_parsed`, `partitionValues_parsed`)",
         stats_struct_only),
    Case("cdf", "change data feed: `cdc` action, `_change_type` column in a data file", cdf_files),
    Case("evolved", "column added later: older files read as null", evolved_schema),
    Case("type_widening", "`typeWidening` reader feature", reader_feature("typeWidening"),
         {"*": "typeWidening"}),
    Case("unknown_feature", "an unknown reader feature", reader_feature("someFutureFeature"),
         {"*": "someFutureFeature"}),
    Case("reader_v4", "reader version 4", reader_feature("", reader_version=4), {"*": "readerVersion 4"}),
]
