"""A real PostgreSQL catalog that goes away during a write, for a Python write and for a job.

The catalog is reached through a TCP proxy the test cuts (``tests/tcp_proxy.py``): before
the commit (nothing is committed, the error says so), or between the Delta commit and its
catalog record (the error says the data was committed; the retry does not write the rows
again; the catalog ends up knowing every committed version).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import lake.recording as recording
from catalog.store import Catalog
from lake import delta_log
from lake.errors import CatalogUnavailableError, CommitNotRecordedError
from lake.lakehouse import Lake
from lake.pipeline import FileSource, Job
from lake.pipeline.runner import JobRunner
from tests.conftest import make_settings
from tests.lake.pipeline.test_files import put
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", 5432) as p:
        yield p


@pytest.fixture
def lake_via_proxy(pg_url: str, proxy: TcpProxy, tmp_path: Path) -> Iterator[tuple[Lake, Catalog]]:
    """A lake whose PostgreSQL catalog is reached only through the proxy; and a direct view of it."""
    through = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "?connect_timeout=3"
    lake = Lake(make_settings(root=str(tmp_path / "lakehouse"), catalog={"url": through}))
    direct = Catalog(pg_url, heartbeat_interval=None)
    yield lake, direct
    direct.close()
    lake.catalog.close()


@pytest.fixture
def cut_after_commit(monkeypatch: pytest.MonkeyPatch, proxy: TcpProxy) -> dict[str, Any]:
    """Cut the proxy the moment a commit of ``table`` is about to be recorded (after the Delta commit)."""
    state: dict[str, Any] = {"table": None, "cuts": 0}
    original = recording.version_record

    def cutting(table: Any, version: int, *args: Any, **kwargs: Any) -> Any:
        if table.name == state["table"] and proxy.listening:
            proxy.stop()
            state["cuts"] += 1
            state["table"] = None  # once
        return original(table, version, *args, **kwargs)

    monkeypatch.setattr(recording, "version_record", cutting)
    return state


def rows(start: int, n: int) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "amount": [float(i) for i in range(start, start + n)]})


def test_python_write_with_the_catalog_gone_before_the_commit(lake_via_proxy: tuple[Lake, Catalog],
                                                              proxy: TcpProxy) -> None:
    lake, direct = lake_via_proxy
    t = lake.table("bronze.payments")
    t.write(rows(0, 3))
    proxy.stop()
    with pytest.raises(CatalogUnavailableError, match="nothing was committed to bronze.payments") as err:
        t.write(rows(3, 3))
    assert err.value.context["committed"] is False
    assert t.version() == 0 and t.to_arrow().num_rows == 3
    proxy.resume()
    assert t.write(rows(3, 3)).version == 1
    assert direct.recorded_versions("bronze.payments") == {0, 1}


def test_python_write_with_the_catalog_gone_after_the_commit(lake_via_proxy: tuple[Lake, Catalog],
                                                             proxy: TcpProxy, cut_after_commit: dict[str, Any]) -> None:
    lake, direct = lake_via_proxy
    t = lake.table("bronze.payments")
    t.write(rows(0, 3))
    batch = rows(3, 4).to_pandas()
    cut_after_commit["table"] = "bronze.payments"
    with pytest.raises(CommitNotRecordedError, match="committed as version 1") as err:
        t.write(batch)
    assert cut_after_commit["cuts"] == 1
    assert err.value.context == {"table": "bronze.payments", "version": 1, "committed": True}
    assert t.to_arrow().num_rows == 7  # the data is there
    assert direct.recorded_versions("bronze.payments") == {0}
    # Still gone: a retry commits nothing.
    with pytest.raises(CatalogUnavailableError):
        t.write(batch)
    proxy.resume()
    retry = t.write(batch)  # the same call again, once the catalog is back
    assert retry.skipped and retry.version == 1
    assert t.version() == 1 and t.to_arrow().num_rows == 7
    assert direct.recorded_versions("bronze.payments") == {0, 1}
    info = delta_log.commit_info(t.storage, t.uri, 1) or {}
    assert direct.run_info(info["lake.run_id"])["outputs"] == [
        {"namespace": "lake", "name": "bronze.payments", "version": 1}]


def test_job_with_the_catalog_gone_after_the_commit(lake_via_proxy: tuple[Lake, Catalog], proxy: TcpProxy,
                                                    cut_after_commit: dict[str, Any], spark: Any) -> None:
    lake, direct = lake_via_proxy
    put(lake, "landing/a.csv", b"id,amount\n1,10.5\n2,20\n")
    job = Job(name="payments", source=FileSource("landing/*.csv", columns={"id": "BIGINT", "amount": "DOUBLE"}),
              target="bronze.payments")
    runner = JobRunner(lake, spark=spark)
    first = runner.run(job)
    assert first.version == 0
    put(lake, "landing/b.csv", b"id,amount\n3,30\n4,40\n5,50\n")
    cut_after_commit["table"] = "bronze.payments"
    with pytest.raises(CommitNotRecordedError, match="bronze.payments was committed as version 1"):
        runner.run(job)
    assert cut_after_commit["cuts"] == 1
    target = lake.table("bronze.payments")
    assert target.to_arrow().num_rows == 5
    proxy.resume()
    again = runner.run(job)  # the re-run: the committed batch is not written twice
    assert target.to_arrow().num_rows == 5 and sorted(target.to_pandas()["id"]) == [1, 2, 3, 4, 5]
    assert again.version == 1
    assert direct.recorded_versions("bronze.payments") == {0, 1}
    assert runner.run(job).skipped  # and the ledger knows both files now
    runs = {r["run_id"]: r for r in direct.runs(job="payments")}
    assert len(runs) == 4 and sum(r["status"] == "completed" for r in runs.values()) == 3
    (failed,) = [r for r in runs.values() if r["status"] != "completed"]
    assert failed["status"] == "failed" and "committed as version 1" in (failed["error"] or "")
    info = delta_log.commit_info(target.storage, target.uri, 1) or {}
    assert info["lake.run_id"] == failed["run_id"]
    assert {"namespace": "lake", "name": "bronze.payments", "version": 1} in direct.run_info(failed["run_id"])["outputs"]
