"""PostgreSQL going away mid-operation: every public Catalog call raises CatalogConnectionError, fast."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from catalog.entities import ColumnSpec, VersionRecord
from catalog.errors import CatalogConnectionError
from catalog.store import Catalog
from tests.tcp_proxy import TcpProxy

BOUND = 15.0
"""Seconds any call may take to notice the database is gone (connect_timeout=3 in the URL)."""


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as p:
        yield p


@pytest.fixture
def proxied(pg_url: str, proxy: TcpProxy) -> Iterator[tuple[Catalog, str]]:
    """A catalog reaching PostgreSQL only through the proxy, with a run, a version and a report in it."""
    user_url = pg_url.replace("postgres@127.0.0.1:5432", f"postgres:pw@127.0.0.1:{proxy.port}")
    cat = Catalog(user_url + "?connect_timeout=3")
    run_id = cat.start_run("job.before")
    cat.record_version("bronze.a", VersionRecord(0, [ColumnSpec("id", "int64")]), run_id=run_id)
    cat.record_training_dataset("t" * 36, "frame", version=0, features=[], sources={}, entity_hash="e",
                                content_hash="c", row_count=0, columns=[])
    yield cat, run_id
    cat.close()


def _calls(cat: Catalog, run_id: str) -> dict[str, Callable[[], Any]]:
    """One call of every public Catalog method that talks to the database."""
    return {
        "ping": cat.ping,
        "register_dataset": lambda: cat.register_dataset("bronze.b", description="b"),
        "record_version": lambda: cat.record_version("bronze.a", VersionRecord(1)),
        "recorded_versions": lambda: cat.recorded_versions("bronze.a"),
        "start_run": lambda: cat.start_run("job.during"),
        "add_input": lambda: cat.add_input(run_id, "raw.a"),
        "add_output": lambda: cat.add_output(run_id, "bronze.a", 0),
        "add_column_lineage": lambda: cat.add_column_lineage(run_id, "bronze.a", {"id": [("raw.a", "id")]}),
        "finish_run": lambda: cat.finish_run(run_id),
        "run": lambda: cat.run("job.ctx").__enter__(),
        "run_status": lambda: cat.run_status(run_id),
        "reap_dead_runs": cat.reap_dead_runs,
        "describe": lambda: cat.describe("bronze.a", "A"),
        "add_owner": lambda: cat.add_owner("bronze.a", "me"),
        "remove_owner": lambda: cat.remove_owner("bronze.a", "me"),
        "define_tag": lambda: cat.define_tag("pii", propagate=True),
        "tag": lambda: cat.tag("bronze.a", "pii"),
        "untag": lambda: cat.untag("bronze.a", "pii"),
        "record_quality": lambda: cat.record_quality("bronze.a", 0, "suite", True),
        "record_training_dataset": lambda: cat.record_training_dataset(
            "u" * 36, "frame", version=0, features=[], sources={}, entity_hash="e", content_hash="c",
            row_count=0, columns=[]),
        "training_dataset": lambda: cat.training_dataset("frame"),
        "training_datasets": cat.training_datasets,
        "record_report": lambda: cat.record_report("drift", "bronze.a", 0, status="ok", summary={}, body={}),
        "reports": cat.reports,
        "search": lambda: cat.search("bronze"),
        "lineage": lambda: cat.lineage("bronze.a"),
        "lineage_and": lambda: cat.lineage_and("bronze.a", lambda s, g: len(g.nodes)),
        "show": lambda: cat.show("bronze.a"),
        "runs": cat.runs,
        "run_info": lambda: cat.run_info(run_id),
        "datasets": cat.datasets,
        "counts": cat.counts,
        "create_token": lambda: cat.create_token("svc:during"),
        "tokens": cat.tokens,
        "revoke_token": lambda: cat.revoke_token("0123456789ab"),
        "authenticator": lambda: cat.authenticator(cache_seconds=0).required(),
        "save_query": lambda: cat.save_query("during", "SELECT 1"),
        "saved_query": lambda: cat.saved_query("during"),
        "saved_queries": cat.saved_queries,
        "delete_query": lambda: cat.delete_query("during"),
    }


@pytest.mark.postgres
def test_every_call_raises_catalog_connection_error_when_postgres_goes_away(
        proxied: tuple[Catalog, str], proxy: TcpProxy) -> None:
    cat, run_id = proxied
    calls = _calls(cat, run_id)
    # Every public method is here, so a new one cannot skip the check.
    untested = {"close", "dialect", "writing", "reading", "heartbeat", "emitter", "engine", "url", "namespace",
                "stale_after"}
    public = {n for n in dir(cat) if not n.startswith("_")} - untested
    assert set(calls) == public
    for name, call in calls.items():
        proxy.resume()
        cat.ping()  # a live connection in the pool...
        proxy.stop()  # ...that ends under the call (established connections end, new ones are refused)
        for attempt in ("pooled connection dies", "server refuses"):
            started = time.monotonic()
            with pytest.raises(CatalogConnectionError) as info:
                call()
            took = time.monotonic() - started
            assert took < BOUND, (name, attempt, took)
            message = str(info.value)
            assert "\n" not in message, name
            assert message.startswith(f"cannot reach the catalog database postgresql+psycopg://postgres:****@"
                                      f"127.0.0.1:{proxy.port}/"), (name, attempt, message)
            assert ":pw@" not in message
    # Back: the same Catalog works again, nothing needs reopening.
    proxy.resume()
    cat.ping()
    cat.finish_run(run_id)
    assert cat.run_status(run_id) == "completed"
    assert cat.recorded_versions("bronze.a") == {0}


@pytest.mark.postgres
def test_connection_lost_inside_a_transaction(proxied: tuple[Catalog, str], proxy: TcpProxy) -> None:
    cat, _ = proxied
    with pytest.raises(CatalogConnectionError, match="cannot reach the catalog database"), cat.writing() as s:
        s.execute(text("SELECT 1"))
        proxy.stop()
        s.execute(text("SELECT 1"))
    proxy.resume()
    assert cat.recorded_versions("bronze.a") == {0}


@pytest.mark.postgres
def test_a_catalog_that_cannot_connect_at_all(proxy: TcpProxy, pg_url: str) -> None:
    proxy.stop()
    started = time.monotonic()
    with pytest.raises(CatalogConnectionError, match="cannot reach the catalog database"):
        Catalog(pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "?connect_timeout=3")
    assert time.monotonic() - started < BOUND


def test_recorded_versions_and_run_status(catalog: Catalog) -> None:
    assert catalog.recorded_versions("bronze.nothing") == set()
    for v in (0, 1, 3):
        catalog.record_version("bronze.v", VersionRecord(v))
    catalog.record_version("bronze.v", VersionRecord(7), namespace="elsewhere")
    assert catalog.recorded_versions("bronze.v") == {0, 1, 3}
    assert catalog.recorded_versions("bronze.v", namespace="elsewhere") == {7}
    assert catalog.run_status("no-such-run") is None
    run_id = catalog.start_run("job")
    assert catalog.run_status(run_id) == "running"
    catalog.finish_run(run_id, "aborted")
    assert catalog.run_status(run_id) == "aborted"
    catalog.ping()


def test_the_proxy_drops_connections_and_comes_back() -> None:
    """The helper itself, against a tiny echo server."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = False

    def echo() -> None:
        while not stop:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

    import threading

    threading.Thread(target=echo, daemon=True).start()
    with TcpProxy("127.0.0.1", port) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        client.sendall(b"hello")
        assert client.recv(5) == b"hello" and proxy.open_connections == 1
        proxy.stop()
        assert client.recv(5) == b""  # dropped
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        old_port = proxy.port
        proxy.resume()
        assert proxy.port == old_port and proxy.listening
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        again.sendall(b"back")
        assert again.recv(4) == b"back" and proxy.accepted == 2
        again.close()
        client.close()
    stop = True
    server.close()
