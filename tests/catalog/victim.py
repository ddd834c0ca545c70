"""A process that opens catalog runs and then waits to be killed (for the dead-run tests)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import sys, time
from catalog.store import Catalog

cat = Catalog(sys.argv[1])
print(cat.start_run(sys.argv[2]), flush=True)
time.sleep(600)
"""


def start_victim(url: str, job: str = "victim.job", timeout: float = 60) -> tuple[subprocess.Popen[str], str]:
    """A process with an open run of ``job`` on the catalog at ``url``; returns it and the run id."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, url, job], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline().strip()
            if line:
                return proc, line
        if proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=10)
    raise AssertionError(f"the victim process did not open its run: {err[-2000:]}")
