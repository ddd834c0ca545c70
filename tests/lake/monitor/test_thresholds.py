"""Thresholds: defaults, overrides from Python and from the command line, statuses."""

from __future__ import annotations

import pytest

from lake.monitor import Level, ThresholdError, Thresholds
from lake.monitor.thresholds import at_least, worst


def test_defaults_and_statuses() -> None:
    t = Thresholds()
    assert (t.psi, t.ks, t.js, t.null_rate) == (Level(0.1, 0.25), Level(0.1, 0.2), Level(0.1, 0.2), Level(0.05, 0.1))
    assert t.wasserstein_norm == Level() and t.chi2_p == Level() and t.cardinality == Level()
    assert [t.status("psi", v) for v in (0.09, 0.1, 0.24, 0.25, None)] == ["ok", "warn", "warn", "drift", "ok"]
    assert t.status("chi2_p", 0.0) == "ok"  # off by default
    p = t.override({"chi2_p": (0.05, 0.01)})
    assert [p.status("chi2_p", v) for v in (0.2, 0.05, 0.02, 0.01, 0.0)] == ["ok", "warn", "warn", "drift", "drift"]
    assert worst(["ok", "drift", "warn"]) == "drift" and worst([]) == "ok"
    assert at_least("drift", "warn") and not at_least("warn", "drift")
    with pytest.raises(ThresholdError, match="unknown status"):
        at_least("ok", "bad")


def test_overrides_from_python() -> None:
    t = Thresholds().override({"psi": 0.2, "ks": (0.05, 0.15), "js": "0.02:0.3", "null_rate": None,
                               "cardinality.warn": 0.5, "wasserstein_norm": Level(0.1, 0.5)})
    assert t.psi == Level(0.1, 0.2)  # one number sets the drift level; warn kept
    assert Thresholds().override({"psi": 0.05}).psi == Level(0.05, 0.05)  # warn lowered to it
    assert t.ks == Level(0.05, 0.15) and t.js == Level(0.02, 0.3) and t.null_rate == Level()
    assert t.cardinality == Level(0.5, None) and t.wasserstein_norm == Level(0.1, 0.5)
    assert Thresholds.coerce(None) == Thresholds() and Thresholds.coerce({"ks": 0.3}).ks == Level(0.1, 0.3)
    assert t.to_dict()["ks"] == {"warn": 0.05, "drift": 0.15}


def test_command_line_items() -> None:
    t = Thresholds.parse(["psi=0.2", "ks=0.05:0.1", "js.warn=0.05", "null_rate=off", "chi2_p=0.01"])
    assert t.psi == Level(0.1, 0.2) and t.ks == Level(0.05, 0.1) and t.js == Level(0.05, 0.2)
    assert t.null_rate == Level() and t.chi2_p == Level(None, 0.01)
    assert Thresholds.coerce(["ks=0.3"]).ks == Level(0.1, 0.3) and Thresholds.coerce("ks=0.3").ks == Level(0.1, 0.3)


@pytest.mark.parametrize(("items", "message"), [
    (["psi"], "NAME=VALUE"),
    (["=0.1"], "NAME=VALUE"),
    (["kss=0.1"], "unknown threshold 'kss': use one of psi, ks, js"),
    (["psi=high"], "'high' is not a number"),
    (["psi=-1"], "must be a number >= 0"),
    (["psi=0.3:0.1"], r"warn level \(0.3\) must be at most the drift level \(0.1\)"),
    (["chi2_p=0.01:0.05"], "must be at least the drift level"),
    (["chi2_p=2"], "is a p-value, between 0 and 1"),
    (["psi=1:2:3"], "two levels"),
    (["psi.high=1"], "use psi.warn or psi.drift"),
])
def test_bad_thresholds_are_clear_errors(items: list[str], message: str) -> None:
    with pytest.raises(ThresholdError, match=message):
        Thresholds.parse(items)
