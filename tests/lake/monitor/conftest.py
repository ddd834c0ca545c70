"""A saved training dataset and the serving logs of the model trained on it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from lake.lakehouse import Lake

N = 3000
DAY1 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)
DAY3 = DAY2 + dt.timedelta(days=1)
FEATURES = ["tx_stats:amount", "tx_stats:age", "users:country", "users:is_new"]


def frame(rng: np.random.Generator, n: int, *, shift: bool = False) -> dict[str, object]:
    """Model inputs; ``shift`` moves amount up, adds a country and raises the share of new users."""
    countries = ["FR", "DE", "ES", "IT"] + (["BR"] if shift else [])
    weights = np.array([0.4, 0.3, 0.2, 0.1] + ([0.25] if shift else []))
    return {
        "amount": rng.lognormal(3.0 + (0.6 if shift else 0.0), 0.5, n),
        "age": rng.integers(18, 80, n),
        "country": rng.choice(countries, n, p=weights / weights.sum()).tolist(),
        "is_new": rng.random(n) < (0.5 if shift else 0.2),
    }


@pytest.fixture
def served(lake: Lake) -> Lake:
    """``training.fraud`` (recorded as training dataset ``fraud``) and ``logs.serving_fraud``:
    day 1 like training, day 2 shifted."""
    rng = np.random.default_rng(42)
    train = frame(rng, N)
    train["event_timestamp"] = pa.array([DAY1 - dt.timedelta(days=30, minutes=i) for i in range(N)],
                                        pa.timestamp("us", tz="UTC"))
    train["label"] = rng.integers(0, 2, N)
    table = lake.table("training.fraud")
    result = table.write(pa.table(train))
    lake.catalog.record_training_dataset(
        "3f2a9c1e-0000-4000-8000-000000000001", "fraud", version=result.version, features=FEATURES,
        sources={"gold.tx_stats": {"version": 0}}, entity_hash="e" * 64, content_hash="c" * 64, row_count=N,
        columns=[{"name": f.name, "type": str(f.type)} for f in table.schema()])
    logs = lake.table("logs.serving_fraud")
    for day, shift in ((DAY1, False), (DAY2, True)):
        data = frame(rng, N, shift=shift)
        data["ts"] = pa.array([day + dt.timedelta(seconds=20 * i) for i in range(N)], pa.timestamp("us", tz="UTC"))
        data["request_id"] = [f"{day:%d}-{i}" for i in range(N)]
        logs.write(pa.table(data))
    return lake


@pytest.fixture(scope="session", params=["duckdb", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])])
def engine(request: pytest.FixtureRequest) -> dict[str, object]:
    """How a drift report reads its rows: DuckDB in the process, or Spark (the suite's session)."""
    if request.param == "duckdb":
        return {"engine": "duckdb"}
    return {"engine": "spark", "spark": request.getfixturevalue("spark")}
