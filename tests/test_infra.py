"""The stack as code: compose services, Prometheus alert rules and the Grafana dashboard, checked
the way promtool would (every expression parses as PromQL) and against the metrics the code exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from lake import metrics
from lake.config import load_settings

INFRA = Path(__file__).resolve().parents[1] / "infra"


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (raises ValueError when it does not parse)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        kind = type(node).__name__
        if kind == "VectorSelector":
            if node.name:
                found.add(node.name)
            return
        if kind == "MatrixSelector":
            walk(node.vector_selector)
            return
        for attr in ("lhs", "rhs", "expr", "param"):
            child = getattr(node, attr, None)
            if child is not None and type(child).__module__ == "promql_parser":
                walk(child)
        for arg in getattr(node, "args", None) or []:
            walk(arg)

    walk(promql_parser.parse(expr))
    return found


def test_alert_rules_parse_and_use_only_exported_metrics() -> None:
    rules = yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())
    exported = metrics.names()
    alerts = [r for group in rules["groups"] for r in group["rules"]]
    assert {r["alert"] for r in alerts} >= {"LakeFeaturesStale", "LakeJobFailed", "LakeDrift", "LakeFeatureServingSlow"}
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        used = metric_names(str(rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)
        assert rule["annotations"]["summary"]


def test_dashboard_panels_query_exported_metrics() -> None:
    dashboard = json.loads((INFRA / "grafana" / "dashboards" / "lake.json").read_text())
    exported = metrics.names()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 15
    covered: set[str] = set()
    for expr in exprs:
        used = metric_names(expr)
        assert used <= exported, (expr, used - exported)
        covered |= used
    declared = {m.name for m in metrics.REGISTRY.collect()}
    shown = {name.removesuffix("_bucket").removesuffix("_total") for name in covered}
    assert declared - shown == set(), "every metric has a panel"


def test_compose_brings_up_the_whole_stack() -> None:
    compose = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    services = set(compose["services"])
    assert services >= {"minio", "postgres", "redis", "spark-master", "spark-worker", "lake-serve", "lake-features",
                        "prometheus", "pushgateway", "grafana"}
    prometheus = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert {"lake-serve:8080", "lake-features:6566", "pushgateway:9091"} <= targets
    env = compose["services"]["lake-serve"]["environment"]
    settings = load_settings({}, env=env, config_file=(INFRA / "lake.toml"))
    assert settings.catalog_url.startswith("postgresql+psycopg://lake:lake@postgres:5432/")
    assert settings.metrics.pushgateway == "http://pushgateway:9091"
    assert settings.s3.endpoint == "http://minio:9000"
