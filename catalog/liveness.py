"""Whether the process that opened a run is still there: process identity, heartbeats, the verdict.

A run records the host, pid and start time of the process that opened it, and a
heartbeat that process refreshes while the run is open. Another process decides the
run is dead (see :func:`dead_reason`) when, on the same host, that pid is gone or now
belongs to a process that started at another time (pids are reused), or, from any
host, when the heartbeat is older than the stale timeout. Runs without a pid and
without a heartbeat (ingested from other producers, or recorded before these columns
existed) are never judged.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

START_TIME_TOLERANCE = dt.timedelta(seconds=1)
"""Start times recomputed from /proc agree to the clock tick; more than this apart is another process."""


@dataclass(frozen=True)
class ProcessIdentity:
    """Who opened a run: enough to tell later whether that process still exists."""

    host: str
    pid: int
    started_at: dt.datetime | None
    """When the process started (UTC), None when the platform does not say."""


@dataclass(frozen=True)
class ProcessState:
    alive: bool
    started_at: dt.datetime | None = None


@functools.cache
def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _proc_state(pid: int) -> ProcessState | None:
    """From /proc (Linux); None when /proc cannot answer."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ProcessState(False)
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = raw[raw.rfind(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # a zombie has ended; only its parent has not collected it yet
        return ProcessState(False)
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return ProcessState(True, dt.datetime.fromtimestamp(started, dt.UTC))


def process_state(pid: int) -> ProcessState:
    """Whether process ``pid`` exists on this host, and when it started (when known)."""
    state = _proc_state(pid)
    if state is not None:
        return state
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return ProcessState(False)
    except PermissionError:
        pass  # it exists, it belongs to another user
    except OSError:
        return ProcessState(True)
    try:
        # Optional: outside Linux only psutil knows a process's start time; without it the
        # pid alone is checked (and the heartbeat catches a reused pid).
        import psutil
    except ImportError:
        return ProcessState(True)
    try:
        return ProcessState(True, dt.datetime.fromtimestamp(psutil.Process(pid).create_time(), dt.UTC))
    except psutil.Error:
        return ProcessState(True)


def this_process() -> ProcessIdentity:
    """The calling process (computed per pid, so a forked child is itself)."""
    return _identity(os.getpid())


@functools.cache
def _identity(pid: int) -> ProcessIdentity:
    return ProcessIdentity(socket.gethostname(), pid, process_state(pid).started_at)


def dead_reason(
    *,
    host: str | None,
    pid: int | None,
    process_started_at: dt.datetime | None,
    heartbeat_at: dt.datetime | None,
    now: dt.datetime,
    stale_after: dt.timedelta,
    here: str,
) -> str | None:
    """Why a ``running`` run is dead, or None while it may be alive.

    Args:
        host, pid, process_started_at, heartbeat_at: what the run recorded.
        now: the current time (UTC).
        stale_after: a heartbeat older than this means the process is gone.
        here: this host's name (pids are only checked on the host that recorded them).
    """
    if host is not None and pid is not None and host == here:
        state = process_state(pid)
        reused = (state.alive and state.started_at is not None and process_started_at is not None
                  and abs(state.started_at - process_started_at) > START_TIME_TOLERANCE)
        if not state.alive or reused:
            return f"the process (pid {pid} on host {host}) ended without finishing the run"
    if heartbeat_at is not None and now - heartbeat_at > stale_after:
        who = f"the process (pid {pid} on host {host})" if pid is not None else "its process"
        return (f"no heartbeat since {heartbeat_at:%Y-%m-%d %H:%M:%S} UTC (stale after "
                f"{stale_after.total_seconds():g} s): {who} ended without finishing the run")
    return None


class Heartbeat:
    """Refreshes the heartbeat of the runs this process has open, from one daemon thread.

    One thread per catalog, not per run, and one UPDATE per beat for all its open runs, so
    a busy SQLite catalog sees one short write every ``interval`` seconds. The thread
    starts with the first open run and ends when the last one is finished.

    Args:
        beat: refreshes the given runs and returns those still running (the others were
            finished elsewhere and are dropped).
        interval: seconds between beats.
    """

    def __init__(self, beat: Callable[[list[str]], set[str]], interval: float) -> None:
        self._beat = beat
        self.interval = interval
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._runs: set[str] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._failing = False

    def add(self, run_id: str) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's thread and runs are not ours
            self._reset()
        with self._wake:
            self._runs.add(run_id)
            self._stopped = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="catalog-heartbeat", daemon=True)
                self._thread.start()

    def discard(self, run_id: str) -> None:
        with self._wake:
            self._runs.discard(run_id)
            if not self._runs:
                self._wake.notify_all()

    def stop(self) -> None:
        """Stop beating (the runs stay open; another process will find them stale)."""
        with self._wake:
            self._stopped = True
            self._runs.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    @property
    def runs(self) -> set[str]:
        """The runs being beaten."""
        with self._wake:
            return set(self._runs)

    @property
    def active(self) -> bool:
        """Whether the thread is running (it ends soon after the last run is finished)."""
        with self._wake:
            return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if not self._stopped and self._runs:
                    self._wake.wait(self.interval)
                if self._stopped or not self._runs:
                    self._thread = None
                    return
                ids = sorted(self._runs)
            try:
                running = self._beat(ids)
            except Exception as exc:  # the catalog may be down for a while: keep trying
                if not self._failing:
                    log.warning("catalog heartbeat of %d open run(s) failed: %s", len(ids), exc)
                self._failing = True
                continue
            self._failing = False
            with self._wake:
                self._runs -= set(ids) - running
