"""Drift reports end to end: what is compared, statuses, schema changes, the catalog, OpenLineage, HTML."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lake.errors import LakeError, TableNotFoundError, VersionNotFoundError
from lake.lakehouse import Lake
from lake.monitor import DriftReport, SourceError, ThresholdError, Thresholds, drift_report
from tests.lake.monitor.conftest import DAY1, DAY2, DAY3, N


def test_training_reference_against_serving_windows(served: Lake) -> None:
    same = drift_report(served, "training:fraud", "logs.serving_fraud", since=DAY1, until=DAY2)
    assert same.status == "ok", [(f.name, f.reasons) for f in same.features]
    assert [f.name for f in same.features] == ["amount", "age", "country", "is_new"]  # the training features
    assert [f.kind for f in same.features] == ["numeric", "numeric", "categorical", "categorical"]
    assert same.reference["label"] == "training:3f2a9c1e (training.fraud@0)" and same.reference["rows"] == N
    assert same.current["label"] == "logs.serving_fraud@1" and same.current["rows"] == N
    assert same.current["window"] == "ts in [2024-05-01T00:00:00Z, 2024-05-02T00:00:00Z)"
    assert set(same.schema.added) == {"ts", "request_id"} and set(same.schema.removed) == {"event_timestamp", "label"}

    shifted = drift_report(served, "training:3f2a9c", "logs.serving_fraud", since="2024-05-02", until=DAY3,
                           time_column="ts")
    assert shifted.status == "drift" and shifted.current["rows"] == N
    amount, age, country, is_new = shifted.features
    assert amount.status == "drift" and amount.metrics["psi"] > 0.25 and amount.metrics["ks"] > 0.2
    assert any(r.startswith("psi ") and r.endswith("(drift)") for r in amount.reasons)
    assert age.status == "ok"
    assert country.status == "drift" and country.metrics["new_categories"] == 1
    assert country.metrics["new_examples"] == ["BR"] and country.metrics["chi2_p"] < 1e-10
    assert is_new.status == "drift" and is_new.metrics["js"] > 0.2
    whole = drift_report(served, "training:fraud", "logs.serving_fraud")  # both days
    assert whole.current["rows"] == 2 * N and whole.current["window"] is None


def test_report_is_stored_in_the_catalog_with_its_run_and_lineage(served: Lake, tmp_path: Path) -> None:
    before = len(served.catalog.runs())
    report = drift_report(served, "training:fraud", "logs.serving_fraud", since=DAY2, html=tmp_path / "r.html")
    assert report.report_id and report.run_id and report.location == str((tmp_path / "r.html").resolve())
    (stored,) = served.catalog.reports(dataset="logs.serving_fraud")
    assert stored["id"] == report.report_id and stored["kind"] == "drift" and stored["version"] == 1
    assert stored["status"] == "drift" and stored["reference"] == report.reference["label"]
    assert stored["location"] == report.location and stored["run_id"] == report.run_id
    assert stored["summary"]["drift"] == ["amount", "country", "is_new"] and stored["summary"]["features"] == 4
    assert stored["body"] == {k: v for k, v in json.loads(report.to_json()).items() if k != "report_id"}
    run = served.catalog.run_info(report.run_id)
    assert run["job"] == "monitor.drift.logs.serving_fraud" and run["status"] == "completed"
    assert run["inputs"] == [{"namespace": "lake", "name": "logs.serving_fraud", "version": 1},
                             {"namespace": "lake", "name": "training.fraud", "version": 0}]
    assert run["outputs"] == [] and run["parameters"]["reference"] == report.reference["label"]
    assert len(served.catalog.runs()) == before + 1


def lineage_events(lake: Lake, run_id: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from catalog import models as m

    with lake.catalog.reading() as s:
        return [e.payload for e in s.scalars(select(m.LineageEvent).where(m.LineageEvent.run_id == run_id)
                                             .order_by(m.LineageEvent.id))]


def test_openlineage_complete_event_carries_the_drift_facet(served: Lake) -> None:
    from tests.catalog.ol_schema import validate_run_event

    report = drift_report(served, "logs.serving_fraud@0", "logs.serving_fraud", columns=["amount", "country"])
    start, complete = lineage_events(served, str(report.run_id))
    for event in (start, complete):
        validate_run_event(event)
    assert all("lake_drift" not in d["facets"] for d in start["inputs"])  # no report yet when the run starts
    by_version = {d["facets"]["version"]["datasetVersion"]: d for d in complete["inputs"]}
    assert set(by_version) == {"0", "1"} and "lake_drift" not in by_version["0"]["facets"]
    facet = by_version["1"]["facets"]["lake_drift"]  # on the current dataset version only
    assert facet["status"] == report.status == "drift" and facet["reportId"] == report.report_id
    assert facet["reference"] == "logs.serving_fraud@0"
    assert facet["summary"]["drift"] == ["amount", "country"] and facet["summary"]["rows"] == {
        "reference": N, "current": 2 * N}
    assert facet["_schemaURL"].endswith("LakeDriftDatasetFacet.json") and facet["_producer"]
    if served.storage.is_local:  # the JSON-lines sink beside the tables got the same event
        lines = (Path(served.storage.root) / "openlineage.jsonl").read_text().splitlines()
        assert any("lake_drift" in line and report.report_id in line for line in lines)


def test_statuses_follow_thresholds(local_lake: Lake) -> None:
    rng = np.random.default_rng(1)
    ref = pa.table({"x": rng.normal(0, 1, 4000), "c": rng.choice(["a", "b"], 4000).tolist()})
    cur = pa.table({"x": rng.normal(0.2, 1, 4000), "c": rng.choice(["a", "b"], 4000, p=[0.55, 0.45]).tolist()})
    default = drift_report(local_lake, ref, cur, record=False)
    assert default.feature("x").status == "ok" and default.feature("c").status == "ok"
    ks, js = default.feature("x").metrics["ks"], default.feature("c").metrics["js"]
    assert 0.05 < ks < 0.1 and 0.02 < js < 0.1
    strict = drift_report(local_lake, ref, cur, record=False, thresholds={"ks": (0.05, 0.2), "js": 0.02})
    assert strict.feature("x").status == "warn" and strict.feature("x").reasons == (f"ks {ks:.4g} >= 0.05 (warn)",)
    assert strict.feature("c").status == "drift" and strict.status == "drift"
    assert strict.failed("warn") and strict.failed("drift") and not default.failed("warn")
    p_value = drift_report(local_lake, ref, cur, record=False, thresholds=["chi2_p=0.01"])
    assert p_value.feature("c").status == "drift" and "chi2_p" in p_value.feature("c").reasons[0]
    with pytest.raises(ThresholdError, match="unknown threshold 'kss'"):
        drift_report(local_lake, ref, cur, record=False, thresholds={"kss": 0.1})
    assert Thresholds.coerce(strict.thresholds) is strict.thresholds


def test_null_rate_and_cardinality_changes(local_lake: Lake) -> None:
    ref = pa.table({"v": [float(i % 7) for i in range(1000)], "s": [f"k{i % 5}" for i in range(1000)]})
    cur = pa.table({"v": [None if i % 4 == 0 else float(i % 7) for i in range(1000)],
                    "s": [f"k{i % 10}" for i in range(1000)]})
    report = drift_report(local_lake, ref, cur, record=False, thresholds={"cardinality": (0.5, 1.0)})
    v, s = report.feature("v"), report.feature("s")
    assert v.metrics["null_rate_change"] == pytest.approx(0.25) and v.status == "drift"
    assert "null_rate 0.25 >= 0.1 (drift)" in v.reasons
    assert s.reference["distinct"] == 5 and s.current["distinct"] == 10
    assert s.metrics["cardinality_change"] == pytest.approx(1.0) and s.status == "drift"


def test_schema_changes_are_detected(local_lake: Lake) -> None:
    t = local_lake.table("gold.scores")
    t.write(pa.table({"a": [1, 2, 3] * 100, "b": [0.5] * 300, "c": ["x", "y", "z"] * 100, "d": [1.0, 2.0, 3.0] * 100}))
    t.write(pa.table({"a": [1.0, 2.0, 3.0] * 100, "c": [1, 2, 3] * 100, "d": [1.0, 2.0, 3.0] * 100,
                      "e": ["new"] * 300}), mode="overwrite", schema_mode="overwrite")
    report = drift_report(local_lake, "gold.scores@0", "gold.scores")
    assert report.schema.added == ("e",) and report.schema.removed == ("b",)
    assert report.schema.changed == (("a", "int64", "double"), ("c", "string", "int64"))
    a, b, c, d = report.features
    assert a.status == "warn" and a.reasons == ("type changed from int64 to double",) and a.kind == "numeric"
    assert a.metrics["ks"] == 0 and a.metrics["exact"] is True
    assert b.kind == "missing" and b.status == "drift" and b.reasons == ("not in the current set gold.scores@1",)
    assert c.kind == "other" and c.status == "drift" and "not comparable" in c.reasons[0]
    assert "ks" not in c.metrics and c.metrics["null_rate_change"] == 0
    assert d.status == "ok" and d.metrics["ks"] == 0 and d.metrics["psi"] == 0
    assert report.status == "drift" and report.to_dict()["schema"]["changed"][1] == {
        "column": "c", "reference": "string", "current": "int64"}


def test_frames_and_table_objects_as_sets(local_lake: Lake) -> None:
    rng = np.random.default_rng(9)
    data = {"x": rng.normal(0, 1, 2000), "k": rng.choice(["a", "b"], 2000).tolist()}
    local_lake.table("silver.events").write(pa.table(data))
    for reference in (pd.DataFrame(data), pl.DataFrame(data), pa.table(data)):
        report = drift_report(local_lake, reference, local_lake.table("silver.events"))
        assert report.reference["label"] == "frame" and report.current["label"] == "silver.events@0"
        assert report.status == "ok" and report.feature("x").metrics["ks"] == 0
    frame_only = drift_report(local_lake, pd.DataFrame(data), pl.DataFrame(data))
    assert frame_only.report_id is not None and frame_only.current["table"] is None
    assert local_lake.catalog.reports(kind="drift")[0]["dataset"] is None


def test_a_lake_without_catalog_still_reports(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    bare = Lake(make_settings(root=str(tmp_path / "lake")), catalog=False)
    bare.table("gold.x").write(pa.table({"v": [1.0, 2.0, 3.0]}))
    bare.table("gold.x").write(pa.table({"v": [2.0, 3.0, 4.0]}), mode="overwrite")
    report = drift_report(bare, "gold.x@0", "gold.x")
    assert report.report_id is None and report.feature("v").metrics["wasserstein"] == pytest.approx(1.0)


def test_user_mistakes_are_clear_errors_and_leave_no_run(served: Lake) -> None:
    runs = len(served.catalog.runs())
    cases: list[tuple[dict[str, Any], type[LakeError], str]] = [
        ({"reference": "gold.nope", "current": "logs.serving_fraud"}, TableNotFoundError, "gold.nope does not exist"),
        ({"reference": "logs.serving_fraud@7", "current": "logs.serving_fraud"}, VersionNotFoundError,
         "no version 7"),
        ({"reference": "logs.serving_fraud@soon", "current": "logs.serving_fraud"}, SourceError,
         "after @ comes a version"),
        ({"reference": "training:nothing", "current": "logs.serving_fraud"}, LakeError, "no training dataset"),
        ({"reference": "training.fraud", "current": "logs.serving_fraud", "columns": ["label", "nope"]}, SourceError,
         "column.s. nope not in the reference"),
        ({"reference": "logs.serving_fraud", "current": pa.table({"other": [1]})}, SourceError,
         "no common columns to compare"),
        ({"reference": "training:fraud", "current": "logs.serving_fraud", "since": DAY3}, SourceError,
         r"has no rows in ts in \[2024-05-03"),
        ({"reference": "training:fraud", "current": "training.fraud", "since": "7d"}, SourceError,
         "has no rows"),
        ({"reference": "training:fraud", "current": "logs.serving_fraud", "since": DAY2, "until": DAY1}, SourceError,
         "empty window"),
        ({"reference": "training:fraud", "current": "logs.serving_fraud", "since": "yesterday"}, SourceError,
         "not a time"),
        ({"reference": "training:fraud", "current": "logs.serving_fraud", "since": DAY1, "time_column": "amount"},
         SourceError, "not a timestamp"),
        ({"reference": "training:fraud", "current": "logs.serving_fraud", "thresholds": ["psi"]}, ThresholdError,
         "NAME=VALUE"),
        ({"reference": 42, "current": "logs.serving_fraud"}, SourceError, "cannot compare a int"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            drift_report(served, **kwargs)
    assert len(served.catalog.runs()) == runs
    with pytest.raises(SourceError, match=r"needs --time-column \(its timestamp columns are a, b\)"):
        drift_report(served, pa.table({"v": [1]}), pa.table({"v": [1], "a": [DAY1], "b": [DAY2]}), since=DAY1)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "srcset")]


def test_html_report_is_self_contained(served: Lake, tmp_path: Path) -> None:
    report: DriftReport = drift_report(served, "training:fraud", "logs.serving_fraud", since=DAY2)
    path = report.save_html(tmp_path / "out" / "drift.html")
    text = path.read_text(encoding="utf-8")
    assert text == report.to_html() and text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text and "url(" not in text
    parser = _Collector()
    parser.feed(text)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert all(link.startswith("#") for link in parser.links)  # only jumps inside the page
    assert parser.tags.count("svg") == 4 and parser.tags.count("section") == 4
    for name in ("amount", "age", "country", "is_new", "training:3f2a9c1e (training.fraud@0)", "BR"):
        assert name in text
    assert len(re.findall(r'class="badge drift"', text)) >= 4  # the page and three features


@pytest.mark.postgres
def test_reports_and_facet_on_a_postgresql_catalog(tmp_path: Path, pg_url: str) -> None:
    from tests.conftest import make_settings

    lake = Lake(make_settings(root=str(tmp_path / "lake"), catalog={"url": pg_url}))
    t = lake.table("gold.scores")
    t.write(pa.table({"v": [float(i % 10) for i in range(500)]}))
    t.write(pa.table({"v": [float(i % 10) + 3 for i in range(500)]}), mode="overwrite")
    report = drift_report(lake, "gold.scores@0", "gold.scores")
    assert report.status == "drift" and report.feature("v").metrics["wasserstein"] == pytest.approx(3.0)
    (stored,) = lake.catalog.reports(dataset="gold.scores", kind="drift")
    assert stored["id"] == report.report_id and stored["version"] == 1 and stored["summary"]["drift"] == ["v"]
    complete = lineage_events(lake, str(report.run_id))[-1]
    current = next(d for d in complete["inputs"] if d["facets"]["version"]["datasetVersion"] == "1")
    assert current["facets"]["lake_drift"]["reportId"] == report.report_id
