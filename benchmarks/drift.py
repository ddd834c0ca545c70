"""Drift report over a wide table: the lake's `drift_report` (DuckDB) vs pandas + SciPy, same data, same run.

A reference and a current Delta table of 10M rows x 50 columns (``--quick``: 1M):
40 numeric (normal, lognormal, zero-inflated amounts, uniform, small-range and wide
integers; some with 2% nulls) and 10 categorical (strings with 5 to 40 categories,
booleans), the current set shifted on 14 of them. Both sides compute, per column, PSI,
KS and Wasserstein (numeric) or PSI, Jensen-Shannon and chi-squared (categorical), and
null rates; the baseline reads the tables into pandas and uses ``scipy.stats.ks_2samp``,
``wasserstein_distance``, numpy histograms for PSI, ``jensenshannon`` and
``chi2_contingency`` (what a user would otherwise write).

``ratio`` = lake time / baseline time (target 0.1 or less: 10x faster). With
``--baseline-columns N`` the baseline runs on N columns (the same mix of kinds) and its
time is scaled linearly to 50 columns (``baseline_scaled`` in the JSON); the default is
every column for ``--quick`` and 10 columns at full size, where SciPy needs minutes per
pass over all 50.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.common import emit, scratch_dir
from lake import Lake, load_settings
from lake.monitor import drift_report

BATCH = 500_000
DECILES = np.arange(1, 10) / 10
EPS = 1e-4


def columns() -> list[tuple[str, str, bool]]:
    """(name, generator, shifted in the current set) for the 50 columns."""
    spec = [("normal", 10, 3), ("lognormal", 8, 2), ("amount", 6, 1), ("uniform", 6, 1), ("small_int", 5, 1),
            ("wide_int", 5, 1), ("category", 6, 2), ("flag", 4, 1)]
    return [(f"{kind}_{i}", kind, i < shifted) for kind, count, shifted in spec for i in range(count)]


CATEGORICAL = ("category", "flag")


def batch(rng: np.random.Generator, n: int, current: bool) -> pa.RecordBatch:
    arrays, names = [], []
    for i, (name, kind, shifted) in enumerate(columns()):
        s = current and shifted
        if kind == "normal":
            v: Any = rng.normal(0.3 * s + i, 1.0 + 0.2 * s * (i % 2), n)
        elif kind == "lognormal":
            v = rng.lognormal(0.4 * s, 0.5 + i % 3 * 0.5, n)
        elif kind == "amount":
            v = np.round(rng.exponential(50 * (1.6 if s else 1.0), n), 2)
            v[rng.random(n) < 0.3] = 0.0
        elif kind == "uniform":
            v = rng.uniform(0.1 * s, 1 + 0.1 * s, n)
        elif kind == "small_int":
            v = rng.binomial(20, 0.3 + 0.05 * s, n)
        elif kind == "wide_int":
            v = rng.integers(0, 1_000_000 + 200_000 * s, n)
        elif kind == "category":
            k = 5 + (i % 4) * 10
            p = 1 / np.arange(1, k + 1) ** (1.5 if s else 1.0)
            codes = rng.choice(k, n, p=p / p.sum())
            v = pc.take(pa.array([f"value_{j}" for j in range(k)]), pa.array(codes))
        else:
            v = pa.array(rng.random(n) < (0.3 + 0.15 * s))
        if not isinstance(v, pa.Array):
            mask = rng.random(n) < 0.02 if i % 5 == 0 else None
            v = pa.array(v, mask=mask)
        arrays.append(v)
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def build(lake: Lake, name: str, rows: int, current: bool) -> None:
    rng = np.random.default_rng(1 if current else 0)
    first = batch(rng, min(BATCH, rows), current)

    def batches() -> Iterator[pa.RecordBatch]:
        yield first
        done = first.num_rows
        while done < rows:
            b = batch(rng, min(BATCH, rows - done), current)
            done += b.num_rows
            yield b

    lake.table(name).write(pa.RecordBatchReader.from_batches(first.schema, batches()))


def build_tables(root: str, rows: int) -> None:
    lake = Lake(load_settings({"root": root}, env={}, config_file=False), catalog=False)
    build(lake, "bench.reference", rows, current=False)
    build(lake, "bench.current", rows, current=True)


def numpy_psi(a: np.ndarray, b: np.ndarray) -> float:
    edges = np.concatenate([[-np.inf], np.unique(np.quantile(a, DECILES)), [np.inf]])
    p = np.maximum(np.histogram(a, edges)[0] / len(a), EPS)
    q = np.maximum(np.histogram(b, edges)[0] / len(b), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def baseline(lake: Lake, names: list[str]) -> dict[str, dict[str, float]]:
    """What a user would write: both tables into pandas, then SciPy column by column."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    ref = lake.table("bench.reference").to_pandas(columns=names)
    cur = lake.table("bench.current").to_pandas(columns=names)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        r, c = ref[name], cur[name]
        m = {"null_ref": float(r.isna().mean()), "null_cur": float(c.isna().mean())}
        if name.split("_")[0] in CATEGORICAL:
            counts = {"ref": r.value_counts(), "cur": c.value_counts()}
            cats = counts["ref"].index.union(counts["cur"].index)
            p = counts["ref"].reindex(cats, fill_value=0).to_numpy()
            q = counts["cur"].reindex(cats, fill_value=0).to_numpy()
            chi2, p_value, _, _ = stats.chi2_contingency(np.vstack([p, q]))
            pf, qf = np.maximum(p / p.sum(), EPS), np.maximum(q / q.sum(), EPS)
            m.update(js=float(jensenshannon(p, q, base=2)), chi2=float(chi2), chi2_p=float(p_value),
                     psi=float(np.sum((qf - pf) * np.log(qf / pf))))
        else:
            a = r.dropna().to_numpy(dtype=np.float64)
            b = c.dropna().to_numpy(dtype=np.float64)
            m.update(ks=float(stats.ks_2samp(a, b).statistic), wasserstein=float(stats.wasserstein_distance(a, b)),
                     psi=numpy_psi(a, b))
        out[name] = m
    return out


def check(report: Any, expected: dict[str, dict[str, float]]) -> dict[str, float]:
    """Same answers: KS and Wasserstein within the reported bounds, the rest equal or very close."""
    worst = {"ks": 0.0, "wasserstein_rel": 0.0, "psi": 0.0, "js": 0.0}
    for name, m in expected.items():
        f = report.feature(name).metrics
        ref_null = report.feature(name).reference["null_rate"]
        assert abs(ref_null - m["null_ref"]) < 1e-12, name
        if "ks" in m:
            assert f["ks"] - 1e-12 <= m["ks"] <= f["ks"] + f["ks_error"] + 1e-12, (name, f["ks"], m["ks"])
            assert abs(f["wasserstein"] - m["wasserstein"]) <= f["wasserstein_error"] + 1e-9, name
            worst["ks"] = max(worst["ks"], abs(f["ks"] - m["ks"]))
            worst["wasserstein_rel"] = max(worst["wasserstein_rel"],
                                           abs(f["wasserstein"] - m["wasserstein"]) / max(m["wasserstein"], 1e-12))
        else:
            assert abs(f["js"] - m["js"]) < 1e-9 and abs(f["chi2"] - m["chi2"]) <= 1e-6 * max(m["chi2"], 1), name
            worst["js"] = max(worst["js"], abs(f["js"] - m["js"]))
        # The baseline's deciles come from np.quantile's interpolation, the lake's from the data: close, not equal.
        worst["psi"] = max(worst["psi"], abs(f["psi"] - m["psi"]))
    return worst


def peak_rss_mb() -> int:
    """The process's peak resident memory so far (MiB)."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def subset(count: int) -> list[str]:
    """``count`` columns with the same mix of kinds (and of shifted columns) as all 50."""
    names = [name for name, _, _ in columns()]
    if count >= len(names):
        return names
    step = len(names) / count
    return [names[int(i * step)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows")
    parser.add_argument("--rows", type=int, default=None, help="rows per table (default 10,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the lake side (median)")
    parser.add_argument("--baseline-columns", type=int, default=None,
                        help="columns the baseline runs on, scaled to 50 (default: 50 with --quick, else 10)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    base_cols = args.baseline_columns or (50 if args.quick else 10)
    base = scratch_dir("drift")
    lake = Lake(load_settings({"root": str(base / "lake")}, env={}, config_file=False), catalog=False)
    start = time.perf_counter()
    # Written by a child process, so that the peak memory reported below is the comparison's own.
    writer = multiprocessing.get_context("spawn").Process(target=build_tables, args=(str(base / "lake"), rows))
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        raise SystemExit(f"writing the tables failed (exit code {writer.exitcode})")
    print(f"2 tables x {rows:,} rows x {len(columns())} columns written in {time.perf_counter() - start:.1f}s")

    def lake_side() -> Any:
        return drift_report(lake, "bench.reference", "bench.current")

    lake_side()  # warm-up: extension load, file cache
    lake_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        report = lake_side()
        lake_times.append(time.perf_counter() - start)
    print("  lake drift_report: " + ", ".join(f"{t:.2f}s" for t in lake_times))
    rss_lake = peak_rss_mb()
    names = subset(base_cols)
    start = time.perf_counter()
    expected = baseline(lake, names)
    base_time = time.perf_counter() - start
    scaled = base_time * len(columns()) / len(names)
    print(f"  pandas + SciPy on {len(names)} columns: {base_time:.2f}s (scaled to {len(columns())}: {scaled:.1f}s)")
    worst = check(report, expected)
    lake_time = statistics.median(lake_times)
    statuses = {f.name: f.status for f in report.features}
    shifted = {name for name, _, s in columns() if s}
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    emit({
        "benchmark": "drift",
        "metric": "drift_report_seconds",
        "value": round(lake_time, 3),
        "unit": "s",
        "baseline": "pandas_scipy",
        "ratio": round(lake_time / scaled, 4),
        "seconds": {"lake": round(lake_time, 3), "pandas_scipy": round(base_time, 3),
                    "pandas_scipy_scaled": round(scaled, 3)},
        "baseline_columns": len(names),
        "baseline_scaled": len(names) < len(columns()),
        "rows": rows,
        "columns": len(columns()),
        "status": report.status,
        "flagged": sorted(n for n, s in statuses.items() if s != "ok"),
        "shifted": sorted(shifted),
        "max_abs_difference": {k: float(f"{v:.3g}") for k, v in worst.items()},
        "exact_columns": sum(bool(f.metrics.get("exact")) for f in report.features if f.kind == "numeric"),
        "peak_rss_mb": {"after_lake": rss_lake, "after_baseline": peak_rss_mb()},
        "target": {"ratio": 0.1},
    })


if __name__ == "__main__":
    main()
