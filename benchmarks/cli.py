"""How long the ``lake`` command takes to answer: ``lake --help`` and ``lake sql "select 1"``,
each as a fresh process, beside what any Python command costs, same run.

Baselines: ``python -c pass`` (the interpreter alone) for ``lake --help``, and
``python -c "import duckdb; duckdb.sql('select 1')"`` (DuckDB from Python, no lake) for
``lake sql``. ``value`` = ``lake --help`` in milliseconds (target under 300);
``ratio`` = ``lake --help`` / ``python -c pass``; ``ratio_sql_duckdb`` = ``lake sql`` /
plain DuckDB (``sql_ms`` target under 600). Medians of ``--repeat`` interleaved runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from benchmarks.common import emit, median_times, parse_args, scratch_dir


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
    runs = {
        "lake --help": command("-m", "lake.cli.main", "--help", env=env),
        "python -c pass": command("-c", "pass", env=env),
        "lake sql 'select 1'": command("-m", "lake.cli.main", "sql", "select 1", env=env),
        "python duckdb select 1": command("-c", "import duckdb; duckdb.sql('select 1').fetchall()", env=env),
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
        "repeat": repeat,
    })


if __name__ == "__main__":
    main()
