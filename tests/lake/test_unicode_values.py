"""Arbitrary unicode as partition values and column names round-trips through every writer and reader."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lake.lakehouse import Lake
from lake.sql import LakeSQL

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
BUDGET = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@BUDGET
@given(values=st.lists(TEXT, min_size=1, max_size=5))
def test_partition_values_round_trip_arrow(local_lake: Lake, values: list[str]) -> None:
    table = local_lake.table(f"bronze.p{uuid.uuid4().hex[:10]}")
    data = pa.table({"part": values, "n": list(range(len(values)))})
    table.write(data, partition_by=["part"])
    back = sorted(table.to_arrow().to_pylist(), key=lambda r: r["n"])
    assert [r["part"] for r in back] == [v or None for v in values]  # Delta: an empty partition value is null
    db = LakeSQL(local_lake)
    assert db.sql(f"SELECT count(*) FROM {table.name}").fetchone() == (len(values),)
    for value in set(values) - {""}:
        assert table.to_arrow(filter=f"part = {sql_string(value)}").num_rows == values.count(value)


def sql_string(value: str) -> str:
    from lake.duck import literal

    return literal(value)


@pytest.mark.spark
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(values=st.lists(TEXT, min_size=1, max_size=4))
def test_partition_values_round_trip_spark(local_lake: Lake, spark: Any, values: list[str]) -> None:
    table = local_lake.table(f"bronze.s{uuid.uuid4().hex[:10]}")
    df = spark.createDataFrame([(v, i) for i, v in enumerate(values)], "part string, n long")
    table.write(df, partition_by=["part"])
    assert sorted(r["n"] for r in table.to_spark(spark).collect()) == list(range(len(values)))
    back = {r["n"]: r["part"] for r in table.to_arrow().to_pylist()}
    assert [back[i] for i in range(len(values))] == [v or None for v in values]
