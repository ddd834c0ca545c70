"""The metric registry: a metric registered once is computed, thresholded and shown everywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from lake.errors import MonitorError
from lake.lakehouse import Lake
from lake.monitor import METRICS, Inputs, Level, Metric, ThresholdError, Thresholds, drift_report


def _mean_shift(x: Inputs) -> dict[str, Any] | None:
    """|current mean - reference mean| in reference standard deviations (numeric columns)."""
    ref, cur = x.reference, x.current
    if x.cells is None or ref.mean is None or cur.mean is None or not ref.std:
        return None
    return {"mean_shift": (cur.mean - ref.mean) / ref.std, "mean_cur": cur.mean}


@pytest.fixture
def mean_shift() -> Iterator[Metric]:
    """A toy metric, registered for one test and removed after it (the registry is left as found)."""
    before = METRICS.names()
    metric = METRICS.register(Metric(
        "mean_shift", _mean_shift, Level(0.5, 1.0), absolute=True, label="mean shift",
        html_label="Mean <i>shift</i>", fmt="+.2f", top=True, doc="Shift of the mean in reference deviations.",
        note="mean shift: difference of the means over the reference standard deviation"))
    try:
        yield metric
    finally:
        METRICS.unregister(metric.name)
        assert METRICS.names() == before


def _sets() -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(5)
    ref = pa.table({"x": rng.normal(0.0, 1.0, 4000), "y": rng.normal(10.0, 2.0, 4000),
                    "c": rng.choice(["a", "b"], 4000).tolist()})
    cur = pa.table({"x": rng.normal(-1.5, 1.0, 3000), "y": rng.normal(10.0, 2.0, 3000),
                    "c": rng.choice(["a", "b"], 3000).tolist()})
    return ref, cur


def test_a_registered_metric_is_computed_thresholded_and_rendered(local_lake: Lake, mean_shift: Metric,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _sets()
    report = drift_report(local_lake, ref, cur)
    x, y, c = report.feature("x"), report.feature("y"), report.feature("c")
    # computed: on numeric columns only, with its companion value
    assert x.metrics["mean_shift"] == pytest.approx(-1.5, abs=0.1) and "mean_cur" in x.metrics
    assert abs(y.metrics["mean_shift"]) < 0.1 and "mean_shift" not in c.metrics
    # thresholded: on the absolute value, at its default levels, with the usual reason line
    assert x.status == "drift" and any(r.startswith("mean_shift 1.5") and r.endswith(">= 1 (drift)")
                                       for r in x.reasons)
    assert not any(r.startswith("mean_shift") for r in y.reasons)
    # its thresholds take overrides like any other
    relaxed = drift_report(local_lake, ref, cur, thresholds={"mean_shift": "off", "ks": "off", "psi": "off"},
                           record=False)
    assert not any(r.startswith("mean_shift") for r in relaxed.feature("x").reasons)
    assert Thresholds().mean_shift == Level(0.5, 1.0) and Thresholds.parse(["mean_shift=2"]).mean_shift.drift == 2
    # in the JSON: the metric, its thresholds, the summary's top features
    body = json.loads(report.to_json())
    assert body["thresholds"]["mean_shift"] == {"warn": 0.5, "drift": 1.0}
    assert next(f for f in body["features"] if f["name"] == "x")["metrics"]["mean_shift"] < -1
    assert any("mean_shift" in top for top in report.summary()["top"])
    # in the HTML: a summary column, the thresholds table, the notes
    page = report.to_html()
    assert "<th>Mean <i>shift</i></th>" in page and "<td>mean_shift</td>" in page
    assert "mean shift: difference of the means" in page
    # in the CLI table, with its own format
    from lake.cli.monitor_cmd import _print

    _print(report)
    out = capsys.readouterr().out
    assert "mean shift" in out and "-1.5" in out


def test_the_registry_refuses_a_second_metric_of_a_name(mean_shift: Metric) -> None:
    with pytest.raises(MonitorError, match="'mean_shift' is already registered"):
        METRICS.register(mean_shift)
    with pytest.raises(MonitorError, match="'psi' is already registered"):
        METRICS.register(Metric("psi", _mean_shift))


def test_unknown_threshold_names_list_the_registry() -> None:
    assert "mean_shift" not in METRICS  # the fixture of another test left nothing behind
    with pytest.raises(ThresholdError, match="unknown threshold 'mean_shift': use one of psi, ks, js"):
        Thresholds(mean_shift=Level(1, 2))
    assert Thresholds.metrics() == METRICS.names() == list(Thresholds().to_dict())
