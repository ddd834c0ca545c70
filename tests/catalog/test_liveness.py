"""Dead runs end: a run whose process was killed is failed, a live one is not. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from catalog import liveness
from catalog import models as m
from catalog.errors import CatalogError
from catalog.store import Catalog
from tests.catalog.helpers import airflow_event, stored_events
from tests.catalog.victim import start_victim

HERE = socket.gethostname()


def _killed(pid: int) -> str:
    return f"the process (pid {pid} on host {HERE}) ended without finishing the run"


def test_a_killed_process_run_is_failed_and_a_live_one_is_not(catalog: Catalog, catalog_url: str) -> None:
    victim, run_id = start_victim(catalog_url)
    try:
        # Alive in another process: listing leaves it running, whatever asks.
        assert catalog.reap_dead_runs() == []
        assert catalog.run_status(run_id) == "running"
        [row] = catalog.runs()
        assert row["status"] == "running" and row["pid"] == victim.pid and row["host"] == HERE
        assert row["heartbeat_at"] is not None and row["error"] is None
        assert catalog.run_info(run_id)["status"] == "running"
    finally:
        victim.kill()
        victim.wait(30)
    [row] = catalog.runs()
    assert row["run_id"] == run_id and row["status"] == "failed"
    assert row["error"] == _killed(victim.pid)
    assert row["ended_at"] is not None
    assert catalog.run_status(run_id) == "failed"
    assert catalog.run_info(run_id)["error"] == _killed(victim.pid)
    # The end went out as an OpenLineage FAIL event carrying the reason.
    events = [e for e in stored_events(catalog) if e["run"]["runId"] == run_id]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == _killed(victim.pid)
    assert catalog.reap_dead_runs() == []  # ended once


def test_reap_returns_the_runs_it_ended_even_before_the_parent_collects_the_child(catalog: Catalog,
                                                                               catalog_url: str) -> None:
    victim, run_id = start_victim(catalog_url)
    alive, alive_id = start_victim(catalog_url, job="alive.job")
    try:
        victim.kill()
        deadline = time.monotonic() + 10
        # Not waited for yet: the killed child is a zombie, which has ended all the same.
        while liveness.process_state(victim.pid).alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert catalog.reap_dead_runs() == [run_id]
        assert catalog.run_status(run_id) == "failed"
        assert catalog.run_status(alive_id) == "running"
        assert {r["run_id"]: r["status"] for r in catalog.runs()} == {run_id: "failed", alive_id: "running"}
    finally:
        for proc in (victim, alive):
            proc.kill()
            proc.wait(30)
    assert catalog.run_status("00000000-0000-0000-0000-000000000000") is None


def test_a_reused_pid_is_not_the_same_process(catalog: Catalog) -> None:
    run_id = catalog.start_run("job.before.reboot")
    started = liveness.this_process().started_at
    assert started is not None  # Linux: from /proc
    with catalog.writing() as s:  # this pid, but a process that started an hour before this one
        s.execute(update(m.Run).where(m.Run.id == run_id).values(
            process_started_at=started - dt.timedelta(hours=1)))
    assert catalog.reap_dead_runs() == [run_id]
    assert catalog.run_info(run_id)["error"] == _killed(os.getpid())


def test_a_stale_heartbeat_ends_a_run_from_any_host(catalog: Catalog) -> None:
    far, fresh, legacy = (catalog.start_run(job) for job in ("job.far", "job.fresh", "job.legacy"))
    ingested = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    from catalog.openlineage import ingest

    ingest(catalog, airflow_event("START", ingested))  # another producer's run: no process, no heartbeat
    long_ago = m.utcnow() - dt.timedelta(minutes=11)
    with catalog.writing() as s:
        s.execute(update(m.Run).where(m.Run.id.in_([far, fresh, legacy])).values(host="elsewhere", pid=1))
        s.execute(update(m.Run).where(m.Run.id == far).values(heartbeat_at=long_ago))
        # Recorded before heartbeats existed, on a host whose pids this one cannot check.
        s.execute(update(m.Run).where(m.Run.id == legacy).values(heartbeat_at=None, process_started_at=None))
    assert catalog.reap_dead_runs() == [far]
    info = catalog.run_info(far)
    assert info["status"] == "failed"
    assert info["error"].startswith(f"no heartbeat since {long_ago:%Y-%m-%d %H:%M:%S} UTC (stale after 600 s)")
    assert "(pid 1 on host elsewhere) ended without finishing the run" in info["error"]
    assert info["ended_at"] == long_ago  # its last sign of life
    statuses = {r["run_id"]: r["status"] for r in catalog.runs()}
    assert statuses == {far: "failed", fresh: "running", legacy: "running", ingested: "running"}


def test_heartbeats_keep_a_run_alive_until_the_process_stops_beating(catalog_url: str) -> None:
    owner = Catalog(catalog_url, heartbeat_interval=0.1, stale_after=1.0)
    watcher = Catalog(catalog_url, stale_after=1.0, heartbeat_interval=None)
    try:
        run_id = owner.start_run("job.beating")
        first = owner.runs()[0]["heartbeat_at"]
        time.sleep(1.5)  # longer than stale_after: only the beats keep it alive
        assert watcher.reap_dead_runs() == []
        assert watcher.runs()[0]["heartbeat_at"] > first
        owner.close()  # stops beating; the process (this one) lives on
        time.sleep(1.2)
        assert watcher.reap_dead_runs() == [run_id]
        assert "no heartbeat since" in watcher.run_info(run_id)["error"]
        # A finished run stops being beaten: the heartbeat thread ends with the last open run.
        beating = Catalog(catalog_url, heartbeat_interval=0.05, stale_after=1.0)
        with beating.run("job.short"):
            assert beating.heartbeat is not None and beating.heartbeat.runs
        assert beating.heartbeat.runs == set()
        deadline = time.monotonic() + 5
        while beating.heartbeat.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not beating.heartbeat.active
        beating.close()
    finally:
        owner.close()
        watcher.close()


def test_a_run_without_heartbeat_is_ended_only_by_its_pid(catalog_url: str) -> None:
    cat = Catalog(catalog_url, heartbeat_interval=None, stale_after=0.001)
    try:
        run_id = cat.start_run("job.quiet")
        time.sleep(0.05)
        assert cat.runs()[0]["heartbeat_at"] is None and cat.reap_dead_runs() == []
        cat.finish_run(run_id)
        assert cat.run_status(run_id) == "completed"
    finally:
        cat.close()


def test_timeouts_that_would_end_live_runs_are_refused(catalog_url: str) -> None:
    with pytest.raises(CatalogError, match="more than twice heartbeat_interval"):
        Catalog(catalog_url, heartbeat_interval=30, stale_after=45)
    with pytest.raises(CatalogError, match="must be positive"):
        Catalog(catalog_url, heartbeat_interval=0)


def test_a_finish_after_the_run_was_ended_as_dead_records_the_real_outcome(catalog: Catalog) -> None:
    run_id = catalog.start_run("job.partitioned")
    with catalog.writing() as s:  # its heartbeat could not reach the catalog for a while
        s.execute(update(m.Run).where(m.Run.id == run_id).values(
            heartbeat_at=m.utcnow() - dt.timedelta(hours=1)))
    assert catalog.reap_dead_runs() == [run_id]
    catalog.finish_run(run_id, "completed")
    assert catalog.run_status(run_id) == "completed"


def test_dead_reason_rules() -> None:
    now = m.utcnow()
    me = liveness.this_process()
    stale = dt.timedelta(minutes=10)
    kw: dict[str, Any] = {"now": now, "stale_after": stale, "here": me.host}
    assert liveness.dead_reason(host=me.host, pid=me.pid, process_started_at=me.started_at, heartbeat_at=now,
                                **kw) is None
    # Only the host that recorded a pid can check it.
    assert liveness.dead_reason(host="elsewhere", pid=2**22 + 1, process_started_at=None, heartbeat_at=now,
                                **kw) is None
    assert liveness.dead_reason(host=None, pid=None, process_started_at=None, heartbeat_at=None, **kw) is None
    assert liveness.dead_reason(host=me.host, pid=2**22 + 1, process_started_at=None, heartbeat_at=None,
                                **kw) == f"the process (pid {2**22 + 1} on host {me.host}) ended without finishing the run"
    assert me.started_at is not None and abs(me.started_at - now) < dt.timedelta(days=1)



def test_runs_recorded_before_migration_0003_are_left_alone(catalog_url: str) -> None:
    """Upgrading a catalog keeps its open runs: without pid or heartbeat nothing can say they died."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert

    from catalog.db import make_engine

    engine = make_engine(catalog_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(m.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        job_id = conn.execute(insert(m.Job.__table__).values(namespace="lake", name="old.job")
                              .returning(m.Job.__table__.c.id)).scalar_one()
        conn.execute(insert(m.Run.__table__).values(id="old-run", job_id=job_id, status="running",
                                                    started_at=m.utcnow() - dt.timedelta(days=30)))
    engine.dispose()
    cat = Catalog(catalog_url, stale_after=1.0, heartbeat_interval=None)  # upgrades to 0003
    try:
        assert cat.reap_dead_runs() == []
        [row] = cat.runs()
        assert row["run_id"] == "old-run" and row["status"] == "running"
        assert row["host"] is None and row["pid"] is None and row["heartbeat_at"] is None
    finally:
        cat.close()
