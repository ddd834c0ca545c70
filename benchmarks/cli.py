"""How long the ``lake`` command takes to answer: ``lake --help``, ``lake sql "select 1"`` and
``lake features list/show/get``, each as a fresh process, beside what any Python command costs,
same run.

Baselines: ``python -c pass`` (the interpreter alone) for ``lake --help``, and
``python -c "import duckdb; duckdb.sql('select 1')"`` (DuckDB from Python, no lake) for
``lake sql``. ``value`` = ``lake --help`` in milliseconds (target under 300);
``ratio`` = ``lake --help`` / ``python -c pass``; ``ratio_sql_duckdb`` = ``lake sql`` /
plain DuckDB (``sql_ms`` target under 600). ``features_<cmd>_ms`` (target under 3,000): a small
feature repository (two views, a service, 20 drivers; the embedded file registry and SQLite
online store), applied and materialized once before timing; ``feast_import_ms`` is
``python -c "import feast"`` for scale (what those commands paid before). Medians of
``--repeat`` interleaved runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import emit, median_times, parse_args, scratch_dir

REPO = '''
from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
driver_stats = FeatureView(
    name="driver_stats", entities=[driver], ttl=timedelta(days=3650), online=True,
    source=FileSource(name="stats_src", path="gold.driver_stats", file_format=DeltaFormat(),
                      timestamp_field="event_timestamp"),
    schema=[Field(name="conv_rate", dtype=Float64), Field(name="trips", dtype=Int64), Field(name="city", dtype=String)])
driver_model = FeatureService(name="driver_model", features=[driver_stats[["conv_rate", "trips"]]])
'''


def feature_lake(base: Path) -> dict[str, str]:
    """A small applied and materialized feature lake; the environment that points the CLI at it."""
    import pandas as pd

    from lake.config import load_settings
    from lake.features.apply import apply
    from lake.features.materialize import materialize
    from lake.lakehouse import Lake

    repo = base / "feature_repo"
    repo.mkdir()
    (repo / "drivers.py").write_text(REPO)
    env = {"LAKE_ROOT": str(base / "features"), "LAKE_FEAST_PROJECT": "bench", "LAKE_FEAST_REPO": str(repo),
           "LAKE_CONFIG": ""}
    lake = Lake(load_settings({"root": env["LAKE_ROOT"], "feast": {"project": "bench", "repo": str(repo)}},
                              env={}, config_file=False))
    lake.table("gold.driver_stats").write(pd.DataFrame({
        "driver_id": list(range(20)), "conv_rate": [i / 20 for i in range(20)], "trips": list(range(20)),
        "city": ["paris", "lyon"] * 10, "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC")}))
    apply(lake, repo)
    materialize(lake)
    return env


def command(*args: str, env: dict[str, str]) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return run


def main() -> None:
    args = parse_args(__doc__ or "", default_rows=0, quick_rows=0)
    repeat = max(args.repeat, 5) if not args.quick else args.repeat
    base = scratch_dir("cli")
    (base / "lake").mkdir()
    env = {**os.environ, "LAKE_ROOT": str(base / "lake"), "LAKE_CONFIG": ""}
    fenv = {**env, **feature_lake(base)}
    features = {
        "list": ("features", "list"), "show": ("features", "show", "driver_stats"),
        "get": ("features", "get", "-e", "driver_id=3", "-s", "driver_model"),
    }
    runs = {
        "lake --help": command("-m", "lake.cli.main", "--help", env=env),
        "python -c pass": command("-c", "pass", env=env),
        "lake sql 'select 1'": command("-m", "lake.cli.main", "sql", "select 1", env=env),
        "python duckdb select 1": command("-c", "import duckdb; duckdb.sql('select 1').fetchall()", env=env),
        **{f"lake features {name}": command("-m", "lake.cli.main", *args, env=fenv) for name, args in features.items()},
        "python import feast": command("-c", "import feast", env=env),
    }
    times = median_times(runs, repeat)
    help_ms = times["lake --help"] * 1000
    sql_ms = times["lake sql 'select 1'"] * 1000
    emit({
        "metric": "lake --help wall time (fresh process)",
        "value": round(help_ms, 1),
        "unit": "ms",
        "baseline": "python -c pass",
        "baseline_ms": round(times["python -c pass"] * 1000, 1),
        "ratio": round(times["lake --help"] / times["python -c pass"], 2),
        "sql_ms": round(sql_ms, 1),
        "duckdb_ms": round(times["python duckdb select 1"] * 1000, 1),
        "ratio_sql_duckdb": round(times["lake sql 'select 1'"] / times["python duckdb select 1"], 2),
        **{f"features_{name}_ms": round(times[f"lake features {name}"] * 1000, 1) for name in features},
        "feast_import_ms": round(times["python import feast"] * 1000, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "repeat": repeat,
    })


if __name__ == "__main__":
    main()
