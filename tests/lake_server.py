"""Start a ``lake`` HTTP server as a user would: a subprocess running the CLI, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests.services import reachable

ROOT = Path(__file__).resolve().parents[1]


def lake_command(*args: str) -> list[str]:
    """``lake ARGS`` with this interpreter (the worktree first on the path, as the tests run)."""
    return [sys.executable, "-m", "lake.cli.main", *args]


def lake_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)}
    env.update(extra)
    return env


@contextlib.contextmanager
def running(args: Sequence[str], port: int, *, env: dict[str, str] | None = None, timeout: float = 120,
            log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``lake ARGS`` until its port answers; SIGTERM (then kill) at the end."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(lake_command(*args), env=env or lake_env(), cwd=ROOT, stdout=out, stderr=out)
    try:
        deadline = time.time() + timeout
        while not reachable("127.0.0.1", port):
            if proc.poll() is not None:
                raise AssertionError(f"`lake {' '.join(args)}` exited with {proc.returncode}"
                                     + (f": {log.read_text()[-3000:]}" if log else ""))
            if time.time() > deadline:
                raise AssertionError(f"`lake {' '.join(args)}` did not listen on {port} within {timeout} s")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if log:
            out.close()  # type: ignore[union-attr]


def wait_healthy(base_url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(base_url + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            raise AssertionError(f"{base_url}/health never answered 200")
        time.sleep(0.2)
