"""What happens when drift is found: a command runs, or a JSON payload is POSTed.

The continuous-training hook: ``lake monitor drift --on-drift CMD|URL`` and a monitor's
``on_drift`` (see :mod:`lake.monitor.monitors`). The payload names the report, the tables
compared, the features that drifted and the training set to refresh. A command gets it on
standard input (and ``LAKE_DRIFT_REPORT``/``LAKE_DRIFT_STATUS`` in its environment); a URL
gets it as the body of a POST. Either must answer in ``timeout`` seconds.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from catalog.redact import redact_url
from lake.errors import MonitorError

HOOK_TIMEOUT = 300.0


@dataclass(frozen=True)
class HookResult:
    """What the hook did: the target (redacted), its outcome, and a short detail."""

    target: str
    ok: bool
    detail: str


def drift_payload(report: Any, *, monitor: str | None = None, retrain: str | None = None) -> dict[str, Any]:
    """The JSON a hook receives about a report."""
    return {
        "event": "drift",
        "monitor": monitor,
        "status": report.status,
        "report_id": getattr(report, "report_id", None),
        "reference": dict(report.reference),
        "current": dict(report.current),
        "drifted": [f.name for f in report.features if f.status == "drift"],
        "warned": [f.name for f in report.features if f.status == "warn"],
        "training_set": retrain or report.reference.get("training_id"),
        "created_at": report.created_at.isoformat(),
    }


def run_hook(target: str, payload: Mapping[str, Any], *, timeout: float = HOOK_TIMEOUT) -> HookResult:
    """Run a command or POST to a URL with ``payload``; never raises for the hook's own failure.

    Raises:
        MonitorError: ``target`` is empty.
    """
    target = target.strip()
    if not target:
        raise MonitorError("an on-drift hook needs a command or an http(s):// URL")
    body = json.dumps(payload, default=str)
    if target.startswith(("http://", "https://")):
        shown = redact_url(target)
        try:
            response = httpx.post(target, content=body, headers={"content-type": "application/json"},
                                  timeout=timeout)
        except httpx.HTTPError as exc:
            return HookResult(shown, False, f"POST failed: {type(exc).__name__}")
        return HookResult(shown, response.is_success, f"HTTP {response.status_code}")
    argv = shlex.split(target)
    env = {**os.environ, "LAKE_DRIFT_STATUS": str(payload.get("status")),
           "LAKE_DRIFT_REPORT": str(payload.get("report_id") or "")}
    try:
        done = subprocess.run(argv, input=body, text=True, capture_output=True, timeout=timeout, env=env)
    except FileNotFoundError:
        return HookResult(argv[0], False, "command not found")
    except subprocess.TimeoutExpired:
        return HookResult(argv[0], False, f"did not finish in {timeout:g} s")
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
    return HookResult(argv[0], done.returncode == 0, f"exit {done.returncode}" + (f": {tail[0][:200]}" if tail[0] else ""))
