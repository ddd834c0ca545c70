"""Drift statistics against independent oracles: SciPy and a numpy PSI on the same data.

Every test runs on both engines (``engine``: DuckDB in the process, Spark's executors): the same bounds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from lake.lakehouse import Lake
from lake.monitor import DriftReport, Options, drift_report

EPS = 1e-4


def numpy_psi(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> float:
    """PSI on right-closed bins (x <= edge), fractions floored at 1e-4: the textbook formula."""
    p = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
    q = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
    p, q = np.maximum(p, EPS), np.maximum(q, EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def compare(lake: Lake, ref: dict[str, object], cur: dict[str, object], engine: dict[str, object],
            **kwargs: object) -> DriftReport:
    return drift_report(lake, pa.table(ref), pa.table(cur), record=False, **engine, **kwargs)  # type: ignore[arg-type]


def finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def test_numeric_metrics_are_exactly_scipys_on_small_data(local_lake: Lake, engine: dict[str, object]) -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 4000), rng.normal(0.25, 1.3, 3000)
    a[::97] = np.nan
    b[::50] = np.inf  # non-finite values count as missing
    ints_a, ints_b = rng.integers(0, 12, 4000), rng.integers(1, 14, 3000)
    report = compare(local_lake, {"x": a, "n": ints_a}, {"x": b, "n": ints_b}, engine)
    for name, (ra, rb) in {"x": (finite(a), finite(b)), "n": (ints_a, ints_b)}.items():
        f = report.feature(name)
        assert f.kind == "numeric" and f.metrics["exact"] is True
        assert f.metrics["ks"] == pytest.approx(stats.ks_2samp(ra, rb, method="asymp").statistic, abs=1e-12)
        assert f.metrics["ks_error"] == 0 and f.metrics["wasserstein_error"] == 0
        assert f.metrics["wasserstein"] == pytest.approx(stats.wasserstein_distance(ra, rb), rel=1e-9)
        edges = np.unique(np.quantile(ra, np.arange(1, 10) / 10, method="inverted_cdf"))
        assert np.array_equal(np.asarray(f.metrics["psi_edges"]), edges)
        assert f.metrics["psi"] == pytest.approx(numpy_psi(ra, rb, edges), rel=1e-9)
        assert f.reference["median"] == np.quantile(ra, 0.5, method="inverted_cdf")
        assert f.reference["distinct"] == len(np.unique(ra)) and f.current["distinct"] == len(np.unique(rb))
        assert f.metrics["wasserstein_norm"] == pytest.approx(f.metrics["wasserstein"] / np.std(ra, ddof=1))
    x = report.feature("x")
    assert x.reference["null_rate"] == pytest.approx(np.isnan(a).mean())
    assert x.current["null_rate"] == pytest.approx(np.isinf(b).mean())
    assert x.metrics["null_rate_change"] == pytest.approx(np.isinf(b).mean() - np.isnan(a).mean())
    assert x.reference["mean"] == pytest.approx(finite(a).mean()) and x.current["max"] == pytest.approx(finite(b).max())


def test_categorical_metrics_are_scipys(local_lake: Lake, engine: dict[str, object]) -> None:
    rng = np.random.default_rng(3)
    a = rng.choice(["red", "green", "blue", "grey"], 5000, p=[0.4, 0.3, 0.2, 0.1])
    b = rng.choice(["red", "green", "blue", "pink"], 4000, p=[0.3, 0.3, 0.3, 0.1])
    flags_a, flags_b = rng.random(5000) < 0.3, rng.random(4000) < 0.36
    ref = {"color": pa.array(a.tolist()), "flag": flags_a}
    cur = {"color": pa.array([None if i % 40 == 0 else v for i, v in enumerate(b.tolist())]), "flag": flags_b}
    report = compare(local_lake, ref, cur, engine)
    kept = np.array([v for i, v in enumerate(b) if i % 40])
    for name, (ra, rb) in {"color": (a, kept), "flag": (flags_a, flags_b)}.items():
        f = report.feature(name)
        assert f.kind == "categorical"
        cats = np.union1d(ra, rb)
        p = np.array([(ra == c).sum() for c in cats])
        q = np.array([(rb == c).sum() for c in cats])
        chi2, p_value, dof, _ = stats.chi2_contingency(np.vstack([p, q]))  # Yates for 2 categories, like scipy
        assert f.metrics["chi2"] == pytest.approx(chi2, rel=1e-9)
        assert f.metrics["chi2_p"] == pytest.approx(p_value, rel=1e-6, abs=1e-300)
        assert f.metrics["chi2_dof"] == dof
        assert f.metrics["js"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
        pf, qf = np.maximum(p / p.sum(), EPS), np.maximum(q / q.sum(), EPS)
        assert f.metrics["psi"] == pytest.approx(float(np.sum((qf - pf) * np.log(qf / pf))), rel=1e-9)
    color = report.feature("color")
    assert color.metrics["new_categories"] == 1 and color.metrics["new_examples"] == ["pink"]
    assert color.metrics["missing_categories"] == 1 and color.metrics["missing_examples"] == ["grey"]
    assert color.reference["distinct"] == 4 and color.current["distinct"] == 4
    assert color.current["null_rate"] == pytest.approx(100 / 4000)
    flags = report.feature("flag").histogram
    assert flags is not None and set(flags["values"]) == {"true", "false"}  # booleans as text on either engine


def zero_inflated(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    values = np.round(rng.exponential(scale, n), 2)
    values[rng.random(n) < 0.3] = 0.0
    return values


@pytest.mark.parametrize("shape", ["normal", "lognormal", "zero_inflated", "wide_integers", "far_modes"])
def test_binned_metrics_are_within_their_error_bounds(local_lake: Lake, shape: str, engine: dict[str, object]) -> None:
    rng = np.random.default_rng(11)
    n = 60_000
    a, b = {
        "normal": lambda: (rng.normal(0, 1, n), rng.normal(0.05, 1.05, n)),
        "lognormal": lambda: (rng.lognormal(0, 2, n), rng.lognormal(0.1, 2, n)),
        "zero_inflated": lambda: (zero_inflated(rng, n, 50), zero_inflated(rng, n, 52)),
        "wide_integers": lambda: (rng.integers(0, 10**7, n), rng.integers(10**5, 10**7 + 10**5, n)),
        "far_modes": lambda: (np.r_[rng.normal(0, 1, n // 2), rng.normal(1e6, 0.01, n // 2)],
                              np.r_[rng.normal(0, 1, n // 2), rng.normal(1e6, 0.012, n // 2)]),
    }[shape]()
    # Few cells and no grouping by exact value: the binned path is what is tested.
    report = compare(local_lake, {"v": a}, {"v": b}, engine, options=Options(exact_rows=0, bins=1024, tolerance=1e-3,
                                                                     refine_rows=0))
    m = report.feature("v").metrics
    assert m["exact"] is False
    ks = stats.ks_2samp(a, b, method="asymp").statistic
    assert m["ks"] - 1e-12 <= ks <= m["ks"] + m["ks_error"] + 1e-12
    assert m["ks_error"] <= 1e-3 + 1e-12  # the tolerance, once cells are refined
    w = stats.wasserstein_distance(a, b)
    assert abs(m["wasserstein"] - w) <= m["wasserstein_error"] * (1 + 1e-9) + 1e-12
    assert abs(m["wasserstein"] - w) <= 0.01 * w  # the estimate is far better than its bound
    edges = np.asarray(m["psi_edges"])
    assert m["psi"] == pytest.approx(numpy_psi(a, b, edges), rel=1e-9, abs=1e-12)
    assert len(edges) == 9 or shape == "zero_inflated"  # 30% zeros: one edge for three deciles


def test_default_options_bound_ks_by_the_tolerance_on_larger_data(local_lake: Lake, engine: dict[str, object]) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 1.5, 300_000), rng.lognormal(0.02, 1.5, 300_000)
    m = compare(local_lake, {"v": a}, {"v": b}, engine).feature("v").metrics
    assert m["exact"] is False and m["ks_error"] <= Options().tolerance
    ks = stats.ks_2samp(a, b, method="asymp").statistic
    assert m["ks"] <= ks <= m["ks"] + m["ks_error"] + 1e-12
    w = stats.wasserstein_distance(a, b)
    assert abs(m["wasserstein"] - w) <= m["wasserstein_error"] + 1e-12
    # PSI edges are reference deciles to within one cell: F(edge) - k/10 is in [0, tolerance].
    below = np.searchsorted(np.sort(a), np.asarray(m["psi_edges"]), side="right") / len(a)
    assert len(below) == 9 and np.all((below - np.arange(1, 10) / 10 >= -1e-12)
                                      & (below - np.arange(1, 10) / 10 <= Options().tolerance))
    assert m["psi"] == pytest.approx(numpy_psi(a, b, np.asarray(m["psi_edges"])), rel=1e-9)


def test_a_layout_from_samples_keeps_the_bounds(local_lake: Lake, engine: dict[str, object]) -> None:
    rng = np.random.default_rng(8)
    a, b = rng.lognormal(0, 1.5, 400_000), rng.lognormal(0.05, 1.5, 400_000)
    b[:1000] = 1e6  # far beyond anything a sample of the reference shows
    m = compare(local_lake, {"v": a}, {"v": b}, engine, options=Options(sample_rows=5_000)).feature("v").metrics
    ks = stats.ks_2samp(a, b, method="asymp").statistic
    assert m["exact"] is False and m["ks"] <= ks <= m["ks"] + m["ks_error"] + 1e-12
    assert m["ks_error"] <= Options().tolerance
    w = stats.wasserstein_distance(a, b)
    assert abs(m["wasserstein"] - w) <= m["wasserstein_error"] + 1e-9 and m["wasserstein_error"] < 0.01 * w


@pytest.fixture(scope="module")
def bare_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from tests.conftest import make_settings

    return Lake(make_settings(root=str(tmp_path_factory.mktemp("lake"))), catalog=False)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-5, 5) | st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=60),
       st.lists(st.integers(-5, 5) | st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=60))
def test_exact_metrics_match_scipy_on_any_small_sample(bare_lake: Lake, engine: dict[str, object], xs: list[float], ys: list[float]) -> None:
    a, b = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    m = compare(bare_lake, {"v": a}, {"v": b}, engine).feature("v").metrics
    with warnings.catch_warnings():  # SciPy's p-value of tiny samples divides by zero; only its statistic is used
        warnings.simplefilter("ignore", RuntimeWarning)
        ks = stats.ks_2samp(a, b, method="asymp").statistic
    assert m["ks"] == pytest.approx(ks, abs=1e-12)
    assert m["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)
    deciles = np.unique(np.quantile(a, np.arange(1, 10) / 10, method="inverted_cdf"))
    assert m["psi_edges"] == [e for e in deciles if e < max(a.max(), b.max())]
    assert m["psi"] == pytest.approx(numpy_psi(a, b, np.asarray(m["psi_edges"])), rel=1e-9, abs=1e-12)


@pytest.mark.spark
@pytest.mark.slow
def test_engines_agree_on_tables_training_sets_and_windows(served: Lake, spark: object) -> None:
    """Tables at their versions, a training dataset and a time window, read by Spark: DuckDB's report."""
    from tests.lake.monitor.conftest import DAY2, DAY3

    reports = [drift_report(served, "training:fraud", "logs.serving_fraud", since=DAY2, until=DAY3, record=False,
                            **engine).to_dict()  # type: ignore[arg-type]
               for engine in ({"engine": "duckdb"}, {"engine": "spark", "spark": spark})]
    assert reports[0]["current"] == reports[1]["current"] and reports[0]["current"]["rows"] == 3000
    assert reports[0]["features"] == reports[1]["features"]  # exact mode: equal, not close
    assert reports[1]["status"] == "drift"
    # binned mode on the executors: within the same bounds
    binned = Options(exact_rows=0, bins=256, tolerance=1e-3)
    duck, on_spark = (drift_report(served, "training:fraud", "logs.serving_fraud", record=False, options=binned,
                                   columns=["amount"], **engine).feature("amount").metrics  # type: ignore[arg-type]
                      for engine in ({"engine": "duckdb"}, {"engine": "spark", "spark": spark}))
    assert duck["exact"] is False and on_spark["exact"] is False
    assert abs(duck["ks"] - on_spark["ks"]) <= max(duck["ks_error"], on_spark["ks_error"]) + 1e-12
    assert abs(duck["wasserstein"] - on_spark["wasserstein"]) <= duck["wasserstein_error"] + on_spark["wasserstein_error"]


def test_reports_at_the_same_time_in_one_session_do_not_mix(local_lake: Lake, engine: dict[str, object]) -> None:
    """Each report reads its own views (a Spark session's temporary views are shared by its threads)."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    pairs = [({"v": rng.normal(0, 1, 3_000)}, {"v": rng.normal(shift, 1, 3_000)}) for shift in (0.0, 3.0, 0.0, 3.0)]
    alone = [compare(local_lake, ref, cur, engine).feature("v").metrics for ref, cur in pairs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: compare(local_lake, p[0], p[1], engine).feature("v").metrics, pairs))
    assert together == alone
    assert alone[1]["ks"] > 0.5 > alone[0]["ks"]  # the shifted pairs drifted, the others did not
