"""Declared drift checks: ``monitors/*.yaml``, run by ``lake pipeline run`` and Dagster.

One file per check, versioned with the jobs::

    # monitors/stock_features.yaml
    name: stock_features
    current: gold.stock_features           # a lake table (or feature view source)
    reference: training:stock_direction    # what it is compared with
    columns: [price, return_1m]            # optional
    since: 30d                             # optional window of the current set
    thresholds: {psi: 0.2}                 # optional, per metric
    on_drift: "python retrain.py"          # optional: a command, or an http(s):// URL
    retrain: [gold_stock_features]         # optional: steps Dagster's drift sensor re-runs
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lake.errors import MonitorError

FIELDS = {"name", "current", "reference", "columns", "since", "time_column", "thresholds", "on_drift", "retrain",
          "description"}


@dataclass(frozen=True)
class Monitor:
    """One declared drift check."""

    name: str
    current: str
    reference: str
    columns: tuple[str, ...] = ()
    since: str | None = None
    time_column: str | None = None
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    on_drift: str | None = None
    retrain: tuple[str, ...] = ()
    """Pipeline steps (jobs, feature views) to run again when drift is found (Dagster's sensor)."""
    description: str | None = None
    source: str | None = None
    """The file it was declared in."""


def parse_monitor(data: Any, source: str) -> Monitor:
    """A monitor from its YAML mapping; a clear error naming the file and the field otherwise."""
    if not isinstance(data, Mapping):
        raise MonitorError(f"{source}: a monitor is one mapping (name, current, reference...)")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise MonitorError(f"{source}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
    for key in ("current", "reference"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise MonitorError(f"{source}: `{key}` must name a table or training set")
    columns = data.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise MonitorError(f"{source}: `columns` is a list of column names")
    retrain = data.get("retrain") or []
    if not isinstance(retrain, list) or not all(isinstance(r, str) for r in retrain):
        raise MonitorError(f"{source}: `retrain` is a list of pipeline steps (job or feature view names)")
    thresholds = data.get("thresholds") or {}
    if not isinstance(thresholds, Mapping):
        raise MonitorError(f"{source}: `thresholds` maps metric names to levels")
    return Monitor(str(data.get("name") or Path(source).stem), data["current"].strip(), data["reference"].strip(),
                   tuple(columns), _text(data, "since", source), _text(data, "time_column", source),
                   dict(thresholds), _text(data, "on_drift", source), tuple(retrain), _text(data, "description", source),
                   source)


def _text(data: Mapping[str, Any], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str | int):
        raise MonitorError(f"{source}: `{key}` must be text")
    return None if value is None else str(value)


def load_monitors(folder: Path) -> dict[str, Monitor]:
    """Every monitor in ``folder`` by name (none when the folder does not exist)."""
    found: dict[str, Monitor] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise MonitorError(f"{path} is not valid YAML: {exc}") from None
        monitor = parse_monitor(data, str(path))
        if monitor.name in found:
            raise MonitorError(f"two monitors are named {monitor.name!r}: {found[monitor.name].source} and {path}")
        found[monitor.name] = monitor
    return found


def monitors_folder(configured: str | None) -> Path:
    """``monitors_dir`` from the settings, else ``./monitors``."""
    return Path(configured).expanduser() if configured else Path("monitors")
