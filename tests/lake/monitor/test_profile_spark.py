"""Quality profiles on Spark: the same statistics, so the same proposed suite, as on DuckDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lake.errors import MonitorError
from lake.lakehouse import Lake
from lake.monitor.profile import propose
from tests.conftest import make_settings


@pytest.mark.spark
def test_spark_profile_equals_duckdb_profile(tmp_path: Any, spark: Any) -> None:
    lake = Lake(make_settings(root=str(tmp_path / "lake")))
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "amount": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 10, n).round(3)),
        "qty": rng.integers(-5, 40, n).astype("int32"),
        "segment": rng.choice(["b", "a", "é", "Z"], n),
        "note": [f"n{i}" if i % 7 else None for i in range(n)],
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 30, n)],
        "at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10_000, n), unit="s"),
    })
    lake.table("gold.orders").write(frame)
    duck = propose(lake, "gold.orders", engine="duckdb")
    on_spark = propose(lake, "gold.orders", engine="spark", spark=spark)
    assert on_spark == duck
    assert "expect_column_values_to_be_unique" in duck and "value_set" in duck
    with pytest.raises(MonitorError, match="engine 'gpu'"):
        propose(lake, "gold.orders", engine="gpu")
