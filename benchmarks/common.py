"""What every benchmark shares: arguments, timing, a scratch lake and the JSON result line."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parse_args(description: str, default_rows: int, quick_rows: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=f"small size ({quick_rows:,} rows), under a minute")
    parser.add_argument("--rows", type=int, default=None, help=f"rows (default {default_rows:,})")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (median is reported)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    args.rows = args.rows or (quick_rows if args.quick else default_rows)
    return args


def scratch_dir(name: str) -> Path:
    base = Path(os.environ.get("LAKE_BENCH_DIR", tempfile.gettempdir())) / f"lake-bench-{name}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    return base


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_times(runs: dict[str, Callable[[], Any]], repeat: int, warmup: bool = True) -> dict[str, float]:
    """Run each side ``repeat`` times, interleaved so machine noise hits both alike.

    One untimed run of each side comes first (JIT, caches, lazy imports).
    """
    if warmup:
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    for name, values in times.items():
        print(f"  {name}: " + ", ".join(f"{v:.2f}s" for v in values))
    return {name: statistics.median(values) for name, values in times.items()}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def emit(result: dict[str, Any]) -> None:
    """Print the one JSON object the benchmark reports (always the last line)."""
    result.setdefault("machine", machine())
    print(json.dumps(result, default=str))
