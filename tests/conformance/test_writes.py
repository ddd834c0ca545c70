"""Writing into tables someone else created: write correctly, or refuse before writing anything.

Each table is built by hand with one writer feature; each write goes through the lake's
Python (delta-rs) or Spark path. A refusal must be an ``UnsupportedTableFeatureError``
naming the feature, with the table's version and data files untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lake.errors import LakeError, UnsupportedTableFeatureError
from lake.lakehouse import Lake
from tests.conformance import roaring
from tests.conformance.delta_builder import DeltaBuilder, Field
from tests.conftest import make_settings


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(make_settings(root=str(tmp_path / "lake"), catalog={"url": f"sqlite:///{tmp_path}/c.db"}))


def _fields() -> list[Field]:
    return [Field("id", "long"), Field("v", "string")]


def build(lake: Lake, name: str, fields: list[Field] | None = None, **kw: Any) -> str:
    b = DeltaBuilder(Path(lake.storage.uri("w", name)), fields or _fields(), **kw)
    b.commit([b.add(b.add_file([{"id": i, "v": f"r{i}"} for i in range(1, 4)]))])
    return f"w.{name}"


def files(lake: Lake, name: str) -> set[str]:
    root = Path(lake.table(name).uri)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_delta_log" not in p.parts}


def refused(lake: Lake, name: str, feature: str, write: Callable[[], Any]) -> None:
    table = lake.table(name)
    version, before = table.version(), files(lake, name)
    with pytest.raises(UnsupportedTableFeatureError) as err:
        write()
    assert feature in str(err.value) and err.value.context.get("feature") == feature
    assert table.version() == version and files(lake, name) == before, "a refused write left something behind"


def ids(lake: Lake, name: str) -> list[int]:
    return sorted(lake.table(name).to_arrow().column("id").to_pylist())


def rows(*values: int, **extra: list[Any]) -> pa.Table:
    return pa.table({"id": pa.array(values, pa.int64()), "v": [f"n{v}" for v in values], **extra})


# ----------------------------------------------------------- Python (delta-rs) writes


def test_check_constraints_enforced_by_python_writes(lake: Lake) -> None:
    name = build(lake, "checked", protocol=(1, 3), configuration={"delta.constraints.positive": "id > 0"})
    lake.table(name).write(rows(7))
    version = lake.table(name).version()
    with pytest.raises(LakeError, match="validation"):
        lake.table(name).write(rows(-1))
    assert lake.table(name).version() == version and ids(lake, name) == [1, 2, 3, 7]


def test_invariants_enforced_by_python_writes(lake: Lake) -> None:
    fields = _fields()
    fields[0].metadata = {"delta.invariants": json.dumps({"expression": {"expression": "id > 0"}})}
    name = build(lake, "invariant", fields, protocol=(1, 2))
    with pytest.raises(LakeError, match="validation"):
        lake.table(name).write(rows(-5))
    assert ids(lake, name) == [1, 2, 3]


def test_generated_columns_filled_by_python_writes(lake: Lake) -> None:
    fields = [*_fields(), Field("twice", "long", metadata={"delta.generationExpression": "id * 2"})]
    name = build(lake, "generated", fields, protocol=(1, 4))
    lake.table(name).write(rows(5, twice=pa.array([10], pa.int64())))
    with pytest.raises(LakeError, match="validation"):
        lake.table(name).write(rows(6, twice=pa.array([99], pa.int64())))
    got = {r["id"]: r["twice"] for r in lake.table(name).to_arrow().to_pylist()}
    assert got[5] == 10 and 6 not in got


def test_identity_columns_refused_by_python_writes(lake: Lake) -> None:
    fields = _fields()
    fields[0].metadata = {"delta.identity.start": 1, "delta.identity.step": 1, "delta.identity.highWaterMark": 3,
                          "delta.identity.allowExplicitInsert": False}
    name = build(lake, "identity", fields, protocol=(1, 6))
    refused(lake, name, "identityColumns", lambda: lake.table(name).write(rows(4)))


def test_append_only_refuses_changes_and_takes_appends(lake: Lake) -> None:
    name = build(lake, "append_only", configuration={"delta.appendOnly": "true"})
    table = lake.table(name)
    refused(lake, name, "appendOnly", lambda: table.write(rows(9), mode="overwrite"))
    refused(lake, name, "appendOnly", lambda: table.delete("id = 1"))
    refused(lake, name, "appendOnly", lambda: table.merge(rows(1), ["id"]))
    table.merge(rows(8), ["id"], update=False)  # insert-only: adds rows, changes none
    table.write(rows(9))
    assert ids(lake, name) == [1, 2, 3, 8, 9]


def test_change_data_feed_written_by_python_deletes(lake: Lake) -> None:
    name = build(lake, "cdf", protocol=(1, 4), configuration={"delta.enableChangeDataFeed": "true"})
    lake.table(name).delete("id = 2")
    assert ids(lake, name) == [1, 3]
    assert any(f.startswith("_change_data/") for f in files(lake, name))


def test_deletion_vector_table_deleted_and_merged_exactly_by_python_writes(lake: Lake) -> None:
    b = DeltaBuilder(Path(lake.storage.uri("w", "dv")), _fields(), protocol=(3, 7),
                     reader_features=["deletionVectors"], writer_features=["deletionVectors"])
    add = b.add_file([{"id": i, "v": f"r{i}"} for i in range(6)])
    b.commit([b.add(add)])
    b.commit([b.remove(add), b.add({**add, "deletionVector": roaring.inline_descriptor([0, 1])})])
    table = lake.table("w.dv")
    table.delete("id = 3")
    table.merge(rows(4, 7), ["id"])
    got = {r["id"]: r["v"] for r in table.to_arrow().to_pylist()}
    assert got == {2: "r2", 4: "n4", 5: "r5", 7: "n7"}


def test_column_mapped_table_appended_exactly_by_python_writes(lake: Lake) -> None:
    name = build(lake, "mapped", [Field("id", "long"), Field("v", "string")], mapping="name", protocol=(2, 5))
    lake.table(name).write(rows(4))
    assert {r["id"]: r["v"] for r in lake.table(name).to_arrow().to_pylist()}[4] == "n4"


# ------------------------------------------------------------------------ Spark writes


@pytest.mark.spark
@pytest.mark.parametrize(("table_kw", "feature", "changes"), [
    ({"protocol": (1, 3), "configuration": {"delta.constraints.positive": "id > 0"}}, "checkConstraints", False),
    ({"mapping": "name", "protocol": (2, 5)}, "columnMapping", False),
    ({"protocol": (3, 7), "reader_features": ["deletionVectors"], "writer_features": ["deletionVectors"]},
     "deletionVectors", False),
    ({"configuration": {"delta.appendOnly": "true"}}, "appendOnly", True),
    ({"protocol": (1, 4), "configuration": {"delta.enableChangeDataFeed": "true"}}, "changeDataFeed", True),
], ids=["constraints", "column_mapping", "deletion_vectors", "append_only", "cdf_overwrite"])
def test_spark_writes_refused_before_writing(lake: Lake, spark: Any, table_kw: dict[str, Any], feature: str,
                                            changes: bool) -> None:
    name = build(lake, f"spark_{feature.lower()}", **table_kw)
    df = spark.createDataFrame([(5, "s5")], "id long, v string")
    refused(lake, name, feature, lambda: lake.table(name).write(df, mode="overwrite" if changes else "append"))


@pytest.mark.spark
def test_spark_appends_into_change_data_feed_and_append_only_tables(lake: Lake, spark: Any) -> None:
    for name, kw in (("cdf_append", {"protocol": (1, 4), "configuration": {"delta.enableChangeDataFeed": "true"}}),
                     ("ao_append", {"configuration": {"delta.appendOnly": "true"}})):
        full = build(lake, name, **kw)
        lake.table(full).write(spark.createDataFrame([(5, "s5")], "id long, v string"))
        assert ids(lake, full) == [1, 2, 3, 5]
