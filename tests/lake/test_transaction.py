"""One transaction path: every writer commits once through it, stamped and recorded.

The catalog-down protocol (the Delta log is the truth; every version the catalog lacks is
recorded by the next write or ``lake catalog repair``; a retry of a commit whose record
failed is recognized) is tested here with a catalog whose writes fail on cue, and against a
real PostgreSQL that goes away in ``test_catalog_down.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from catalog.store import Catalog
from lake import delta_log
from lake.errors import (
    CatalogConnectionError,
    CatalogUnavailableError,
    CommitNotRecordedError,
    LakeError,
)
from lake.lakehouse import Lake
from lake.naming import PENDING_DIR
from lake.transaction import Transaction
from tests.conftest import make_settings


def rows(start: int, n: int) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "v": [float(i) for i in range(start, start + n)]})


def commit_infos(table: Any) -> list[dict[str, Any]]:
    return list(delta_log.commits(table.storage, table.uri, table.version()))


def test_every_python_writer_stamps_its_commit_and_the_catalog_records_it(local_lake: Lake) -> None:
    t = local_lake.table("silver.items")
    t.write(rows(0, 3))
    t.write(rows(3, 3), txn=("app", 1))
    t.write(rows(3, 3), txn=("app", 1))                         # skipped: no commit
    t.merge(rows(5, 3), keys=["id"])
    t.delete("id = 0")
    t.write(rows(100, 2), mode="overwrite", replace_where="id >= 100")
    t.optimize()
    infos = commit_infos(t)
    assert [i["version"] for i in infos] == list(range(t.version(), -1, -1))
    for info in infos:
        assert info.get("lake.commit_id") and info.get("lake.run_id"), info
    recorded = local_lake.catalog.recorded_versions("silver.items")
    assert recorded == set(range(t.version() + 1))
    # The run stamped on each commit is the catalog run that recorded it.
    shown = {v["version"]: v for v in local_lake.catalog.show("silver.items")["versions"]}
    for info in infos:
        run = local_lake.catalog.run_info(info["lake.run_id"])
        assert {"name": "silver.items", "namespace": "lake", "version": info["version"]} in run["outputs"]
        assert shown[info["version"]]["operation"] == info["lake.operation"]


def test_a_transaction_stages_files_and_commits_once(local_lake: Lake) -> None:
    t = local_lake.table("bronze.raw")
    t.write(rows(0, 2))
    before = t.version()
    with pytest.raises(RuntimeError, match="boom"), t.transaction() as tx:
        tx.run(lambda props: None)
        raise RuntimeError("boom")
    assert t.version() == before  # nothing committed
    with t.transaction(txn=("loader", 7)) as tx:
        assert tx.skipped is None and tx.base is not None
        result = pytest.importorskip("lake.arrow_io").write(tx, rows(2, 2), "append", [], None, None, None, None)
    assert result.version == before + 1 and result.rows_written == 2
    again = Transaction(t, txn=("loader", 7))
    with again:
        assert again.skipped is not None and again.skipped.skipped
    with pytest.raises(LakeError, match="one delta-rs operation"), t.transaction() as tx:
        tx.run(lambda props: None)
        tx.run(lambda props: None)


class FlakyCatalog(Catalog):
    """A real SQLite catalog whose version records fail while ``down`` is set."""

    down = False
    unreachable = False

    def record_version(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise CatalogConnectionError("cannot reach the catalog database (simulated)")
        return super().record_version(*args, **kwargs)

    def recorded_versions(self, *args: Any, **kwargs: Any) -> set[int]:
        if self.unreachable:
            raise CatalogConnectionError("cannot reach the catalog database (simulated)")
        return super().recorded_versions(*args, **kwargs)


@pytest.fixture
def flaky(tmp_path: Path) -> tuple[Lake, FlakyCatalog]:
    catalog = FlakyCatalog(f"sqlite:///{tmp_path}/catalog.db")
    return Lake(make_settings(root=str(tmp_path / "lakehouse")), catalog=catalog), catalog


def test_catalog_unreachable_before_the_commit_commits_nothing(flaky: tuple[Lake, FlakyCatalog]) -> None:
    lake, catalog = flaky
    t = lake.table("bronze.orders")
    t.write(rows(0, 2))
    catalog.unreachable = True
    with pytest.raises(CatalogUnavailableError, match="nothing was committed to bronze.orders") as err:
        t.write(rows(2, 2))
    assert err.value.context["committed"] is False
    assert t.version() == 0 and t.to_arrow().num_rows == 2


def test_a_commit_whose_record_failed_is_repaired_and_its_retry_not_applied(flaky: tuple[Lake, FlakyCatalog]) -> None:
    lake, catalog = flaky
    t = lake.table("bronze.orders")
    t.write(rows(0, 2))
    batch = rows(2, 3)
    catalog.down = True
    with pytest.raises(CommitNotRecordedError, match="committed as version 1") as err:
        t.write(batch)
    assert err.value.context == {"table": "bronze.orders", "version": 1, "committed": True}
    assert "will not write the rows again" in err.value.message
    markers = t.storage.list_files(f"{t.uri}/{PENDING_DIR}")
    assert len(markers) == 1 and json.loads(t.storage.read_bytes(f"{t.uri}/{PENDING_DIR}/{markers[0].path}") or b"")["version"] == 1
    assert catalog.recorded_versions("bronze.orders") == {0}
    catalog.down = False
    # The user's natural retry: the same call. The catalog learns version 1, no row is written twice.
    again = t.write(batch)
    assert again.skipped and again.version == 1 and again.metrics == {"retry_of": 1}
    assert t.version() == 1 and t.to_arrow().num_rows == 5
    assert catalog.recorded_versions("bronze.orders") == {0, 1}
    assert not t.storage.list_files(f"{t.uri}/{PENDING_DIR}")
    # The repaired version belongs to the run stamped on its commit.
    (info,) = [i for i in commit_infos(t) if i["version"] == 1]
    run = catalog.run_info(info["lake.run_id"])
    assert run["status"] == "completed" and run["outputs"][0]["version"] == 1
    # A different write after that is an ordinary append.
    assert t.write(rows(10, 1)).version == 2 and t.to_arrow().num_rows == 6


def test_a_different_write_after_an_unrecorded_commit_is_applied(flaky: tuple[Lake, FlakyCatalog]) -> None:
    lake, catalog = flaky
    t = lake.table("bronze.orders")
    t.write(rows(0, 2))
    catalog.down = True
    with pytest.raises(CommitNotRecordedError):
        t.write(rows(2, 2))
    catalog.down = False
    result = t.write(rows(4, 2))
    assert not result.skipped and result.version == 2
    assert catalog.recorded_versions("bronze.orders") == {0, 1, 2}
    assert t.to_arrow().num_rows == 6 and not t.storage.list_files(f"{t.uri}/{PENDING_DIR}")


def test_lake_repair_records_what_the_catalog_lacks(flaky: tuple[Lake, FlakyCatalog]) -> None:
    lake, catalog = flaky
    t = lake.table("gold.kpis")
    t.write(rows(0, 2))
    catalog.down = True
    with pytest.raises(CommitNotRecordedError):
        t.write(rows(2, 2))
    # Still down: the next write cannot bring the record up to date first, so it commits nothing.
    with pytest.raises(CatalogUnavailableError):
        t.write(rows(4, 2))
    assert t.version() == 1
    catalog.down = False
    assert lake.repair() == {"gold.kpis": [1]}
    assert catalog.recorded_versions("gold.kpis") == {0, 1}
    assert lake.repair() == {}
    assert not t.storage.list_files(f"{t.uri}/{PENDING_DIR}")


def test_quality_result_travels_with_the_commit_and_is_repaired(flaky: tuple[Lake, FlakyCatalog], tmp_path: Path) -> None:
    lake, catalog = flaky
    suite = tmp_path / "suite.yaml"
    suite.write_text("table: bronze.orders\npolicy: warn\nexpectations:\n"
                     "  - expect_column_values_to_be_between: {column: v, min_value: 0}\n")
    t = lake.table("bronze.orders")
    catalog.down = True
    with pytest.raises(CommitNotRecordedError):
        t.write(rows(0, 3), quality=suite)
    (info,) = commit_infos(t)
    assert info["lake.quality"]["success"] is True and info["lake.quality"]["suite"] == "suite"
    catalog.down = False
    lake.repair()
    shown = catalog.show("bronze.orders")
    assert shown["versions"][0]["version"] == 0
    assert shown["quality"][0]["suite"] == "suite" and shown["quality"][0]["success"] is True


def test_lake_catalog_repair_command(flaky: tuple[Lake, FlakyCatalog], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from lake.cli import context
    from lake.cli.main import main

    lake, catalog = flaky
    t = lake.table("silver.sales")
    t.write(rows(0, 1))
    catalog.down = True
    with pytest.raises(CommitNotRecordedError):
        t.write(rows(1, 1))
    catalog.down = False
    monkeypatch.setattr(context.State, "lake", lambda self: lake)
    assert main(["catalog", "repair", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"recorded": {"silver.sales": [1]}}
    assert main(["catalog", "repair", "silver.sales"]) == 0
    assert "knows every committed version" in capsys.readouterr().out


def test_errors_print_their_context_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lake.cli.main import main

    root = str(tmp_path / "lakehouse")
    Path(root).mkdir()
    assert main(["--root", root, "table", "show", "bronze.nothing", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["type"] == "TableNotFoundError" and out["error"]["table"] == "bronze.nothing"
    assert "does not exist" in out["error"]["message"]
